"""bills, reminders and auto-pay

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 10:45:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "bills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("payee_name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("memo", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("autopay", sa.Boolean(), nullable=False),
        sa.Column("external_account_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name="bills_amount_positive"),
        sa.CheckConstraint(
            "status IN ('upcoming','overdue','processing','paid','canceled')", name="bills_status_valid"
        ),
        sa.CheckConstraint(
            "NOT autopay OR (external_account_id IS NOT NULL AND account_id IS NOT NULL)", name="bills_autopay_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["external_account_id"],
            ["external_accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bills_org_id", "bills", ["org_id"], unique=False)
    op.create_index("ix_bills_payer_id", "bills", ["payer_id"], unique=False)
    op.create_index("bills_run", "bills", ["status", "due_date", "id"], unique=False)
    op.create_table(
        "bill_reminders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("run_day", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["bill_id"],
            ["bills.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bill_id", "due_date", "offset_days", name="bill_reminders_once"),
    )
    op.create_index("ix_bill_reminders_bill_id", "bill_reminders", ["bill_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bill_reminders_bill_id", table_name="bill_reminders")
    op.drop_table("bill_reminders")
    op.drop_index("bills_run", table_name="bills")
    op.drop_index("ix_bills_payer_id", table_name="bills")
    op.drop_index("ix_bills_org_id", table_name="bills")
    op.drop_table("bills")
