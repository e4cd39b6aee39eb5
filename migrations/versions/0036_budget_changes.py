"""budget changes through maker-checker

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-02 11:30:00

A budget change is a maker-checker request (kind `budget_change`) naming its report line (`budget_line`) and month
(`period_start`); one change of an organization's line and month waits at a time (the partial unique index).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: Union[str, None] = "0035"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_KINDS = "kind IN ('deposit', 'withdrawal', 'book_transfer', 'journal_entry', 'period_close')"
NEW_KINDS = "kind IN ('deposit', 'withdrawal', 'book_transfer', 'journal_entry', 'period_close', 'budget_change')"


def upgrade() -> None:
    op.add_column("maker_checker_requests", sa.Column("budget_line", sa.String(60), nullable=True))
    op.drop_constraint("maker_checker_requests_kind", "maker_checker_requests", type_="check")
    op.create_check_constraint("maker_checker_requests_kind", "maker_checker_requests", NEW_KINDS)
    op.create_check_constraint(
        "maker_checker_requests_budget_line",
        "maker_checker_requests",
        "(kind = 'budget_change') = (budget_line IS NOT NULL AND period_start IS NOT NULL)",
    )
    op.create_index(
        "maker_checker_one_pending_budget_change",
        "maker_checker_requests",
        ["org_id", "budget_line", "period_start"],
        unique=True,
        postgresql_where=sa.text("kind = 'budget_change' AND status = 'pending_approval'"),
    )


def downgrade() -> None:
    op.execute("DELETE FROM maker_checker_requests WHERE kind = 'budget_change'")
    op.drop_index("maker_checker_one_pending_budget_change", table_name="maker_checker_requests")
    op.drop_constraint("maker_checker_requests_budget_line", "maker_checker_requests", type_="check")
    op.drop_constraint("maker_checker_requests_kind", "maker_checker_requests", type_="check")
    op.create_check_constraint("maker_checker_requests_kind", "maker_checker_requests", OLD_KINDS)
    op.drop_column("maker_checker_requests", "budget_line")
