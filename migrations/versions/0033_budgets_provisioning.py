"""budgets per organization, report line and month; a standing instruction keeps its run day

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-02 10:50:00

Budgets feed the budget variance report (one amount per organization, line and month: a PUT of the same three
replaces the amount). A standing instruction's `day` (the weekday or the day of the month its schedule runs on)
was only in its Temporal Schedule; the cash-flow forecast computes the runs from the row, so the row keeps it too
(rows made before keep NULL: their start's day, which is what the schedule took when none was given).
Provisioning rates are Settings (PROVISIONING_RATES), not a table.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: Union[str, None] = "0032"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("line_key", sa.String(40), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("updated_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "line_key", "period", name="budgets_once"),
        sa.CheckConstraint("extract(day FROM period) = 1", name="budgets_period_is_a_month"),
    )
    op.create_index("ix_budgets_org_id", "budgets", ["org_id"])
    op.add_column("standing_instructions", sa.Column("day", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("standing_instructions", "day")
    op.drop_index("ix_budgets_org_id", table_name="budgets")
    op.drop_table("budgets")
