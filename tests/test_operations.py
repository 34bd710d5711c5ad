"""Planning: what each operation decides from a probed state, and the diffs it shows."""

from __future__ import annotations

import base64
import hashlib

from fabstack import operations as ops
from fabstack.masking import Masker, secret_values

FACTS = {"container": "podman"}


def test_new_file_is_a_change_with_a_diff_from_nothing() -> None:
    plan = ops.File("/etc/x.conf", b"a = 1\n").plan({"exists": False}, FACTS)
    assert plan.status == "change"
    assert "--- /dev/null" in plan.diff and "+a = 1" in plan.diff


def test_same_content_and_attributes_is_ok() -> None:
    content = b"a = 1\n"
    state = {"exists": True, "kind": "file", "sha256": hashlib.sha256(content).hexdigest(),
             "owner": "root", "group": "root", "mode": "0644"}
    assert ops.File("/etc/x.conf", content).plan(state, FACTS).status == "ok"


def test_changed_content_diffs_old_against_new() -> None:
    state = {"exists": True, "kind": "file", "sha256": "old", "owner": "root", "group": "root", "mode": "0644",
             "content_b64": base64.b64encode(b"a = 1\nb = 2\n").decode()}
    plan = ops.File("/etc/x.conf", b"a = 1\nb = 3\n").plan(state, FACTS)
    assert "-b = 2" in plan.diff and "+b = 3" in plan.diff
    assert plan.steps[0]["type"] == "file"


def test_mode_only_change_is_an_attribute_step_without_rewriting() -> None:
    content = b"x\n"
    state = {"exists": True, "kind": "file", "sha256": hashlib.sha256(content).hexdigest(),
             "owner": "root", "group": "root", "mode": "0600"}
    plan = ops.File("/etc/x", content, mode="0644").plan(state, FACTS)
    assert [s["type"] for s in plan.steps] == ["attrs"]
    assert "0600" in plan.diff and "0644" in plan.diff


def test_secret_file_diff_hides_content() -> None:
    plan = ops.File("/etc/pw", b"password=hunter22\n", secret=True).plan({"exists": False}, FACTS)
    assert plan.status == "change"
    assert "+++ /etc/pw" in plan.diff and "not shown" in plan.diff  # a diff is shown, naming the file ...
    assert "hunter22" not in plan.diff  # ... without the content


def test_readonly_sysctl_in_container_is_skipped_with_reason() -> None:
    plan = ops.Sysctl("vm.overcommit_memory", "1").plan({"value": "0", "writable": False}, FACTS)
    assert plan.status == "skip"
    assert "read-only" in plan.reason and "podman" in plan.reason


def test_sysctl_already_right_is_ok_even_when_readonly() -> None:
    plan = ops.Sysctl("net.core.somaxconn", "4096").plan({"value": "4096", "writable": False}, FACTS)
    assert plan.status == "ok"


def test_packages_plan_installs_only_missing() -> None:
    plan = ops.Packages(["nginx", "curl"]).plan({"installed": {"curl": "8"}}, FACTS)
    assert plan.steps[0]["names"] == ["nginx"]


def test_service_plan_starts_a_stopped_service() -> None:
    plan = ops.Service("nginx").plan({"active": "inactive", "enabled": "enabled"}, FACTS)
    assert plan.status == "change"
    assert ops.Service("nginx").plan({"active": "active", "enabled": "enabled"}, FACTS).status == "ok"


def test_masker_hides_secret_values_by_key_name() -> None:
    secrets = secret_values({"db_password": "s3cr3t!", "redis": {"auth_token": "tok-123"}, "port": 5432})
    mask = Masker(secrets)
    text = mask("password=s3cr3t! token tok-123 port 5432")
    assert "s3cr3t!" not in text and "tok-123" not in text and "5432" in text


def releases_state(*names: str, current: str) -> dict:
    """Probed release folders, oldest first (mtime = position), and the link's target."""
    return {"entries": [{"name": n, "mtime": float(i)} for i, n in enumerate(names)],
            "current": f"/srv/app/releases/{current}"}


def test_old_releases_past_the_kept_count_are_removed_oldest_first() -> None:
    op = ops.OldReleases("/srv/app/releases", "/srv/app/current", "/srv/app/releases/new", keep=3)
    plan = op.plan(releases_state("r1", "r2", "r3", "r4", current="r4"), FACTS)
    assert plan.status == "change"
    assert plan.steps[0]["remove"] == ["r1", "r2"]  # kept: new, r4 (current) ... and r3 (newest other)
    assert "remove /srv/app/releases/r1/" in plan.diff


def test_the_served_release_is_kept_even_when_it_is_the_oldest() -> None:
    op = ops.OldReleases("/srv/app/releases", "/srv/app/current", "/srv/app/releases/new", keep=1)
    plan = op.plan(releases_state("old", "r2", "r3", "new", current="old"), FACTS)
    assert plan.steps[0]["remove"] == ["r2", "r3"]


def test_an_unchanged_release_with_few_enough_folders_is_ok() -> None:
    op = ops.OldReleases("/srv/app/releases", "/srv/app/current", "/srv/app/releases/r3", keep=3)
    assert op.plan(releases_state("r1", "r2", "r3", current="r3"), FACTS).status == "ok"
