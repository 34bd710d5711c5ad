"""Root writing into folders that someone else can change: the agent follows no link it did not make.

A folder writable by others (mode 0777 here, a service account's own folder on a host) stands for a place a less
trusted user controls; each test plants what that user could plant and checks that nothing outside was touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fabstack.engine import agent
from tests.test_agent import file_step, role


@pytest.fixture
def theirs(tmp_path: Path) -> Path:
    """A folder another user can write to, and beside it a folder of ours that must stay untouched."""
    folder = tmp_path / "theirs"
    folder.mkdir()
    folder.chmod(0o777)
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "secret").write_bytes(b"root only\n")
    (tmp_path / "ours" / "secret").chmod(0o600)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every entry below ``folder``: content or link target, and mode."""
    found = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        found[str(path.relative_to(folder))] = (os.readlink(path) if path.is_symlink() else
                                               path.read_bytes() if path.is_file() else "dir", st.st_mode)
    return found


def test_a_planted_temporary_name_is_never_followed(theirs: Path) -> None:
    ours = theirs.parent / "ours"
    before = snapshot(ours)
    for guess in ("..pgpass.fabstack-new", "..pgpass.fabstack-restore", ".pgpass.fabstack-new", ".pgpass.tmp"):
        (theirs / guess).symlink_to(ours / "secret")
    results, ok = agent.apply_role(role([file_step(theirs / ".pgpass", b"*:*:*:u:pw\n")]))
    assert ok, results
    assert (theirs / ".pgpass").read_bytes() == b"*:*:*:u:pw\n" and not (theirs / ".pgpass").is_symlink()
    assert snapshot(ours) == before


def test_a_link_in_their_folder_is_not_followed_to_write(theirs: Path) -> None:
    ours = theirs.parent / "ours"
    (theirs / "conf.d").symlink_to(ours)
    before = snapshot(ours)
    results, ok = agent.apply_role(role([file_step(theirs / "conf.d" / "secret", b"owned\n")]))
    assert not ok
    assert "refusing to follow the link conf.d" in results[-1]["message"]
    assert snapshot(ours) == before


def test_owner_and_mode_are_never_set_through_a_link(theirs: Path) -> None:
    ours = theirs.parent / "ours"
    (theirs / "app.env").symlink_to(ours / "secret")
    step = {"type": "attrs", "id": "a", "path": str(theirs / "app.env"), "owner": None, "group": None,
            "mode": "0644", "notify": []}
    results, ok = agent.apply_role(role([step]))
    assert not ok and "refusing to change a link" in results[-1]["message"]
    assert (ours / "secret").stat().st_mode & 0o777 == 0o600


def test_a_folder_is_not_made_through_their_link(theirs: Path) -> None:
    ours = theirs.parent / "ours"
    (theirs / "cache").symlink_to(ours)
    step = {"type": "directory", "id": "d", "path": str(theirs / "cache" / "made"), "owner": None, "group": None,
            "mode": "0777", "notify": []}
    results, ok = agent.apply_role(role([step]))
    assert not ok
    assert not (ours / "made").exists()


def test_removing_follows_no_link_in_the_path(theirs: Path) -> None:
    ours = theirs.parent / "ours"
    (theirs / "old").symlink_to(ours)
    step = {"type": "absent", "id": "x", "path": str(theirs / "old" / "secret"), "notify": []}
    results, ok = agent.apply_role(role([step]))
    assert not ok
    assert (ours / "secret").read_bytes() == b"root only\n"


def test_links_only_root_could_make_are_followed(tmp_path: Path) -> None:
    """A link in a folder nobody else can write (Debian's /lib -> usr/lib, /etc/alternatives) is followed."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to("real")
    tmp_path.chmod(0o755)
    results, ok = agent.apply_role(role([file_step(tmp_path / "alias" / "site.conf", b"x\n")]))
    assert ok, results
    assert (real / "site.conf").read_bytes() == b"x\n"


def test_a_failed_role_is_put_back_without_following_links(theirs: Path) -> None:
    ours = theirs.parent / "ours"
    target = theirs / "pg_hba.conf"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    steps = [file_step(target, b"new\n", step_id="a"),
             file_step(theirs / "broken.conf", b"x\n", validate="false %s", step_id="b")]
    results, ok = agent.apply_role(role(steps))
    assert not ok
    assert target.read_bytes() == b"old\n" and target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in theirs.iterdir()) == ["pg_hba.conf"]
    assert (ours / "secret").read_bytes() == b"root only\n"


def test_removing_a_file_whose_folder_does_not_exist_changes_nothing(tmp_path: Path) -> None:
    # a drop-in a host never had: its folder is missing too (planned before this run installed the package)
    step = {"type": "absent", "id": "x", "path": str(tmp_path / "unit.service.d" / "60-old.conf"), "notify": []}
    results, ok = agent.apply_role(role([step]))
    assert ok and results[0]["status"] == "ok", results
