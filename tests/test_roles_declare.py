"""What every bundled role declares for a small and a large host, from the project and a facts fixture alone.

No host is contacted: ``runner.declare_offline`` plans the sandbox env as a deploy would (budget included) from
the facts given here, so these tests show what a role computes from a host's size, and that a version is one edit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fabstack.engine import operations as ops
from fabstack.engine.errors import FabstackError
from fabstack.engine.runner import declare_offline
from fabstack.tiers.env import load_env
from tests.conftest import REPO, record_fake_host_keys

SMALL = {"cpus": 1, "memory_mb": 1024, "nofile_hard": 20000}
LARGE = {"cpus": 32, "memory_mb": 65536, "nofile_hard": 1048576}


def host_facts(address: str, hostname: str, size: dict[str, int]) -> dict[str, Any]:
    """Facts shaped as the agent reports them, for a Debian 12 VM of the given size."""
    return {
        "hostname": hostname, "os": {"id": "debian", "version_id": "12", "codename": "bookworm",
                                     "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
        "init": "systemd", "virtualization": "kvm", "container": "", "python": "3.11.2",
        "disks": [{"name": "vda", "rotational": False, "size_gb": 80.0}],
        "addresses": [{"interface": "eth0", "address": address, "prefix": 24, "family": "inet"}],
        "primary_address": address, "proc_sys_writable": True, **size,
    }


Declared = dict[str, list[tuple[str, ops.Operation]]]


def declared_for(root: Path, size: dict[str, int], env: str = "sandbox") -> Declared:
    """Each host's (role name, operation) list when every host of the env has the given size."""
    record_fake_host_keys(root, env)
    project = load_env(root, env)
    facts = {name: host_facts(project.setup(name, None).vars["ansible_host"], name, size)
             for name in project.inventory.hosts}
    return {host: [(role.name, op) for role, op in items]
            for host, items in declare_offline(project, facts).items()}


def add_to_group(root: Path, env: str, group: str, host: str) -> None:
    """Put a host of an env's inventory (a test's copy) into one more top-level group, made if missing."""
    path = root / "inventory" / f"{env}.yml"
    inventory = yaml.safe_load(path.read_text())
    groups = inventory["all"]["children"]
    groups.setdefault(group, {}).setdefault("hosts", {})
    groups[group]["hosts"] = {**(groups[group]["hosts"] or {}), host: None}
    path.write_text(yaml.safe_dump(inventory))


def refusal(root: Path, env: str) -> FabstackError:
    """What declaring every host of an env (a small size) refuses."""
    with pytest.raises(FabstackError) as refused:
        declared_for(root, SMALL, env=env)
    return refused.value


def text_of(op: ops.Operation) -> str:
    """Everything an operation would put on a host, as text: its fields, and a file's content."""
    shown = json.dumps(op.desired(), sort_keys=True, default=str)
    return shown + (op.content.decode() if isinstance(op, ops.File) else "")


def find(declared: Declared, host: str, role: str, op_id: str) -> str:
    """The text of one declared operation, failing clearly when the role did not declare it."""
    for name, op in declared[host]:
        if name == role and op.id == op_id:
            return text_of(op)
    ids = [op.id for name, op in declared[host] if name == role]
    raise AssertionError(f"{role} on {host} did not declare {op_id!r}; it declared {ids}")


def ops_by_host(root: Path = REPO, overrides: tuple[str, ...] = (), container: str = "") -> dict[str, dict[str, Any]]:
    """Each sandbox host's operations by id, planned from offline facts of small VMs (or containers), with
    ``--set`` overrides; an input problem raises its one-line error."""
    project = load_env(root, "sandbox")
    project.set_overrides(list(overrides))
    facts = {name: dict(host_facts(project.setup(name, None).vars["ansible_host"], name, SMALL), container=container)
             for name in project.inventory.hosts}
    return {host: {op.id: op for _, op in items} for host, items in declare_offline(project, facts).items()}


@pytest.fixture(scope="module")
def sized_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the repo (so the same secrets for both sizes), with host keys recorded for the MariaDB env
    (a replica trusts only its primary's recorded key)."""
    from tests.conftest import copy_project

    root = copy_project(tmp_path_factory.mktemp("declare") / "repo")
    record_fake_host_keys(root, "mariadb")
    return root


@pytest.fixture(scope="module")
def both_sizes(sized_copy: Path) -> dict[str, tuple[Declared, Declared]]:
    """Each env declared for small hosts and for large ones."""
    return {env: (declared_for(sized_copy, SMALL, env), declared_for(sized_copy, LARGE, env))
            for env in ("sandbox", "mariadb", "patroni")}


# role -> (host, operation, what a small host gets, what a large host gets); the same text for both when the
# role does not depend on the host's size.
EXPECTED = {
    "common": ("lb1", "file /etc/systemd/system.conf.d/60-fabstack-limits.conf",
               "DefaultLimitNOFILE=20000", "DefaultLimitNOFILE=65536"),
    "nginx": ("lb1", "file /etc/nginx/nginx.conf", "worker_processes 1;", "worker_processes 32;"),
    "php_fpm": ("app1", "file /etc/php/8.2/fpm/pool.d/app.conf", "pm.max_children = 7", "pm.max_children = 612"),
    "uvicorn": ("app2", "file /etc/systemd/system/fabstack-fastapi.service", "--workers 1 ", "--workers 32 "),
    "postgresql": ("db1", "file /etc/postgresql/15/main/conf.d/60-fabstack-restart.conf",
                   "shared_buffers = 256MB", "shared_buffers = 16GB"),
    "redis": ("cache1", "file /etc/redis/redis.conf", "maxmemory 256mb", "maxmemory 16384mb"),
    "php": ("app1", "packages php8.2-cli php8.2-pgsql php8.2-mysql php8.2-redis php8.2-opcache", "php8.2-opcache",
            "php8.2-opcache"),
    "php_app": ("app1", "file /srv/php-app/shared/.env", "DB_PORT=6432", "DB_PORT=6432"),
    "express_app": ("app1", "file /etc/fabstack/express.env", "DB_PORT=6432", "DB_PORT=6432"),
    # the instance count follows cores: test_node_instances_follow_cores
    "node": ("app1", "service fabstack-express@3000", '"state": "started"', '"enabled": true'),
    "fastapi_app": ("app2", "file /etc/fabstack/fastapi-app.env", "port=6432 dbname=app ",
                    "port=6432 dbname=app "),
    "postgresql_replica": ("db2", "command clone 10.213.0.31 into /var/lib/postgresql/15/main", "pg_basebackup",
                           "pg_basebackup"),
    "backups": ("db1", "file /etc/cron.d/fabstack-backups", "/usr/local/sbin/fabstack-backup",
                "/usr/local/sbin/fabstack-backup"),
    "pgbouncer": ("cache1", "file /etc/pgbouncer/pgbouncer.ini", "listen_port = 6432", "listen_port = 6432"),
    "supervisor": ("cache1", "service supervisor", '"state": "started"', '"state": "started"'),
    "sshd": ("lb1", "file /etc/ssh/sshd_config.d/00-fabstack.conf", "PasswordAuthentication no",
             "PasswordAuthentication no"),
    "firewall": ("db1", "file /etc/nftables.conf", "5432", "5432"),
    "node_exporter": ("db1", "file /etc/default/prometheus-node-exporter", "--web.listen-address=10.213.0.31:9100",
                      "--web.listen-address=10.213.0.31:9100"),
    "nginx_exporter": ("lb1", "file /etc/default/mtail", "HOST=10.213.0.11", "HOST=10.213.0.11"),
    "redis_exporter": ("cache1", "file /etc/default/prometheus-redis-exporter", "db0=bull:school-jobs:wait",
                       "db0=bull:school-jobs:wait"),
    "postgres_exporter": ("db2", "file /etc/default/prometheus-postgres-exporter",
                          "--web.listen-address=10.213.0.32:9187", "--web.listen-address=10.213.0.32:9187"),
    "pgbouncer_exporter": ("cache1", "file /etc/systemd/system/fabstack-pgbouncer-exporter.service",
                           "--user pgbouncer_stats", "--user pgbouncer_stats"),
    # the pool's max_children follows the host's memory, like php_fpm's
    "php_fpm_exporter": ("app1", "file /etc/systemd/system/fabstack-php-fpm-exporter.service",
                         "--max-children 7", "--max-children 612"),
    # the buffer pool follows the host's memory
    "mariadb": ("mdb1", "file /etc/mysql/mariadb.conf.d/60-fabstack.cnf", "innodb_buffer_pool_size = 512M",
                "innodb_buffer_pool_size = 32768M"),
    "mariadb_replica": ("mdb2", "command seed from mdb1 and replicate by GTID", "fabstack-mariadb-seed",
                        "fabstack-mariadb-seed"),
    "prometheus": ("mon1", "file /etc/prometheus/prometheus.yml", 'targets: ["10.213.0.41:9100"]',
                   'targets: ["10.213.0.41:9100"]'),
    "hardening": ("db1", "file /etc/fail2ban/jail.local", "banaction = nftables-multiport",
                  "banaction = nftables-multiport"),
    "etcd": ("pgw1", "file /etc/default/etcd", 'ETCD_NAME="pgw1"', 'ETCD_NAME="pgw1"'),
    # the cluster-wide max_worker_processes follows the cores, as the postgresql role computes it
    "patroni": ("pdb1", "file /etc/patroni/config.yml", '"max_worker_processes": 8', '"max_worker_processes": 32'),
    "haproxy": ("pgw1", "file /etc/haproxy/haproxy.cfg", "check port 8008", "check port 8008"),
    "pgbackrest": ("pdb2", "file /etc/pgbackrest.conf", "repo1-host=10.217.0.31", "repo1-host=10.217.0.31"),
    "backup_store": ("mbackup1", "file /var/lib/fabstack-offsite/.ssh/authorized_keys",
                     "rrsync -wo -no-del -no-overwrite /var/backups/offsite", "rrsync -wo -no-del -no-overwrite"),
    "pgbackrest_repo": ("backup1", "file /etc/pgbackrest.conf", "pg2-host=10.217.0.12", "pg2-host=10.217.0.12"),
}


# roles the sandbox env does not run, and the env whose hosts carry them
OTHER_ENV = {"mariadb": "mariadb", "mariadb_replica": "mariadb", "etcd": "patroni", "patroni": "patroni",
             "haproxy": "patroni", "pgbackrest": "patroni", "pgbackrest_repo": "patroni",
             "backup_store": "mariadb"}


def test_every_bundled_role_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in (REPO / "roles").iterdir() if (p / "role.py").is_file())


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_role_declares_for_small_and_large_hosts(role: str,
                                                 both_sizes: dict[str, tuple[Declared, Declared]]) -> None:
    small, large = both_sizes[OTHER_ENV.get(role, "sandbox")]
    host, op_id, for_small, for_large = EXPECTED[role]
    assert for_small in find(small, host, role, op_id)
    assert for_large in find(large, host, role, op_id)
    if for_small == for_large:
        # a role that does not follow the host's size declares exactly the same on both
        assert [text_of(op) for name, op in small[host] if name == role] == \
            [text_of(op) for name, op in large[host] if name == role]


def test_node_instances_follow_cores(both_sizes: dict[str, tuple[Declared, Declared]]) -> None:
    small, large = both_sizes["sandbox"]
    for declared, cores in ((small, 1), (large, 32)):
        instances = [op.id for name, op in declared["app1"] if name == "node" and op.id.startswith("service ")]
        # each Node.js app (express, then nextweb) its instances, the next app 100 ports higher
        assert instances == [f"service fabstack-{app}@{first + i}" for app, first in (("express", 3000),
                                                                                      ("nextweb", 3100))
                             for i in range(cores)]
        [site] = [op for name, op in declared["app1"] if op.id == "file /etc/nginx/sites-enabled/fabstack.conf"]
        assert len(re.findall(r"server 127\.0\.0\.1:30\d\d;", site.content.decode())) == cores  # in the upstream


def everything_rendered(root: Path) -> str:
    """All operations and handler commands the sandbox env declares, as one text."""
    project = load_env(root, "sandbox")
    declared = declared_for(root, SMALL)
    parts = [text_of(op) for items in declared.values() for _, op in items]
    for host in declared:
        setup = project.setup(host, None)
        for role in setup.roles:
            parts.extend(role.handler_commands(setup.vars, host).values())
    return "\n".join(parts)


PHP = re.compile(r"(?<![\d.])8\.[23](?!\d)")
POSTGRES = re.compile(r"[/@-]1[56](?!\d)")


def test_versions_are_one_edit_in_group_vars(tmp_path: Path) -> None:
    from tests.conftest import copy_project

    root = copy_project(tmp_path / "repo")
    before = everything_rendered(root)
    assert set(PHP.findall(before)) == {"8.2"} and {m[1:] for m in POSTGRES.findall(before)} == {"15"}

    group_vars = root / "group_vars" / "all.yml"
    group_vars.write_text(group_vars.read_text() + '\nphp_version: "8.3"\npostgresql_version: 16\n')
    after = everything_rendered(root)
    assert set(PHP.findall(after)) == {"8.3"}, "a PHP path, unit or package still names 8.2"
    assert {m[1:] for m in POSTGRES.findall(after)} == {"16"}, "a PostgreSQL path, unit or package still names 15"
    for derived in ("php8.3-fpm", "/etc/php/8.3/fpm/pool.d/app.conf", "/run/php/php8.3-fpm-app.sock",
                    "postgresql@16-main", "/etc/postgresql/16/main/pg_hba.conf", "/usr/lib/postgresql/16/bin",
                    "postgresql-client-16"):
        assert derived in after


NEW_ROLE = '''"""metrics_agent: a role the engine has never heard of."""

from fabstack.engine.rolecontract import Commitment, Inbound


def inbound(values):
    """Scraped by the load balancers."""
    return [Inbound((values["metrics_agent_port"],), "metrics agent: scrapes", ("lb",))]


def commitment(values, facts):
    """Two database connections and 100 MB."""
    return Commitment(memory=[("metrics agent", 100)], db_clients=2, summary="metrics   2 db connections")


def deploy(ctx):
    """Nothing but its config."""
    ctx.file("/etc/metrics-agent.conf", f"port = {ctx.vars['metrics_agent_port']}\\n")
'''


def test_a_new_roles_declarations_reach_the_firewall_and_the_budget(tmp_path: Path) -> None:
    from fabstack.tiers.env import plan_env
    from tests.conftest import copy_project

    root = copy_project(tmp_path / "repo")
    role = root / "roles" / "metrics_agent"
    (role / "defaults").mkdir(parents=True)
    (role / "defaults" / "main.yml").write_text("# Port it listens on.\nmetrics_agent_port: 9555\n")
    (role / "role.py").write_text(NEW_ROLE)
    with (root / "site.yml").open("a") as site:
        site.write("- hosts: db\n  roles: [metrics_agent]\n")
    before = load_env(copy_project(tmp_path / "before"), "sandbox")
    project = load_env(root, "sandbox")

    nftables = find(declared_for(root, SMALL), "db1", "firewall", "file /etc/nftables.conf")
    assert 'tcp dport { 9555 } ip saddr { 10.213.0.11/32, 10.213.0.1/32 } accept comment "metrics agent' in nftables

    def budget_of(p: Any) -> Any:
        setups = {h: p.setup(h, None) for h in p.inventory.hosts}
        return plan_env(p, setups, {h: host_facts("10.0.0.1", h, SMALL) for h in setups})

    old, new = budget_of(before), budget_of(project)
    total = next(line for line in old.lines if "total database clients" in line).split()[-1]
    assert f"total database clients: {int(total) + 4}" in "\n".join(new.lines)  # two per db host
    assert any(line.startswith("  db1") and "metrics agent 100MB" in line for line in new.lines)
