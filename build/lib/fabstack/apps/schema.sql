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
