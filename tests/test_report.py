"""What a run prints and writes: host-prefixed lines, the recap, and the JSON report, secrets masked."""

from __future__ import annotations

import io
import json
from pathlib import Path

from fabstack.engine.masking import Masker
from fabstack.engine.report import Event, HostReport, Printer, recap, write_json

SECRET = "pg-Secret-42"


def sample() -> HostReport:
    report = HostReport(host="db1", seconds=1.5, round_trips=3)
    report.events = [
        Event("postgresql", "file /etc/pgbouncer/userlist.txt", "changed", diff=f'+"app" "{SECRET}"\n'),
        Event("common", "sysctl vm.overcommit_memory", "skipped", message="read-only"),
        Event("common", "file /etc/timezone", "ok"),
    ]
    return report


def test_printed_lines_are_prefixed_with_host_and_masked() -> None:
    out = io.StringIO()
    printer = Printer(Masker({SECRET}), show_diff=True, stream=out)
    for event in sample().events:
        printer.event("db1", event)
    text = out.getvalue()
    assert SECRET not in text and "********" in text
    assert all(line.startswith("db1      | ") for line in text.splitlines())
    assert "file /etc/timezone" not in text  # ok operations only with -v


def test_recap_counts_per_host() -> None:
    out = io.StringIO()
    text = recap([sample()], stream=out)
    row = next(line for line in text.splitlines() if line.startswith("db1"))
    assert row.split()[1:5] == ["1", "1", "0", "1"]
    assert row.split()[-1] == "3"


def test_json_report_is_masked(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json(path, [sample()], Masker({SECRET}), {"env": "sandbox"})
    assert SECRET not in path.read_text()
    data = json.loads(path.read_text())
    assert data["hosts"]["db1"]["changed"] == 1 and data["changed"] == 1
