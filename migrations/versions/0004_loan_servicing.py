"""loan servicing: disbursement by ACH credit, auto-debits, late fees, arrears and aging; email refusals

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 10:45:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "loans", sa.Column("external_account_id", sa.Uuid(), sa.ForeignKey("external_accounts.id"), nullable=True)
    )
    op.add_column("loans", sa.Column("auto_debit", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("loans", sa.Column("disbursement_payment_id", sa.Uuid(), nullable=True))
    op.add_column("loans", sa.Column("days_past_due", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("loans", sa.Column("aging_bucket", sa.String(length=8), nullable=True))
    op.create_check_constraint(
        "loans_aging_bucket", "loans", "aging_bucket IS NULL OR aging_bucket IN ('1-30','31-60','61-90','90+')"
    )
    op.create_check_constraint(
        "loans_auto_debit_needs_account", "loans", "NOT auto_debit OR external_account_id IS NOT NULL"
    )
    op.create_index("ix_loans_aging_bucket", "loans", ["aging_bucket"])
    op.add_column("email_outbox", sa.Column("error", sa.String(length=500), nullable=True))
    op.add_column("loan_installments", sa.Column("late_fee_assessed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("loan_installments", sa.Column("auto_debit_payment_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("email_outbox", "error")
    op.drop_column("loan_installments", "auto_debit_payment_id")
    op.drop_column("loan_installments", "late_fee_assessed_at")
    op.drop_index("ix_loans_aging_bucket", "loans")
    op.drop_constraint("loans_auto_debit_needs_account", "loans")
    op.drop_constraint("loans_aging_bucket", "loans")
    for column in ("aging_bucket", "days_past_due", "disbursement_payment_id", "auto_debit", "external_account_id"):
        op.drop_column("loans", column)
