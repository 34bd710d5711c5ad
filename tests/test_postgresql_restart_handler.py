"""The postgresql role's restart handler, run as a shell against fake commands: it restarts the server only when
the running one started before its restart-only settings were last written (no second outage on a first deploy
whose server Patroni, or the package, started with them already)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fabstack.engine.role import load_role
from tests.conftest import REPO

FAKES = {
    # the server's start time as psql prints it, or no answer at all when STARTED is empty
    "runuser": '#!/bin/sh\n[ -n "$STARTED" ] || exit 2\necho "$STARTED"\n',
    "systemctl": '#!/bin/sh\necho "systemctl $*" >> "$CALLS"\n',
    "patronictl": '#!/bin/sh\necho "patronictl $*" >> "$CALLS"\n',
    "pg_isready": "#!/bin/sh\nexit 0\n",
}


def run_restart_handler(tmp_path: Path, started: str) -> list[str]:
    """Run the rendered handler with the settings file written at 1,000,000 s and the server started at
    ``started``; the service commands it ran."""
    for name, text in FAKES.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    etc = tmp_path / "etc"
    (etc / "conf.d").mkdir(parents=True)
    settings = etc / "conf.d" / "60-fabstack-restart.conf"
    settings.write_text("shared_buffers = 1GB\n")
    os.utime(settings, (1_000_000, 1_000_000))
    command = load_role(REPO / "roles", "postgresql").handler_commands(
        {"postgresql_port": 5432, "postgresql_etc": str(etc), "inventory_hostname": "db1"}, "db1")["restart postgresql"]
    calls = tmp_path / "calls"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "STARTED": started, "CALLS": str(calls)}
    subprocess.run(["sh", "-c", command], env=env, check=True, timeout=30)
    return calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.parametrize(("started", "restarts"), [
    ("999999", True),     # running since before the change: the new settings wait for a restart
    ("1000000", True),    # the same second: which came first is unknown, so restart
    ("1000001", False),   # started after the change: it runs with them already
    ("", True),           # no answer from the server: start it
])
def test_the_server_restarts_only_when_it_runs_older_settings(tmp_path: Path, started: str, restarts: bool) -> None:
    assert run_restart_handler(tmp_path, started) == (["systemctl restart postgresql"] if restarts else [])
