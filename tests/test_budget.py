"""The connection and memory budget: the sandbox plan fits, and plans that cannot work are refused."""

from __future__ import annotations

from pathlib import Path

from fabstack.engine.project import parse_overrides
from fabstack.tiers.env import load_env, plan_env


def facts(memory_mb: int, cpus: int = 2) -> dict:
    return {"memory_mb": memory_mb, "cpus": cpus, "nofile_hard": 20000, "disks": [{"rotational": False}],
            "primary_address": "10.0.0.1"}


FLEET = {"lb1": facts(1024), "app1": facts(2048), "app2": facts(2048), "db1": facts(4096), "db2": facts(4096),
         "cache1": facts(2048)}


def budget_for(root: Path, overrides: list[str] | None = None, fleet: dict | None = None,  # noqa: ANN201
               env: str = "sandbox"):
    project = load_env(root, env)
    project.overrides = parse_overrides(overrides or [])
    setups = {h: project.setup(h, None) for h in project.inventory.hosts}
    return plan_env(project, setups, fleet or FLEET)


def test_sandbox_plan_fits_and_sizes_postgres_from_pools(project_copy: Path) -> None:
    budget = budget_for(project_copy)
    assert budget.problems == []
    # one PgBouncer, pool 20 + reserve 5 for one user on both entries (rw and ro may both land on one host
    # after a failover), plus 3 reserved and 10 admin connections
    assert budget.of("db1")["postgresql_max_connections"] == 63
    assert budget.of("db2")["postgresql_max_connections"] == 63  # a hot standby needs at least the primary's
    assert budget.of("app1")["php_fpm_max_children"] == 17
    assert any("total database clients: 195" in line for line in budget.lines)


def test_pools_above_max_connections_are_refused(project_copy: Path) -> None:
    budget = budget_for(project_copy, ["postgresql_max_connections=40"])
    problem = next(p for p in budget.problems if p.host == "db1")
    assert problem.key == "postgresql_max_connections"
    assert "50 server connections" in problem.message and "max_connections 40" in problem.message


def test_fpm_children_above_memory_are_refused(project_copy: Path) -> None:
    (project_copy / "group_vars" / "app_php.yml").write_text("php_fpm_max_children: 100\n")
    budget = budget_for(project_copy)
    problem = next(p for p in budget.problems if p.host == "app1")
    assert problem.key == "php_fpm_max_children" and problem.where.endswith("group_vars/app_php.yml")
    assert "6400MB" in problem.message and "2048MB" in problem.message


def test_clients_above_max_client_conn_are_refused(project_copy: Path) -> None:
    budget = budget_for(project_copy, ["pgbouncer_max_client_conn=40"])
    problem = next(p for p in budget.problems if p.key == "pgbouncer_max_client_conn")
    assert problem.host == "cache1" and "195 app clients exceed pgbouncer_max_client_conn 40" in problem.message


def test_file_limit_too_small_for_max_client_conn_is_refused(project_copy: Path) -> None:
    small = dict(FLEET, cache1=dict(facts(2048), nofile_hard=4096))
    budget = budget_for(project_copy, fleet=small)
    assert any("needs more open files" in p.message and p.host == "cache1" for p in budget.problems)


def test_bigger_box_gets_more_children(project_copy: Path) -> None:
    budget = budget_for(project_copy, fleet=dict(FLEET, app1=facts(8192, 8)))
    assert budget.of("app1")["php_fpm_max_children"] == (8192 * 6 // 10 - 128) // 64


MARIADB_FLEET = {"mdb1": facts(1024), "mdb2": facts(1024), "mdb3": facts(1024)}


def test_mariadb_max_connections_holds_the_app_clients_and_the_admins(project_copy: Path) -> None:
    budget = budget_for(project_copy, fleet=MARIADB_FLEET, env="mariadb")
    assert budget.problems == []
    assert [b.used for b in budget.bars if b.tier == "MariaDB connections"] == [10, 10, 10]  # no app host here
    refused = budget_for(project_copy, ["mariadb_max_connections=8"], MARIADB_FLEET, "mariadb")
    assert {p.host for p in refused.problems} == {"mdb1", "mdb2", "mdb3"}
    problem = refused.problems[0]
    assert problem.key == "mariadb_max_connections"
    assert "10 admin connections exceed MariaDB's max_connections 8" in problem.message
