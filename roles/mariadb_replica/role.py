"""mariadb_replica: seed once from the primary (mariadb-backup over SSH), then replicate by GTID, read_only."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import Setting
from fabstack.stack.hostfiles import SEEDED

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("mariadb",)

SEED = "/usr/local/sbin/fabstack-mariadb-seed"
KEY = "/etc/mysql/fabstack-seed.key"
KNOWN_HOSTS = "/etc/mysql/fabstack-seed.known_hosts"


SETTINGS = {"mariadb_replica_seed_timeout": Setting(least=60, most=86_400)}  # seconds a copy can finish in


def tls_options(values: dict[str, Any]) -> str:
    """The CHANGE MASTER options for the connection to the primary: TLS, trusting the tier's CA only, or none."""
    if values["mariadb_tls"]:
        return f"MASTER_SSL = 1, MASTER_SSL_CA = '{values['mariadb_tls_dir']}/ca.pem'"
    return "MASTER_SSL = 0"


def sql_literal(text: str) -> str:
    """``text`` as a MariaDB string literal's content: backslashes and quotes doubled."""
    return text.replace("\\", "\\\\").replace("'", "''")


def deploy(ctx: RoleContext) -> None:
    """Declare the seed key, the primary's host key, the seed script and its one run, and whether the
    replication connection uses TLS."""
    v = ctx.vars
    primary = ctx.peer(v["mariadb_primary_group"])
    ctx.file(KEY, v["mariadb_seed_ssh_private_key"], mode="0600", secret=True)
    ctx.file(KNOWN_HOSTS, "\n".join(ctx.host_key_lines(primary["name"])) + "\n")
    ctx.template("seed.sh.j2", SEED, mode="0700", secret=True, primary=primary["name"],
                 primary_address=primary["address"], primary_ssh_port=primary.get("ansible_port", 22),
                 key_file=KEY, known_hosts_file=KNOWN_HOSTS, seed_user=v["mariadb_seed_user"],
                 tls_options=tls_options(v), seeded=SEEDED,
                 password_literal=sql_literal(v["mariadb_replication_password"]))
    ctx.command(SEED, creates=SEEDED, name=f"seed from {primary['name']} and replicate by GTID")
    allowed = "Yes" if v["mariadb_tls"] else "No"
    ctx.command(f"mariadb --batch -e \"STOP SLAVE; CHANGE MASTER TO {tls_options(v)}; START SLAVE\"",
                name=f"replication connection TLS {'on' if v['mariadb_tls'] else 'off'}",
                unless=f"mariadb --batch -e 'SHOW SLAVE STATUS\\G' | grep -q 'Master_SSL_Allowed: {allowed}'")
