"""Operation kinds, both sides: the controller's classes and the agent's table agree on every kind, probe field and
step, and each kind's planning is pinned by data fixtures in ``tests/operations/KIND/*.yml`` (pyinfra's manner:
arguments + probed host state -> expected plan and steps)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from fabstack.engine import agent
from fabstack.engine import operations as ops

FIXTURES = Path(__file__).parent / "operations"
# Every step carries these besides its kind's own fields.
STEP_ENVELOPE = {"type", "id", "notify"}


def operation_classes() -> dict[str, type[ops.Operation]]:
    """Every concrete operation class, by the kind it declares."""
    found: dict[str, type[ops.Operation]] = {}
    pending = list(ops.Operation.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found[cls.KIND] = cls
    return found


def fixture_files() -> list[Path]:
    """Every fixture, kind folder by kind folder."""
    return sorted(FIXTURES.glob("*/*.yml"))


def build(kind: str, args: dict[str, Any]) -> ops.Operation:
    """The operation a fixture describes (text ``content`` becomes bytes)."""
    args = dict(args)
    if "content" in args:
        args["content"] = args["content"].encode()
    return operation_classes()[kind](**args)


def host_state(state: dict[str, Any], op: ops.Operation) -> dict[str, Any]:
    """The state as the agent reports it: a fixture's file ``content`` becomes its checksum (and, when it differs
    from the wanted one, its text for the diff)."""
    state = dict(state)
    if "content" in state:
        data = state.pop("content").encode()
        state["sha256"] = hashlib.sha256(data).hexdigest()
        if getattr(op, "sha256", None) != state["sha256"]:
            state["content_b64"] = base64.b64encode(data).decode()
    return state


def test_both_sides_know_the_same_kinds() -> None:
    assert set(operation_classes()) == set(agent.KINDS)
    assert set(agent.APPLY) == {step for kind in agent.KINDS.values() for step in kind.steps}


def test_every_kind_has_fixtures_and_every_step_type_is_covered() -> None:
    assert {p.name for p in FIXTURES.iterdir() if p.is_dir()} == set(agent.KINDS)
    produced: dict[str, set[str]] = {kind: set() for kind in agent.KINDS}
    for path in fixture_files():
        for step in yaml.safe_load(path.read_text())["expect"]["steps"]:
            produced[path.parent.name].add(step["type"])
    for kind, table in agent.KINDS.items():
        assert produced[kind] == set(table.steps), f"kind {kind}: fixtures cover {produced[kind]}"


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture(path: Path) -> None:
    fixture = yaml.safe_load(path.read_text())
    kind, expect = path.parent.name, fixture["expect"]
    op = build(kind, fixture["operation"])

    probe = op.probe()
    assert probe is not None and probe["type"] == kind
    assert set(probe) - {"type"} == set(agent.KINDS[kind].probe_fields)

    plan = op.plan(host_state(fixture["state"], op), fixture.get("facts", {}))
    assert plan.status == expect["status"]
    assert len(plan.steps) == len(expect["steps"])
    for step, wanted in zip(plan.steps, expect["steps"], strict=True):
        fields, _applier = agent.KINDS[kind].steps[step["type"]]
        assert set(step) - STEP_ENVELOPE == set(fields), f"step {step['type']} fields differ from the agent's"
        assert {k: step[k] for k in wanted} == wanted
    for text in expect.get("diff", []):
        assert text in plan.diff
    for text in expect.get("diff_lacks", []):
        assert text not in plan.diff
    for text in expect.get("reason", []):
        assert text in plan.reason

    desired = op.desired()
    fields, _applier = agent.KINDS[kind].steps[desired["type"]]
    assert set(desired) - STEP_ENVELOPE == set(fields)
