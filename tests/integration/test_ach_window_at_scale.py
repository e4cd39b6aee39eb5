"""A cutoff window of 25,000 queued ACH payments closes into valid NACHA files within the bank's per-file limits
(activities/ach_build.py, finance/ach_file_plan.py), on the real Postgres: the payments are seeded set-based (one
INSERT ... generate_series), the window is closed by the batch workflow's build_files activity, and every file is
read back, decrypted and parsed (counts, totals, hashes and blocking checked by finance.nacha.parse).

The debits' batch comes first and is small-valued (the 10,000-record limit closes the first file), the credits'
is large-valued (the amount limit closes the files after it)."""

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import col, select
from temporalio.testing import ActivityEnvironment

from activities.ach import AchActivities
from activities.ach_build import entry_id
from core import ach_files
from core.crypto import FileCipher
from finance import nacha
from models.ach import AchFile
from models.payments import AchBatchInput

PAYMENTS = 25_000
MAX_RECORDS = 10_000  # the NACHA file limit, the setting's default
MAX_AMOUNT = Decimal("500000.00")
CREDIT_CODES = {nacha.TransactionCode.CHECKING_CREDIT, nacha.TransactionCode.SAVINGS_CREDIT}
DEBIT_CODES = {nacha.TransactionCode.CHECKING_DEBIT, nacha.TransactionCode.SAVINGS_DEBIT}

_SEED = text(
    """INSERT INTO payments (id, kind, status, amount, currency, from_account_id, to_account_id, org_id, created_by,
                             idempotency_key, request_hash, workflow_id, external_account_id, sec_code, window_id,
                             presentments, memo, same_day, created_at)
       SELECT gen_random_uuid(), d.kind, 'queued', d.amount, 'USD',
              CASE WHEN d.kind = 'ach_credit' THEN CAST(:account AS uuid) END,
              CASE WHEN d.kind = 'ach_debit' THEN CAST(:account AS uuid) END,
              :org, :user, :prefix || n, repeat('0', 64), 'payment-' || :prefix || n, :external,
              'PPD', :window, 1, 'Scale test', false,
              now() + n * interval '1 microsecond'
       FROM generate_series(1, :count) AS n,
            LATERAL (SELECT CASE WHEN n % 2 = 0 THEN 'ach_debit' ELSE 'ach_credit' END AS kind,
                            CASE WHEN n % 2 = 0 THEN 10.00 + n % 50 + 0.37 ELSE 100.00 + n % 100 + 0.11 END AS amount)
            AS d"""
)


async def test_a_window_of_25000_entries_gives_valid_files_within_the_limits(ach_org, db, settings, temporal_env):
    window_id = f"scale-{uuid.uuid4().hex[:12]}"
    prefix = f"{window_id}:"
    async with db.session() as session, session.begin():
        user_id = (
            await session.execute(
                text("SELECT id FROM users WHERE email = :e"), {"e": ach_org.users["org_admin"]["email"]}
            )
        ).scalar_one()
        await session.execute(
            text(
                "INSERT INTO ach_windows (id, cutoff_at, same_day, effective_date, status) "
                "VALUES (:w, now(), false, current_date + 1, 'open')"
            ),
            {"w": window_id},
        )
        await session.execute(
            _SEED,
            {
                "account": ach_org.account["id"],
                "org": ach_org.id,
                "user": user_id,
                "prefix": prefix,
                "external": ach_org.external["id"],
                "window": window_id,
                "count": PAYMENTS,
            },
        )
        seeded = (
            await session.execute(text("SELECT id, kind, amount FROM payments WHERE window_id = :w"), {"w": window_id})
        ).all()
    assert len(seeded) == PAYMENTS
    try:
        await _close_and_check(db, settings, temporal_env, window_id, seeded)
    finally:
        await _forget(db, window_id)


async def _close_and_check(db, settings, temporal_env, window_id: str, seeded) -> None:
    limited = settings.model_copy(update={"ach_file_max_records": MAX_RECORDS, "ach_file_max_amount": MAX_AMOUNT})
    activities = AchActivities(db, limited, temporal_env.client)
    request = AchBatchInput(window_id=window_id, cutoff_at=datetime.now(UTC))
    started = time.monotonic()
    built = await ActivityEnvironment().run(activities.build_files, request)
    took = time.monotonic() - started
    print(f"closed a window of {PAYMENTS} payments into {len(built.file_ids)} files in {took:.1f} s")
    assert built.dropped == []
    # A retry (after a crash past the commit) answers the same files and writes nothing more.
    again = await ActivityEnvironment().run(activities.build_files, request)
    assert again.file_ids == built.file_ids

    cipher = FileCipher.from_settings(limited)
    async with db.session() as session:
        files = (
            await session.exec(select(AchFile).where(AchFile.window_id == window_id).order_by(col(AchFile.sequence)))
        ).all()
        entries = (
            await session.execute(
                text(
                    "SELECT e.payment_id, e.trace_number, e.file_id, p.status, p.trace_number AS payment_trace "
                    "FROM ach_entries e JOIN payments p ON p.id = e.payment_id WHERE p.window_id = :w"
                ),
                {"w": window_id},
            )
        ).all()
    assert [f.id for f in files] == built.file_ids and len(files) >= 3

    filed: Counter[str] = Counter()
    trace_file: dict[str, uuid.UUID] = {}
    total = Decimal("0")
    for stored in files:
        parsed = nacha.parse(ach_files.content(cipher, stored))  # every count, total, hash and the blocking checked
        assert parsed.entry_addenda_count <= MAX_RECORDS
        assert parsed.total_debit + parsed.total_credit <= MAX_AMOUNT
        assert (stored.entry_count, stored.total_debit, stored.total_credit) == (
            parsed.entry_addenda_count,
            parsed.total_debit,
            parsed.total_credit,
        )
        for batch in parsed.batches:  # debits and credits in batches apart
            codes = {entry.transaction_code for entry in batch.entries}
            if batch.service_class_code == nacha.ServiceClass.CREDITS_ONLY:
                assert codes <= CREDIT_CODES
            else:
                assert batch.service_class_code == nacha.ServiceClass.DEBITS_ONLY and codes <= DEBIT_CODES
        for _, entry in parsed.iter_entries():
            filed[entry.individual_id] += 1
            trace_file[entry.trace_number] = stored.id
        total += parsed.total_debit + parsed.total_credit

    # Every payment in exactly one file, once; its entry row and its trace number agree with the file.
    assert set(filed.values()) == {1}
    assert set(filed) == {entry_id(p.id) for p in seeded}
    assert total == sum(p.amount for p in seeded)
    assert len(entries) == PAYMENTS and len({e.payment_id for e in entries}) == PAYMENTS
    assert all(e.status == "submitted" and e.payment_trace == e.trace_number for e in entries)
    assert all(trace_file[e.trace_number] == e.file_id for e in entries)
    # Both limits bound: some file is full by records (the small debits), some by amount (the large credits).
    records = sorted(f.entry_count for f in files)
    assert records[-1] == MAX_RECORDS
    assert any(
        f.entry_count < MAX_RECORDS and f.total_debit + f.total_credit > MAX_AMOUNT - Decimal("200") for f in files
    )


async def _forget(db, window_id: str) -> None:
    """The window's rows gone again, so that no later test of this session (a bank-wide reconciliation, a files
    list) meets 25,000 payments that no workflow owns. Their audit rows stay: the audit log is append-only."""
    async with db.session() as session, session.begin():
        payments = "SELECT id FROM payments WHERE window_id = :w"
        for sql in (
            f"DELETE FROM payment_events WHERE payment_id IN ({payments})",
            f"DELETE FROM ach_entries WHERE payment_id IN ({payments})",
            "UPDATE ach_windows SET file_id = NULL WHERE id = :w",
            "DELETE FROM payments WHERE window_id = :w",
            "DELETE FROM ach_files WHERE window_id = :w",
            "DELETE FROM ach_windows WHERE id = :w",
        ):
            await session.execute(text(sql), {"w": window_id})
