<?php
// The demo PHP app's plumbing: configuration (written by fabstack's php_app role), PDO to PgBouncer, phpredis.
declare(strict_types=1);

function app_config(): array
{
    static $config = null;
    return $config ??= require getenv('FABSTACK_PHP_CONFIG') ?: '/etc/fabstack/php-app.php';
}

/** A PDO connection through PgBouncer: $entry is 'rw' (primary) or 'ro' (replica); $fresh drops the one held. */
function db(string $entry, bool $fresh = false): PDO
{
    static $connections = [];
    if ($fresh || !isset($connections[$entry])) {
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

/** Whether a PDO error means the connection itself is gone (PgBouncer dropped its clients in a failover). */
function connection_lost(PDOException $e): bool
{
    return str_starts_with((string) $e->getCode(), '08')
        || preg_match('/server closed the connection|no connection to the server|terminating connection/',
            $e->getMessage()) === 1;
}

/**
 * Run a read on the entry's connection. A persistent connection that a failover broke fails once: it is opened
 * again (PDO resets a dead persistent link) and the read, safe to repeat, is tried once more.
 */
function db_read(string $entry, callable $read): mixed
{
    try {
        return $read(db($entry));
    } catch (PDOException $e) {
        if (!connection_lost($e)) {
            throw $e;
        }
        return $read(db($entry, fresh: true));
    }
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
