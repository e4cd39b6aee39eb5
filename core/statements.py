"""Statements from the ledger: the set-based batch that writes a month's statement rows, and the entries of
one statement for its PDF.

Balances are on the account's normal side, as in the account_balances view: postings are debit-positive,
so a credit-normal account (a deposit) shows -sum(amount). A statement is as of its generated_at: the PDF
lists the entries of the period written by then, so a later back-dated correction does not silently change
a statement already issued (it shows on the next one's opening balance).
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from finance.money import round_money
from models.statements import StatementBatch, StatementBatchResult, period_bounds

INTEREST_ENTRY_TYPE = "interest_posting"

# One statement: pick the next `limit` internal accounts in id order (keyset), sum their postings up to the
# period's end, write one row each (a re-run writes nothing), and tell the owners of the rows written now.
_BATCH_SQL = text("""
WITH accts AS (
    SELECT a.id, a.owner_id, a.name, CASE a.normal_balance WHEN 'debit' THEN 1 ELSE -1 END AS sign
    FROM ledger_accounts a
    WHERE a.kind = 'internal' AND a.id > :after
      AND a.created_at < :period_end_at AND (a.closed_at IS NULL OR a.closed_at >= :period_start_at)
    ORDER BY a.id
    LIMIT :limit
), sums AS (
    SELECT p.account_id,
           sum(p.amount) FILTER (WHERE je.effective_date < :start) AS opening,
           sum(p.amount) AS closing,
           sum(p.amount) FILTER (WHERE je.effective_date >= :start AND je.entry_type = :interest_type) AS interest,
           count(*) FILTER (WHERE je.effective_date >= :start) AS entries
    FROM postings p JOIN journal_entries je ON je.id = p.entry_id
    WHERE p.account_id IN (SELECT id FROM accts) AND je.effective_date <= :end
    GROUP BY p.account_id
), written AS (
    INSERT INTO statements (account_id, period, period_start, period_end, opening_balance, closing_balance,
                            interest, entry_count)
    SELECT a.id, :period, :start, :end, a.sign * COALESCE(s.opening, 0), a.sign * COALESCE(s.closing, 0),
           a.sign * COALESCE(s.interest, 0), COALESCE(s.entries, 0)
    FROM accts a LEFT JOIN sums s ON s.account_id = a.id
    ON CONFLICT (account_id, period) DO NOTHING
    RETURNING account_id
), notified AS (
    INSERT INTO notifications (id, user_id, kind, title, body, entity_type, entity_id, dedupe_key)
    SELECT gen_random_uuid(), a.owner_id, 'statement_ready', 'Your ' || :period || ' statement is ready',
           'The statement of ' || a.name || ' for ' || :period || ' is at /api/v1/accounts/' || a.id
               || '/statements/' || :period || '.pdf',
           'account', a.id::text, 'statement:' || :period || ':' || a.id
    FROM written w JOIN accts a ON a.id = w.account_id
    WHERE :notify AND a.owner_id IS NOT NULL
    ON CONFLICT ON CONSTRAINT notifications_once_per_user DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM accts) AS accounts,
       (SELECT count(*) FROM written) AS written,
       (SELECT count(*) FROM notified) AS notified,
       (SELECT id FROM accts ORDER BY id DESC LIMIT 1) AS last_id
""")

_NIL = uuid.UUID(int=0)


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


async def write_batch(session: AsyncSession, batch: StatementBatch) -> StatementBatchResult:
    """One keyset batch in one statement; the caller commits. Accounts opened after the period, or closed
    before it, get no statement."""
    start, end = period_bounds(batch.period)
    row = (
        await session.execute(
            _BATCH_SQL,
            {
                "after": batch.after_account_id or _NIL,
                "limit": batch.limit,
                "period": batch.period,
                "start": start,
                "end": end,
                "period_start_at": _local_midnight(start, batch.timezone),
                "period_end_at": _local_midnight(end + timedelta(days=1), batch.timezone),
                "interest_type": INTEREST_ENTRY_TYPE,
                "notify": batch.notify_owners,
            },
        )
    ).one()
    return StatementBatchResult(accounts=row.accounts, written=row.written, last_account_id=row.last_id)


@dataclass(frozen=True)
class Entry:
    effective_date: date
    description: str
    entry_type: str
    amount: Decimal  # on the account's normal side


async def opening_and_entries(
    session: AsyncSession, account_id: uuid.UUID, normal_balance: str, start: date, end: date, as_of: datetime
) -> tuple[Decimal, list[Entry]]:
    """The balance before `start` and every entry from `start` to `end`, as written by `as_of`."""
    sign = 1 if normal_balance == "debit" else -1
    params = {"account": account_id, "start": start, "end": end, "as_of": as_of}
    opening = (
        await session.execute(
            text(
                """SELECT COALESCE(sum(p.amount), 0) FROM postings p JOIN journal_entries je ON je.id = p.entry_id
           WHERE p.account_id = :account AND je.effective_date < :start AND je.created_at <= :as_of"""
            ),
            params,
        )
    ).scalar_one()
    rows = (
        await session.execute(
            text(
                """SELECT je.effective_date, je.description, je.entry_type, p.amount
           FROM postings p JOIN journal_entries je ON je.id = p.entry_id
           WHERE p.account_id = :account AND je.effective_date BETWEEN :start AND :end AND je.created_at <= :as_of
           ORDER BY je.effective_date, je.created_at, p.id"""
            ),
            params,
        )
    ).all()
    return (
        round_money(sign * Decimal(opening)),
        [Entry(r.effective_date, r.description, r.entry_type, round_money(sign * Decimal(r.amount))) for r in rows],
    )
