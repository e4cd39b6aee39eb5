"""accrual runs per day; no posting into a closed account; each ledger rule named

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 10:30:00

* `accrual_runs`: one row per day whose accrual finished, so month-end posting can tell the days it must accrue
  first. Days accrued before this migration count as run.
* `postings_account_open`: the database refuses a posting to a closed account, but for a return (`ach_return`),
  which unwinds money that moved while the account was open: the bank has taken it back, the books must say so.
* The ledger's rules raise with the name of the rule as the error's constraint name, so code maps each to its own
  exception (core/ledger.py). Messages and SQLSTATEs are unchanged.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: Union[str, None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def ledger_rules(named: bool) -> str:
    """The three ledger rules of 0001, raising with their rule's name (named) or as 0001 wrote them."""

    def rule(name: str) -> str:
        return f", CONSTRAINT = '{name}'" if named else ""

    return f"""
        CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad record;
        BEGIN
            SELECT p.entry_id, sum(p.amount) AS total, count(*) AS legs INTO bad
            FROM postings p
            WHERE p.entry_id IN (SELECT DISTINCT entry_id FROM new_postings)
            GROUP BY p.entry_id
            HAVING sum(p.amount) <> 0 OR count(*) < 2
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'journal entry % is unbalanced: % postings summing to %',
                    bad.entry_id, bad.legs, bad.total USING ERRCODE = 'check_violation'{rule("ledger_entries_balanced")};
            END IF;
            RETURN NULL;
        END $$;

        CREATE OR REPLACE FUNCTION ledger_postings_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'postings are append-only: reverse an entry with a new one'
                USING ERRCODE = 'insufficient_privilege'{rule("ledger_postings_append_only")};
        END $$;

        CREATE OR REPLACE FUNCTION ledger_check_entry_has_postings() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id) THEN
                RAISE EXCEPTION 'journal entry % has no postings', NEW.id
                    USING ERRCODE = 'check_violation'{rule("ledger_entry_has_postings")};
            END IF;
            RETURN NULL;
        END $$;
    """


def upgrade() -> None:
    op.create_table(
        "accrual_runs",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("accrued", sa.Numeric(24, 10), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.execute(
        "INSERT INTO accrual_runs (day, accounts, accrued) "
        "SELECT day, count(*), sum(amount) FROM interest_accruals GROUP BY day"
    )
    op.execute(ledger_rules(named=True))
    # Statement-level, after the foreign-key checks have share-locked each account: an account being closed
    # (FOR UPDATE) is waited for, and then seen closed.
    op.execute("""
        CREATE FUNCTION ledger_check_accounts_open() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad record;
        BEGIN
            SELECT np.account_id, j.entry_type INTO bad
            FROM new_postings np
            JOIN ledger_accounts a ON a.id = np.account_id
            JOIN journal_entries j ON j.id = np.entry_id
            WHERE a.status <> 'active' AND j.entry_type <> 'ach_return'
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'account % is closed: a % entry cannot post to it', bad.account_id, bad.entry_type
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_account_open';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER postings_account_open AFTER INSERT ON postings
            REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_accounts_open();
    """)


def downgrade() -> None:
    op.execute("""
        DROP TRIGGER postings_account_open ON postings;
        DROP FUNCTION ledger_check_accounts_open();
    """)
    op.execute(ledger_rules(named=False))
    op.drop_table("accrual_runs")
