"""bank events as an outbox: delivery status, payment, operator resolution; a payment's parent workflow

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:00:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("bank_events", sa.Column("payment_id", sa.Uuid(), nullable=True))
    op.add_column("bank_events", sa.Column("status", sa.String(length=16), server_default="pending", nullable=False))
    op.add_column("bank_events", sa.Column("detail", sa.String(length=500), nullable=True))
    op.add_column("bank_events", sa.Column("resolved_by", sa.Uuid(), nullable=True))
    op.add_column("bank_events", sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("bank_events", sa.Column("resolution_note", sa.String(length=1000), nullable=True))
    op.create_foreign_key("bank_events_payment_id_fkey", "bank_events", "payments", ["payment_id"], ["id"])
    op.create_foreign_key("bank_events_resolved_by_fkey", "bank_events", "users", ["resolved_by"], ["id"])
    op.create_index("ix_bank_events_payment_id", "bank_events", ["payment_id"], unique=False)
    op.create_index("ix_bank_events_status", "bank_events", ["status"], unique=False)
    op.create_check_constraint(
        "bank_events_status_valid", "bank_events", "status IN ('pending','delivered','applied','exception','resolved')"
    )
    # Events recorded before: matched to their payment; signalled ones delivered; unmatched ones for an operator;
    # the rest pending, so the sweep delivers them (a payment's workflow ignores an event id it has seen).
    op.execute(
        "UPDATE bank_events b SET payment_id = e.payment_id FROM ach_entries e WHERE e.trace_number = b.trace_number"
    )
    op.execute(
        "UPDATE bank_events SET status = CASE WHEN signaled_at IS NOT NULL THEN 'delivered' "
        "WHEN payment_id IS NULL THEN 'exception' ELSE 'pending' END, "
        "detail = CASE WHEN signaled_at IS NULL AND payment_id IS NULL "
        "THEN 'no payment has this trace number' END"
    )

    op.add_column("payments", sa.Column("notify_workflow_id", sa.String(length=200), nullable=True))
    op.add_column("payments", sa.Column("notify_reference", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("payments", "notify_reference")
    op.drop_column("payments", "notify_workflow_id")
    op.drop_constraint("bank_events_status_valid", "bank_events", type_="check")
    op.drop_index("ix_bank_events_status", table_name="bank_events")
    op.drop_index("ix_bank_events_payment_id", table_name="bank_events")
    op.drop_constraint("bank_events_resolved_by_fkey", "bank_events", type_="foreignkey")
    op.drop_constraint("bank_events_payment_id_fkey", "bank_events", type_="foreignkey")
    for column in ("resolution_note", "resolved_at", "resolved_by", "detail", "status", "payment_id"):
        op.drop_column("bank_events", column)
