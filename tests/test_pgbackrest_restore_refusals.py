"""What ``inv backup.*`` refuses against a pgBackRest repository before it touches any host: a restore with no
spare target, onto a live member, onto a host the inventory lacks, or into one database; a backup of a kind
pgBackRest does not take; a time that is no time."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabstack.day2.backups import Backups, restore, run
from fabstack.engine.errors import FabstackError
from fabstack.engine.remote import RemoteHost
from fabstack.tiers.env import load_env


@pytest.fixture
def backups(project_copy: Path) -> Backups:
    """The patroni env's backup host, never connected (nothing here may need it)."""
    project = load_env(project_copy, "patroni")
    said: list[str] = []
    return Backups(project, RemoteHost(project.setup("backup1", None), None, "not contacted"), said.append)


@pytest.mark.parametrize(("target", "into", "key", "says"), [
    (None, None, "--target", "needs a spare host"),
    ("pdb1", None, "--target", "no postgresql or patroni role"),
    ("pgw1", None, "--target", "needs the pgbackrest role"),
    ("nosuchhost", None, "--target", "no host nosuchhost"),
    ("prestore1", "app", "--into", "whole cluster"),
])
def test_a_restore_that_cannot_be_right_is_refused_naming_its_option(backups: Backups, target: str | None,
                                                                    into: str | None, key: str, says: str) -> None:
    assert backups.repository is not None
    with pytest.raises(FabstackError) as refused:
        restore(backups, None, target, into, force=False, until="2026-12-07 03:00:00")
    assert refused.value.key == key and says in refused.value.message


def test_a_time_that_is_no_time_is_refused(backups: Backups) -> None:
    with pytest.raises(FabstackError) as refused:
        restore(backups, None, "prestore1", None, force=False, until="yesterday at 3")
    assert refused.value.key == "--until" and "YYYY-MM-DD HH:MM:SS" in refused.value.message


def test_a_kind_pgbackrest_does_not_take_is_refused(backups: Backups) -> None:
    with pytest.raises(FabstackError) as refused:
        run(backups, kind="weekly")
    assert refused.value.key == "--kind" and "full, diff, incr" in refused.value.message


def test_dumps_take_no_kind(project_copy: Path) -> None:
    project = load_env(project_copy, "sandbox")
    dumps = Backups(project, RemoteHost(project.setup("db1", None), None, "not contacted"), print)
    assert dumps.repository is None
    with pytest.raises(FabstackError) as refused:
        run(dumps, kind="full")
    assert refused.value.key == "--kind"
