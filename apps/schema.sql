-- The demo apps' schema (managed by fabstack's postgresql role; applied again whenever this file changes,
-- so every statement must be idempotent).
create table if not exists items (
    id bigserial primary key,
    name text not null,
    created_at timestamptz not null default now()
);
create table if not exists jobs_done (
    id bigserial primary key,
    job_id text not null unique,
    kind text not null,
    payload text not null,
    processed_at timestamptz not null default now()
);
insert into items (name)
select 'item ' || n from generate_series(1, 20) as n
where not exists (select from items);
alter table jobs_done add column if not exists revision text not null default '';
-- one row per release of an app, written by its once-per-release hook
create table if not exists app_releases (
    id bigserial primary key,
    app text not null,
    revision text not null,
    host text not null,
    at timestamptz not null default now()
);
-- every run of a long Celery task (started and finished): a task that ran twice shows twice
create table if not exists task_runs (
    id bigserial primary key,
    task_id text not null,
    revision text not null,
    state text not null,
    at timestamptz not null default now()
);
