"""gateway payments: card/payment gateway IN (initialize, hosted checkout, verify, signed webhook)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-02 10:30:00

A gateway payment is posted once: its journal entry has the unique key `gateway:<payment id>`, and its webhooks are
recorded once by event id. The GL account GL-GATEWAY-CLEARING is the gateway's clearing account (debited when a card
payment is posted). A bill is paid through the gateway once (a partial unique index).
"""

import uuid
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0031"
down_revision: Union[str, None] = "0030"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

GL_CODE = "GL-GATEWAY-CLEARING"  # models/gateway.py GL_GATEWAY_CLEARING
GL_ID = uuid.uuid5(uuid.NAMESPACE_URL, f"backoffice:gl:{GL_CODE}")  # as the initial migration derives GL ids


def upgrade() -> None:
    op.create_table(
        "gateway_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("payer_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(250), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("loan_id", sa.Uuid(), sa.ForeignKey("loans.id"), nullable=True),
        sa.Column("bill_id", sa.Uuid(), sa.ForeignKey("bills.id"), nullable=True),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("repayment_mode", sa.String(20), nullable=True),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("access_code", sa.String(100), nullable=True),
        sa.Column("authorization_url", sa.String(500), nullable=True),
        sa.Column("confirmed_by", sa.String(10), nullable=True),
        sa.Column("gateway_amount", sa.Numeric(20, 2), nullable=True),
        sa.Column("gateway_currency", sa.String(3), nullable=True),
        sa.Column("journal_entry_id", sa.Uuid(), sa.ForeignKey("journal_entries.id"), nullable=True),
        sa.Column("repayment_entry_id", sa.Uuid(), sa.ForeignKey("journal_entries.id"), nullable=True),
        sa.Column("failure", sa.String(500), nullable=True),
        sa.Column("workflow_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("reference"),
        sa.CheckConstraint("amount > 0", name="gateway_payments_amount_positive"),
        sa.CheckConstraint(
            "status IN ('initializing','pending','succeeded','failed','abandoned','flagged')",
            name="gateway_payments_status_valid",
        ),
        sa.CheckConstraint(
            "(purpose = 'loan_repayment' AND loan_id IS NOT NULL AND bill_id IS NULL)"
            " OR (purpose = 'bill' AND bill_id IS NOT NULL AND loan_id IS NULL)",
            name="gateway_payments_purpose_target",
        ),
    )
    op.create_index("ix_gateway_payments_org_id", "gateway_payments", ["org_id"])
    op.create_index("ix_gateway_payments_payer_id", "gateway_payments", ["payer_id"])
    op.create_index("ix_gateway_payments_loan_id", "gateway_payments", ["loan_id"])
    op.create_index(
        "gateway_payments_one_per_bill",
        "gateway_payments",
        ["bill_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('initializing','pending','succeeded')"),
    )
    op.create_table(
        "gateway_events",
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("payment_id", sa.Uuid(), sa.ForeignKey("gateway_payments.id"), nullable=True),
        sa.Column("payload", postgresql.JSONB(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        sa.CheckConstraint("status IN ('delivered','pending','unmatched')", name="gateway_events_status_valid"),
    )
    op.create_index("ix_gateway_events_reference", "gateway_events", ["reference"])
    op.create_index("ix_gateway_events_payment_id", "gateway_events", ["payment_id"])
    op.execute(
        sa.text(
            """INSERT INTO ledger_accounts (id, code, name, kind, type, normal_balance, currency, status)
               VALUES (:id, :code, 'Card gateway clearing', 'gl', 'asset', 'debit', 'USD', 'active')
               ON CONFLICT (code) DO NOTHING"""
        ).bindparams(id=GL_ID, code=GL_CODE)
    )


def downgrade() -> None:
    op.drop_table("gateway_events")
    op.drop_table("gateway_payments")
    # GL-GATEWAY-CLEARING stays: the ledger is never deleted (a trigger refuses it), and an upgrade again finds it.
