"""Converge benchmark on the sandbox: first and no-op converge times, SSH round trips per host, and the same
no-op figures with the number of managed files doubled. Prints figures; asserts nothing about time.

Usage (as root, after scripts/setup.sh):  .venv/bin/python benchmarks/converge.py [--runs 3] [--keep-hosts]
It recreates the sandbox hosts first, so the first converge starts from bare hosts.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

from common import REPO, quiet_deploy, sandbox_up

from fabstack import commands
from fabstack.report import HostReport
from tests.conftest import copy_project

FILLER_ROLE = '''"""bench_filler: N extra managed files, to see whether a no-op converge grows with them."""

HANDLERS = {}


def deploy(host):
    """Declare bench_filler_files small files."""
    host.directory("/etc/fabstack-bench")
    for index in range(host.vars["bench_filler_files"]):
        host.file(f"/etc/fabstack-bench/file{index}.conf", f"# managed by fabstack\\nvalue = {index}\\n")
'''


def managed_files(reports: list[HostReport]) -> int:
    """The most files any one host manages in a run."""
    return max(sum(1 for e in r.events if e.operation.startswith("file ")) for r in reports)


def noop_figures(root: Path, runs: int) -> tuple[float, int, int, int]:
    """Median no-op seconds, max round trips per host, changed count and managed files over ``runs`` runs."""
    times, trips, changed, files = [], 0, 0, 0
    for _ in range(runs):
        seconds, reports = quiet_deploy(root)
        times.append(seconds)
        trips = max(trips, *(r.round_trips for r in reports))
        changed += sum(r.count("changed") for r in reports)
        files = managed_files(reports)
    return statistics.median(times), trips, changed, files


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
    noop_seconds, noop_trips, noop_changed, files = noop_figures(REPO, args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "repo", with_roles=True)
        (root / "roles/bench_filler/defaults").mkdir(parents=True)
        (root / "roles/bench_filler/role.py").write_text(FILLER_ROLE)
        (root / "roles/bench_filler/defaults/main.yml").write_text(f"bench_filler_files: {files}\n")
        with (root / "site.yml").open("a") as handle:
            handle.write("- hosts: all\n  roles: [bench_filler]\n")
        quiet_deploy(root)
        double_seconds, double_trips, double_changed, double_files = noop_figures(root, args.runs)

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
    print(f"{'doubled: managed files per host (max)':<44}{double_files:>10}")
    print(f"{'doubled: no-op converge, seconds (median)':<44}{double_seconds:>10.2f}")
    print(f"{'doubled: no-op SSH round trips per host':<44}{double_trips:>10}")
    print(f"{'doubled: no-op changed operations':<44}{double_changed:>10}")


if __name__ == "__main__":
    main()
