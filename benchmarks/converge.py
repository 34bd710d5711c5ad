"""Converge benchmark on sandbox hosts, for the 6-host sandbox and for a fleet of 50 bare hosts.

For each: first and no-op converge times, SSH round trips per host, the controller's CPU seconds, the no-op as a
user meets it (the whole ``fabstack deploy`` process from the shell: start-up, imports, planning, SSH), and, in the
same run, the floor: one bare OpenSSH command per host, all hosts in parallel. For the sandbox also the no-op with the
number of managed files doubled. Prints figures; asserts nothing about time.

The fleet is its own env in a throwaway repo: 50 containers running only systemd and sshd (128 MB each) on their own
podman network, each given a directory and 30 templates; they are removed at the end.

Usage (as root, after scripts/setup.sh):  .venv/bin/python benchmarks/converge.py [--runs 3] [--fleet 50]
    [--only sandbox|fleet] [--keep-hosts]
The sandbox hosts are recreated first (unless --keep-hosts), so the first converge starts from bare hosts.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from common import REPO, quiet_deploy, sandbox_up

from fabstack.cli import commands
from fabstack.engine.inventory import known_hosts_path
from fabstack.engine.report import HostReport
from fabstack.tiers.env import load_env
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


def openssh_floor(root: Path, env: str, runs: int) -> float:
    """Median wall seconds of one bare OpenSSH command (``true``) to every host of an env at once, no multiplexing.

    With ``runs`` 1 it is one sample, taken between two no-op runs."""
    project = load_env(root, env)
    key = root / ".fabstack/sandbox/id_ed25519"
    hosts = [project.setup(name, None).vars for name in project.inventory.hosts]
    known = known_hosts_path(project.inventory)
    commands_ = [["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
                  "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=10",
                  f"{v.get('ansible_user', 'root')}@{v['ansible_host']}", "true"] for v in hosts]
    times = []
    for _ in range(runs):
        started = time.monotonic()
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands_]
        for proc in procs:
            proc.wait(timeout=60)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def noop_figures(root: Path, runs: int, env: str = "sandbox",
                 between: Callable[[], None] | None = None) -> tuple[float, int, int, int, float]:
    """Median no-op seconds, max round trips per host, changed count, managed files and median controller CPU
    seconds over ``runs`` runs; ``between`` runs before each (the floor, so both see the same machine load)."""
    times, trips, changed, files, cpu = [], 0, 0, 0, []
    for _ in range(runs):
        if between is not None:
            between()
        before = cpu_seconds()
        seconds, reports = quiet_deploy(root, env)
        cpu.append(cpu_seconds() - before)
        times.append(seconds)
        trips = max(trips, *(r.round_trips for r in reports))
        changed += sum(r.count("changed") for r in reports)
        files = managed_files(reports)
    return statistics.median(times), trips, changed, files, statistics.median(cpu)


def whole_process(root: Path, env: str) -> float:
    """Wall seconds of one ``fabstack deploy`` from the shell (a new process, as a user types it), output dropped."""
    argv = [sys.executable, "-m", "fabstack.cli.tasks", "deploy", "--env", env, "--root", str(root)]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
    if done.returncode:
        raise SystemExit(f"fabstack deploy failed: {done.stderr[-2000:]}")
    return time.monotonic() - started


def startup_seconds(runs: int) -> float:
    """Median wall seconds of ``fabstack --list``: the start-up every command pays."""
    argv = [sys.executable, "-m", "fabstack.cli.tasks", "--list"]
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
        times.append(time.monotonic() - started)
    return statistics.median(times)


def whole_process_figures(root: Path, env: str, runs: int) -> tuple[float, float]:
    """Median whole-process no-op seconds and median floor, each floor sample taken right before a no-op."""
    wholes, floors = [], []
    for _ in range(runs):
        floors.append(openssh_floor(root, env, 1))
        wholes.append(whole_process(root, env))
    return statistics.median(wholes), statistics.median(floors)


FLEET_ENV = "bench"
FLEET_TEMPLATES = 30
FLEET_TEMPLATE = """# {{ fabstack_managed }}
# setting file {index} of {total} for {{{{ inventory_hostname }}}}
{{% for key, value in bench_settings.items() %}}
{{{{ key }}}} = {{{{ value }}}}
{{% endfor %}}
node = {{{{ inventory_hostname | upper }}}}-{index}
"""
FLEET_ROLE = '''"""bench_templates: a directory and one file per template in templates/, the 50-host workload."""

from pathlib import Path

HANDLERS = {}


def deploy(ctx):
    """Declare the directory and every template."""
    ctx.directory("/etc/fabstack-bench")
    for template in sorted(Path(__file__).parent.joinpath("templates").glob("*.j2")):
        ctx.template(template.name, f"/etc/fabstack-bench/{template.stem}")
'''


def fleet_project(dest: Path, hosts: int) -> Path:
    """A deployment repo whose env ``bench`` is ``hosts`` bare sandbox hosts given a directory and 30 templates."""
    role = dest / "roles" / "bench_templates"
    (role / "templates").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "role.py").write_text(FLEET_ROLE)
    (role / "defaults" / "main.yml").write_text(
        "# Values the bench templates print.\nbench_settings: {workers: 4, timeout: 30, mode: steady}\n")
    for index in range(FLEET_TEMPLATES):
        text = FLEET_TEMPLATE.format(index=index, total=FLEET_TEMPLATES)
        (role / "templates" / f"setting{index:02d}.conf.j2").write_text(text)
    (dest / "site.yml").write_text("- hosts: all\n  roles: [bench_templates]\n")
    (dest / "inventory").mkdir()
    lines = ["all:", "  vars:", "    ansible_user: deploy", "    ansible_become: true",
             "    ansible_ssh_private_key_file: .fabstack/sandbox/id_ed25519",
             "    sandbox_network: fabstack-bench", "    sandbox_subnet: 10.214.0.0/24", "  hosts:"]
    lines += [f"    bench{n:02d}: {{ansible_host: 10.214.0.{10 + n}, sandbox_memory: 128m}}"
              for n in range(1, hosts + 1)]
    (dest / "inventory" / f"{FLEET_ENV}.yml").write_text("\n".join(lines) + "\n")
    return dest


def print_figures(title: str, figures: list[tuple[str, float | int]]) -> None:
    """A titled table of figures."""
    print(title)
    print(f"  {'figure':<46}{'value':>10}")
    for name, value in figures:
        shown = f"{value:>10.2f}" if isinstance(value, float) else f"{value:>10}"
        print(f"  {name:<46}{shown}")


def converge_figures(root: Path, env: str, runs: int, up_seconds: float) -> tuple[list[tuple[str, float | int]], int]:
    """First converge, no-op and floor figures of an env whose hosts are up; and the managed files per host."""
    first_seconds, first_reports = quiet_deploy(root, env)
    floors: list[float] = []
    noop_seconds, noop_trips, noop_changed, files, noop_cpu = noop_figures(
        root, runs, env, between=lambda: floors.append(openssh_floor(root, env, 1)))
    floor = statistics.median(floors)
    whole, whole_floor = whole_process_figures(root, env, runs)
    return [
        ("hosts", len(first_reports)),
        ("sandbox.up, seconds", up_seconds),
        ("first converge, seconds", first_seconds),
        ("first converge, changed operations", sum(r.count("changed") for r in first_reports)),
        ("first converge, SSH round trips per host", max(r.round_trips for r in first_reports)),
        ("managed files per host (max)", files),
        ("no-op converge, seconds (median)", noop_seconds),
        ("no-op converge, SSH round trips per host", noop_trips),
        ("no-op converge, changed operations", noop_changed),
        ("no-op converge, controller CPU seconds", noop_cpu),
        ("floor: one OpenSSH command per host, s (median)", floor),
        ("no-op converge / floor", noop_seconds / floor),
        ("whole process: fabstack deploy no-op, s (median)", whole),
        ("floor beside it, s (median)", whole_floor),
        ("whole process / floor", whole / whole_floor),
        ("start-up: fabstack --list, s (median)", startup_seconds(runs)),
    ], files


def sandbox_part(runs: int, keep_hosts: bool, doubled: bool = True) -> None:
    """The 6-host sandbox with its real roles, then (``doubled``) with its managed files doubled."""
    if not keep_hosts:
        with redirect_stdout(io.StringIO()):
            commands.sandbox_down(REPO, "sandbox")
    figures, files = converge_figures(REPO, "sandbox", runs, sandbox_up())
    if not doubled:
        print_figures("SANDBOX (podman containers, systemd + sshd, the bundled roles)", figures)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "repo", with_roles=True, with_state=True)
        (root / "roles/bench_filler/defaults").mkdir(parents=True)
        (root / "roles/bench_filler/role.py").write_text(FILLER_ROLE)
        (root / "roles/bench_filler/defaults/main.yml").write_text(f"bench_filler_files: {files}\n")
        with (root / "site.yml").open("a") as handle:
            handle.write("- hosts: all\n  roles: [bench_filler]\n")
        quiet_deploy(root)
        double_seconds, double_trips, double_changed, double_files, _ = noop_figures(root, runs)
    figures += [
        ("doubled: managed files per host (max)", double_files),
        ("doubled: no-op converge, seconds (median)", double_seconds),
        ("doubled: no-op SSH round trips per host", double_trips),
        ("doubled: no-op changed operations", double_changed),
    ]
    print_figures("SANDBOX (podman containers, systemd + sshd, the bundled roles)", figures)


def fleet_part(hosts: int, runs: int) -> None:
    """A fleet of bare hosts, each with a directory and 30 templates; removed afterwards (its repo is temporary)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = fleet_project(Path(tmp) / "repo", hosts)
        try:
            figures, _ = converge_figures(root, FLEET_ENV, runs, sandbox_up(root, FLEET_ENV))
        finally:
            with redirect_stdout(io.StringIO()):
                commands.sandbox_down(root, FLEET_ENV)
    print_figures(f"FLEET ({hosts} bare hosts: systemd + sshd, 128 MB each; a directory and "
                  f"{FLEET_TEMPLATES} templates)", figures)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="no-op runs (each after a floor) to take the median of")
    parser.add_argument("--fleet", type=int, default=50, help="hosts in the fleet part (at most 200)")
    parser.add_argument("--only", choices=("sandbox", "fleet"), help="run one part only")
    parser.add_argument("--keep-hosts", action="store_true", help="do not recreate the sandbox hosts first")
    parser.add_argument("--no-doubled", action="store_true", help="skip the sandbox run with its files doubled")
    args = parser.parse_args()
    if not 1 <= args.fleet <= 200:
        parser.error("--fleet must be between 1 and 200")
    if args.only != "fleet":
        sandbox_part(args.runs, args.keep_hosts, doubled=not args.no_doubled)
    if args.only != "sandbox":
        fleet_part(args.fleet, args.runs)


if __name__ == "__main__":
    main()
