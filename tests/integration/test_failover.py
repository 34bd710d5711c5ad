"""Day-2 on the sandbox: switchover, failover after killing the primary, fencing, rejoin, synchronous mode,
and backups that restore and verify. Runs after test_deploy (the stack is deployed)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from fabstack import backups as backup_ops
from fabstack import commands
from fabstack import failover as fo
from fabstack.errors import FabstackError
from tests.conftest import REPO
from tests.integration.chaos import HttpProbe, Writer, probe_ids, reset_probe_table
from tests.integration.conftest import in_host

LB_URL = "http://10.213.0.11/"


def fleet() -> fo.Fleet:
    return fo.open_fleet(REPO, "sandbox", out=lambda _: None)


def roles() -> dict[str, str]:
    f = fleet()
    try:
        return {s.name: s.role for s in fo.status(f)}
    finally:
        f.close()


def primary() -> str:
    return next(h for h, r in roles().items() if r == "primary")


def wait_for_a_streaming_replica(seconds: float = 60) -> None:
    """Wait (bounded) until the primary streams to a replica: one just rejoined may still be catching up."""
    deadline = time.monotonic() + seconds
    query = ("runuser -u postgres -- psql -X -At -c "
             "\"select count(*) from pg_stat_replication where state = 'streaming'\"")
    while time.monotonic() < deadline:
        if in_host(primary(), query).stdout.strip() not in ("", "0"):
            return
        time.sleep(0.5)
    raise AssertionError(f"no replica streams from {primary()} after {seconds}s")


def writable_on_own_port(host: str) -> bool:
    out = in_host(host, "runuser -u postgres -- psql -X -At -c 'create temp table fence_probe (i int)'")
    return out.returncode == 0


def test_switchover_loses_nothing_and_the_app_keeps_serving(deployed: list) -> None:
    reset_probe_table()
    old = primary()
    writer, http = Writer().start(), HttpProbe(url=LB_URL).start()
    time.sleep(1)
    f = fleet()
    try:
        new = fo.switchover(f, None, check=False)
    finally:
        f.close()
    time.sleep(1)
    writer.stop()
    http.stop()
    assert new != old and primary() == new
    assert set(writer.acked) <= probe_ids(), "an acknowledged write was lost"
    assert roles()[old] == "replica"
    assert http.ok > 0
    print(f"switchover: {len(writer.acked)} writes acknowledged, 0 lost; HTTP through the LB: {http.ok} ok, "
          f"{http.failed} failed")


def test_check_mode_prints_the_plan_and_changes_nothing(deployed: list) -> None:
    lines: list[str] = []
    before = primary()
    f = fo.open_fleet(REPO, "sandbox", out=lines.append)
    try:
        fo.promote(f, None, force=False, check=True)
    finally:
        f.close()
    assert any(line.startswith("plan: promote") for line in lines)
    assert primary() == before


def test_promote_refuses_without_force_when_old_primary_is_gone(deployed: list) -> None:
    wait_for_a_streaming_replica()
    old = primary()
    subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True)
    try:
        f = fleet()
        with pytest.raises(FabstackError) as err:
            fo.promote(f, None, force=False, check=False)
        f.close()
        assert "--force" in err.value.line()
        targets = fleet().pgbouncer_targets("cache1")
        assert "app" in targets  # PgBouncer was not touched by the refused run
    finally:
        subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True)
        time.sleep(3)


def kill_and_promote(writer: Writer) -> tuple[str, str, float, float]:
    """Kill the primary's container under load, promote with --force; (old, new, rto seconds, command seconds)."""
    wait_for_a_streaming_replica()
    old = primary()
    time.sleep(1)
    killed = time.monotonic()
    subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True)
    f = fleet()
    started = time.monotonic()
    try:
        new = fo.promote(f, None, force=True, check=False)
    finally:
        f.close()
    took = time.monotonic() - started
    for _ in range(100):
        if writer.first_ack_after(killed):
            break
        time.sleep(0.1)
    recovered = writer.first_ack_after(killed)
    return old, new, (recovered - killed) if recovered else float("nan"), took


def test_killed_primary_is_replaced_fenced_and_rejoined(deployed: list) -> None:
    reset_probe_table()
    writer = Writer().start()
    old, new, rto, took = kill_and_promote(writer)
    time.sleep(1)
    writer.stop()
    print(f"async failover: RTO {rto:.1f}s, promote command {took:.1f}s, "
          f"lost {len(set(writer.acked) - probe_ids())} of {len(writer.acked)} acknowledged writes")
    assert primary() == new and rto == rto  # rto is not NaN: writes resumed through PgBouncer

    subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True)
    time.sleep(5)
    assert not writable_on_own_port(old), "the old primary came back writable"
    targets = fleet().pgbouncer_targets("cache1")
    assert targets["app"] != fleet().project.hostvars()[old]["ansible_host"]

    f = fleet()
    try:
        fo.rejoin(f, old)
    finally:
        f.close()
    assert roles()[old] == "replica"
    assert in_host(new, "runuser -u postgres -- psql -X -At -c \"select state from pg_stat_replication\"") \
        .stdout.strip() == "streaming"
    before = in_host(old, "ls /var/backups/postgresql").stdout
    scheduled = in_host(old, "/usr/local/sbin/fabstack-backup scheduled")  # its cron entry outlives the role
    assert scheduled.returncode == 0 and "skipped: this server is in recovery" in scheduled.stdout
    assert in_host(old, "ls /var/backups/postgresql").stdout == before
    reports = commands.deploy(REPO, "sandbox")  # a deploy keeps the new topology
    assert sum(r.count("changed") for r in reports) == 0 or primary() == new
    assert primary() == new


def test_synchronous_mode_loses_no_acknowledged_write(deployed: list) -> None:
    reports = commands.deploy(REPO, "sandbox", limit="db", roles="postgresql",
                              overrides=["postgresql_synchronous=true"])
    assert not any(r.failed for r in reports)
    try:
        reset_probe_table()
        writer = Writer().start()
        old, new, rto, took = kill_and_promote(writer)
        time.sleep(1)
        writer.stop()
        lost = set(writer.acked) - probe_ids()
        print(f"sync failover: RTO {rto:.1f}s, promote command {took:.1f}s, lost {len(lost)} of "
              f"{len(writer.acked)} acknowledged writes")
        assert not lost
        subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True)
        time.sleep(5)
        f = fleet()
        try:
            fo.rejoin(f, old)
        finally:
            f.close()
    finally:
        commands.deploy(REPO, "sandbox", limit="db", roles="postgresql")


def backups() -> backup_ops.Backups:
    return backup_ops.open_backups(REPO, "sandbox", out=lambda _: None)


def test_backup_verify_passes_and_a_corrupted_backup_is_skipped(deployed: list) -> None:
    handle = backups()
    try:
        backup_ops.run(handle)
        good = handle.listing()[0]["name"]
        fake = "29991231T235959Z"  # newer than any real one
        folder = handle.settings["backups_dir"]
        handle.host.run(f"cp -a {folder}/{good} {folder}/{fake} && printf 'X' | dd of={folder}/{fake}/app.dump "
                        "bs=1 seek=100 conv=notrunc 2>/dev/null")
        listing = {e["name"]: e["good"] for e in handle.listing()}
        assert listing[fake] is False and listing[good] is True
        messages: list[str] = []
        handle.out = messages.append
        assert backup_ops.verify(handle)
        assert any(f"skipped {fake}: CORRUPT" in m for m in messages)
        assert any(f"verifying {good}" in m for m in messages)
        with pytest.raises(FabstackError, match="CORRUPT"):
            backup_ops.restore(handle, fake, None, None, force=False)
        with pytest.raises(FabstackError, match="needs --force"):
            backup_ops.restore(handle, good, None, "app", force=False)
        handle.host.run(f"rm -rf {folder}/{fake}")
    finally:
        handle.host.close()


def test_retention_keeps_7_daily_4_weekly_12_monthly_on_faked_dates(deployed: list) -> None:
    handle = backups()
    folder = handle.settings["backups_dir"]
    months = [f"{2025 + (m - 1) // 12}{(m - 1) % 12 + 1:02d}01T020000Z" for m in range(8, 23)]  # 2025-08..2026-10
    days = ["20261105T020000Z", "20261106T020000Z", "20261112T020000Z", "20261119T020000Z", "20261120T020000Z",
            "20261120T030000Z", "20261121T020000Z", "20261122T020000Z", "20261123T020000Z"]
    names = months + days
    try:
        newest = handle.listing()[0]["name"]
        others = [e["name"] for e in handle.listing() if e["name"] != newest]
        if others:  # start from the newest real backup alone
            handle.host.run("rm -rf " + " ".join(f"{folder}/{n}" for n in others))
        copies = " && ".join(f"cp -a {folder}/{newest} {folder}/{n}" for n in names)
        handle.host.run(copies)
        handle.host.run("/usr/local/sbin/fabstack-backup prune")
        kept = {e["name"] for e in handle.listing()}
        assert newest in kept
        assert "20261120T030000Z" in kept and "20261120T020000Z" not in kept  # the newest of a day
        assert "20261106T020000Z" in kept and "20261105T020000Z" not in kept  # the newest of a week
        # 12 monthly: this month's newest and the 11 months before it that have backups
        assert set(months[-11:]) <= kept and not set(months[:4]) & kept
    finally:
        handle.host.run("rm -rf " + " ".join(f"{folder}/{n}" for n in names), check=False)
        handle.host.close()


def test_status_explains_topology(deployed: list) -> None:
    lines: list[str] = []
    f = fo.open_fleet(REPO, "sandbox", out=lines.append)
    try:
        fo.status(f)
    finally:
        f.close()
    text = "\n".join(lines)
    assert "primary" in text and "replica" in text and "pgbouncer cache1: app -> " in text
    json.dumps(text)
