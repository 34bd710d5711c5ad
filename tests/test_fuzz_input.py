"""Arbitrary YAML documents and ``--set`` values through ``inventory``, ``deploy --check`` and ``capacity``, with every
host unreachable: each ends as a result or as one FabstackError line, never a traceback or a hang, and nothing is
written outside ``.fabstack/``."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabstack.cli import commands
from fabstack.engine.connection import HostConnection
from fabstack.engine.errors import MAX_LINE, FabstackError
from tests.conftest import copy_project

# One call may take this long at most (templating alone is bounded at 2 s per value).
BOUND_SECONDS = 30

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40),
                    st.sampled_from(["{{ 1 + }}", "{{ hostvars }}", "{% for %}", "'x' * 10", "*a", "&a x",
                                     "!!python/x"]))
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["nginx_worker_connections", "redis_port", "ansible_port", "fabstack_facts", "x", "all",
                     "hosts", "children", "vars", "php_version", "postgresql_version"]) | st.text(max_size=10),
    inner, max_size=4), max_leaves=12)
raw_texts = st.one_of(documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                      st.text(max_size=200), st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
set_values = st.lists(st.tuples(st.sampled_from(["nginx_worker_connections", "redis_port", "php_version",
                                                 "no_such_key", "fabstack_facts", ""]),
                                st.text(max_size=30)).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=3)


@pytest.fixture(scope="module")
def unreachable() -> Iterator[None]:
    """Every SSH connection fails at once, as to hosts that do not answer."""
    original = HostConnection.open

    def refuse(self: HostConnection) -> None:
        raise FabstackError("unreachable (fuzz test)", host=self.name)

    HostConnection.open = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        HostConnection.open = original  # type: ignore[method-assign]


def outside_state(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".fabstack" not in p.relative_to(root).parts}


@pytest.mark.usefixtures("unreachable")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(["group_vars/all.yml", "group_vars/lb.yml", "inventory/sandbox.yml", "site.yml"]),
       text=raw_texts, overrides=set_values)
def test_arbitrary_input_is_a_result_or_one_line(where: str, text: str, overrides: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "repo")
        (root / where).write_text(text)
        before = outside_state(root)
        for call in (lambda: commands.inventory(root, "sandbox"),
                     lambda: commands.deploy(root, "sandbox", check=True, overrides=overrides),
                     lambda: commands.capacity(root, "sandbox", overrides=overrides)):
            started = time.monotonic()
            try:
                call()
            except FabstackError as exc:
                line = exc.line()
                assert "\n" not in line and len(line) <= MAX_LINE + 40
            assert time.monotonic() - started < BOUND_SECONDS
        assert outside_state(root) == before
        shutil.rmtree(root)
