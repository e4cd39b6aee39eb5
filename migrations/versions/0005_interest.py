"""savings products, daily accruals, month-end interest postings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 10:45:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: Union[str, None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "savings_products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("annual_rate", sa.Numeric(9, 6), nullable=False),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("day_count", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "day_count IN ('actual/365','actual/360','30/360','actual/actual')", name="savings_products_day_count"
        ),
        sa.CheckConstraint("annual_rate >= 0 AND annual_rate < 1", name="savings_products_rate"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "savings_accounts",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["savings_products.id"],
        ),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_index(op.f("ix_savings_accounts_product_id"), "savings_accounts", ["product_id"], unique=False)
    op.create_table(
        "interest_accruals",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("balance", sa.Numeric(20, 2), nullable=False),
        sa.Column("amount", sa.Numeric(24, 10), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["savings_products.id"],
        ),
        sa.PrimaryKeyConstraint("account_id", "day", name="interest_accruals_once"),
    )
    op.create_table(
        "interest_postings",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.CHAR(7), nullable=False),
        sa.Column("accrued", sa.Numeric(24, 10), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("journal_entry_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("amount > 0", name="interest_postings_amount_positive"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
        ),
        # Period first: a month's postings are one index range (its summary) and its inserts, in account order, append.
        sa.PrimaryKeyConstraint("period", "account_id", name="interest_postings_once"),
        sa.UniqueConstraint("journal_entry_id"),
    )
    op.create_table(
        "interest_posting_runs",
        sa.Column("period", sa.CHAR(7), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("total", sa.Numeric(20, 2), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("period"),
    )


def downgrade() -> None:
    op.drop_table("interest_posting_runs")
    op.drop_table("interest_postings")
    op.drop_table("interest_accruals")
    op.drop_index(op.f("ix_savings_accounts_product_id"), table_name="savings_accounts")
    op.drop_table("savings_accounts")
    op.drop_table("savings_products")
