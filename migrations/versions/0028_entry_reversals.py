"""reversals of posted journal entries, each a maker-checker request

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 07:00:00

A reversal posts the exact opposite of an entry, once: its journal entry's idempotency key is `reversal:<entry id>`
(unique), so whatever requests race, the ledger gets at most one. A request waits on a checker (ApprovalWorkflow);
at most one request of an entry is pending or posted at a time (a partial unique index): a rejected or failed one
leaves room for a new request, a posted one refuses every later one.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: Union[str, None] = "0027"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "entry_reversals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("journal_entries.id"), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("requested_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(250), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("approval_request_id", sa.Uuid(), nullable=True),
        sa.Column("reversal_entry_id", sa.Uuid(), sa.ForeignKey("journal_entries.id"), nullable=True),
        sa.Column("failure", sa.String(500), nullable=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("reversal_entry_id"),
        sa.CheckConstraint(
            "status IN ('pending_approval', 'posted', 'rejected', 'failed')", name="entry_reversals_status"
        ),
        sa.CheckConstraint("(status = 'posted') = (reversal_entry_id IS NOT NULL)", name="entry_reversals_posted"),
    )
    op.create_index("ix_entry_reversals_entry_id", "entry_reversals", ["entry_id"])
    op.create_index("ix_entry_reversals_org_id", "entry_reversals", ["org_id"])
    op.create_index(
        "entry_reversals_one_live",
        "entry_reversals",
        ["entry_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending_approval', 'posted')"),
    )


def downgrade() -> None:
    op.drop_table("entry_reversals")
