"""The backup script's retention, on faked dates (the script is plain Python, loaded from the role)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "roles" / "backups" / "files" / "fabstack-backup.py"
spec = importlib.util.spec_from_loader("fabstack_backup", loader=None)
backup = importlib.util.module_from_spec(spec)
exec(compile(SCRIPT.read_text(), str(SCRIPT), "exec"), backup.__dict__)  # noqa: S102 - our own script
KEEP = {"daily": 7, "weekly": 4, "monthly": 12}


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=dt.UTC)


def test_nightly_backups_for_two_years_keep_7_4_12() -> None:
    start = at("2025-01-01 02")
    nightly = sorted((start + dt.timedelta(days=n) for n in range(700)), reverse=True)
    kept = backup.to_keep(nightly, KEEP)
    days = {t.date() for t in kept}
    assert len(kept) == len(days)  # one per day at most
    newest = nightly[0]
    assert newest in kept
    assert all(newest - dt.timedelta(days=n) in kept for n in range(7))
    months = {(t.year, t.month) for t in kept}
    assert len(months) == 12
    assert 7 <= len(kept) <= 7 + 4 + 12


def test_the_newest_good_backup_is_always_kept() -> None:
    only = [at("2020-01-01 02")]
    assert backup.to_keep(only, {"daily": 1, "weekly": 1, "monthly": 1}) == set(only)


def test_corrupt_backup_is_not_good(tmp_path: Path) -> None:
    folder = tmp_path / "20260101T020000Z"
    folder.mkdir()
    (folder / "app.dump").write_bytes(b"data")
    (folder / "SHA256SUMS").write_text(f"{backup.sha256(folder / 'app.dump')}  app.dump\n")
    assert backup.is_good(folder)
    (folder / "app.dump").write_bytes(b"dat4")
    assert not backup.is_good(folder)
