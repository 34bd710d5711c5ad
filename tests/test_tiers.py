"""The tier registry (docs/tiers.md): every registered tier keeps the contract, and its offline parts work on the
env that runs it: the env knows it runs the tier, its budget sizes the tier's hosts, and its topology check refuses
two primaries. A tier that breaks the contract is named with what it lacks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from fabstack.engine.errors import FabstackError
from fabstack.engine.runner import select_hosts
from fabstack.tiers.base import Tier, contract_problems
from fabstack.tiers.env import load_env, plan_env
from fabstack.tiers.registry import TIERS, env_tier, running
from tests.conftest import REPO

# the env of this repo that runs each tier, and facts for its hosts
ENV_OF = {"postgresql": "sandbox", "mariadb": "mariadb"}
FACTS = {"memory_mb": 2048, "cpus": 2, "nofile_hard": 20000, "disks": [{"rotational": False}],
         "primary_address": "10.0.0.1"}


def test_every_tier_has_an_env_here() -> None:
    assert set(ENV_OF) == set(TIERS)


@pytest.mark.parametrize("name", sorted(TIERS))
def test_each_tier_keeps_the_contract(name: str) -> None:
    assert contract_problems(TIERS[name], [REPO / "roles"]) == []


@pytest.mark.parametrize("name", sorted(TIERS))
def test_each_tier_is_found_sized_and_checked_on_its_env(name: str, project_copy: Path) -> None:
    tier = TIERS[name]
    project = load_env(project_copy, ENV_OF[name])
    assert tier in running(project) and env_tier(project, None) is tier
    setups = {h: project.setup(h, None) for h in project.inventory.hosts}
    budget = plan_env(project, setups, {h: FACTS for h in setups})
    servers = [h for h, s in setups.items() if tier.server_role in {r.name for r in s.roles}]
    assert budget.problems == [] and servers
    for host in servers:
        assert any(key.startswith(f"{name}_") for key in budget.of(host)), host  # the tier sized its hosts

    # a replica moved into the primary's group: two primaries, refused before any host with the group named
    groups = tier.groups(project)
    inventory = project.inventory.path
    data = yaml.safe_load(inventory.read_text())
    replica = project.inventory.select(groups.replica)[0]
    _move_host(data, replica, groups.replica, groups.primary)
    inventory.write_text(yaml.safe_dump(data))
    with pytest.raises(FabstackError, match="two primaries") as refused:
        select_hosts(load_env(project_copy, ENV_OF[name]))
    assert refused.value.key == groups.primary


def test_a_tier_that_breaks_the_contract_is_named_with_what_it_lacks() -> None:
    real = TIERS["mariadb"]
    broken = dataclasses.replace(real, replica_role="mariadb_standby", fleet=object,
                                 group_settings=("mariadb_primary_group", "mariadb_replicas", "mariadb_fenced_group"))
    assert contract_problems(broken, [REPO / "roles"]) == [
        "mariadb: no role mariadb_standby",
        "mariadb: mariadb's defaults do not set mariadb_replicas",
        "mariadb: fleet <class 'object'> is not a Fleet",
    ]
    no_actions = dataclasses.replace(real, actions=object(), backups=object())
    assert len(contract_problems(no_actions, [REPO / "roles"])) == 4 + 8
    assert isinstance(real, Tier)


def _move_host(node: dict, host: str, source: str, target: str) -> None:
    """Move ``host`` from group ``source`` to group ``target`` wherever they stand in an inventory's tree."""
    for name, body in (node.get("children") or {}).items():
        body = body or {}
        if name == source:
            entry = body["hosts"].pop(host)
            _group(node, target)["hosts"][host] = entry
        _move_host(body, host, source, target)
    if "all" in node:
        _move_host(node["all"], host, source, target)


def _group(node: dict, name: str) -> dict:
    """The body of group ``name`` among ``node``'s children (made a mapping with hosts)."""
    body = node["children"][name] or {}
    node["children"][name] = body
    body["hosts"] = body.get("hosts") or {}
    return body
