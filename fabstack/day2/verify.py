"""``inv verify``: run each deployed role's testinfra tests against the hosts that carry the role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fabstack.engine.errors import FabstackError
from fabstack.engine.privatefile import write_private
from fabstack.engine.runner import close_all, gather_fleet, select_hosts
from fabstack.engine.sshconfig import write_ssh_config
from fabstack.tiers.env import load_env, plan_env


def verify(root: Path, env: str, limit: str | None = None, extra_args: list[str] | None = None) -> int:
    """Run testinfra over SSH (ControlMaster shared) for the selected hosts; returns pytest's exit status."""
    project = load_env(root, env)
    setups = select_hosts(project, limit)  # every input check a deploy makes, before any host is reached
    hosts = [setup.name for setup in setups]
    everyone = {name: project.setup(name, None) for name in project.inventory.hosts}
    runs, hostfacts = gather_fleet(project, setups)
    close_all(runs)
    # every host's setup, even under --limit: a database's max_connections depends on every PgBouncer's pools
    budget = plan_env(project, everyone, hostfacts)
    host_map = {}
    test_dirs: list[str] = []
    for setup in setups:
        roles = [r.name for r in setup.roles]
        host_map[setup.name] = {"roles": roles, "vars": setup.vars, "computed": budget.of(setup.name),
                                "facts": hostfacts.get(setup.name, {})}
        for role in setup.roles:
            tests = role.path / "tests"
            if tests.is_dir() and str(tests) not in test_dirs:
                test_dirs.append(str(tests))
    if not test_dirs:
        raise FabstackError("no role on these hosts has tests", key="--limit")
    config = write_ssh_config(project, hosts)
    map_file = project.root / ".fabstack" / "verify" / f"{env}.json"
    map_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(map_file, json.dumps(host_map, default=str))  # every secret of the env is in it
    argv = [
        sys.executable, "-m", "pytest", "-p", "fabstack.day2.verify_plugin", "-p", "no:cacheprovider",
        "--rootdir", str(project.root), "-o", "testpaths=", "-q",
        f"--ssh-config={config}", "--hosts=" + ",".join(f"ssh://{h}" for h in hosts), *test_dirs,
        *(extra_args or []),
    ]
    if any(entry["vars"].get("ansible_become") for entry in host_map.values()):
        argv.append("--sudo")
    env_vars = dict(os.environ, FABSTACK_VERIFY_MAP=str(map_file))
    return subprocess.run(argv, env=env_vars, check=False).returncode
