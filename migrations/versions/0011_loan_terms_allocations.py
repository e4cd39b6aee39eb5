"""loans keep the terms they were written on; every repayment's allocation per installment and component

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 10:00:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TERMS = (
    ("annual_rate", sa.Numeric(9, 6)),
    ("amortization", sa.String(24)),
    ("frequency", sa.String(12)),
    ("day_count", sa.String(16)),
    ("grace_days", sa.Integer()),
    ("late_fee", sa.Numeric(20, 2)),
)


def upgrade() -> None:
    # The terms: added empty, copied from each loan's product as it stands (the best record there is), then required.
    for name, type_ in TERMS:
        op.add_column("loans", sa.Column(name, type_, nullable=True))
    op.execute(
        "UPDATE loans l SET annual_rate = p.annual_rate, amortization = p.amortization, "
        "frequency = p.frequency, day_count = p.day_count, grace_days = p.grace_days, late_fee = p.late_fee "
        "FROM loan_products p WHERE p.id = l.product_id"
    )
    for name, _ in TERMS:
        op.alter_column("loans", name, nullable=False)
    op.create_check_constraint(
        "loans_method", "loans", "amortization IN ('declining_balance','equal_principal','flat')"
    )
    op.create_check_constraint("loans_frequency", "loans", "frequency IN ('monthly','biweekly','weekly')")
    op.create_check_constraint(
        "loans_day_count", "loans", "day_count IN ('actual/365','actual/360','30/360','actual/actual')"
    )
    op.create_check_constraint(
        "loans_terms", "loans", "annual_rate >= 0 AND annual_rate < 1 AND grace_days >= 0 AND late_fee >= 0"
    )
    op.add_column("loans", sa.Column("status_detail", sa.String(500), nullable=True))

    op.create_table(
        "loan_repayments",
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("journal_entries.id"), primary_key=True),
        sa.Column("loan_id", sa.Uuid(), sa.ForeignKey("loans.id"), nullable=False, index=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("reverses_entry_id", sa.Uuid(), sa.ForeignKey("journal_entries.id"), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("mode IN ('installment','prepayment','payoff','reversal')", name="loan_repayments_mode"),
        sa.CheckConstraint("(mode = 'reversal') = (reverses_entry_id IS NOT NULL)", name="loan_repayments_reversal"),
    )
    op.create_table(
        "loan_allocations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("loan_id", sa.Uuid(), sa.ForeignKey("loans.id"), nullable=False, index=True),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("loan_repayments.entry_id"), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(12), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.UniqueConstraint("entry_id", "number", "component", name="loan_allocations_once"),
        sa.CheckConstraint("component IN ('fee','interest','principal')", name="loan_allocations_component"),
        sa.CheckConstraint("amount <> 0", name="loan_allocations_amount_nonzero"),
    )
    # What was paid so far, split as it was booked (fee, then interest, then principal), with no entry: the
    # per-repayment split was never stored.
    op.execute("""
        INSERT INTO loan_allocations (loan_id, entry_id, number, component, amount)
        SELECT loan_id, NULL, number, part.component, part.amount
        FROM (SELECT loan_id, number, interest, principal, LEAST(late_fee, paid) AS fee_paid, paid
              FROM loan_installments WHERE paid > 0) i,
             LATERAL (VALUES ('fee', i.fee_paid),
                             ('interest', LEAST(i.interest, i.paid - i.fee_paid)),
                             ('principal', i.paid - i.fee_paid - LEAST(i.interest, i.paid - i.fee_paid)))
                     AS part(component, amount)
        WHERE part.amount <> 0""")
    op.drop_column("loan_installments", "paid")


def downgrade() -> None:
    op.add_column("loan_installments", sa.Column("paid", sa.Numeric(20, 2), server_default="0", nullable=False))
    op.execute(
        "UPDATE loan_installments i SET paid = a.paid FROM (SELECT loan_id, number, sum(amount) AS paid "
        "FROM loan_allocations GROUP BY loan_id, number) a WHERE a.loan_id = i.loan_id AND a.number = i.number"
    )
    op.drop_table("loan_allocations")
    op.drop_table("loan_repayments")
    op.drop_column("loans", "status_detail")
    for constraint in ("loans_terms", "loans_day_count", "loans_frequency", "loans_method"):
        op.drop_constraint(constraint, "loans")
    for name, _ in TERMS:
        op.drop_column("loans", name)
