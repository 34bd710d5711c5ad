"""postgresql: Debian's PostgreSQL, PGTune-tuned from facts, scram-only pg_hba, replication slots, app databases."""

from __future__ import annotations

import hashlib
from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import SQL_IDENTIFIER, Inbound
from fabstack.engine.settingspec import IDENTIFIER, Setting
from fabstack.stack.hostfiles import PATRONI_ADOPTED, PATRONI_CONFIG
from fabstack.stack.pgbackrest import archive_command

# Roles whose settings this role reads when the host runs them too (the firewall asks for inbound ports).
READS = ("firewall", "patroni", "pgbackrest")

GENERATED_SECRETS = ("postgresql_app_password", "postgresql_replication_password")

# Debian's postgresql.service passes reload and restart on to every cluster of the host.
# Settings holding TCP ports this role listens on: the engine refuses two roles sharing one on a host.
PORTS = ("postgresql_port",)

# The settings that take effect only when the server restarts (under the cluster's configuration folder).
RESTART_CONF = "conf.d/60-fabstack-restart.conf"

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    # a server Patroni runs is reloaded and restarted through Patroni, never behind its back
    "reload postgresql": f"if test -e {PATRONI_ADOPTED}; then runuser -u postgres -- psql -X -qAt -p "
                         "{{ postgresql_port }} -c 'select pg_reload_conf()' >/dev/null; "
                         "else systemctl reload postgresql; fi",
    # Not when the running server started after the settings were written (Patroni just started it, on a first
    # hand-over): a second outage would buy nothing. Back only once the server accepts connections (bounded:
    # 30 s), so whatever comes next (PgBouncer's logins, a release's migration hook) meets a server that answers.
    "restart postgresql": "started=$(runuser -u postgres -- psql -X -qAt -p {{ postgresql_port }} -c "
                          "'select floor(extract(epoch from pg_postmaster_start_time()))::bigint' 2>/dev/null); "
                          "if [ -n \"$started\" ] && [ \"$started\" -gt "
                          f"\"$(stat -c %Y {{{{ postgresql_etc }}}}/{RESTART_CONF})\" ]; then :; "
                          f"elif test -e {PATRONI_ADOPTED}; then patronictl -c {PATRONI_CONFIG} restart --force "
                          f"\"$(sed -n 's/^scope: \"\\(.*\\)\"$/\\1/p' {PATRONI_CONFIG})\" "
                          "{{ inventory_hostname }}; else systemctl restart postgresql; fi && "
                          "for i in $(seq 150); do pg_isready -q -p {{ postgresql_port }} && break; sleep 0.2; done",
}

# What pg_rewind needs from the source server when it connects as the replication role, not a superuser.
REWIND_GRANTS = ("pg_ls_dir(text, boolean, boolean)", "pg_stat_file(text, boolean)",
                 "pg_read_binary_file(text)", "pg_read_binary_file(text, bigint, bigint, boolean)")



def inbound(values: dict[str, Any]) -> list[Inbound]:
    """PostgreSQL is reached by the poolers and by the other db hosts (replication, fencing checks)."""
    return [Inbound((values["postgresql_port"],), "PostgreSQL: PgBouncer, replication, fencing checks",
                    (values["firewall_pgbouncer_group"], values["firewall_db_group"]))]


SETTINGS = {
    "postgresql_app_user": IDENTIFIER, "postgresql_replication_user": IDENTIFIER, "postgresql_cluster": IDENTIFIER,
    "postgresql_databases": Setting(item=IDENTIFIER),
    "postgresql_slot": Setting(pattern=r"[a-z0-9_]{1,63}", shape="a slot name (a-z, 0-9, _; at most 63)"),
    "postgresql_max_connections": Setting(least=0), "postgresql_superuser_reserved_connections": Setting(least=0),
    "postgresql_admin_connections": Setting(least=0),
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Each index names its database, table and columns by plain identifiers."""
    return [("postgresql_indexes", f"each needs identifiers database, name, table and a comma-separated list of "
                                   f"columns, got {index!r}")
            for index in values["postgresql_indexes"] if not isinstance(index, dict) or not _valid_index(index)]


def _valid_index(index: dict[str, Any]) -> bool:
    names = [str(index.get(f, "")) for f in ("database", "name", "table")]
    columns = [c.strip() for c in str(index.get("columns", "")).split(",")]
    return all(SQL_IDENTIFIER.match(n) for n in names + columns)


def sql_literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings is on)."""
    return "'" + text.replace("'", "''") + "'"


def addresses(ctx: RoleContext, groups: list[str]) -> list[str]:
    """The addresses of every host in the named groups."""
    found: list[str] = []
    for group in groups:
        for name in ctx.groups.get(group, []):
            address = str(ctx.hostvars[name].get("ansible_host", name))
            if address not in found:
                found.append(address)
    return found


def under_patroni(ctx: RoleContext) -> bool:
    """Whether Patroni runs this host's server (the host carries the patroni role): the leader is then whichever
    member holds the lease, not the inventory's primary."""
    return "patroni" in {role.name for role in ctx.host_roles}


def archives(ctx: RoleContext) -> bool:
    """Whether the server archives its WAL to a pgBackRest repository (the host carries the pgbackrest role)."""
    return "pgbackrest" in {role.name for role in ctx.host_roles}


def leader_sql(ctx: RoleContext, database: str, statements: str, *, unless_query: str, equals: str,
               name: str) -> None:
    """SQL for the primary. Under Patroni every member declares it and any server out of recovery runs it: the
    leader, as the cluster says when the step runs (on a replica the guard reads as met), or a replica-to-be's own
    fresh cluster before its clone replaces it (harmless: in this mode no start-up fence asks that cluster
    whether it is a primary)."""
    if under_patroni(ctx):
        met = sql_literal(equals)
        unless_query = f"select case when pg_is_in_recovery() then {met} else ({unless_query})::text end"
    ctx.sql(database, statements, unless_query=unless_query, equals=equals, name=name)


def login_role(ctx: RoleContext, name: str, password: str, extra: str) -> None:
    """A login role whose password is kept right; a hash in the role's comment shows it without revealing it."""
    mark = "fabstack:" + hashlib.sha256(f"{name}:{password}".encode()).hexdigest()[:32]
    leader_sql(
        ctx, "postgres", name=f"role {name}",
        unless_query=f"select shobj_description(oid, 'pg_authid') from pg_roles where rolname = '{name}'",
        equals=mark,
        statements=(f"select 'create role {name}' where not exists (select from pg_roles where rolname = '{name}')"
                    f"\\gexec\nalter role {name} with login {extra} password {sql_literal(password)};\n"
                    f"comment on role {name} is {sql_literal(mark)};\n"),
    )


def deploy(ctx: RoleContext) -> None:
    """Declare the server, its tuned config and access rules; on the primary, roles, databases and slots."""
    v, computed = ctx.vars, ctx.computed
    etc, data = v["postgresql_etc"], v["postgresql_data"]
    is_primary = ctx.host in ctx.groups.get(v["postgresql_primary_group"], [])
    is_fenced = ctx.host in ctx.groups.get(v["postgresql_fenced_group"], [])
    replicas = ctx.groups.get(v["postgresql_replica_group"], [])
    db_groups = [v["postgresql_primary_group"], v["postgresql_replica_group"], v["postgresql_fenced_group"]]
    service = v["postgresql_service"]
    check_config = (f"runuser -u postgres -- {v['postgresql_bin']}/postgres -D {data} "
                    f"-c config_file={etc}/postgresql.conf -C max_connections >/dev/null")
    # pg_hba_file_rules reads the file on disk; a stopped server checks it itself when it starts
    check_hba = ("! runuser -u postgres -- pg_isready -q || test \"$(runuser -u postgres -- psql -X -At -c "
                 "'select count(*) from pg_hba_file_rules where error is not null')\" = 0")

    ctx.packages(f"postgresql-{v['postgresql_version']}")
    context = dict(
        tuning=computed["postgresql_tuning"], max_connections=computed["postgresql_max_connections"],
        listen=["localhost", ctx.facts["primary_address"]], replicas=replicas, is_primary=is_primary,
        client_addresses=addresses(ctx, v["postgresql_client_groups"]),
        replication_addresses=addresses(ctx, db_groups),
        # under Patroni its synchronous_mode names the synchronous standby (in the postgresql.conf it writes)
        patroni=under_patroni(ctx),
        cluster_name=v["patroni_scope"] if under_patroni(ctx) else "",
        # with pgBackRest, whichever server is out of recovery archives its WAL (a replica's archive_mode waits)
        archive_command=archive_command(v["pgbackrest_stanza"]) if archives(ctx) else "",
    )
    ctx.template("restart.conf.j2", f"{etc}/{RESTART_CONF}", owner="postgres", group="postgres",
                  validate=check_config, notify="restart postgresql", **context)
    ctx.template("reload.conf.j2", f"{etc}/conf.d/61-fabstack.conf", owner="postgres", group="postgres",
                  validate=check_config, notify="reload postgresql", **context)
    ctx.template("pg_hba.conf.j2", f"{etc}/pg_hba.conf", owner="postgres", group="postgres", mode="0640",
                  validate=check_hba, notify="reload postgresql", **context)
    ctx.template("pgpass.j2", v["postgresql_pgpass"], owner="postgres", group="postgres", mode="0600",
                  secret=True)
    fence = "/usr/local/sbin/fabstack-pg-fence"
    fence_dropin = f"/etc/systemd/system/{service}.service.d/60-fabstack-fence.conf"
    if under_patroni(ctx):
        # Patroni fences (a leader that cannot renew its lease demotes itself). The start-up fence would ask a
        # replica-to-be's fresh cluster whether it is a writable primary, and stand the real primary down when
        # the first deploy restarts it; a pair adopted from the manual mode loses it too.
        ctx.absent(fence_dropin, notify="reload systemd")
        ctx.absent(fence)
    else:
        peers = [a for a in addresses(ctx, db_groups) if a != ctx.address_of(ctx.host)]
        ctx.template("fence.sh.j2", fence, mode="0755", data=data, peers=peers)
        ctx.directory(f"/etc/systemd/system/{service}.service.d")
        ctx.template("fence.conf.j2", fence_dropin, notify="reload systemd")
    if is_fenced:
        # a failed primary stays down until `inv failover rejoin` makes it a replica of the new primary
        ctx.service(service, state="stopped", enabled=None, masked=True)
        return
    if under_patroni(ctx):
        # Debian's unit runs the server until the patroni role hands it over; Patroni starts it from then on
        # (a member just booted may still be starting it: wait, bounded, before its SQL is asked)
        ctx.command(f"systemctl enable --now {service}", name=f"start {service} until Patroni runs it",
                    unless=f"test -e {PATRONI_ADOPTED} || systemctl -q is-active {service}")
        ctx.command(f"for i in $(seq 120); do pg_isready -q -p {v['postgresql_port']} && exit 0; sleep 1; done; "
                    f"echo 'PostgreSQL does not accept connections 120 s on' >&2; exit 1",
                    unless=f"pg_isready -q -p {v['postgresql_port']}", name="wait for the server to accept connections")
    else:
        ctx.service(service)
    if not (is_primary or under_patroni(ctx)):
        return

    login_role(ctx, v["postgresql_app_user"], v["postgresql_app_password"], "nosuperuser")
    login_role(ctx, v["postgresql_replication_user"], v["postgresql_replication_password"], "replication")
    user = v["postgresql_replication_user"]
    leader_sql(ctx, "postgres", name=f"pg_rewind grants for {user}",
            unless_query=f"select has_function_privilege('{user}', 'pg_catalog.{REWIND_GRANTS[-1]}', 'execute')",
            equals="true",
            statements="".join(f"grant execute on function pg_catalog.{f} to {user};\n" for f in REWIND_GRANTS))
    for replica in replicas:
        if replica == ctx.host:
            continue  # a replica that became the leader under Patroni: no slot for itself
        slot = ctx.hostvars[replica]["postgresql_slot"]
        leader_sql(ctx, "postgres", name=f"replication slot {slot}",
                unless_query=f"select count(*) from pg_replication_slots where slot_name = '{slot}'", equals="1",
                statements=f"select pg_create_physical_replication_slot('{slot}') where not exists "
                           f"(select from pg_replication_slots where slot_name = '{slot}');\n")
    schema = ctx.repo_path(v["postgresql_schema_file"]) if v["postgresql_schema_file"] else None
    for database in v["postgresql_databases"]:
        leader_sql(ctx, "postgres", name=f"database {database}",
                unless_query=f"select count(*) from pg_database where datname = '{database}'", equals="1",
                statements=f"select 'create database {database} owner {v['postgresql_app_user']}' where not exists "
                           f"(select from pg_database where datname = '{database}')\\gexec\n")
        leader_sql(ctx, database, name=f"pg_stat_statements in {database}",
                unless_query="select count(*) from pg_extension where extname = 'pg_stat_statements'", equals="1",
                statements="create extension if not exists pg_stat_statements;\n")
        if schema is not None:
            sql = schema.read_text()
            digest = hashlib.sha256(sql.encode()).hexdigest()[:16]
            leader_sql(
                ctx, database, name=f"schema {schema.name} in {database}",
                unless_query="select string_agg(digest, ',') from fabstack_schema", equals=digest,
                statements=(f"set role {v['postgresql_app_user']};\n{sql}\n"
                            "create table if not exists fabstack_schema (digest text not null);\n"
                            f"delete from fabstack_schema;\ninsert into fabstack_schema values ('{digest}');\n"),
            )
    for index in v["postgresql_indexes"]:
        leader_sql(
            ctx, index["database"], name=f"index {index['name']}",
            unless_query=f"select count(*) from pg_indexes where indexname = '{index['name']}'", equals="1",
            statements=(f"create index concurrently if not exists {index['name']} on {index['table']} "
                        f"({index['columns']});\n"),
        )
