"""standing instructions: recurring book transfers, each its own Temporal Schedule

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02 07:05:00

An instruction's runs are recorded once per scheduled time and attempt: the payment of a run has the Idempotency-Key
`standing:<instruction>:<scheduled time>:<attempt>`, so a run started twice for the same time (a catch-up, a retry
after a crash) pays once.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: Union[str, None] = "0028"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "standing_instructions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(250), nullable=False),
        sa.Column("from_account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("to_account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("memo", sa.String(140), nullable=False),
        sa.Column("frequency", sa.String(20), nullable=True),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("schedule_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.CheckConstraint("amount > 0", name="standing_instructions_amount_positive"),
        sa.CheckConstraint("(frequency IS NULL) <> (every_seconds IS NULL)", name="standing_instructions_one_cadence"),
        sa.CheckConstraint("status IN ('active', 'paused', 'canceled')", name="standing_instructions_status"),
    )
    op.create_index("ix_standing_instructions_org_id", "standing_instructions", ["org_id"])
    op.create_index("ix_standing_instructions_created_by", "standing_instructions", ["created_by"])
    op.create_table(
        "standing_instruction_runs",
        sa.Column("instruction_id", sa.Uuid(), sa.ForeignKey("standing_instructions.id"), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("failure_code", sa.String(60), nullable=True),
        sa.Column("failure_reason", sa.String(500), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("instruction_id", "scheduled_for", "attempt"),
        sa.CheckConstraint("status IN ('completed', 'failed', 'skipped')", name="standing_instruction_runs_status"),
    )


def downgrade() -> None:
    op.drop_table("standing_instruction_runs")
    op.drop_table("standing_instructions")
