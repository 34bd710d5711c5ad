<?php

namespace App\Http\Controllers;

use App\Jobs\RecordJob;
use App\Revision;
use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Redis;

/** The demo shop: rows read through PgBouncer's ro entry, the rw entry's role, Redis, and queued jobs. */
class ShopController
{
    public function health(): JsonResponse
    {
        return new JsonResponse(['ok' => true]);
    }

    /** The request as the app sees it behind the load balancer: the scheme the client used and its address. */
    public function client(Request $request): JsonResponse
    {
        return new JsonResponse(['scheme' => $request->getScheme(), 'address' => $request->ip()]);
    }

    public function index(): JsonResponse
    {
        $cached = Redis::get('demo:greeting');
        if ($cached === null || $cached === false) {
            $cached = 'cached at ' . gmdate(DATE_ATOM);
            Redis::setex('demo:greeting', 60, $cached);
        }
        $rows = DB::select('select id, name from items order by id limit 5');
        $standby = DB::connection('pgsql')->selectOne('select pg_is_in_recovery() as standby', [], false);
        return new JsonResponse([
            'app' => 'php', 'host' => gethostname(), 'rows' => $rows, 'redis' => $cached,
            'rw_is_standby' => (bool) $standby->standby, 'revision' => Revision::current(),
        ]);
    }

    public function enqueue(Request $request): JsonResponse
    {
        $priority = in_array($request->query('priority'), ['high', 'default', 'low'], true)
            ? $request->query('priority') : 'default';
        $id = bin2hex(random_bytes(8));
        RecordJob::dispatch($id, (string) $request->query('payload', ''))->onQueue($priority);
        return new JsonResponse(['queued' => $id, 'queue' => $priority]);
    }

    public function job(Request $request): JsonResponse
    {
        $job = DB::selectOne('select job_id, kind, payload, revision from jobs_done where job_id = ?',
            [(string) $request->query('id', '')]);
        return new JsonResponse(['job' => $job]);
    }
}
