<?php

use App\Http\Controllers\ShopController;
use Illuminate\Support\Facades\Route;

Route::get('/health', [ShopController::class, 'health']);
Route::get('/client', [ShopController::class, 'client']);
Route::get('/', [ShopController::class, 'index']);
Route::get('/db-route', [ShopController::class, 'route']);
Route::get('/enqueue', [ShopController::class, 'enqueue']);
Route::get('/job', [ShopController::class, 'job']);
