<?php
// The application, built on Debian's packaged Laravel framework (php-laravel-framework, found on PHP's
// include_path); this app's own classes come from composer's autoloader (vendor/, built by fabstack).
require_once 'Illuminate/autoload.php';

$app = new Illuminate\Foundation\Application(dirname(__DIR__));
$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Console\Kernel::class, App\Console\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
