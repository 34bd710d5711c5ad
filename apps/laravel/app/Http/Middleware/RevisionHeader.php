<?php

namespace App\Http\Middleware;

use App\Revision;
use Closure;
use Illuminate\Http\Request;

class RevisionHeader
{
    public function handle(Request $request, Closure $next)
    {
        $response = $next($request);
        $response->headers->set('X-App-Revision', substr(Revision::current(), 0, 12));
        return $response;
    }
}
