"""Day-2 on the sandbox: switchover, failover after killing the primary, fencing, rejoin, synchronous mode,
and backups that restore and verify. Runs after test_deploy (the stack is deployed)."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from fabstack.cli import commands
from fabstack.day2 import backups as backup_ops
from fabstack.engine.errors import FabstackError
from fabstack.stack.hostfiles import BACKUP_SCRIPT, BACKUP_SETTINGS
from fabstack.tiers.env import load_env, open_fleet
from fabstack.tiers.postgresql import failover as fo
from tests.conftest import REPO
from tests.integration.chaos import LB_URL, HttpProbe, Writer, probe_ids, reset_probe_table
from tests.integration.conftest import in_host


def fleet() -> fo.PgFleet:
    return open_fleet(REPO, "sandbox", "postgresql", out=lambda _: None)


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


def wait_until_accepting(host: str, seconds: float = 60) -> None:
    """Wait (bounded) until the host's PostgreSQL accepts connections; fail if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if in_host(host, "pg_isready -q").returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"PostgreSQL on {host} does not accept connections after {seconds}s")


def writable_on_own_port(host: str) -> bool:
    """Whether a write succeeds on the host's own server (asked only once it accepts connections)."""
    wait_until_accepting(host)
    out = in_host(host, "runuser -u postgres -- psql -X -At -c 'create temp table fence_probe (i int)'")
    assert out.returncode == 0 or "read-only transaction" in out.stderr, out.stderr  # refused as read-only
    return out.returncode == 0


def start_container(host: str, seconds: float = 60) -> None:
    """Start a killed sandbox host again and wait (bounded) until its sshd accepts connections, as a rebooted VM
    would be waited for (idempotent: a running host is left as it is)."""
    subprocess.run(["podman", "start", f"fabstack-{host}"], check=True, capture_output=True, timeout=60)
    address = str(load_env(REPO, "sandbox").hostvars()[host]["ansible_host"])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=2) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"sshd on {host} does not answer {seconds}s after podman start")


def deployed_cleanly(**kwargs: object) -> None:
    """Deploy the sandbox (clean-up after a test) and check that it worked."""
    reports = commands.deploy(REPO, "sandbox", **kwargs)
    assert commands.fail_on(reports) == 0, [(r.host, r.error) for r in reports if r.failed]


# A failover that takes longer than this is a regression: measured about 5 s on the sandbox.
RTO_BOUND_SECONDS = 30


def test_switchover_loses_nothing_and_the_app_keeps_serving(deployed: list) -> None:
    reset_probe_table()
    old = primary()
    writer, http = Writer().start(), HttpProbe(url=LB_URL).start()
    try:
        time.sleep(1)
        f = fleet()
        try:
            new = fo.switchover(f, None, check=False)
        finally:
            f.close()
        time.sleep(1)
    finally:
        writer.stop()
        http.stop()
    assert new != old and primary() == new
    assert set(writer.acked) <= probe_ids(), "an acknowledged write was lost"
    assert roles()[old] == "replica"
    assert http.ok > 20, "too few requests went through the LB to say anything"
    assert http.failed == 0, f"{http.failed} of {http.ok + http.failed} requests through the LB failed"
    print(f"switchover: {len(writer.acked)} writes acknowledged, 0 lost; HTTP through the LB: {http.ok} ok, "
          f"{http.failed} failed")


def test_check_mode_prints_the_plan_and_changes_nothing(deployed: list) -> None:
    lines: list[str] = []
    before = primary()
    f = open_fleet(REPO, "sandbox", "postgresql", out=lines.append)
    try:
        fo.promote(f, None, force=False, check=True)
    finally:
        f.close()
    assert any(line.startswith("plan: promote") for line in lines)
    assert primary() == before


def every_db_host_answers(seconds: float = 60) -> None:
    """Wait (bounded) until fabstack reaches every db host over SSH, as a preflight will need."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        f = open_fleet(REPO, "sandbox", "postgresql", out=lambda _: None)
        try:
            if all(s.up for s in fo.status(f)):
                return
        finally:
            f.close()
        time.sleep(1)
    raise AssertionError(f"a db host does not answer over SSH after {seconds}s")


def test_promote_refuses_without_force_when_old_primary_is_gone(deployed: list) -> None:
    wait_for_a_streaming_replica()
    every_db_host_answers()
    old = primary()
    rw_before = fleet().pgbouncer_targets("cache1")["app"]
    subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True, timeout=60)
    try:
        f = fleet()
        try:
            with pytest.raises(FabstackError) as err:
                fo.promote(f, None, force=False, check=False)
        finally:
            f.close()
        assert "--force" in err.value.line()
        assert fleet().pgbouncer_targets("cache1")["app"] == rw_before  # PgBouncer was not touched
    finally:
        start_container(old)
        wait_until_accepting(old)
    assert primary() == old  # nothing was promoted: the same primary serves again


def kill_and_promote(writer: Writer) -> tuple[str, str, float, float]:
    """Kill the primary's container under load, promote with --force; (old, new, rto seconds, command seconds)."""
    wait_for_a_streaming_replica()
    old = primary()
    time.sleep(1)
    killed = time.monotonic()
    subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True, timeout=60)
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
    assert recovered is not None, "no write was acknowledged through PgBouncer after the failover"
    return old, new, recovered - killed, took


def test_killed_primary_is_replaced_fenced_and_rejoined(deployed: list) -> None:
    reset_probe_table()
    writer = Writer().start()
    try:
        old, new, rto, took = kill_and_promote(writer)
        time.sleep(1)
    finally:
        writer.stop()
    try:
        print(f"async failover: RTO {rto:.1f}s, promote command {took:.1f}s, "
              f"lost {len(set(writer.acked) - probe_ids())} of {len(writer.acked)} acknowledged writes")
        assert primary() == new != old
        assert rto < RTO_BOUND_SECONDS, f"writes resumed only {rto:.1f}s after the kill"
        for url in (LB_URL, LB_URL + "api/"):  # PgBouncer dropped the apps' connections: they reconnect
            http = HttpProbe(url=url, max_requests=60)
            http.start().finish()
            assert (http.ok, http.failed) == (60, 0), f"{url}: {http.failed} of 60 requests failed after failover"

        start_container(old)
        assert not writable_on_own_port(old), "the old primary came back writable"
        targets = fleet().pgbouncer_targets("cache1")
        assert targets["app"] != fleet().project.hostvars()[old]["ansible_host"]

        f = open_fleet(REPO, "sandbox", "postgresql")  # its lines are shown when the test fails
        try:
            fo.rejoin(f, old)
        finally:
            f.close()
    finally:
        start_container(old)
    assert roles()[old] == "replica"
    assert in_host(new, "runuser -u postgres -- psql -X -At -c \"select state from pg_stat_replication\"") \
        .stdout.strip() == "streaming"
    before = in_host(old, "ls /var/backups/postgresql").stdout
    scheduled = in_host(old, f"{BACKUP_SCRIPT} scheduled")  # its cron entry outlives the role
    assert scheduled.returncode == 0 and "skipped: this server is a replica" in scheduled.stdout
    assert in_host(old, "ls /var/backups/postgresql").stdout == before
    reports = commands.deploy(REPO, "sandbox")  # a deploy after the failover keeps the new topology ...
    assert commands.fail_on(reports) == 0, [(r.host, r.error) for r in reports if r.failed]
    assert sum(r.count("changed") for r in reports) == 0, [  # ... and has nothing left to change
        (r.host, e.operation) for r in reports for e in r.events if e.status == "changed"]
    assert primary() == new


def test_synchronous_mode_loses_no_acknowledged_write(deployed: list) -> None:
    deployed_cleanly(limit="db", roles="postgresql", overrides=["postgresql_synchronous=true"])
    old = None
    try:
        reset_probe_table()
        writer = Writer().start()
        try:
            old, new, rto, took = kill_and_promote(writer)
            time.sleep(1)
        finally:
            writer.stop()
        lost = set(writer.acked) - probe_ids()
        print(f"sync failover: RTO {rto:.1f}s, promote command {took:.1f}s, lost {len(lost)} of "
              f"{len(writer.acked)} acknowledged writes")
        assert not lost
        assert rto < RTO_BOUND_SECONDS, f"writes resumed only {rto:.1f}s after the kill"
        start_container(old)
        f = open_fleet(REPO, "sandbox", "postgresql")  # its lines are shown when the test fails
        try:
            fo.rejoin(f, old)
        finally:
            f.close()
        assert roles()[old] == "replica"
    finally:
        if old is not None:
            start_container(old)
        deployed_cleanly(limit="db", roles="postgresql")


def backups() -> backup_ops.Backups:
    return backup_ops.open_backups(REPO, "sandbox", out=lambda _: None)


def test_backup_verify_passes_and_a_corrupted_backup_is_skipped(deployed: list) -> None:
    handle = backups()
    fake = "29991231T235959Z"  # newer than any real one
    folder = handle.on_host["dir"]
    try:
        backup_ops.run(handle)
        good = handle.listing()[0]["name"]
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
    finally:
        handle.host.run(f"rm -rf {folder}/{fake}", check=False)
        handle.host.close()


def test_retention_keeps_7_daily_4_weekly_12_monthly_on_faked_dates(deployed: list) -> None:
    """Copies of a real backup under faked names only (the newest included), pruned in a scratch folder as if it
    were 2026-11-23 03:00: the result does not depend on today's date, and the env's real backups are untouched."""
    handle = backups()
    months = [f"{2025 + (m - 1) // 12}{(m - 1) % 12 + 1:02d}01T020000Z" for m in range(8, 23)]  # 2025-08..2026-10
    # 2026-11-01 is a Sunday (ISO week 44); 11-02..11-08 is week 45, 11-09..15 week 46, 11-16..22 week 47
    days = ["20261101T020000Z", "20261105T020000Z", "20261106T020000Z", "20261112T020000Z", "20261117T020000Z",
            "20261118T020000Z", "20261119T020000Z", "20261120T020000Z", "20261120T030000Z", "20261121T020000Z",
            "20261122T020000Z", "20261123T020000Z"]
    later = "20261124T020000Z"  # dated after the faked "now": left alone
    scratch = handle.host.run("mktemp -d /var/tmp/fabstack-retention.XXXXXX")
    env = f"FABSTACK_BACKUP_SETTINGS={scratch}/backup.json"
    try:
        if not handle.listing():
            backup_ops.run(handle)
        real = handle.listing()[0]["name"]
        settings = json.loads(handle.host.run(f"cat {BACKUP_SETTINGS}"))
        settings["dir"] = f"{scratch}/backups"
        handle.host.run(f"mkdir {scratch}/backups && cat > {scratch}/backup.json", stdin=json.dumps(settings))
        handle.host.run(" && ".join(f"cp -a {handle.place.folder(real)} {scratch}/backups/{n}"
                                    for n in [*months, *days, later]))
        out = handle.host.run(f"{env} {BACKUP_SCRIPT} prune --now 20261123T030000Z")
        assert f"backup {later} is dated after now" in out
        listed = handle.host.run(f"{env} {BACKUP_SCRIPT} list").splitlines()
        kept = {json.loads(line)["name"] for line in listed}
        daily = {"20261117T020000Z", "20261118T020000Z", "20261119T020000Z", "20261120T030000Z",
                 "20261121T020000Z", "20261122T020000Z", "20261123T020000Z"}  # the newest of each of 7 days
        weekly = {"20261106T020000Z", "20261112T020000Z"}  # weeks 45 and 46 (47 and 48 are in daily)
        monthly = set(months[-11:])  # 2025-12..2026-10, with November's newest in daily: 12 months
        assert kept == daily | weekly | monthly | {later}, sorted(kept)
        assert not {"20261120T020000Z", "20261105T020000Z", "20261101T020000Z", *months[:4]} & kept
        assert handle.listing()[0]["name"] == real  # the env's own backups were not touched
    finally:
        handle.host.run(f"rm -rf {scratch}", check=False)
        handle.host.close()


def test_status_explains_topology(deployed: list) -> None:
    lines: list[str] = []
    f = open_fleet(REPO, "sandbox", "postgresql", out=lines.append)
    try:
        fo.status(f)
    finally:
        f.close()
    text = "\n".join(lines)
    assert "primary" in text and "replica" in text and "pgbouncer cache1: app -> " in text
    json.dumps(text)
