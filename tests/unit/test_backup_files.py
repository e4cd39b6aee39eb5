"""The backup files' names, pruning and the production guard of a restore: pure, on a temporary directory."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import backups
from core.config import Settings

URL = "postgresql://app:secret@db.internal:5432/backoffice"
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_names_carry_the_database_and_utc_time_and_read_back():
    name = backups.backup_name(URL, datetime(2026, 12, 1, 4, 0, tzinfo=UTC) + timedelta(hours=-1))
    assert name == "backoffice-20261201T030000Z.dump"
    assert backups.taken_at(Path(name)) == NOW
    assert backups.taken_at(Path("notes.txt")) is None
    assert backups.taken_at(Path("backoffice-yesterday.dump")) is None


def test_prune_deletes_past_retention_but_never_the_newest(tmp_path):
    def plant(days_ago: int):
        path = tmp_path / backups.backup_name(URL, NOW - timedelta(days=days_ago))
        path.write_bytes(b"x")
        return path

    old, older, recent = plant(31), plant(45), plant(2)
    (tmp_path / "keep-me.txt").write_text("not ours")
    assert sorted(backups.prune(tmp_path, timedelta(days=30), NOW)) == sorted([old.name, older.name])
    assert backups.backups(tmp_path) == [recent]
    assert (tmp_path / "keep-me.txt").exists()

    # Backups stopped a long time ago: the last one left stays, whatever its age.
    assert backups.prune(tmp_path, timedelta(days=30), NOW + timedelta(days=365)) == []
    assert backups.backups(tmp_path) == [recent]


def test_resolve_finds_a_named_or_the_newest_dump(tmp_path):
    first, second = (tmp_path / backups.backup_name(URL, NOW + timedelta(days=d)) for d in (0, 1))
    for path in (first, second):
        path.write_bytes(b"x")
    assert backups.resolve(tmp_path, None) == second
    assert backups.resolve(tmp_path, first.name) == first
    with pytest.raises(backups.BackupError, match="no backup"):
        backups.resolve(tmp_path, "../../etc/passwd")
    with pytest.raises(backups.BackupError, match="no backups"):
        backups.resolve(tmp_path / "empty", None)


def test_a_production_restore_needs_the_database_named():
    production = Settings(environment="production")
    assert "--confirm backoffice" in (backups.confirmation_error(production, URL, None) or "")
    assert backups.confirmation_error(production, URL, "other") is not None
    assert backups.confirmation_error(production, URL, "backoffice") is None
    assert backups.confirmation_error(Settings(environment="development"), URL, None) is None
