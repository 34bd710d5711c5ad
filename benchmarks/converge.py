"""Converge benchmark on the sandbox: first and no-op converge times, SSH round trips per host, the controller's CPU
seconds, the same no-op figures with the number of managed files doubled, and, in the same run, the floor: one bare
OpenSSH command per host, all hosts in parallel. Prints figures; asserts nothing about time.

Usage (as root, after scripts/setup.sh):  .venv/bin/python benchmarks/converge.py [--runs 3] [--keep-hosts]
It recreates the sandbox hosts first, so the first converge starts from bare hosts.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from common import REPO, quiet_deploy, sandbox_up

from fabstack import commands
from fabstack.project import load_project
from fabstack.report import HostReport
from tests.conftest import copy_project

FILLER_ROLE = '''"""bench_filler: N extra managed files, to see whether a no-op converge grows with them."""

HANDLERS = {}


def deploy(ctx):
    """Declare bench_filler_files small files."""
    ctx.directory("/etc/fabstack-bench")
    for index in range(ctx.vars["bench_filler_files"]):
        ctx.file(f"/etc/fabstack-bench/file{index}.conf", f"# managed by fabstack\\nvalue = {index}\\n")
'''


def managed_files(reports: list[HostReport]) -> int:
    """The most files any one host manages in a run."""
    return max(sum(1 for e in r.events if e.operation.startswith("file ")) for r in reports)


def cpu_seconds() -> float:
    """This process's CPU time so far (user + system, all threads)."""
    times = os.times()
    return times.user + times.system


def openssh_floor(root: Path, runs: int) -> float:
    """Median wall seconds of one bare OpenSSH command (``true``) to every sandbox host at once, no multiplexing."""
    project = load_project(root, "sandbox")
    key = root / ".fabstack/sandbox/id_ed25519"
    hosts = [project.setup(name, None).vars for name in project.inventory.hosts]
    commands_ = [["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
                  "-o", f"UserKnownHostsFile={root / 'inventory/sandbox.known_hosts'}", "-o", "ConnectTimeout=10",
                  f"{v.get('ansible_user', 'root')}@{v['ansible_host']}", "true"] for v in hosts]
    times = []
    for _ in range(runs):
        started = time.monotonic()
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands_]
        for proc in procs:
            proc.wait(timeout=60)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def noop_figures(root: Path, runs: int) -> tuple[float, int, int, int, float]:
    """Median no-op seconds, max round trips per host, changed count, managed files and median controller CPU
    seconds over ``runs`` runs."""
    times, trips, changed, files, cpu = [], 0, 0, 0, []
    for _ in range(runs):
        before = cpu_seconds()
        seconds, reports = quiet_deploy(root)
        cpu.append(cpu_seconds() - before)
        times.append(seconds)
        trips = max(trips, *(r.round_trips for r in reports))
        changed += sum(r.count("changed") for r in reports)
        files = managed_files(reports)
    return statistics.median(times), trips, changed, files, statistics.median(cpu)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="no-op runs to take the median of")
    parser.add_argument("--keep-hosts", action="store_true", help="do not recreate the hosts first")
    args = parser.parse_args()

    if not args.keep_hosts:
        with redirect_stdout(io.StringIO()):
            commands.sandbox_down(REPO, "sandbox")
    up_seconds = sandbox_up()
    first_seconds, first_reports = quiet_deploy(REPO)
    noop_seconds, noop_trips, noop_changed, files, noop_cpu = noop_figures(REPO, args.runs)
    floor = openssh_floor(REPO, args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "repo", with_roles=True, with_state=True)
        (root / "roles/bench_filler/defaults").mkdir(parents=True)
        (root / "roles/bench_filler/role.py").write_text(FILLER_ROLE)
        (root / "roles/bench_filler/defaults/main.yml").write_text(f"bench_filler_files: {files}\n")
        with (root / "site.yml").open("a") as handle:
            handle.write("- hosts: all\n  roles: [bench_filler]\n")
        quiet_deploy(root)
        double_seconds, double_trips, double_changed, double_files, _ = noop_figures(root, args.runs)

    hosts = len(first_reports)
    print(f"sandbox: {hosts} hosts (podman containers, systemd + sshd); sandbox.up {up_seconds:.1f}s")
    print(f"{'figure':<44}{'value':>10}")
    print(f"{'first converge (bare hosts), seconds':<44}{first_seconds:>10.2f}")
    print(f"{'first converge, changed operations':<44}{sum(r.count('changed') for r in first_reports):>10}")
    print(f"{'first converge, SSH round trips per host':<44}{max(r.round_trips for r in first_reports):>10}")
    print(f"{'managed files per host (max)':<44}{files:>10}")
    print(f"{'no-op converge, seconds (median)':<44}{noop_seconds:>10.2f}")
    print(f"{'no-op converge, SSH round trips per host':<44}{noop_trips:>10}")
    print(f"{'no-op converge, changed operations':<44}{noop_changed:>10}")
    print(f"{'no-op converge, controller CPU seconds':<44}{noop_cpu:>10.2f}")
    print(f"{'floor: one OpenSSH command per host, s':<44}{floor:>10.2f}")
    print(f"{'no-op converge / floor':<44}{noop_seconds / floor:>10.2f}")
    print(f"{'doubled: managed files per host (max)':<44}{double_files:>10}")
    print(f"{'doubled: no-op converge, seconds (median)':<44}{double_seconds:>10.2f}")
    print(f"{'doubled: no-op SSH round trips per host':<44}{double_trips:>10}")
    print(f"{'doubled: no-op changed operations':<44}{double_changed:>10}")


if __name__ == "__main__":
    main()
