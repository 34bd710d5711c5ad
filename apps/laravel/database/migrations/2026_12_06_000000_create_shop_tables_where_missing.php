<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Schema;

/** The shop's own tables where the database tier did not make them (PostgreSQL's schema.sql does; on MariaDB
 * the app makes them itself), with the demo's 20 items. */
class CreateShopTablesWhereMissing extends Migration
{
    public function up(): void
    {
        if (!Schema::hasTable('items')) {
            Schema::create('items', function (Blueprint $table): void {
                $table->id();
                $table->string('name');
                $table->timestamp('created_at')->useCurrent();
            });
            DB::table('items')->insert(array_map(fn (int $n): array => ['name' => "item $n"], range(1, 20)));
        }
        if (!Schema::hasTable('jobs_done')) {
            Schema::create('jobs_done', function (Blueprint $table): void {
                $table->id();
                $table->string('job_id')->unique();
                $table->string('kind');
                $table->text('payload');
                $table->string('revision')->default('');
                $table->timestamp('processed_at')->useCurrent();
            });
        }
        if (!Schema::hasTable('app_releases')) {
            Schema::create('app_releases', function (Blueprint $table): void {
                $table->id();
                $table->string('app');
                $table->string('revision');
                $table->string('host');
                $table->timestamp('at')->useCurrent();
            });
        }
    }

    public function down(): void
    {
    }
}
