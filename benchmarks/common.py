"""Helpers shared by the benchmarks: quiet deploys against the sandbox."""

from __future__ import annotations

import io
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fabstack.cli import commands  # noqa: E402
from fabstack.engine.report import HostReport  # noqa: E402


def quiet_deploy(root: Path = REPO, env: str = "sandbox", **kwargs: object) -> tuple[float, list[HostReport]]:
    """One deploy of an env with its output swallowed; returns (seconds, reports). Exits on failure."""
    started = time.monotonic()
    with redirect_stdout(io.StringIO()):
        reports = commands.deploy(root, env, **kwargs)
    seconds = time.monotonic() - started
    failed = [(r.host, r.error or [e.message for e in r.events if e.status == "failed"]) for r in reports if r.failed]
    if failed:
        raise SystemExit(f"deploy failed: {failed}")
    return seconds, reports


def sandbox_up(root: Path = REPO, env: str = "sandbox") -> float:
    """Start an env's sandbox hosts (if needed); returns seconds taken."""
    started = time.monotonic()
    with redirect_stdout(io.StringIO()):
        commands.sandbox_up(root, env)
    return time.monotonic() - started


def write_plot(name: str, title: str, samples: list[tuple[float, float, bool]]) -> Path:
    """A latency-over-time plot (failed requests marked) as ``.fabstack/reports/NAME.svg``; returns its path."""
    from fabstack.stack.svg import time_plot

    path = REPO / ".fabstack" / "reports" / f"{name}.svg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(time_plot(title, sorted(samples)))
    return path
