"""Apps as data: declarations checked before any host, rolling batches, LB upstream files, artifacts, locks."""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import pytest
import yaml

from fabstack.day2.release import HostState, batches
from fabstack.engine.errors import FabstackError
from fabstack.engine.hostlock import owner_gone
from fabstack.sandbox.hosts import seed_repository
from fabstack.stack import lb
from fabstack.stack.apps import env_apps, parse_apps
from fabstack.stack.artifact import build, pack
from fabstack.tiers.env import load_env

GROUPS = {"app", "workers"}
GOOD = {"name": "shop", "runtime": "laravel", "source": {"git": "git@example.com:team/shop.git"}, "serve": ["app"]}


def error_of(entry: dict) -> FabstackError:
    with pytest.raises(FabstackError) as err:
        parse_apps([entry], "group_vars/all.yml", GROUPS)
    return err.value


def test_a_good_declaration_gets_its_defaults() -> None:
    [app] = parse_apps([GOOD], "group_vars/all.yml", GROUPS)
    assert (app.dest, app.port, app.keep, app.user, app.source.ref) == ("/srv/shop", 80, 5, "www-data", "main")
    assert (app.current, app.upstream, app.runtime.name) == ("/srv/shop/current", "app_shop", "laravel")


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"runtime": "rails"}, "apps[shop].runtime", "must be one of laravel, asgi"),
    ({"name": "../x"}, "apps[0].name", "lower-case letters"),
    ({"colour": "red"}, "apps[0]", "unknown key colour"),
    ({"serve": ["nowhere"]}, "apps[shop].serve/workers", "unknown group nowhere"),
    ({"serve": []}, "apps[shop].serve", "names no group"),
    ({"source": {"git": "x", "path": "y"}}, "apps[shop].source", "either git"),
    ({"source": {"git": "x", "ref": "--upload-pack=evil"}}, "apps[shop].source.ref", "branch, tag or commit"),
    ({"source": {"git": "--upload-pack=evil"}}, "apps[shop].source.git", "not a repository address"),
    ({"dest": "/"}, "apps[shop].dest", "absolute folder"),
    ({"dest": "/srv/../etc"}, "apps[shop].dest", "absolute folder"),
    ({"port": 70000}, "apps[shop].port", "1-65535"),
    ({"port": True}, "apps[shop].port", "1-65535"),
    ({"keep": 1}, "apps[shop].keep", "2-100"),
    ({"shared_dirs": ["../../etc"]}, "apps[shop].shared_dirs", "relative paths"),
    ({"writable": ["/var"]}, "apps[shop].writable", "relative paths"),
    ({"hooks": {"before_activate": [{"run": "x", "once": "yes"}]}}, "apps[shop].hooks.before_activate[0]",
     "{run: COMMAND, once: BOOLEAN}"),
    ({"hooks": {"whenever": []}}, "apps[shop].hooks", "before_activate / after_activate"),
    ({"health": {"path": "health"}}, "apps[shop].health", "{path: /PATH"),
    ({"worker_programs": ["a b"]}, "apps[shop].worker_programs", "supervisor program names"),
])
def test_each_bad_value_is_one_line_naming_file_and_key(change: dict, key: str, words: str) -> None:
    err = error_of(dict(GOOD, **change))
    assert err.key == key and words in err.message and err.where == "group_vars/all.yml"
    assert "\n" not in err.line()


def test_two_apps_may_not_share_a_name_or_a_dest() -> None:
    with pytest.raises(FabstackError, match="name shop is also app shop's"):
        parse_apps([GOOD, GOOD], "f", GROUPS)
    with pytest.raises(FabstackError, match="dest /srv/shop is also app shop's"):
        parse_apps([GOOD, dict(GOOD, name="other", dest="/srv/shop")], "f", GROUPS)


def test_a_bad_app_in_group_vars_is_refused_before_any_host(project_copy: Path) -> None:
    path = project_copy / "group_vars" / "all.yml"
    data = yaml.safe_load(path.read_text())
    data["apps"][1]["port"] = "eighty"
    path.write_text(yaml.safe_dump(data))
    from fabstack.engine.runner import select_hosts

    with pytest.raises(FabstackError) as err:
        select_hosts(load_env(project_copy, "sandbox"))
    assert err.value.key == "apps[fastapi].port" and err.value.where.endswith("group_vars/all.yml")


@pytest.mark.parametrize(("batch", "expected"), [
    (None, [["a"], ["b"], ["c"], ["d"]]),
    ("2", [["a", "b"], ["c", "d"]]),
    ("50%", [["a", "b"], ["c", "d"]]),
    ("100%", [["a", "b", "c", "d"]]),
    ("10%", [["a"], ["b"], ["c"], ["d"]]),
])
def test_rolling_batches(batch: str | None, expected: list[list[str]]) -> None:
    assert batches(["a", "b", "c", "d"], batch) == expected


@pytest.mark.parametrize("batch", ["0", "-1", "x", "0%", "150%", ""])
def test_a_bad_batch_is_refused(batch: str) -> None:
    if batch == "":
        assert batches(["a"], batch) == [["a"]]  # empty: the default
        return
    with pytest.raises(FabstackError) as err:
        batches(["a", "b"], batch)
    assert err.value.key == "--batch"


def test_upstream_file_marks_exactly_the_drained_servers_down() -> None:
    text = lb.upstream_file(["10.0.0.1:80", "10.0.0.2:80"], 3, 10, "managed")
    assert lb.servers_down(text) == set()
    drained = lb.with_down(text, {"10.0.0.1:80"})
    assert "server 10.0.0.1:80 max_fails=3 fail_timeout=10s down;" in drained
    assert lb.servers_down(drained) == {"10.0.0.1:80"}
    assert lb.with_down(drained, set()) == text  # back in: the file as the role wrote it
    assert lb.with_down(lb.with_down(drained, {"10.0.0.1:80"}), {"10.0.0.1:80"}) == drained


def test_artifacts_are_reproducible_and_named_by_content(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(tree / "run.sh", 0o700)
    first = pack(tree, tmp_path / "out")
    os.utime(tree / "sub" / "a.txt", (1, 1))
    assert pack(tree, tmp_path / "out") == first  # times and owners are not part of it
    with tarfile.open(tmp_path / "out" / f"{first[0][:16]}.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["run.sh"].mode == 0o755 and members["sub/a.txt"].mode == 0o644
    assert {m.uid for m in members.values()} == {0}


def test_a_commit_is_built_once_and_carries_its_revision(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    commit = seed_repository(folder, tmp_path / "repo.git")
    [app] = parse_apps([{"name": "api", "runtime": "asgi", "source": {"git": "repo.git"}, "serve": ["app"]}],
                       "f", GROUPS)
    artifact = build(tmp_path, app)
    assert (artifact.commit, artifact.revision) == (commit, commit[:12])
    with tarfile.open(artifact.path) as tar:
        assert tar.extractfile("REVISION").read() == f"{commit}\n".encode()  # type: ignore[union-attr]
    assert build(tmp_path, app) == artifact  # cached: the same commit is not built again
    with pytest.raises(FabstackError) as err:
        build(tmp_path, app, "no-such-branch")
    assert err.value.key == "apps[api].source" and "rev-parse" in err.value.message


def test_an_archive_reaching_outside_its_folder_is_refused(tmp_path: Path) -> None:
    from fabstack.stack.artifact import _extract

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info, io.BytesIO(b""))
    [app] = parse_apps([{"name": "api", "runtime": "asgi", "source": {"git": "repo.git"}, "serve": ["app"]}],
                       "f", GROUPS)
    with pytest.raises(FabstackError, match="a path outside the release"):
        _extract(raw.getvalue(), tmp_path, app, "main")
    assert not (tmp_path.parent / "escape").exists()


def test_rollback_target_skips_bad_and_missing_releases() -> None:
    def release(name: str, bad: bool = False) -> dict:
        return {"name": name, "mtime": 0, "ready": True, "bad": bad}

    state = HostState(current="c", activated=0, releases=[release("a"), release("b", bad=True), release("c")],
                      lock=None, lock_age=0, history=["a", "b", "c"], artifact=False)
    assert state.previous(set()) == "a"
    assert HostState("a", 0, [release("a")], None, 0, ["a"], False).previous(set()) == ""


def test_pruning_keeps_the_newest_and_never_the_live_one_or_the_one_before_it() -> None:
    releases = [{"name": name, "mtime": mtime, "ready": True, "bad": False}
                for name, mtime in (("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5))]
    # rolled back to "a": it is live, "e" was live before it; keep 2 keeps the newest two too
    state = HostState(current="a", activated=0, releases=releases, lock=None, lock_age=0,
                      history=["a", "b", "c", "d", "e", "a"], artifact=False)
    assert state.stale(2) == ["c", "b"]
    assert HostState("e", 0, releases, None, 0, ["d", "e"], False).stale(2) == ["c", "b", "a"]
    assert HostState("e", 0, releases, None, 0, ["e"], False).stale(5) == []


def test_a_lock_owner_is_gone_only_when_its_process_on_this_machine_is() -> None:
    here = socket.gethostname()
    assert owner_gone(f"someone@{here} pid 99999999")
    assert not owner_gone(f"someone@{here} pid {os.getpid()}")
    assert not owner_gone("someone@another-machine pid 99999999")  # cannot know: not called stale


def test_two_apps_on_one_host_may_not_share_a_port(project_copy: Path) -> None:
    path = project_copy / "group_vars" / "all.yml"
    data = yaml.safe_load(path.read_text())
    data["apps"][1]["port"] = data["apps"][0]["port"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FabstackError) as err:
        env_apps(load_env(project_copy, "sandbox"))
    assert err.value.key == "apps[fastapi].port" and err.value.host == "app1" and "also app shop's" in err.value.message
