"""The release's shared and writable paths on a host (fabstack/day2/releaselayout.py, run here on temporary folders):
a link on a declared path, planted by the app's repository or by the app's user in shared/, is refused and
nothing outside the release changes."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from fabstack.day2 import releaselayout

ME = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """A release, its shared folder and a folder outside both that must stay as it is."""
    found = {name: tmp_path / name for name in ("release", "shared", "outside")}
    for folder in found.values():
        folder.mkdir()
    (found["outside"] / "passwd").write_text("root:x:0:0\n")
    (found["outside"] / "passwd").chmod(0o600)
    return found


def spec(places: dict[str, Path], **paths: list[str]) -> dict:
    return {"release": str(places["release"]), "shared": str(places["shared"]), "user": ME,
            "shared_dirs": paths.get("shared_dirs", []), "shared_files": paths.get("shared_files", []),
            "writable": paths.get("writable", [])}


def state(folder: Path) -> list[tuple[str, int, int]]:
    return [(str(p), p.lstat().st_mode, p.lstat().st_uid) for p in sorted(folder.rglob("*"))]


@pytest.mark.parametrize(("plant", "paths"), [
    (lambda p: (p["release"] / "bootstrap").mkdir() or (p["release"] / "bootstrap" / "cache").symlink_to(
        p["outside"]), {"writable": ["bootstrap/cache"]}),
    (lambda p: (p["release"] / "storage").symlink_to(p["outside"]), {"writable": ["storage/logs"]}),
    (lambda p: (p["shared"] / "storage").symlink_to(p["outside"]), {"shared_dirs": ["storage"]}),
    (lambda p: (p["shared"] / "keys").symlink_to(p["outside"]), {"shared_files": ["keys/oauth.key"]}),
    (lambda p: (p["shared"] / ".env").symlink_to(p["outside"] / "passwd"), {"shared_files": [".env"]}),
])
def test_a_link_on_a_declared_path_is_refused(places: dict[str, Path], plant, paths: dict) -> None:  # noqa: ANN001
    plant(places)
    before = state(places["outside"])
    with pytest.raises((releaselayout.Refused, OSError)):
        releaselayout.layout(spec(places, **paths))
    assert state(places["outside"]) == before


def test_links_inside_a_writable_folder_are_owned_not_followed(places: dict[str, Path]) -> None:
    cache = places["release"] / "bootstrap" / "cache"
    cache.mkdir(parents=True)
    (cache / "evil").symlink_to(places["outside"] / "passwd")
    before = state(places["outside"])
    releaselayout.layout(spec(places, writable=["bootstrap/cache"], shared_files=[".env"]))
    assert state(places["outside"]) == before
    assert (places["release"] / ".env").resolve() == places["shared"] / ".env"


@pytest.mark.skipif(os.geteuid() != 0, reason="seeding copies as the app's user (runuser needs root)")
def test_the_first_release_seeds_a_shared_folder_as_the_app_user(places: dict[str, Path]) -> None:
    storage = places["release"] / "storage" / "app"
    storage.mkdir(parents=True)
    (storage / "seed.txt").write_text("seed\n")
    (storage / "leak").symlink_to(places["outside"] / "passwd")
    releaselayout.layout(spec(places, shared_dirs=["storage"]))
    assert (places["shared"] / "storage" / "app" / "seed.txt").read_text() == "seed\n"
    assert (places["shared"] / "storage" / "app" / "leak").is_symlink()  # copied as a link, not its target
    assert (places["release"] / "storage").resolve() == places["shared"] / "storage"
