"""An app repository is untrusted (docs/security.md): a tree that could reach outside its release is refused on
the controller with one line naming the app, the ref and the path, and nothing is written outside the build.

Each case is a fixture repository built here with git alone (no network, no hosts): crafted trees that a normal
``git add`` cannot make are written with ``git mktree``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fabstack.engine.errors import FabstackError
from fabstack.sandbox.hosts import seed_repository
from fabstack.stack.apps import App, parse_apps
from fabstack.stack.artifact import build, check_tree


def git(*args: str, cwd: Path, data: bytes | None = None) -> str:
    """One git command; its output."""
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, input=data,
                          capture_output=True, check=True)
    return done.stdout.decode().strip()


def app_from(source: dict) -> App:
    """An asgi app (no requirements: no build step) taken from ``source``."""
    [app] = parse_apps([{"name": "evil", "runtime": "asgi", "source": source, "serve": ["app"]}], "f", {"app"})
    return app


def listing(folder: Path) -> set[str]:
    """Every path below ``folder``, links not followed."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the deployment repo that no build may touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep").write_text("untouched\n")
    return folder


def crafted(tmp_path: Path, entries: list[tuple[str, str, bytes | list]]) -> str:
    """A bare repo ``repo.git`` in ``tmp_path`` whose ``main`` is a tree of (mode, name, blob data or subtree
    entries), duplicates allowed; returns nothing of note (the ref is ``main``)."""
    bare = tmp_path / "repo.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)

    def tree(items: list[tuple[str, str, bytes | list]]) -> str:
        lines = []
        for mode, name, content in items:
            if isinstance(content, list):
                lines.append(f"040000 tree {tree(content)}\t{name}")
            else:
                blob = git("hash-object", "-w", "--stdin", cwd=bare, data=content)
                lines.append(f"{mode} blob {blob}\t{name}")
        return git("mktree", "--missing", cwd=bare, data="\n".join(lines).encode() + b"\n")

    commit = git("commit-tree", tree(entries), "-m", "evil", cwd=bare)
    git("update-ref", "refs/heads/main", commit, cwd=bare)
    return commit


@pytest.mark.parametrize(("entries", "path", "words"), [
    ([("120000", "a", b"."), ("040000", "a", [("100644", "pwned", b"x")])], "a/pwned",
     "a path through a link"),
    ([("120000", "cache", b"/etc")], "cache", "a link to /etc, outside the release"),
    ([("040000", "bootstrap", [("120000", "cache", b"../../../etc")])], "bootstrap/cache",
     "a link to ../../../etc, outside the release"),
    ([("120000", "up", b"..")], "up", "outside the release"),
])
def test_a_repository_reaching_outside_is_refused_in_one_line(tmp_path: Path, outside: Path, entries: list,
                                                            path: str, words: str) -> None:
    crafted(tmp_path, [(m, n, c.replace(b"/outside", str(outside).encode()) if isinstance(c, bytes) else c)
                       for m, n, c in entries])
    before = listing(tmp_path)
    with pytest.raises(FabstackError) as err:
        build(tmp_path, app_from({"git": "repo.git", "ref": "main"}))
    line = err.value.line()
    assert line.startswith("key apps[evil]: ref main: ") and path in line and words.split(",")[0] in line, line
    assert "\n" not in line
    assert listing(outside) == {"keep"}
    new = {p for p in listing(tmp_path) - before if not p.startswith(".fabstack")}
    assert new == set(), new  # nothing but fabstack's own cache written


def test_a_link_that_stays_inside_is_shipped(tmp_path: Path) -> None:
    """Laravel's public/storage -> ../storage/app/public is a normal repository and builds."""
    crafted(tmp_path, [("040000", "public", [("120000", "storage", b"../storage/app/public")]),
                       ("040000", "storage", [("040000", "app", [("040000", "public", [("100644", "x", b"x")])])])])
    artifact = build(tmp_path, app_from({"git": "repo.git", "ref": "main"}))
    assert Path(artifact.path).is_file()


def test_special_files_in_a_local_source_are_refused(tmp_path: Path, outside: Path) -> None:
    for name, make in (("fifo", lambda p: os.mkfifo(p)),
                       ("setuid", lambda p: (p.write_text("#!/bin/sh\n"), p.chmod(0o4755))),
                       ("hardlink", lambda p: os.link(outside / "keep", p))):
        source = tmp_path / f"src-{name}"
        source.mkdir()
        (source / "main.py").write_text("x = 1\n")
        make(source / "thing")
        with pytest.raises(FabstackError) as err:
            build(tmp_path, app_from({"path": source.name}))
        assert "thing" in err.value.line() and "outside" not in listing(source), err.value.line()


def test_what_a_build_leaves_is_checked_too(tmp_path: Path) -> None:
    """A build step that plants a link to / after the export is caught before anything is packed."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "node_modules").mkdir()
    (tree / "node_modules" / "evil").symlink_to("/root/.ssh")
    with pytest.raises(FabstackError, match="node_modules/evil: a link to /root/.ssh"):
        check_tree(tree, app_from({"path": "x"}), "main")


def test_a_normal_repository_still_builds(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    seed_repository(folder, tmp_path / "repo.git")
    assert Path(build(tmp_path, app_from({"git": "repo.git", "ref": "main"})).path).is_file()


SPY_SCRIPT = ('env > seen-env.txt; ls -A "$HOME" > seen-home.txt; (cat %(key)s || echo denied) > seen-key.txt '
              "2>&1; (ls %(secrets)s || echo denied) > seen-secrets.txt 2>&1")


@pytest.mark.skipif(not __import__("shutil").which("npm"), reason="npm missing: run scripts/setup.sh")
def test_build_steps_see_no_secret_and_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dependency's lifecycle script runs with a scrubbed environment and a HOME of its own; as root, it runs as
    an unprivileged user and cannot read the deploy key or .fabstack/secrets."""
    import tarfile

    secrets = tmp_path / ".fabstack" / "secrets"
    secrets.mkdir(parents=True, mode=0o700)
    (secrets / "prod.yml").write_text("db_password: hunter2\n")
    key = tmp_path / ".fabstack" / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nKEYMATERIAL42\n")
    key.chmod(0o600)
    for name, value in (("SSH_AUTH_SOCK", "/tmp/agent.sock"), ("FABSTACK_VAULT_PASSWORD", "hunter2"),
                        ("AWS_SECRET_ACCESS_KEY", "hunter2"), ("HOME", str(tmp_path))):
        monkeypatch.setenv(name, value)
    source = tmp_path / "spy"
    source.mkdir()
    script = SPY_SCRIPT % {"key": key, "secrets": secrets}
    (source / "package.json").write_text(json.dumps({"name": "spy", "version": "1.0.0", "private": True,
                                                     "scripts": {"postinstall": script}}))
    (source / "server.js").write_text("")
    artifact = build(tmp_path, parse_apps([{"name": "spy", "runtime": "node", "source": {"path": "spy"},
                                            "serve": ["app"]}], "f", {"app"})[0])
    with tarfile.open(artifact.path) as tar:
        seen = {name: tar.extractfile(name).read().decode()  # type: ignore[union-attr]
                for name in ("seen-env.txt", "seen-home.txt", "seen-key.txt", "seen-secrets.txt")}
    assert "hunter2" not in seen["seen-env.txt"] and "SSH_AUTH_SOCK" not in seen["seen-env.txt"]
    home = dict(line.split("=", 1) for line in seen["seen-env.txt"].splitlines() if "=" in line)["HOME"]
    assert not home.startswith(str(tmp_path)), home  # not the operator's HOME: a throwaway beside the build
    assert ".fabstack" not in seen["seen-home.txt"]
    if os.geteuid() == 0:  # only root can hand the build to another user; as anyone else it runs as them
        assert seen["seen-key.txt"].strip().endswith("denied") and "KEYMATERIAL42" not in seen["seen-key.txt"]
        assert "prod.yml" not in seen["seen-secrets.txt"]


def test_pip_wheel_runs_with_a_python_the_build_user_can_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A virtualenv in a private folder (root's home, a 0700 temporary folder) is not runnable by the build user:
    the system's Python builds the wheels instead."""
    from fabstack.stack.runtimes import buildstep

    private = tmp_path / "private" / "venv" / "bin"
    private.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    (private / "python").symlink_to(sys.executable)
    monkeypatch.setattr(buildstep.sys, "executable", str(private / "python"))
    monkeypatch.setattr(buildstep, "build_user", lambda: object())  # as when the controller is root
    assert buildstep.python_for_builds() != str(private / "python")
    monkeypatch.setattr(buildstep, "build_user", lambda: None)  # unprivileged: it runs as us, ours is fine
    assert buildstep.python_for_builds() == str(private / "python")
