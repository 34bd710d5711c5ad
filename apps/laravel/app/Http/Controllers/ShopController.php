<?php

namespace App\Http\Controllers;

use App\Jobs\RecordJob;
use App\Revision;
use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Redis;

/** The demo shop: rows read from the replicas (PgBouncer's ro entry, or a MariaDB replica), whether the write
 * connection reaches a standby, Redis, and queued jobs. */
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
        $standby = DB::selectFromWriteConnection(DB::getDriverName() === 'mysql'
            ? 'select @@read_only as standby' : 'select pg_is_in_recovery() as standby')[0];
        return new JsonResponse([
            'app' => 'php', 'host' => gethostname(), 'rows' => $rows, 'redis' => $cached,
            'rw_is_standby' => (bool) $standby->standby, 'revision' => Revision::current(),
        ]);
    }

    /** Which server answered a read and which a write, in one request: a read first (a replica), then a
     * write, then a read again (with 'sticky', the primary: the request reads its own write). */
    public function route(): JsonResponse
    {
        $mysql = DB::getDriverName() === 'mysql';
        $who = $mysql ? 'select @@hostname as host, @@read_only as read_only'
            : "select host(inet_server_addr()) as host, pg_is_in_recovery() as read_only";
        $first = DB::selectOne($who);
        DB::insert('insert into shop_orders (item, created_at, updated_at) values (?, ?, ?)',
            ['route probe', gmdate('Y-m-d H:i:s'), gmdate('Y-m-d H:i:s')]);
        $written = DB::selectFromWriteConnection($who)[0];
        $after = DB::selectOne($who);
        return new JsonResponse(['read' => $first, 'write' => $written, 'read_after_write' => $after]);
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
