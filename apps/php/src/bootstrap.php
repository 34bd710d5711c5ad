<?php
// The demo PHP app's plumbing: configuration (written by fabstack's php_app role), PDO to PgBouncer, phpredis.
declare(strict_types=1);

function app_config(): array
{
    static $config = null;
    return $config ??= require getenv('FABSTACK_PHP_CONFIG') ?: '/etc/fabstack/php-app.php';
}

/** A PDO connection through PgBouncer: $entry is 'rw' (primary) or 'ro' (replica). */
function db(string $entry): PDO
{
    static $connections = [];
    if (!isset($connections[$entry])) {
        $c = app_config()['db'][$entry];
        $connections[$entry] = new PDO($c['dsn'], $c['user'], $c['password'], [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            // PgBouncer's transaction pooling cannot keep server-side prepared statements
            PDO::ATTR_EMULATE_PREPARES => true,
            // one connection per FPM child and entry, kept across requests (the budget counts exactly these):
            // no SCRAM handshake per request
            PDO::ATTR_PERSISTENT => true,
        ]);
    }
    return $connections[$entry];
}

function cache(): Redis
{
    static $redis = null;
    if ($redis === null) {
        $c = app_config()['redis'];
        $redis = new Redis();
        $redis->pconnect($c['host'], (int) $c['port'], 2.0);
        $redis->auth([$c['user'], $c['password']]);
    }
    return $redis;
}
