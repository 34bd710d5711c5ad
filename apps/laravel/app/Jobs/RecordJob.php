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
        // a job run twice records once (on either database: Laravel writes the engine's own "ignore duplicates")
        DB::table('jobs_done')->insertOrIgnore(
            ['job_id' => $this->jobId, 'kind' => 'php', 'payload' => $this->payload, 'revision' => Revision::current()]
        );
    }
}
