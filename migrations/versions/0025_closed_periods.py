"""closed accounting periods: the database refuses a posting dated inside one

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 07:00:00

* `closed_periods`: a period closed for one organization (org_id) or for the whole bank (org_id null).
* `postings_period_open`: a statement that inserts postings is refused when one of its postings' entries is dated
  inside a closed period that applies to the posting's account: a bank-wide one to every account, an
  organization's to that organization's accounts (the bank-wide GL legs of its entries are caught through the entry's
  internal legs). Raised with the rule's name as its constraint name, like the other ledger rules (0012), so code
  maps it to `PostingInClosedPeriod` (core/ledger.py). Corrections are posted in an open period.
* Closing a period takes a SHARE ROW EXCLUSIVE lock on postings (domain/periods.py): postings in flight commit
  first, later ones see the closure, so none lands in the period after it closed.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: Union[str, None] = "0024"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

NO_ORG = "00000000-0000-0000-0000-000000000000"


def upgrade() -> None:
    op.create_table(
        "closed_periods",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("closed_by", sa.Uuid(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("period_start <= period_end", name="closed_periods_range_valid"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_closed_periods_org_id"), "closed_periods", ["org_id"], unique=False)
    # One row per scope and range, bank-wide included (a NULL org would not collide): closing again finds it.
    op.execute(
        f"CREATE UNIQUE INDEX closed_periods_once ON closed_periods "
        f"((COALESCE(org_id, '{NO_ORG}'::uuid)), period_start, period_end)"
    )
    op.execute("""
        CREATE FUNCTION ledger_check_period_open() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad record;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM closed_periods) THEN
                RETURN NULL;
            END IF;
            SELECT j.id AS entry_id, j.effective_date, c.period_start, c.period_end INTO bad
            FROM (SELECT DISTINCT entry_id, account_id FROM new_postings) np
            JOIN journal_entries j ON j.id = np.entry_id
            JOIN ledger_accounts a ON a.id = np.account_id
            JOIN closed_periods c ON j.effective_date BETWEEN c.period_start AND c.period_end
                AND (c.org_id IS NULL OR c.org_id = a.org_id)
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'journal entry % is dated %, inside the closed period % to %: post it in an open period',
                    bad.entry_id, bad.effective_date, bad.period_start, bad.period_end
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_period_open';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER postings_period_open AFTER INSERT ON postings
            REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_period_open();
    """)


def downgrade() -> None:
    op.execute("""
        DROP TRIGGER postings_period_open ON postings;
        DROP FUNCTION ledger_check_period_open();
    """)
    op.drop_index("closed_periods_once", table_name="closed_periods")
    op.drop_index(op.f("ix_closed_periods_org_id"), table_name="closed_periods")
    op.drop_table("closed_periods")
