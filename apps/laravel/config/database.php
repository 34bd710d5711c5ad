<?php

// PostgreSQL through PgBouncer: writes to its rw entry (the primary), reads from its ro entry (the replicas).
// PgBouncer pools transactions, so PDO must not keep server-side prepared statements.
// MariaDB directly: writes to the primary, reads from a replica (Laravel picks one of DB_READ_HOSTS), and with
// 'sticky' a request that wrote reads its own writes from the primary.
return [
    'default' => env('DB_CONNECTION', 'pgsql'),
    'connections' => [
        'mysql' => [
            'driver' => 'mysql',
            'read' => ['host' => explode(',', (string) env('DB_READ_HOSTS', '127.0.0.1'))],
            'write' => ['host' => [env('DB_WRITE_HOST', '127.0.0.1')]],
            'sticky' => true,
            'port' => env('DB_PORT', '3306'),
            'database' => env('DB_DATABASE', 'app'),
            'username' => env('DB_USERNAME', 'app'),
            'password' => env('DB_PASSWORD', ''),
            'charset' => 'utf8mb4',
            'collation' => 'utf8mb4_unicode_ci',
            'prefix' => '',
            'strict' => true,
        ],
        'pgsql' => [
            'driver' => 'pgsql',
            'read' => ['database' => env('DB_RO_DATABASE', 'app_ro')],
            'write' => ['database' => env('DB_RW_DATABASE', 'app')],
            'sticky' => true,
            'host' => env('DB_HOST', '127.0.0.1'),
            'port' => env('DB_PORT', '6432'),
            'username' => env('DB_USERNAME', 'app'),
            'password' => env('DB_PASSWORD', ''),
            'charset' => 'utf8',
            'prefix' => '',
            'schema' => 'public',
            'sslmode' => 'prefer',
            'options' => [PDO::ATTR_EMULATE_PREPARES => true],
        ],
    ],
    'migrations' => 'migrations',
    'redis' => [
        'client' => 'phpredis',
        'options' => ['prefix' => 'shop:'],
        'default' => [
            'host' => env('REDIS_HOST', '127.0.0.1'),
            'port' => env('REDIS_PORT', '6379'),
            // Redis ACL user and password: Laravel 8's phpredis connector passes 'password' to AUTH as it is, and
            // phpredis takes [user, password] there
            'password' => [env('REDIS_USERNAME'), env('REDIS_PASSWORD')],
            'database' => 0,
        ],
    ],
];
