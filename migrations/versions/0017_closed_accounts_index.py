"""closed ledger accounts indexed: the ledger's open-account check reads them alone

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 21:25:00

The statement trigger postings_account_open (0012) joins each statement's new postings with the accounts that are
not active. Without an index on those few rows, the planner reads ledger_accounts whole for every statement that
posts: month-end interest posting, one statement per batch of accounts, read every account once per batch, a cost
quadratic in the accounts (bench/notes/interest_posting.md). With it, the closed accounts are one small index.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0017"
down_revision: Union[str, None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("CREATE INDEX ledger_accounts_not_active ON ledger_accounts (id) WHERE status <> 'active'")


def downgrade() -> None:
    op.execute("DROP INDEX ledger_accounts_not_active")
