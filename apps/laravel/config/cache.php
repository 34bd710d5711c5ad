<?php

// Redis, shared by every host: `artisan queue:restart` reaches every worker through it.
return [
    'default' => 'redis',
    'stores' => ['redis' => ['driver' => 'redis', 'connection' => 'default']],
    'prefix' => 'shop_cache',
];
