"""Hardening benchmark on the sandbox: what the scanners say of every host after a deploy. Prints, per host, lynis's
hardening index and warnings, and ssh-audit's failures and warnings (with the reason for each justified one).
Asserts nothing. Traffic goes to sandbox addresses only.

Usage: .venv/bin/python benchmarks/hardening.py [--no-deploy]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import REPO, quiet_deploy, sandbox_up

from fabstack.engine.inventory import load_inventory
from tests.integration.auditors import JUSTIFIED_SSH_WARNINGS, lynis_fleet, ssh_audit


def main() -> None:
    """Deploy (unless told not to), then run lynis and ssh-audit against every sandbox host."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-deploy", action="store_true", help="measure the hosts as they are")
    args = parser.parse_args()
    if not args.no_deploy:
        sandbox_up()
        quiet_deploy()
    inventory = load_inventory(REPO, "sandbox")
    hosts = {name: str(inventory.resolve(name).values["ansible_host"]) for name in inventory.hosts}
    started = time.monotonic()
    lynis = lynis_fleet([f"fabstack-{name}" for name in hosts])
    lynis_seconds = time.monotonic() - started
    local = REPO / ".venv" / "bin" / "ssh-audit"
    binary = str(local) if Path(local).exists() else "ssh-audit"
    print(f"{'host':<8}{'lynis':>7}  {'ssh-audit fail':>14}  {'ssh-audit warn':>14}  lynis warnings")
    justified: set[tuple[str, str]] = set()
    for name, address in hosts.items():
        index, warnings = lynis[f"fabstack-{name}"]
        audit = ssh_audit(address, binary)
        justified |= {(w[0], w[1]) for w in audit.warnings if (w[0], w[1]) in JUSTIFIED_SSH_WARNINGS}
        shown = ", ".join(warnings) or "-"
        print(f"{name:<8}{index:>7}  {len(audit.failures):>14}  {len(audit.warnings):>14}  {shown}")
        for failure in audit.failures:
            print(f"{'':<8}  ssh-audit failure: {failure}")
        for section, algorithm, note in audit.unjustified_warnings:
            print(f"{'':<8}  ssh-audit warning: {section} {algorithm}: {note}")
    for key in sorted(justified):
        print(f"justified ssh-audit warning: {key[0]} {key[1]}: {JUSTIFIED_SSH_WARNINGS[key]}")
    print(f"lynis on {len(hosts)} hosts took {lynis_seconds:.0f}s")


if __name__ == "__main__":
    main()
