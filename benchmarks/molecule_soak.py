"""Repeat molecule's create, prepare, converge and idempotence steps of a scenario N times (bounded), to catch a
flaky idempotence step; prints each round's outcome, durations, and on a failure the deploy's own report.

    .venv/bin/python benchmarks/molecule_soak.py --rounds 10 [--scenario default]

Traffic goes only to the scenario's own instances on its podman network. Asserts nothing: it prints figures.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabstack.cli import commands  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEPS = ("create", "prepare", "converge", "idempotence")


def failure_excerpt(output: str) -> str:
    """From ansible's first ``fatal:`` on (the deploy's own report), else the end of the output."""
    start = output.find("fatal:")
    return output[start:start + 8000] if start >= 0 else output[-4000:]


def one_round(scenario: str, timeout: float) -> tuple[bool, dict[str, float], str]:
    """One create → idempotence cycle, destroyed afterwards; (passed, seconds per step, failure text)."""
    seconds: dict[str, float] = {}
    try:
        for step in STEPS:
            started = time.monotonic()
            result = commands.molecule(ROOT, scenario, step, capture=True, timeout=timeout)
            seconds[step] = time.monotonic() - started
            if result.returncode != 0:
                return False, seconds, f"{step}: " + failure_excerpt(ANSI.sub("", result.stdout + result.stderr))
        return True, seconds, ""
    finally:
        commands.molecule(ROOT, scenario, "destroy", capture=True, timeout=timeout)


def main() -> int:
    """Run the rounds and print one line each, then a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for each molecule step")
    args = parser.parse_args()
    failures = 0
    for number in range(1, min(args.rounds, 50) + 1):
        passed, seconds, text = one_round(args.scenario, args.timeout)
        failures += not passed
        steps = " ".join(f"{step} {secs:.0f}s" for step, secs in seconds.items())
        print(f"round {number}: {'passed' if passed else 'FAILED'} ({steps})", flush=True)
        if text:
            print(text, flush=True)
    print(f"{args.rounds - failures} passed, {failures} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
