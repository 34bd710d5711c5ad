<?php
// Queue worker for the PHP app (run by Supervisor): takes jobs from Redis lists in priority order and
// records each one in PostgreSQL through PgBouncer's read-write entry. Exits after a bounded number of
// jobs or seconds so Supervisor restarts it fresh (no leaks in long-lived PHP processes).
declare(strict_types=1);
require __DIR__ . '/src/bootstrap.php';

$queues = array_map(fn (string $q) => "jobs:php:$q", array_slice($argv, 1) ?: ['high', 'default', 'low']);
$deadline = time() + 3600;
$handled = 0;
$insert = db('rw')->prepare(
    'insert into jobs_done (job_id, kind, payload) values (?, ?, ?) on conflict (job_id) do nothing'
);
while ($handled < 10000 && time() < $deadline) {
    $popped = cache()->brPop($queues, 5);
    if (!$popped) {
        continue;
    }
    $job = json_decode($popped[1], true);
    $insert->execute([$job['id'], $job['kind'], $job['payload']]);
    $handled++;
}
