"""The MariaDB tier's day-2 logic without hosts: GTID positions compared, a host's state read from the server's own
output, the tier chosen from the env, and each tier's topology recorded beside the other's."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabstack.day2.failover import run_action
from fabstack.engine.errors import FabstackError
from fabstack.tiers.env import load_env
from fabstack.tiers.mariadb.failover import gtid_seqs, missing, parse_state
from fabstack.tiers.registry import running
from fabstack.tiers.topology import Topology, load_topology, save_topology, topology_path

REPLICA_OUTPUT = """1\t0-11-40\t0-11-42
*************************** 1. row ***************************
                Slave_IO_State: Waiting for master to send event
                   Master_Host: 10.216.0.11
              Slave_IO_Running: Yes
             Slave_SQL_Running: No
         Seconds_Behind_Master: NULL
                Last_SQL_Error: Could not execute Write_rows_v1 event on table app.t: Duplicate entry '1'
                   Gtid_IO_Pos: 0-11-45"""


def test_gtid_positions_are_compared_per_domain() -> None:
    assert gtid_seqs("0-11-42,1-12-7") == {0: 42, 1: 7}
    assert gtid_seqs("") == {}
    assert missing("0-11-42", "0-11-42") == 0
    assert missing("0-12-45", "0-11-42") == 0  # another server wrote later transactions of the same domain
    assert missing("0-11-40", "0-11-42,1-12-3") == 5
    assert missing("", "0-11-2") == 2


def test_a_replica_state_is_read_from_the_servers_output() -> None:
    state = parse_state("mdb2", REPLICA_OUTPUT)
    assert state.role == "replica"
    assert (state.read_only, state.io, state.sql, state.master) == (True, "Yes", "No", "10.216.0.11")
    assert state.position == "0-11-42" and state.received_pos == "0-11-45"
    assert state.error.startswith("Could not execute Write_rows_v1")


def test_a_primary_and_a_stray_read_only_server_are_told_apart() -> None:
    assert parse_state("mdb1", "0\t0-11-42\t").role == "primary"
    assert parse_state("mdb1", "0\t0-11-42\t").position == "0-11-42"
    assert parse_state("mdb1", "1\t0-11-42\t").role == "read-only"


def test_each_tier_records_its_own_topology(tmp_path: Path) -> None:
    inventory = tmp_path / "prod.yml"
    save_topology(inventory, Topology(primary="db2", fenced=["db1"]))
    save_topology(inventory, Topology(primary="mdb2", fenced=[]), "mariadb")
    assert load_topology(inventory) == Topology(primary="db2", fenced=["db1"])
    assert load_topology(inventory, "mariadb") == Topology(primary="mdb2", fenced=[])


def test_a_topology_file_as_first_written_is_postgresqls(tmp_path: Path) -> None:
    inventory = tmp_path / "prod.yml"
    topology_path(inventory).write_text("primary: db2\nfenced: [db1]\n")
    assert load_topology(inventory).primary == "db2"
    assert load_topology(inventory, "mariadb") == Topology()


def test_an_unknown_tier_in_the_topology_file_is_refused(project_copy: Path) -> None:
    topology_path(project_copy / "inventory" / "sandbox.yml").write_text("oracle: {primary: x}\n")
    with pytest.raises(FabstackError, match="unknown db tier 'oracle'") as caught:
        load_env(project_copy, "sandbox")
    assert caught.value.key == "oracle" and caught.value.where.endswith("sandbox.topology.yml")


def test_the_tier_is_the_envs_own(project_copy: Path) -> None:
    assert [t.name for t in running(load_env(project_copy, "mariadb"))] == ["mariadb"]
    assert [t.name for t in running(load_env(project_copy, "sandbox"))] == ["postgresql"]


def test_a_tier_the_env_does_not_run_is_refused_before_any_host(project_copy: Path,
                                                                 no_host_reachable: list[str]) -> None:
    with pytest.raises(FabstackError, match="no mariadb tier in env sandbox") as caught:
        run_action(project_copy, "sandbox", "status", tier="mariadb")
    assert caught.value.key == "--tier"
    assert no_host_reachable == []


def test_a_failover_is_recorded_into_the_tiers_groups(project_copy: Path) -> None:
    save_topology(project_copy / "inventory" / "mariadb.yml", Topology(primary="mdb2", fenced=["mdb1"]), "mariadb")
    groups = load_env(project_copy, "mariadb").groups()
    assert (groups["mariadb_primary"], groups["mariadb_replica"], groups["mariadb_fenced"]) == (
        ["mdb2"], ["mdb3"], ["mdb1"])
    assert sorted(groups["mariadb"]) == ["mdb1", "mdb2", "mdb3"]  # the fenced host still gets the tier's role
