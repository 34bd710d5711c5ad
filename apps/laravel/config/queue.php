<?php

// Jobs on Redis queues high, default and low (workers under Supervisor: group_vars/workers.yml).
return [
    'default' => 'redis',
    'connections' => [
        'redis' => ['driver' => 'redis', 'connection' => 'default', 'queue' => 'default', 'retry_after' => 90,
                    'block_for' => null, 'after_commit' => false],
    ],
    'failed' => ['driver' => 'null'],
];
