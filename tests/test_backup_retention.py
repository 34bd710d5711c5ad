"""The backup script's retention, on faked dates only: every time here is given, none is read from the clock
(the script is plain Python, loaded from the role)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "roles" / "backups" / "files" / "fabstack-backup.py"
spec = importlib.util.spec_from_loader("fabstack_backup", loader=None)
backup = importlib.util.module_from_spec(spec)
exec(compile(SCRIPT.read_text(), str(SCRIPT), "exec"), backup.__dict__)  # noqa: S102 - our own script
KEEP = {"daily": 7, "weekly": 4, "monthly": 12}


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=dt.UTC)


def make_backup(root: Path, when: dt.datetime, good: bool = True) -> Path:
    """A backup folder named for ``when`` with one dump and its manifest (a wrong checksum if not ``good``)."""
    folder = root / when.strftime(backup.STAMP)
    folder.mkdir()
    (folder / "app.dump").write_bytes(when.isoformat().encode())
    digest = backup.sha256(folder / "app.dump") if good else "0" * 64
    (folder / "SHA256SUMS").write_text(f"{digest}  app.dump\n")
    return folder


def kept_times(root: Path) -> list[dt.datetime]:
    """The backups left in ``root``, newest first."""
    return [when for when, _ in backup.backups(root)]


def test_a_year_of_nightly_prunes_keeps_7_daily_4_weekly_12_monthly(tmp_path: Path) -> None:
    settings = {"dir": str(tmp_path), "keep": KEEP}
    start = at("2026-11-29 02")
    for day in range(400):
        newest = start + dt.timedelta(days=day)
        make_backup(tmp_path, newest)
        backup.prune(settings, now=newest + dt.timedelta(hours=1))
        kept = kept_times(tmp_path)
        assert kept[0] == newest, f"day {day}: the newest backup was removed"
        days = [t.date() for t in kept]
        assert len(days) == len(set(days)), f"day {day}: two backups of one day kept"
        assert days[:7] == [newest.date() - dt.timedelta(days=n) for n in range(min(7, day + 1))], day
        weeks = {t.isocalendar()[:2] for t in kept}
        all_weeks = {(newest - dt.timedelta(days=n)).isocalendar()[:2] for n in range(day + 1)}
        assert sorted(all_weeks)[-4:] == sorted(weeks)[-4:], f"day {day}: a recent week has no backup"
        months = sorted({(t.year, t.month) for t in kept})
        all_months = sorted({((newest - dt.timedelta(days=n)).year, (newest - dt.timedelta(days=n)).month)
                             for n in range(day + 1)})
        assert months == all_months[-12:], f"day {day}: kept months {months}"
        assert len(kept) <= 7 + 4 + 12
    assert len(kept_times(tmp_path)) > 12  # the run was long enough for every bucket to fill


def test_prune_reckons_from_the_given_now_and_leaves_later_backups_alone(tmp_path: Path) -> None:
    settings = {"dir": str(tmp_path), "keep": {"daily": 1, "weekly": 1, "monthly": 1}}
    for stamp in ("2027-03-01 02", "2027-03-02 02", "2027-03-03 02"):
        make_backup(tmp_path, at(stamp))
    backup.prune(settings, now=at("2027-03-02 05"))
    assert kept_times(tmp_path) == [at("2027-03-03 02"), at("2027-03-02 02")]  # 03-03 is "in the future"


def test_a_corrupt_backup_is_never_counted_and_removed_only_after_a_year(tmp_path: Path) -> None:
    settings = {"dir": str(tmp_path), "keep": {"daily": 1, "weekly": 1, "monthly": 1}}
    good = make_backup(tmp_path, at("2026-12-14 02"))
    corrupt = make_backup(tmp_path, at("2026-12-15 02"), good=False)
    backup.prune(settings, now=at("2026-12-15 03"))
    assert good.is_dir() and corrupt.is_dir()  # the newest *good* one stays though a newer corrupt one exists
    backup.prune(settings, now=at("2028-01-01 03"))
    assert good.is_dir() and not corrupt.exists()


def test_prune_without_now_uses_the_clock_and_a_bad_now_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    settings_file = tmp_path / "backup.json"
    settings_file.write_text(json.dumps({"dir": str(tmp_path / "b"), "keep": KEEP}))
    (tmp_path / "b").mkdir()
    monkeypatch.setattr(backup, "SETTINGS", settings_file)
    assert backup.main(["fabstack-backup", "prune"]) == 0
    assert backup.main(["fabstack-backup", "prune", "--now", "yesterday"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "FAILED" in out[0] and "yesterday" in out[0]


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


def test_the_script_writes_no_file_through_a_planted_link(tmp_path: Path) -> None:
    """A service account that can write the folder plants links at the names the script writes: the script
    refuses to write through them and the target keeps its content."""
    target = tmp_path / "ld.so.preload"
    target.write_text("kept\n")
    for name in ("stats.json", "SHA256SUMS", "db.dump"):
        (tmp_path / name).symlink_to(target)
        try:
            backup.write_new(tmp_path / name, "payload\n")
        except FileExistsError:
            pass
        else:
            raise AssertionError(f"{name}: written through a link")
    assert target.read_text() == "kept\n"


def test_the_metric_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    settings = {"dir": str(tmp_path / "backups")}
    good = tmp_path / "backups" / "20260101T000000Z"
    good.mkdir(parents=True)
    (good / "a.dump").write_text("x")
    (good / "SHA256SUMS").write_text(f"{backup.sha256(good / 'a.dump')}  a.dump\n")
    exporter = tmp_path / "exporter"
    exporter.mkdir()
    (tmp_path / "victim").write_text("kept\n")
    (exporter / ".fabstack_backup.prom.tmp").symlink_to(tmp_path / "victim")
    backup.record_metric(settings, exporter)
    assert (tmp_path / "victim").read_text() == "kept\n"
    assert "fabstack_backup_last_good_timestamp_seconds 1767225600" in (exporter / "fabstack_backup.prom").read_text()
