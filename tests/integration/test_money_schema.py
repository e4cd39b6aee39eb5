"""Migration 0037 (members' money management): the member_transactions view shows a member's ledger postings
(money in positive) beside their imported lines, a re-imported line is refused by its dedup key, and the
migration downgrades and upgrades again."""

import uuid
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core.db import libpq_url, sqlalchemy_url
from devstack.postgres import alembic_config
from domain.categorise import apply_rules, has_active_rules
from tests.conftest import make_org, make_user
from tests.integration.test_ach_files_at_rest import _scratch_database
from tests.integration.test_backups import _drop
from tests.planted import PLANT_PSYCOPG, planted_import


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
            cash = conn.execute("SELECT id FROM ledger_accounts WHERE code = 'GL-CASH' AND currency = 'USD'").fetchone()
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


async def test_rules_categorise_set_based_by_priority_and_never_over_a_manual_choice(database_url):
    scratch = _scratch_database(database_url)
    command.upgrade(alembic_config(scratch), "head")
    engine = create_async_engine(sqlalchemy_url(scratch))
    try:
        org, member = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO organizations (id, name) VALUES (:o, 'Rules org')"), {"o": org})
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                    "VALUES (:u, 'rules@x.example', 'R', 'x', 'member', :o)"
                ),
                {"u": member, "o": org},
            )
            lines = [
                ("WHOLE FOODS #12", "card", "-80.00", "default"),
                ("Shell", "FUEL 123", "-40.00", "default"),
                ("Shell", "big fuel", "-400.00", "default"),
                ("ACME PAYROLL", "salary", "2500.00", "default"),
                ("Whole Foods", "hand-picked", "-5.00", "manual"),
            ]
            planted = await planted_import(conn, org, member)
            for n, (merchant, description, amount, source) in enumerate(lines):
                await conn.execute(
                    text(
                        "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, "
                        "posted_on, amount, merchant, description, category_key, category_source, dedup_key) VALUES "
                        "(:o, :u, :import, :account, 'csv', '2026-11-01', :a, :m, :d, "
                        "CASE WHEN :s = 'manual' THEN 'shopping' ELSE 'uncategorized' END, :s, :k)"
                    ),
                    {
                        **planted,
                        "o": org,
                        "u": member,
                        "a": Decimal(amount),
                        "m": merchant,
                        "d": description,
                        "s": source,
                        "k": f"k{n}",
                    },
                )
            rule = (
                "INSERT INTO category_rules (id, org_id, user_id, priority, field, match, pattern, min_amount, "
                "max_amount, category_key, created_by) VALUES (gen_random_uuid(), :o, :u, :p, :f, :m, :pat, :lo, :hi, "
                ":c, :by)"
            )
            base = {"o": org, "by": member, "lo": None, "hi": None}
            await conn.execute(
                text(rule),
                {**base, "u": None, "p": 10, "f": "merchant", "m": "keyword", "pat": "whole foods", "c": "groceries"},
            )
            await conn.execute(
                text(rule),
                {
                    **base,
                    "u": None,
                    "p": 10,
                    "f": "any",
                    "m": "regex",
                    "pat": "^shell|fuel",
                    "c": "fuel",
                    "hi": Decimal("100"),
                },
            )
            await conn.execute(
                text(rule),
                {
                    **base,
                    "u": member,
                    "p": 10,
                    "f": "description",
                    "m": "keyword",
                    "pat": "FUEL",
                    "c": "transport",
                    "hi": Decimal("100"),
                },
            )
            await conn.execute(
                text(rule),
                {
                    **base,
                    "u": None,
                    "p": 1,
                    "f": "merchant",
                    "m": "regex",
                    "pat": "payroll$",
                    "c": "salary",
                    "lo": Decimal("100"),
                },
            )
            assert await apply_rules(conn, member) == 3
            assert await apply_rules(conn, member) == 0  # applied again: nothing changes, no history row
            got = dict(
                (
                    await conn.execute(
                        text("SELECT description, category_key FROM member_transactions WHERE user_id = :u"),
                        {"u": member},
                    )
                ).all()
            )
            assert got == {
                "card": "groceries",
                "FUEL 123": "transport",  # the member's rule before the org's at the same priority
                "big fuel": "uncategorized",  # above both fuel rules' amount range
                "salary": "salary",
                "hand-picked": "shopping",  # a person's choice stays
            }
            history = (
                await conn.execute(
                    text("SELECT count(*), count(rule_id) FROM transaction_changes WHERE reason = 'rule_on_import'")
                )
            ).one()
            assert tuple(history) == (3, 3)
    finally:
        await engine.dispose()
        _drop(database_url, scratch)


def test_lines_without_an_import_get_one_and_earlier_counts_stay_counted(database_url):
    """Migrations 0048 and 0049 on data: a line loaded without its import (none of our loaders does that, older data
    might) gets an `import-legacy-...` import of its member and account, after which a line must name an import whose
    member, organization and account are its own; a running import's counts become one committed set at line 0. Both
    downgrade back, the counts summed into one row a tuple again."""
    scratch = _scratch_database(database_url)
    config = alembic_config(scratch)
    command.upgrade(config, "0047")
    try:
        with psycopg.connect(libpq_url(scratch), autocommit=True) as conn:
            org, member = uuid.uuid4(), uuid.uuid4()
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Legacy org')", (org,))
            conn.execute(
                "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                "VALUES (%s, 'legacy@x.example', 'L', 'x', 'member', %s)",
                (member, org),
            )
            with conn.transaction():
                cursor = conn.execute(PLANT_PSYCOPG, {"org": str(org), "user": str(member)})
                running, account = cursor.fetchone()
            conn.execute("UPDATE transaction_imports SET status = 'running' WHERE id = %s", (running,))
            conn.execute(
                "INSERT INTO imported_transactions (org_id, user_id, external_account_id, source, posted_on, amount, "
                "description, dedup_key) VALUES (%s, %s, %s, 'csv', '2026-10-01', -3.00, 'old line', 'legacy-1')",
                (org, member, account),
            )
            conn.execute(
                "INSERT INTO import_tuple_counts (import_id, tuple_hash, seen) VALUES (%s, '\\xab', 2)", (running,)
            )
            command.upgrade(config, "head")
            imports = conn.execute(
                "SELECT i.workflow_id LIKE 'import-legacy-%%', i.status, i.user_id = l.user_id, "
                "i.external_account_id = l.external_account_id "
                "FROM imported_transactions l JOIN transaction_imports i ON i.id = l.import_id"
            ).fetchall()
            assert imports == [(True, "completed", True, True)]
            assert conn.execute(
                "SELECT first_line, lines, committed FROM import_count_sets WHERE import_id = %s", (running,)
            ).fetchall() == [(0, 0, True)]
            other = uuid.uuid4()
            conn.execute(
                "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                "VALUES (%s, 'other@x.example', 'O', 'x', 'member', %s)",
                (other, org),
            )
            with pytest.raises(psycopg.errors.ForeignKeyViolation):  # the import of another member's account
                conn.execute(
                    "INSERT INTO imported_transactions (org_id, user_id, external_account_id, import_id, source, "
                    "posted_on, amount, description, dedup_key) "
                    "VALUES (%s, %s, %s, %s, 'csv', '2026-10-02', -1.00, 'not theirs', 'x-1')",
                    (org, other, account, running),
                )
            with pytest.raises(psycopg.errors.NotNullViolation):  # a line without its import
                conn.execute(
                    "INSERT INTO imported_transactions (org_id, user_id, external_account_id, source, posted_on, "
                    "amount, description, dedup_key) VALUES (%s, %s, %s, 'csv', '2026-10-02', -1.00, 'bare', 'x-2')",
                    (org, member, account),
                )
            conn.execute(
                "INSERT INTO import_count_sets (import_id, first_line, lines) VALUES (%s, 31, 30)", (running,)
            )  # written ahead, never committed: dropped by the downgrade
            conn.execute(
                "INSERT INTO import_tuple_counts (import_id, tuple_hash, first_line, seen) VALUES (%s, '\\xab', 31, 5)",
                (running,),
            )
            command.downgrade(config, "0047")
            assert conn.execute("SELECT tuple_hash, seen FROM import_tuple_counts").fetchall() == [(b"\xab", 2)]
            command.upgrade(config, "head")
    finally:
        _drop(database_url, scratch)


def test_a_statements_lines_must_name_their_members_import_which_stays_and_is_locked_while_they_load(database_url):
    """Migration 0051: the foreign key from a line to its import, checked once a statement by a trigger. A statement
    with one line naming another member's import, or its import with another account, is refused whole with the
    foreign key's error; the statement's imports are locked FOR KEY SHARE until its transaction ends, as the key
    locks them (the chunk's own NO KEY UPDATE goes on beside it); a line's owner never changes, nor an import's, and an
    import is never deleted. The downgrade gives the foreign key back."""
    scratch = _scratch_database(database_url)
    config = alembic_config(scratch)
    command.upgrade(config, "head")
    rule = "imported_transactions_import_owner"
    try:
        with (
            psycopg.connect(libpq_url(scratch), autocommit=True) as conn,
            psycopg.connect(libpq_url(scratch), autocommit=True) as other,
        ):
            org, member, neighbour = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Owner org')", (org,))
            for user, email in ((member, "owner@x.example"), (neighbour, "neighbour@x.example")):
                conn.execute(
                    "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                    "VALUES (%s, %s, 'O', 'x', 'member', %s)",
                    (user, email, org),
                )
            mine = conn.execute(PLANT_PSYCOPG, {"org": str(org), "user": str(member)}).fetchone()
            theirs = conn.execute(PLANT_PSYCOPG, {"org": str(org), "user": str(neighbour)}).fetchone()
            lines = (
                "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, "
                "amount, description, dedup_key) "
                "SELECT %(org)s, %(user)s, %(import)s, %(account)s, 'csv', date '2026-11-01', -1, 'line', %(tag)s || n "
                "FROM generate_series(1, 500) n "
                "UNION ALL SELECT %(org)s, %(user)s, %(last_import)s, %(last_account)s, 'csv', date '2026-11-02', -2, "
                "'the last', %(tag)s || 'last'"
            )
            good = {"org": org, "user": member, "import": mine[0], "account": mine[1]}
            for last_import, last_account in ((theirs[0], theirs[1]), (mine[0], theirs[1]), (theirs[0], mine[1])):
                with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
                    conn.execute(
                        lines, {**good, "tag": "bad", "last_import": last_import, "last_account": last_account}
                    )
                assert refused.value.diag.constraint_name == rule
            assert conn.execute("SELECT count(*) FROM imported_transactions").fetchone() == (0,)

            with conn.transaction():
                loaded = conn.execute(lines, {**good, "tag": "ok", "last_import": mine[0], "last_account": mine[1]})
                assert loaded.rowcount == 501
                with pytest.raises(psycopg.errors.LockNotAvailable):  # held FOR KEY SHARE by the open load
                    other.execute("SELECT 1 FROM transaction_imports WHERE id = %s FOR UPDATE NOWAIT", (mine[0],))
                other.execute("SELECT 1 FROM transaction_imports WHERE id = %s FOR NO KEY UPDATE NOWAIT", (mine[0],))
                other.execute("SELECT 1 FROM transaction_imports WHERE id = %s FOR UPDATE NOWAIT", (theirs[0],))
            other.execute("SELECT 1 FROM transaction_imports WHERE id = %s FOR UPDATE NOWAIT", (mine[0],))  # released

            for change in ("import_id = %(theirs)s", "user_id = %(neighbour)s", "external_account_id = %(account)s"):
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    conn.execute(
                        f"UPDATE imported_transactions SET {change} WHERE description = 'the last'",
                        {"theirs": theirs[0], "neighbour": neighbour, "account": theirs[1]},
                    )
            recategorised = conn.execute("UPDATE imported_transactions SET category_key = 'dining' WHERE amount = -1")
            assert recategorised.rowcount == 500
            for statement in (
                "DELETE FROM transaction_imports WHERE id = %(theirs)s",  # even one without lines
                "TRUNCATE transaction_imports CASCADE",
                "UPDATE transaction_imports SET user_id = %(neighbour)s WHERE id = %(mine)s",
                "UPDATE transaction_imports SET external_account_id = %(account)s WHERE id = %(mine)s",
            ):
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    conn.execute(
                        statement, {"theirs": theirs[0], "mine": mine[0], "neighbour": neighbour, "account": theirs[1]}
                    )
            progressed = conn.execute("UPDATE transaction_imports SET rows_loaded = 501 WHERE id = %s", (mine[0],))
            assert progressed.rowcount == 1
            assert conn.execute("SELECT count(*) FROM transaction_imports").fetchone() == (2,)

            command.downgrade(config, "0050")
            key = "SELECT count(*) FROM pg_constraint WHERE conname = %s AND contype = 'f'"
            assert conn.execute(key, (rule,)).fetchone() == (1,)
            conn.execute("DELETE FROM transaction_imports WHERE id = %s", (theirs[0],))  # the key let it go
            command.upgrade(config, "head")
            assert conn.execute(key, (rule,)).fetchone() == (0,)
    finally:
        _drop(database_url, scratch)


async def test_the_rules_pass_is_skipped_only_when_no_active_rule_is_the_members_or_their_orgs(http, su, db):
    """apply_rules reads none of a member's lines when no rule could pick one (an import of 1,000,000 lines spent
    2.3 s reading them for nothing): an active rule of the member's own or of their organization counts; an inactive
    one, another member's and another organization's do not."""
    org, other_org = await make_org(http, su, roles=("member",)), await make_org(http, su, roles=("member",))
    member, neighbour = org.users["member"]["id"], (await make_user(http, su, "member", org.id))[0]["id"]
    stranger = other_org.users["member"]["id"]
    rule = text(
        "INSERT INTO category_rules (id, org_id, user_id, priority, field, match, pattern, category_key, active,"
        " created_by) VALUES (gen_random_uuid(), :org, :user, 1, 'merchant', 'keyword', 'deli', 'dining', :active,"
        " :by) RETURNING id"
    )
    async with db.session() as session, session.begin():
        assert not await has_active_rules(session, uuid.UUID(member))
        assert await apply_rules(session, uuid.UUID(member)) == 0
        for org_id, user_id, active in ((org.id, member, False), (org.id, neighbour, True), (other_org.id, None, True)):
            await session.execute(rule, {"org": org_id, "user": user_id, "active": active, "by": stranger})
        assert not await has_active_rules(session, uuid.UUID(member))
        assert await has_active_rules(session, uuid.UUID(neighbour)) and await has_active_rules(
            session, uuid.UUID(stranger)
        )
        await session.execute(rule, {"org": org.id, "user": member, "active": True, "by": member})
        assert await has_active_rules(session, uuid.UUID(member))
        await session.rollback()
    async with db.session() as session, session.begin():
        await session.execute(rule, {"org": org.id, "user": None, "active": True, "by": member})
        assert await has_active_rules(session, uuid.UUID(member))
        await session.rollback()
