"""The PostgreSQL tier under Patroni, planned offline: what each role declares in the patroni env against the
same roles in the sandbox env (manual mode), and what is refused before any host is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fabstack.engine.errors import FabstackError
from fabstack.stack.hostfiles import PATRONI_ADOPTED
from tests.test_roles_declare import SMALL, Declared, add_to_group, declared_for, find, text_of


def ops_of(declared: Declared, host: str, role: str, kind: str) -> list[str]:
    """The texts of a role's operations of one kind (their ids start with it) on a host."""
    return [text_of(op) for name, op in declared[host] if name == role and op.id.startswith(kind)]


def patroni_config(declared: Declared, host: str) -> dict:
    text = find(declared, host, "patroni", "file /etc/patroni/config.yml")
    return yaml.safe_load(text[text.index("# managed"):])


def test_every_member_keeps_its_lease_in_the_same_three_etcd_members(project_copy: Path) -> None:
    declared = declared_for(project_copy, SMALL, env="patroni")
    configs = {host: patroni_config(declared, host) for host in ("pdb1", "pdb2")}
    assert {c["scope"] for c in configs.values()} == {"fabstack"}
    assert {tuple(c["etcd3"]["hosts"]) for c in configs.values()} == {
        ("10.217.0.11:2379", "10.217.0.12:2379", "10.217.0.21:2379")}
    assert [c["name"] for c in configs.values()] == ["pdb1", "pdb2"]
    # Patroni keeps these alike on every member: they come from the budget, not from Patroni's defaults (100)
    parameters = configs["pdb1"]["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert parameters == configs["pdb2"]["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert parameters["max_connections"] != 100 and parameters["wal_log_hints"] == "on"
    # the server is Debian's cluster, handed over as it runs
    assert configs["pdb1"]["postgresql"]["data_dir"] == "/var/lib/postgresql/15/main"


def test_under_patroni_every_member_declares_the_primarys_sql_guarded_by_recovery(project_copy: Path) -> None:
    patroni = declared_for(project_copy, SMALL, env="patroni")
    manual = declared_for(project_copy, SMALL)
    for host in ("pdb1", "pdb2"):
        statements = ops_of(patroni, host, "postgresql", "pgsql")
        assert statements and all("pg_is_in_recovery()" in text for text in statements)
        # no slot for itself: a replica that leads must not keep WAL for nobody
        assert not any(f"replication slot {host}" in text for text in statements)
    assert ops_of(manual, "db1", "postgresql", "pgsql") and not ops_of(manual, "db2", "postgresql", "pgsql")
    assert not any("pg_is_in_recovery()" in text for text in ops_of(manual, "db1", "postgresql", "pgsql"))


def test_under_patroni_the_replica_is_never_recloned_and_debians_unit_never_restarted(project_copy: Path) -> None:
    declared = declared_for(project_copy, SMALL, env="patroni")
    clone = find(declared, "pdb2", "postgresql_replica", "command clone 10.217.0.11 into /var/lib/postgresql/15/main")
    assert f"test -e {PATRONI_ADOPTED}" in clone
    start = ops_of(declared, "pdb1", "postgresql", "command start postgresql@15-main")
    assert start and f"test -e {PATRONI_ADOPTED}" in start[0]
    assert not ops_of(declared, "pdb1", "postgresql", "service postgresql@15-main")


def test_under_patroni_no_start_up_fence_can_stand_the_primary_down(project_copy: Path) -> None:
    # the fence asks the other db hosts whether one is a writable primary: a replica-to-be's fresh cluster is
    declared = declared_for(project_copy, SMALL, env="patroni")
    for host in ("pdb1", "pdb2"):
        assert ops_of(declared, host, "postgresql", "absent /etc/systemd/system/postgresql@15-main.service.d/60-")
        assert not ops_of(declared, host, "postgresql", "file /usr/local/sbin/fabstack-pg-fence")
    manual = declared_for(project_copy, SMALL)
    assert ops_of(manual, "db1", "postgresql", "file /usr/local/sbin/fabstack-pg-fence")


def test_pgbouncer_points_at_haproxy_beside_it_and_haproxy_asks_patroni(project_copy: Path) -> None:
    declared = declared_for(project_copy, SMALL, env="patroni")
    ini = find(declared, "pgw1", "pgbouncer", "file /etc/pgbouncer/pgbouncer.ini")
    assert "app = host=127.0.0.1 port=5000 dbname=app" in ini and "app_ro = host=127.0.0.1 port=5001" in ini
    routes = find(declared, "pgw1", "haproxy", "file /etc/haproxy/haproxy.cfg")
    assert "option httpchk OPTIONS /primary" in routes and "on-marked-down shutdown-sessions" in routes
    assert "server pdb1 10.217.0.11:5432 check port 8008" in routes
    sandbox = find(declared_for(project_copy, SMALL), "cache1", "pgbouncer", "file /etc/pgbouncer/pgbouncer.ini")
    assert "app = host=10.213.0.31 port=5432" in sandbox


@pytest.mark.parametrize("members", [["pdb1", "pdb2"], ["pdb1", "pdb2", "pgw1", "pdb3"]])
def test_an_etcd_group_without_a_majority_to_spare_is_refused(project_copy: Path, members: list[str]) -> None:
    path = project_copy / "inventory" / "patroni.yml"
    inventory = yaml.safe_load(path.read_text())
    groups = inventory["all"]["children"]
    if "pdb3" in members:
        groups["db"]["children"]["db_replica"]["hosts"]["pdb3"] = {"ansible_host": "10.217.0.13"}
        groups["pgbackrest"]["hosts"]["pdb3"] = None
    groups["pgbouncer"]["hosts"]["pgw1"] = groups["etcd"]["hosts"]["pgw1"]  # its address stays defined
    groups["etcd"]["hosts"] = {name: None for name in members}
    path.write_text(yaml.safe_dump(inventory))
    with pytest.raises(FabstackError) as refused:
        declared_for(project_copy, SMALL, env="patroni")
    assert refused.value.key == "etcd_group"
    assert f"has {len(members)}" in refused.value.message and "odd number" in refused.value.message


def test_a_lease_shorter_than_a_loop_and_two_retries_is_refused(project_copy: Path) -> None:
    from fabstack.tiers.env import load_env

    project = load_env(project_copy, "patroni")
    project.set_overrides(["patroni_ttl=7", "patroni_loop_wait=3", "patroni_retry_timeout=3"])
    with pytest.raises(FabstackError) as refused:
        project.setup("pdb1", None)
    assert refused.value.key == "patroni_ttl" and "(9), got 7" in refused.value.message
    assert json.dumps(refused.value.message).count("\\n") == 0


def pem(text: str) -> str:
    """The PEM content of a declared file's text."""
    return text[text.index("-----BEGIN"):]


def test_etcd_and_patroni_speak_tls_from_one_cluster_ca_and_issue_the_same_certificates_each_time(
        project_copy: Path) -> None:
    add_to_group(project_copy, "patroni", "monitoring", "pgw1")  # Prometheus scrapes Patroni too
    first, again = (declared_for(project_copy, SMALL, env="patroni") for _ in range(2))
    etcd = find(first, "pdb1", "etcd", "file /etc/default/etcd")
    assert 'ETCD_CLIENT_CERT_AUTH="true"' in etcd and 'ETCD_PEER_CLIENT_CERT_AUTH="true"' in etcd
    assert "http://" not in etcd and "pdb2=https://10.217.0.12:2380" in etcd
    config = patroni_config(first, "pdb1")
    assert config["etcd3"]["protocol"] == "https" and config["restapi"]["certfile"] == "/etc/patroni/tls/member.crt"
    ca = pem(find(first, "pdb1", "patroni", "file /etc/patroni/tls/ca.crt"))
    assert ca.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in ca
    assert ca == pem(find(first, "pgw1", "etcd", "file /etc/etcd/tls/ca.crt"))
    assert ca == pem(find(first, "pgw1", "haproxy", "file /etc/haproxy/patroni-ca.crt"))
    assert ca == pem(find(first, "pgw1", "prometheus", "file /etc/prometheus/patroni-ca.crt"))
    scrape = find(first, "pgw1", "prometheus", "file /etc/prometheus/prometheus.yml")
    assert "job_name: patroni\n    scheme: https\n    tls_config: {ca_file: /etc/prometheus/patroni-ca.crt}" in scrape
    assert "check-ssl verify required ca-file /etc/haproxy/patroni-ca.crt" in find(
        first, "pgw1", "haproxy", "file /etc/haproxy/haproxy.cfg")
    for host, role, folder in (("pdb1", "patroni", "/etc/patroni/tls"), ("pgw1", "etcd", "/etc/etcd/tls")):
        for name in ("member.crt", "member.key"):
            assert find(first, host, role, f"file {folder}/{name}") == find(again, host, role, f"file {folder}/{name}")
    assert find(first, "pdb1", "patroni", "file /etc/patroni/tls/member.crt") != \
        find(first, "pdb2", "patroni", "file /etc/patroni/tls/member.crt")
