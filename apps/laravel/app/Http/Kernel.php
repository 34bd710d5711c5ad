<?php

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

class Kernel extends HttpKernel
{
    /** Every response names the release that served it (fabstack's health check waits for the new one). */
    protected $middleware = [
        \App\Http\Middleware\RevisionHeader::class,
    ];

    protected $middlewareGroups = ['api' => []];
}
