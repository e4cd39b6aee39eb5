"""The ledger's rules hold in the database itself: raw SQL cannot break them."""

import asyncio
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from core.db import libpq_url
from models.ledger import GL_CASH


async def off_the_loop(test: Callable[..., None], *args: Any) -> None:
    """Runs a sync test body that takes table locks on the session's database (a TRUNCATE waits for every lock on
    its tables) on a thread, the event loop running meanwhile. The session's own worker and API run on that loop: a
    sync test stops it, and one of their transactions paused midway keeps its locks until the loop runs again, so
    the TRUNCATE waited forever (a whole CI run hung). The lock timeout turns any other wait into an error."""
    await asyncio.to_thread(test, *args)


def live_connection(database_url: str) -> psycopg.Connection:
    """A raw connection to the session's database, whose lock waits end in an error after a minute."""
    return psycopg.connect(libpq_url(database_url), options="-c lock_timeout=60s")


@pytest.fixture
def conn(database_url):
    with live_connection(database_url) as connection:
        yield connection


def accounts(conn, n=2, currency="USD") -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    with conn.transaction():
        for account_id in ids:
            conn.execute(
                "INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, status) "
                "VALUES (%s, 'raw', 'internal', 'checking', 'credit', %s, 'active')",
                (account_id, currency),
            )
    return ids


def new_entry(conn) -> uuid.UUID:
    entry_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO journal_entries (id, idempotency_key, entry_type, description, effective_date) "
        "VALUES (%s, %s, 'test', 'raw sql', current_date)",
        (entry_id, f"raw:{entry_id}"),
    )
    return entry_id


def post_pair(conn, debit: uuid.UUID, credit: uuid.UUID, amount: str) -> uuid.UUID:
    """A balanced entry of two legs, in its own transaction: `amount` debited to one account, credited to the other."""
    with conn.transaction():
        entry = new_entry(conn)
        conn.execute(
            "INSERT INTO postings (entry_id, account_id, amount) VALUES (%s, %s, %s), (%s, %s, -%s::numeric)",
            (entry, debit, amount, entry, credit, amount),
        )
    return entry


def test_unbalanced_postings_are_rejected(conn):
    a, b = accounts(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match="unbalanced"), conn.transaction():  # noqa: PT012 (the whole transaction: the refusal may come at commit)
        entry = new_entry(conn)
        conn.execute(
            "INSERT INTO postings (entry_id, account_id, amount) VALUES (%s, %s, 10.00), (%s, %s, -9.99)",
            (entry, a, entry, b),
        )


def test_a_single_leg_is_rejected_even_if_a_later_statement_would_balance_it(conn):
    a, b = accounts(conn)
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():  # noqa: PT012 (the whole transaction: the refusal may come at commit)
        entry = new_entry(conn)
        conn.execute("INSERT INTO postings (entry_id, account_id, amount) VALUES (%s, %s, 10.00)", (entry, a))
        conn.execute("INSERT INTO postings (entry_id, account_id, amount) VALUES (%s, %s, -10.00)", (entry, b))


def test_an_entry_without_postings_cannot_commit(conn):
    with pytest.raises(psycopg.errors.CheckViolation, match="no postings"), conn.transaction():
        new_entry(conn)


async def test_postings_cannot_be_changed_or_deleted(conn):
    await off_the_loop(_postings_cannot_be_changed_or_deleted, conn)


async def test_a_truncate_waits_out_a_transaction_of_the_sessions_own_stack(db, database_url):
    """What hung CI: a transaction of the session's worker or API holds a lock on the ledger's tables; the TRUNCATE
    waits for it, and it ends only if the event loop runs. Off the loop it does: the TRUNCATE then gets its lock and
    the ledger's trigger refuses it."""

    def truncate() -> None:
        with live_connection(database_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE postings CASCADE")

    async with db.session() as session, session.begin():
        await session.execute(text("SELECT 1 FROM postings LIMIT 1"))  # holds ACCESS SHARE on postings to its end
        refused = asyncio.create_task(off_the_loop(truncate))
        await asyncio.sleep(1)
        assert not refused.done()  # waiting for this transaction
    await asyncio.wait_for(refused, 30)


def _postings_cannot_be_changed_or_deleted(conn) -> None:
    a, b = accounts(conn)
    entry = post_pair(conn, a, b, "5")
    for statement in ("UPDATE postings SET amount = 6 WHERE entry_id = %s", "DELETE FROM postings WHERE entry_id = %s"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"), conn.transaction():
            conn.execute(statement, (entry,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute("TRUNCATE postings CASCADE")


def test_balanced_entry_moves_derived_balances_and_holds_lower_available(conn):
    a, b = accounts(conn)
    with conn.transaction():
        entry = new_entry(conn)
        # debit a (a credit-normal deposit account goes down), credit b (goes up)
        conn.execute(
            "INSERT INTO postings (entry_id, account_id, amount) VALUES (%s, %s, 12.34), (%s, %s, -12.34)",
            (entry, a, entry, b),
        )
        conn.execute(
            "INSERT INTO holds (id, account_id, amount, reason, idempotency_key, status) "
            "VALUES (%s, %s, 2.00, 'test', %s, 'active')",
            (uuid.uuid4(), b, uuid.uuid4().hex),
        )
    rows = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT account_id, ledger_balance, held FROM account_balances WHERE account_id = ANY(%s)", ([a, b],)
        )
    }
    assert rows[a] == (Decimal("-12.34"), Decimal("0"))
    assert rows[b] == (Decimal("12.34"), Decimal("2.00"))


def test_zero_amount_postings_are_rejected(conn):
    a, b = accounts(conn)
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():  # noqa: PT012 (the whole transaction: the refusal may come at commit)
        entry = new_entry(conn)
        conn.execute(
            "INSERT INTO postings (entry_id, account_id, amount) VALUES (%s, %s, 0), (%s, %s, 0)", (entry, a, entry, b)
        )


def test_gl_accounts_come_from_the_migration(conn):
    codes = {r[0] for r in conn.execute("SELECT code FROM ledger_accounts WHERE kind = 'gl'")}
    assert {
        GL_CASH,
        "GL-ACH-CLEARING",
        "GL-INTEREST-EXPENSE",
        "GL-INTEREST-INCOME",
        "GL-FEE-INCOME",
        "GL-LOAN-RECEIVABLE",
    } <= codes


def test_books_balance_overall(conn):
    assert conn.execute("SELECT coalesce(sum(amount), 0) FROM postings").fetchone()[0] == 0


def test_an_entry_with_legs_in_two_currencies_is_refused(conn):
    (dollars,), (euros, more_euros) = accounts(conn, 1), accounts(conn, 2, "EUR")
    with pytest.raises(psycopg.errors.CheckViolation, match="currencies") as refused:
        post_pair(conn, dollars, euros, "10.00")
    assert refused.value.diag.constraint_name == "ledger_entry_one_currency"
    post_pair(conn, euros, more_euros, "10.00")  # two euro accounts: one currency


def test_an_accounts_currency_never_changes(conn):
    (account,) = accounts(conn, 1)
    with pytest.raises(psycopg.errors.CheckViolation, match="never changes") as refused, conn.transaction():
        conn.execute("UPDATE ledger_accounts SET currency = 'EUR' WHERE id = %s", (account,))
    assert refused.value.diag.constraint_name == "ledger_account_currency_fixed"
    with conn.transaction():  # any other change still goes through
        conn.execute("UPDATE ledger_accounts SET name = 'renamed', currency = 'USD' WHERE id = %s", (account,))
