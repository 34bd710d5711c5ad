"""TLS between the MariaDB replicas and the primary, planned offline: off, nothing of it; on, every host of the
tier serves the tier's certificate, the replication account must use TLS, and replicas trust the tier's CA only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fabstack.engine.errors import FabstackError
from fabstack.engine.runner import declare_offline
from fabstack.tiers.env import load_env
from tests.conftest import record_fake_host_keys
from tests.test_roles_declare import SMALL, host_facts, text_of


def planned(root: Path, *overrides: str) -> dict[str, dict[str, Any]]:
    """Each host of the MariaDB env: its operations by id, with ``--set`` overrides."""
    project = load_env(root, "mariadb")
    project.set_overrides(list(overrides))
    facts = {name: host_facts(project.setup(name, None).vars["ansible_host"], name, SMALL)
             for name in project.inventory.hosts}
    record_fake_host_keys(root, "mariadb")
    return {host: {op.id: op for _, op in items} for host, items in declare_offline(project, facts).items()}


def test_tls_off_serves_none_and_replicates_in_plain(project_copy: Path) -> None:
    ops = planned(project_copy, "mariadb_tls=false")  # the role's default (the sandbox env turns it on)
    assert not [i for i in ops["mdb1"] if "/etc/mysql/tls" in i]
    assert "REQUIRE NONE" in text_of(ops["mdb1"]["command mariadb databases and accounts"])
    assert "MASTER_SSL = 0" in text_of(ops["mdb2"]["file /usr/local/sbin/fabstack-mariadb-seed"])


def test_tls_on_serves_the_tiers_certificate_and_requires_it_for_replication(project_copy: Path) -> None:
    ops = planned(project_copy, "mariadb_tls=true")
    for host in ("mdb1", "mdb2", "mdb3"):
        config = text_of(ops[host]["file /etc/mysql/mariadb.conf.d/60-fabstack.cnf"])
        assert "ssl_cert = /etc/mysql/tls/cert.pem" in config and "ssl_ca = /etc/mysql/tls/ca.pem" in config
        assert "BEGIN CERTIFICATE" in text_of(ops[host]["file /etc/mysql/tls/cert.pem"])
        assert ops[host]["file /etc/mysql/tls/key.pem"].mode == "0640"
    assert "REQUIRE SSL" in text_of(ops["mdb1"]["command mariadb databases and accounts"])
    seed = text_of(ops["mdb2"]["file /usr/local/sbin/fabstack-mariadb-seed"])
    assert "MASTER_SSL = 1, MASTER_SSL_CA = '/etc/mysql/tls/ca.pem'" in seed
    assert "Master_SSL_Allowed: Yes" in text_of(ops["mdb3"]["command replication connection TLS on"])


def test_a_certificate_without_its_key_is_refused_before_any_host(project_copy: Path) -> None:
    with pytest.raises(FabstackError, match="give both mariadb_tls_certificate and mariadb_tls_private_key") as caught:
        planned(project_copy, "mariadb_tls=true", "mariadb_tls_certificate=-----BEGIN CERTIFICATE-----")
    assert caught.value.key == "mariadb_tls_private_key"  # the one that is missing
