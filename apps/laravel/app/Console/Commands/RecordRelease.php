<?php

namespace App\Console\Commands;

use App\Revision;
use Illuminate\Console\Command;
use Illuminate\Support\Facades\DB;

/** Release hook (once per release, before the switch): one row per release of this app. */
class RecordRelease extends Command
{
    protected $signature = 'app:record-release';

    protected $description = 'Record this release in app_releases';

    public function handle(): int
    {
        DB::connection()->insert('insert into app_releases (app, revision, host) values (?, ?, ?)',
            ['shop', Revision::current(), gethostname()]);
        return 0;
    }
}
