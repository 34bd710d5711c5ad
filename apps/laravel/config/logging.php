<?php

// Into PHP's error log (PHP-FPM's, or a worker's Supervisor log): nothing written inside a release.
return [
    'default' => 'errorlog',
    'channels' => ['errorlog' => ['driver' => 'errorlog', 'level' => 'warning']],
];
