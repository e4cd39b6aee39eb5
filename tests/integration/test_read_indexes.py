"""Migration 0018 (the read benchmark's findings): account_balances sums only the accounts asked for, through the
postings and holds account_id indexes, with the same values as before; the newest-first list indexes exist; and
the downgrade gives the grouped view back."""

import uuid
from decimal import Decimal

import psycopg
from alembic import command

from core.db import libpq_url
from devstack.postgres import alembic_config
from tests.integration.test_ach_files_at_rest import _scratch_database
from tests.integration.test_backups import _drop
from tests.integration.test_ledger import accounts, post_pair

BALANCE_OF_ONE = "SELECT ledger_balance, held FROM account_balances WHERE account_id = ANY(%s)"


def _index_conditions(plan: dict, relation: str) -> list[str]:
    """The index conditions of every scan of `relation` in an EXPLAIN (FORMAT JSON) plan."""
    found = [plan["Index Cond"]] if plan.get("Relation Name") == relation and "Index Cond" in plan else []
    if plan.get("Node Type") == "Bitmap Heap Scan" and plan.get("Relation Name") == relation:
        found += [child["Index Cond"] for child in plan.get("Plans", []) if "Index Cond" in child]
    for child in plan.get("Plans", []):
        found += _index_conditions(child, relation)
    return found


def _state(conn: psycopg.Connection, account: uuid.UUID) -> tuple:
    conn.execute("SET enable_seqscan = off")  # tiny tables: ask whether the index can be used at all
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + BALANCE_OF_ONE, ([account],)).fetchone()[0][0]["Plan"]  # type: ignore[index]
    indexes = conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE indexname IN ('payments_org_newest', 'loans_org_newest')"
    ).fetchone()
    return (
        conn.execute(BALANCE_OF_ONE, ([account],)).fetchone(),
        any("account_id" in c for c in _index_conditions(plan, "postings")),
        any("account_id" in c for c in _index_conditions(plan, "holds")),
        indexes[0] if indexes else None,
    )


def test_balances_read_only_the_accounts_asked_for_and_the_downgrade_restores_the_view(database_url):
    scratch = _scratch_database(database_url)
    config = alembic_config(scratch)
    command.upgrade(config, "0018")  # the migration under test, whatever comes after it
    try:
        with psycopg.connect(libpq_url(scratch), autocommit=True) as conn:
            a, b = accounts(conn)
            post_pair(conn, a, b, "12.34")
            with conn.transaction():
                for status in ("active", "released"):
                    conn.execute(
                        "INSERT INTO holds (id, account_id, amount, reason, idempotency_key, status) "
                        "VALUES (%s, %s, 2.00, 'test', %s, %s)",
                        (uuid.uuid4(), b, uuid.uuid4().hex, status),
                    )
            conn.execute("ANALYZE")
            balance = (Decimal("12.34"), Decimal("2.00"))
            assert _state(conn, b) == (balance, True, True, 2)
            command.downgrade(config, "0017")
            assert _state(conn, b) == (balance, False, False, 0)  # the grouped view: a whole-table aggregate
            command.upgrade(config, "0018")
            assert _state(conn, b) == (balance, True, True, 2)
            assert conn.execute(BALANCE_OF_ONE, ([uuid.uuid4()],)).fetchone() is None  # no such account, no row
    finally:
        _drop(database_url, scratch)
