"""Migration 0037 (members' money management): the member_transactions view shows a member's ledger postings
(money in positive) beside their imported lines, a re-imported line is refused by its dedup key, and the
migration downgrades and upgrades again."""

import uuid
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from alembic import command

from core.db import libpq_url
from devstack.postgres import alembic_config
from tests.integration.test_ach_files_at_rest import _scratch_database
from tests.integration.test_backups import _drop


def test_the_view_shows_ledger_postings_and_imported_lines_and_a_line_imports_once(database_url):
    scratch = _scratch_database(database_url)
    config = alembic_config(scratch)
    command.upgrade(config, "0037")
    try:
        with psycopg.connect(libpq_url(scratch), autocommit=True) as conn:
            org, member, account, entry = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Money org')", (org,))
            conn.execute(
                "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                "VALUES (%s, 'money@x.example', 'M', 'x', 'member', %s)",
                (member, org),
            )
            conn.execute(
                "INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, org_id, owner_id, status) "
                "VALUES (%s, 'Checking', 'internal', 'checking', 'credit', 'USD', %s, %s, 'active')",
                (account, org, member),
            )
            cash = conn.execute("SELECT id FROM ledger_accounts WHERE code = 'GL-CASH'").fetchone()
            assert cash is not None
            with conn.transaction():
                conn.execute(
                    "INSERT INTO journal_entries (id, idempotency_key, entry_type, description, effective_date) "
                    "VALUES (%s, 'k1', 'cash_deposit', 'Cash in', '2026-11-03')",
                    (entry,),
                )
                conn.execute(
                    "INSERT INTO postings (entry_id, account_id, amount) VALUES (%s, %s, 50.00), (%s, %s, -50.00)",
                    (entry, cash[0], entry, account),
                )
            insert = (
                "INSERT INTO imported_transactions (org_id, user_id, source, posted_on, amount, merchant, description, "
                "category_key, dedup_key) VALUES (%s, %s, 'csv', '2026-11-04', -12.50, 'Cafe', 'Coffee', 'dining', "
                "'d1') ON CONFLICT (user_id, dedup_key) DO NOTHING"
            )
            assert conn.execute(insert, (org, member)).rowcount == 1
            assert conn.execute(insert, (org, member)).rowcount == 0  # the same line again adds nothing
            rows = conn.execute(
                "SELECT source, posted_on, amount, merchant, category_key, account_id IS NOT NULL "
                "FROM member_transactions WHERE user_id = %s ORDER BY posted_on",
                (member,),
            ).fetchall()
            assert rows == [
                ("ledger", date(2026, 11, 3), Decimal("50.00"), None, "uncategorized", True),
                ("csv", date(2026, 11, 4), Decimal("-12.50"), "Cafe", "dining", False),
            ]
            keys = {r[0] for r in conn.execute("SELECT key FROM categories WHERE user_id IS NULL")}
            assert {"groceries", "salary", "uncategorized"} <= keys
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(
                    "INSERT INTO imported_transactions (org_id, user_id, source, posted_on, amount, currency, "
                    "dedup_key) VALUES (%s, %s, 'csv', '2026-11-04', 1, 'usd', 'd2')",
                    (org, member),
                )
            command.downgrade(config, "-1")
            gone = conn.execute("SELECT to_regclass('member_transactions') IS NULL, to_regclass('categories') IS NULL")
            assert gone.fetchone() == (True, True)
            command.upgrade(config, "0037")
    finally:
        _drop(database_url, scratch)
