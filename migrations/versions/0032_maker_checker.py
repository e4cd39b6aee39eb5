"""maker-checker requests: large transactions, manual journal entries, period closes

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-02 10:30:00

A request waits on a checker of its organization (ApprovalWorkflow) and applies once: its journal entry's
idempotency key is `maker-checker:<request id>` (unique) and journal_entry_id is unique here. One Idempotency-Key of
one maker is one request (idempotency_key unique); at most one close of the same range of an organization waits at a
time (a partial unique index), so two admins asking at once make one request. An organization may have a
threshold of its own (organizations.maker_checker_threshold).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0032"
down_revision: Union[str, None] = "0031"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # An organization's own threshold (set by a superuser); null: MAKER_CHECKER_THRESHOLD.
    op.add_column("organizations", sa.Column("maker_checker_threshold", sa.Numeric(20, 2), nullable=True))
    op.create_check_constraint(
        "organizations_maker_checker_threshold_positive", "organizations", "maker_checker_threshold > 0"
    )
    op.create_table(
        "maker_checker_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("requested_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(250), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id"), nullable=True),
        sa.Column("counter_account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id"), nullable=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=True),
        sa.Column("legs", postgresql.JSONB(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("hold_id", sa.Uuid(), sa.ForeignKey("holds.id"), nullable=True),
        sa.Column("approval_request_id", sa.Uuid(), nullable=True),
        sa.Column("journal_entry_id", sa.Uuid(), sa.ForeignKey("journal_entries.id"), nullable=True),
        sa.Column("closed_period_id", sa.Uuid(), sa.ForeignKey("closed_periods.id"), nullable=True),
        sa.Column("failure", sa.String(500), nullable=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("journal_entry_id"),
        sa.UniqueConstraint("workflow_id"),
        sa.CheckConstraint(
            "kind IN ('deposit', 'withdrawal', 'book_transfer', 'journal_entry', 'period_close')",
            name="maker_checker_requests_kind",
        ),
        sa.CheckConstraint(
            "status IN ('pending_approval', 'completed', 'rejected', 'failed')", name="maker_checker_requests_status"
        ),
        sa.CheckConstraint("amount >= 0", name="maker_checker_requests_amount"),
    )
    op.create_index("ix_maker_checker_requests_org_id", "maker_checker_requests", ["org_id"])
    op.create_index("ix_maker_checker_requests_status", "maker_checker_requests", ["status"])
    op.create_index("ix_maker_checker_requests_account_id", "maker_checker_requests", ["account_id"])
    op.create_index(
        "maker_checker_one_pending_close",
        "maker_checker_requests",
        ["org_id", "period_start", "period_end"],
        unique=True,
        postgresql_where=sa.text("kind = 'period_close' AND status = 'pending_approval'"),
    )


def downgrade() -> None:
    op.drop_table("maker_checker_requests")
    op.drop_constraint("organizations_maker_checker_threshold_positive", "organizations", type_="check")
    op.drop_column("organizations", "maker_checker_threshold")
