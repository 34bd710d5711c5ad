"""fabstack installed like the tools it replaces: ``pip install`` gives a ``fabstack`` command that works from a
team's own deployment repo (only its inventory, vars and site.yml; the roles and demo apps come with the package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_pip_installed_fabstack_deploys_from_a_teams_own_repo(deployed: list, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # -v: the build backend's own output, where setuptools warns about folders it was not told of
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-v", str(REPO)], capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    built = install.stdout + install.stderr
    assert "BuildBackendWarning" not in built and "SetuptoolsDeprecationWarning" not in built, built[-3000:]

    team = tmp_path / "team-deploy"
    team.mkdir()
    for name in ("inventory", "group_vars", "host_vars"):
        shutil.copytree(REPO / name, team / name, ignore=shutil.ignore_patterns("*.topology.yml", "README.md"))
    shutil.copy(REPO / "site.yml", team / "site.yml")
    for state in ("sandbox", "secrets"):  # the team's own SSH key and generated secrets for this env
        shutil.copytree(REPO / ".fabstack" / state, team / ".fabstack" / state)
    topology = REPO / "inventory" / "sandbox.topology.yml"
    if topology.exists():
        shutil.copy(topology, team / "inventory" / topology.name)
    assert not (team / "roles").exists() and not (team / "apps").exists()

    fabstack = str(venv / "bin" / "fabstack")
    listing = subprocess.run([fabstack, "--list"], cwd=team, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "deploy" in listing.stdout and "failover" in listing.stdout
    check = subprocess.run([fabstack, "deploy", "--env", "sandbox", "--check"], cwd=team, capture_output=True,
                           text=True, timeout=300)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    table, _, releases = check.stdout.split("RECAP", 1)[1].partition("\nrelease ")
    recap = table.splitlines()[2:]
    assert "would release" not in releases  # the apps' releases are live already
    assert recap and all(line.split()[2] == "0" and line.split()[3] == "0" for line in recap if line.strip()), recap
