"""Service accounts on the sandbox hosts are untrusted (docs/security.md): as ``postgres`` and as ``www-data``, plant
every link the agent, the backup script or a release could follow, then deploy, back up, release and roll back,
and check that nothing outside each account's own folders was written or given to it."""

from __future__ import annotations

from pathlib import Path

from fabstack.cli import commands
from fabstack.day2 import backups, release
from tests.conftest import REPO
from tests.integration.conftest import in_host
from tests.integration.test_release import push_commit

# Where the shop (group_vars/all.yml) is released.
DEST = "/srv/php-app"
# Files root owns that a planted link would aim at, and what they must still be afterwards.
TARGETS = ("/etc/ld.so.preload", "/etc/passwd", "/etc/shadow", "/root")


def state_of(host: str) -> str:
    """Owner, mode and checksum of every target (or "absent"): compared before and after."""
    lines = [f"if [ -e {t} ] || [ -L {t} ]; then stat -c '%U:%G %a %n' {t}; "
             f"[ -f {t} ] && sha256sum {t}; else echo 'absent {t}'; fi" for t in TARGETS]
    return in_host(host, "; ".join(lines)).stdout


def as_user(host: str, user: str, command: str) -> None:
    """Run a shell command on the host as ``user`` (the untrusted account)."""
    done = in_host(host, f"runuser -u {user} -- sh -c '{command}'")
    assert done.returncode == 0, done.stderr


def test_links_planted_by_postgres_are_never_followed_by_deploy_or_backup(deployed: list) -> None:
    before = state_of("db1")
    home = "/var/lib/postgresql"
    try:
        # the names the agent once wrote through, a changed .pgpass that forces a rewrite, and a link where the
        # backup script writes
        as_user("db1", "postgres", f"ln -sfn /etc/ld.so.preload {home}/..pgpass.fabstack-new; "
                                   f"ln -sfn /etc/shadow {home}/.pgpass.tmp; echo tampered >> {home}/.pgpass")
        assert in_host("db1", "runuser -u postgres -- touch /var/backups/postgresql/planted").returncode != 0
        reports = commands.deploy(REPO, "sandbox", limit="db1")
        assert commands.fail_on(reports) == 0
        assert in_host("db1", f"grep -c tampered {home}/.pgpass").stdout.strip() == "0"  # rewritten ...
        assert in_host("db1", f"stat -c '%U %a %F' {home}/.pgpass").stdout.strip() == "postgres 600 regular file"
        backups.with_backups(REPO, "sandbox", backups.run)
        assert state_of("db1") == before  # ... and nothing outside postgres's folders touched
    finally:
        in_host("db1", f"rm -f {home}/..pgpass.fabstack-new {home}/.pgpass.tmp")


def test_links_planted_by_www_data_are_never_followed_by_a_release(deployed: list, tmp_path: Path) -> None:
    shared = f"{DEST}/shared/storage"
    before = {host: state_of(host) for host in ("app1", "app2")}
    try:
        for host in ("app1", "app2"):
            as_user(host, "www-data", f"ln -sfn /etc/passwd {shared}/planted-passwd; "
                                      f"ln -sfn /root {shared}/planted-root; "
                                      f"ln -sfn /etc/shadow {DEST}/current/bootstrap/cache/planted")
        push_commit("shop", tmp_path, "trust: a release after links were planted")
        for figures in release.release(REPO, "sandbox", app="shop"):
            assert figures.changed
        release.rollback(REPO, "sandbox", app="shop")
        for host in ("app1", "app2"):
            assert state_of(host) == before[host]
            # the links stayed links: nothing was copied through them or owned through them
            kinds = in_host(host, f"stat -c '%U %F' {shared}/planted-passwd {shared}/planted-root").stdout
            assert kinds.split("\n")[:2] == ["www-data symbolic link"] * 2, kinds
    finally:
        for host in ("app1", "app2"):
            in_host(host, f"rm -f {shared}/planted-passwd {shared}/planted-root "
                          f"{DEST}/releases/*/bootstrap/cache/planted")
