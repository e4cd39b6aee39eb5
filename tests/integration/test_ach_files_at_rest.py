"""NACHA files hold account numbers and names: they are stored only encrypted (AES-256-GCM, FILE_ENCRYPTION_KEYS),
yet the bank gets the file in clear and so does an authorized download; migration 0013 encrypts the files stored
before it, and its downgrade gives them back in clear."""

import base64
import os
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import text

from core.config import Settings
from core.db import sqlalchemy_url
from devstack.postgres import alembic_config
from finance import nacha
from tests.integration.test_ach import odfi_entries, pay, wait_status


async def test_a_nacha_file_is_stored_encrypted_yet_the_bank_and_an_authorized_download_get_it_in_clear(
    http, su, ach_org, odfi, db
):
    debit = await pay(http, ach_org, "ach_debit", "81.00")
    done = await wait_status(http, ach_org.headers["org_admin"], debit["id"])
    assert done["status"] == "completed", done["events"]
    received = await odfi_entries(odfi, done["trace_number"])  # what the bank parsed from the file it was sent
    assert len(received) == 1 and received[0]["amount"] == "81.00"
    account_number = received[0]["account_number"]
    async with db.session() as session:
        file_id, holder = (
            await session.execute(
                text(
                    "SELECT e.file_id, x.holder_name FROM ach_entries e JOIN payments p ON p.id = e.payment_id "
                    "JOIN external_accounts x ON x.id = p.external_account_id WHERE e.trace_number = :t"
                ),
                {"t": done["trace_number"]},
            )
        ).one()
        stored_row = (
            await session.execute(text("SELECT f::text FROM ach_files f WHERE id = :f"), {"f": file_id})
        ).scalar_one()
        columns = (
            (await session.execute(text("SELECT * FROM ach_files WHERE id = :f"), {"f": file_id})).mappings().one()
        )

    download = await http.get(f"/api/v1/ach/files/{file_id}", headers=su)
    assert download.status_code == 200, download.text
    entry = next(e for _, e in nacha.parse(download.text).iter_entries() if e.trace_number == done["trace_number"])
    assert entry.account_number.strip() == account_number and entry.amount == Decimal("81.00")
    name = entry.individual_name.strip()
    assert name and name.lower() in holder.lower()

    # Neither the row as Postgres shows it nor any column's value (the sealed bytes among them) carries the number,
    # the name or any NACHA record.
    values = [bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview)) else str(v) for v in columns.values()]
    for stored in (stored_row, *values):
        assert account_number not in stored, "the account number is stored in clear"
        assert name.lower() not in stored.lower() and holder.lower() not in stored.lower(), (
            "the name is stored in clear"
        )
        assert "101 " not in stored and "9000001" not in stored  # no file header, no file control record
    assert any(isinstance(v, (bytes, memoryview)) for v in columns.values())  # the file is in the row, sealed


def _scratch_database(database_url: str) -> str:
    """A new empty database on the session's Postgres server."""
    url = sa.make_url(sqlalchemy_url(database_url))
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def test_the_migration_encrypts_stored_files_and_its_downgrade_gives_them_back_in_clear(database_url):
    scratch = _scratch_database(database_url)
    keys = [base64.b64encode(os.urandom(32)).decode() for _ in range(2)]
    config = alembic_config(scratch)
    config.attributes["settings"] = Settings(database_url=scratch, file_encryption_keys=keys[:1])
    command.upgrade(config, "0012")
    engine = sa.create_engine(scratch, poolclass=sa.pool.NullPool)
    files = {uuid.uuid4(): f"101 file {i} 000123456789 JANE Q MEMBER".ljust(94, "9") for i in range(3)}
    with engine.begin() as connection:
        for i, (file_id, content) in enumerate(files.items()):
            connection.execute(
                text(
                    "INSERT INTO ach_windows (id, cutoff_at, same_day, effective_date, status) "
                    "VALUES (:w, now(), false, current_date, 'closed')"
                ),
                {"w": f"w-{i}"},
            )
            connection.execute(
                text(
                    "INSERT INTO ach_files (id, window_id, content, entry_count, total_debit, total_credit, status) "
                    "VALUES (:id, :w, :c, 1, 1.00, 0, 'uploaded')"
                ),
                {"id": file_id, "w": f"w-{i}", "c": content},
            )
    try:
        # In production it refuses to seal them under the development key (they would not open with the real one).
        config.attributes["settings"] = Settings(database_url=scratch, environment="production")
        with pytest.raises(RuntimeError, match="FILE_ENCRYPTION_KEYS"):
            command.upgrade(config, "head")
        config.attributes["settings"] = Settings(database_url=scratch, file_encryption_keys=keys[:1])
        command.upgrade(config, "head")
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT f::text FROM ach_files f")).scalars().all()
            key_ids = set(connection.execute(text("SELECT content_key_id FROM ach_files")).scalars())
        assert len(stored) == 3 and not any("000123456789" in s or "JANE" in s for s in stored)
        assert len(key_ids) == 1

        # A rotation (a new key prepended) still opens them on the way down.
        config.attributes["settings"] = Settings(database_url=scratch, file_encryption_keys=[keys[1], keys[0]])
        command.downgrade(config, "0012")
        with engine.connect() as connection:
            back = dict(connection.execute(text("SELECT id, content FROM ach_files")).all())
        assert back == files

        command.upgrade(config, "head")  # and up again, under the new key
        with engine.connect() as connection:
            again = set(connection.execute(text("SELECT content_key_id FROM ach_files")).scalars())
        assert again and again != key_ids
    finally:
        engine.dispose()
