"""Backups and the restore drill on the real stack: the backup workflow dumps the session's database with pg_dump,
verifies, records and prunes; a drill database is then backed up, changed and destroyed, restored by the command
line `make restore` runs, and found with the same ledger and balances. And the ledger refuses DELETE."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import text

from core import backups
from core.db import libpq_url, sqlalchemy_url
from devstack.postgres import alembic_config
from devstack.processes import ROOT
from models.backups import BackupInput, BackupResult
from tests.conftest import make_org, open_account
from tests.integration.test_ach_files_at_rest import _scratch_database
from tests.integration.test_ledger import accounts, live_connection, off_the_loop, post_pair
from workflows.backup import BackupWorkflow


async def test_the_ledger_refuses_delete_and_truncate(database_url):
    # On a thread, the event loop running: see off_the_loop.
    await off_the_loop(_refuses_delete_and_truncate, database_url)


def _refuses_delete_and_truncate(database_url: str) -> None:
    with live_connection(database_url) as conn:
        a, b = accounts(conn)
        entry = post_pair(conn, a, b, "1")
        for statement, refusal in (
            (f"DELETE FROM journal_entries WHERE id = '{entry}'", "journal_entries is part of the ledger"),
            (f"DELETE FROM ledger_accounts WHERE id = '{a}'", "ledger_accounts is part of the ledger"),
            ("TRUNCATE journal_entries CASCADE", "part of the ledger|append-only"),
            ("TRUNCATE ledger_accounts CASCADE", "part of the ledger|append-only"),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
                conn.execute(statement)
            conn.rollback()
        assert conn.execute("SELECT count(*) FROM journal_entries WHERE id = %s", (entry,)).fetchone() == (1,)


def test_the_migration_downgrades_and_upgrades_again(database_url):
    scratch = _scratch_database(database_url)
    config = alembic_config(scratch)
    command.upgrade(config, "head")
    engine = sa.create_engine(sqlalchemy_url(scratch), poolclass=sa.pool.NullPool)

    def state() -> tuple:
        with engine.connect() as connection:
            return (
                connection.execute(text("SELECT to_regclass('backups') IS NOT NULL")).scalar(),
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%never_deleted' OR tgname IN "
                        "('journal_entries_no_truncate', 'ledger_accounts_no_truncate')"
                    )
                ).scalar(),
            )

    try:
        assert state() == (True, 4)
        command.downgrade(config, "0014")
        assert state() == (False, 0)
        with engine.begin() as connection:  # below 0015 ledger accounts can be deleted again: the triggers are gone
            connection.execute(text("DELETE FROM ledger_accounts WHERE kind = 'gl'"))
        command.upgrade(config, "head")
        assert state() == (True, 4)
    finally:
        engine.dispose()
        _drop(database_url, scratch)


async def test_backup_workflow_dumps_verifies_records_and_prunes(temporal_env, settings, worker, http, su, db):
    org = await make_org(http, su, roles=("member",))
    await open_account(http, su, org.id, org.users["member"]["id"], deposit="125.50")
    folder = Path(settings.backup_dir)
    name = backups.database_name(settings.database_url)
    expired = folder / f"{name}-{datetime.now(UTC) - timedelta(days=31):{backups.STAMP}}.dump"
    kept = folder / f"{name}-{datetime.now(UTC) - timedelta(days=29):{backups.STAMP}}.dump"
    stranger = folder / "notes.txt"  # not ours: never touched
    _plant(expired, kept, stranger)

    result: BackupResult = await temporal_env.client.execute_workflow(
        BackupWorkflow.run, BackupInput(), id=f"backup-{uuid.uuid4()}", task_queue=settings.task_queue
    )

    dump = folder / result.name
    assert dump.is_file() and dump.stat().st_size == result.size_bytes
    assert result.pruned == [expired.name]
    assert not expired.exists() and kept.exists() and stranger.exists()
    assert kept in backups.backups(folder) and dump in backups.backups(folder)
    assert not _partials(folder)
    assert await backups.verify(settings, dump) == result.toc_entries > 0
    async with db.session() as session:
        row = (await session.execute(text("SELECT * FROM backups WHERE name = :n"), {"n": result.name})).one()
    assert (row.sha256, row.size_bytes, row.pruned_at) == (result.sha256, result.size_bytes, None)

    # A damaged file fails verification instead of passing for a backup: cut anywhere, even in its last data block
    # with the table of contents (at the head) whole.
    damaged = folder / f"{name}-20990101T000000Z.dump"
    for kept_bytes in (result.size_bytes // 2, result.size_bytes - 16):
        damaged.write_bytes(dump.read_bytes()[:kept_bytes])
        with pytest.raises(backups.BackupError):
            await backups.verify(settings, damaged)


def _plant(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def _partials(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


def _restore_cli(database_url: str, folder: Path, *args: str, environment: str = "development"):
    return subprocess.run(
        [sys.executable, "-m", "core.backups", "restore", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "BACKUP_DIR": str(folder), "ENVIRONMENT": environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _destroy(database_url: str) -> None:
    """What an accident or an attacker does: rows changed and deleted past the ledger's triggers, a table dropped."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("SET session_replication_role = replica")  # superuser: the triggers no longer fire
        conn.execute("UPDATE ledger_accounts SET name = 'tampered' WHERE kind = 'internal'")
        conn.execute("DELETE FROM postings WHERE id IN (SELECT max(id) FROM postings)")
        conn.execute("DELETE FROM journal_entries WHERE id NOT IN (SELECT entry_id FROM postings)")
        conn.execute("DELETE FROM users")
        conn.execute("DROP TABLE holds CASCADE")  # and the account_balances view with it


async def test_restore_drill_gives_back_the_same_ledger_and_balances(
    temporal_env, settings, worker, http, su, tmp_path
):
    org = await make_org(http, su, roles=("member",))
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="310.25")
    source = await temporal_env.client.execute_workflow(
        BackupWorkflow.run, BackupInput(), id=f"backup-{uuid.uuid4()}", task_queue=settings.task_queue
    )
    # The drill runs on a database of its own, restored from the session's backup.
    drill = _scratch_database(settings.database_url)
    await backups.restore(settings, drill, Path(settings.backup_dir) / source.name)
    before, postings = backups.ledger_checksum(drill)
    with psycopg.connect(libpq_url(drill)) as conn:
        balance = conn.execute(
            "SELECT ledger_balance FROM account_balances WHERE account_id = %s", (account["id"],)
        ).fetchone()
    assert postings >= 2 and balance == (Decimal("310.25"),)

    folder = tmp_path / "drill"
    taken = await backups.dump(settings, drill, folder, datetime.now(UTC))
    _destroy(drill)
    with pytest.raises(psycopg.errors.UndefinedTable):
        backups.ledger_checksum(drill)

    # Production wants the database named: without it nothing happens.
    refused = _restore_cli(drill, folder, environment="production")
    assert refused.returncode == 2 and "--confirm" in refused.stderr
    with psycopg.connect(libpq_url(drill)) as conn:
        assert conn.execute("SELECT to_regclass('holds')").fetchone() == (None,)

    restored = _restore_cli(drill, folder, "--confirm", backups.database_name(drill), environment="production")
    assert restored.returncode == 0, restored.stderr
    assert taken.name in restored.stdout
    assert backups.ledger_checksum(drill) == (before, postings)
    with psycopg.connect(libpq_url(drill)) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM ledger_accounts WHERE name = 'tampered'").fetchone() == (0,)
        # The ledger's rules came back with it.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM postings")
    _drop(settings.database_url, drill)


def _drop(database_url: str, scratch: str) -> None:
    name = sa.make_url(scratch).database
    engine = sa.create_engine(sa.make_url(scratch).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    engine.dispose()
