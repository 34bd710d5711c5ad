"""What a run tells the user: prefixed lines while it runs, a recap table at the end, an optional JSON file."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from fabstack.engine.masking import Masker


@dataclass
class Event:
    """The outcome of one operation or handler on one host."""

    role: str
    operation: str
    status: str  # ok, changed, failed, skipped
    message: str = ""
    diff: str = ""
    seconds: float = 0.0  # time spent applying it on the host (0 when nothing was applied)


@dataclass
class HostReport:
    """Counts and events of one host's run."""

    host: str
    events: list[Event] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    round_trips: int = 0
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many events ended with ``status``."""
        return sum(1 for e in self.events if e.status == status)

    @property
    def failed(self) -> bool:
        """Whether the host failed (an error, or any failed operation)."""
        return bool(self.error) or self.count("failed") > 0

    def totals(self) -> dict[str, int]:
        """ok / changed / failed / skipped counts (a host-level error counts as one failure)."""
        failed = self.count("failed") + (1 if self.error and not self.count("failed") else 0)
        return {"ok": self.count("ok"), "changed": self.count("changed"), "failed": failed,
                "skipped": self.count("skipped")}


class Printer:
    """Thread-safe output where every line starts with its host, with secrets masked."""

    def __init__(self, masker: Masker, verbose: int = 0, show_diff: bool = False, stream: TextIO | None = None):
        self.masker = masker
        self.verbose = verbose
        self.show_diff = show_diff
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def line(self, host: str, text: str) -> None:
        """Print lines of ``text``, each prefixed with the host."""
        with self._lock:
            for row in self.masker(text).splitlines() or [""]:
                self.stream.write(f"{host:<8} | {row}\n")
            self.stream.flush()

    def event(self, host: str, event: Event) -> None:
        """Report one operation's outcome (ok ones only when verbose), with its diff when diffs are on."""
        if event.status == "ok" and not self.verbose:
            return
        detail = f": {event.message}" if event.message else ""
        took = f" ({event.seconds:.1f} s)" if event.seconds >= 1 else ""  # what a slow converge spends its time on
        self.line(host, f"{event.status:<8} {event.role}: {event.operation}{took}{detail}")
        if event.diff and (self.show_diff or self.verbose > 1):
            self.line(host, event.diff.rstrip("\n"))


def recap(reports: list[HostReport], stream: TextIO | None = None) -> str:
    """The closing table: ok / changed / failed / skipped / seconds / round trips per host."""
    out = stream or sys.stdout
    header = f"{'HOST':<10}{'OK':>6}{'CHANGED':>9}{'FAILED':>8}{'SKIPPED':>9}{'SECONDS':>9}{'TRIPS':>7}"
    rows = [header]
    for rep in reports:
        t = rep.totals()
        rows.append(f"{rep.host:<10}{t['ok']:>6}{t['changed']:>9}{t['failed']:>8}{t['skipped']:>9}"
                    f"{rep.seconds:>9.2f}{rep.round_trips:>7}")
    warnings = [f"{rep.host:<10}{warning}" for rep in reports for warning in rep.warnings]
    text = "\n".join(["", "RECAP", *rows, *(["", "WARNINGS", *warnings] if warnings else [])]) + "\n"
    out.write(text)
    out.flush()
    return text


def _event(event: Event, with_diff: bool) -> dict[str, object]:
    shown = asdict(event)
    if not with_diff:
        shown.pop("diff", None)
    return shown


def write_json(path: Path, reports: list[HostReport], masker: Masker, meta: dict[str, object],
               with_diffs: bool = False) -> None:
    """A machine-readable report of the run, secrets masked; file diffs only ``with_diffs`` (``--diff``), as on the
    terminal: a report is often kept as a CI artifact."""
    data = {
        **meta,
        "failed": any(r.failed for r in reports),
        # a release that switched a host counts as a change of that host (what molecule's idempotence reads)
        "changed": sum(r.count("changed") for r in reports)
        + sum(len(app.get("changed", [])) for app in meta.get("releases", [])),  # type: ignore[attr-defined]
        "hosts": {r.host: {**r.totals(), "seconds": round(r.seconds, 3), "round_trips": r.round_trips,
                           "error": r.error, "warnings": r.warnings,
                           "events": [_event(e, with_diffs) for e in r.events]}
                  for r in reports},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(masker(json.dumps(data, indent=2)) + "\n")
