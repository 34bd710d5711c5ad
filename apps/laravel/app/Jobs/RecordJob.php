<?php

namespace App\Jobs;

use App\Revision;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Support\Facades\DB;

/** A queued job: recorded once in jobs_done, with the release of the worker that ran it. */
class RecordJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function __construct(public string $jobId, public string $payload)
    {
    }

    public function handle(): void
    {
        DB::connection('pgsql')->insert(
            'insert into jobs_done (job_id, kind, payload, revision) values (?, ?, ?, ?) on conflict (job_id) do nothing',
            [$this->jobId, 'php', $this->payload, Revision::current()]
        );
    }
}
