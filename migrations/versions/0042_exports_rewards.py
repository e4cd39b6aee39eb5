"""exports of members' data (transactions, GDPR) and rewards programs

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-02 15:00:00

`transaction_exports`: a file made in the background (`export-<id>` or `gdpr-export-<id>` workflow) of a member's
transactions or of everything held on them, stored sealed in the object storage and handed out by a signed link.

Rewards: an organization's `reward_programs`, each with `reward_earn_rules` (points per 1.00 spent in a category,
from an optional minimum); a member's `reward_accounts` in a program, whose `balance` is only ever changed together
with a `reward_entries` row saying why (earn, redeem, adjust, expire), never below zero (CHECK). A transaction earns
once per account: UNIQUE (account_id, txn_id).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0042"
down_revision: Union[str, None] = "0041"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TS = sa.DateTime(timezone=True)
POINTS = sa.Numeric(20, 2)


def upgrade() -> None:
    op.create_table(
        "transaction_exports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True, index=True),
        sa.Column("requested_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("filters", JSONB(), nullable=True),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(250), nullable=True, unique=True),
        sa.Column("storage_key", sa.String(300), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("failure", sa.String(500), nullable=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint("kind IN ('transactions', 'gdpr')", name="transaction_exports_kind"),
        sa.CheckConstraint("format IN ('csv', 'json', 'xlsx', 'pdf', 'zip')", name="transaction_exports_format"),
        sa.CheckConstraint("status IN ('queued', 'ready', 'failed')", name="transaction_exports_status"),
    )
    op.create_table(
        "reward_programs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False, index=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=True),
        sa.UniqueConstraint("org_id", "name", name="reward_programs_name"),
    )
    op.create_table(
        "reward_earn_rules",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("program_id", sa.Uuid(), sa.ForeignKey("reward_programs.id"), nullable=False),
        sa.Column("category_key", sa.String(40), nullable=False),
        sa.Column("points_per_unit", sa.Numeric(12, 4), nullable=False),
        sa.Column("min_amount", sa.Numeric(20, 2), nullable=True),
        sa.CheckConstraint("points_per_unit > 0", name="reward_earn_rules_rate"),
        sa.CheckConstraint("min_amount IS NULL OR min_amount > 0", name="reward_earn_rules_min"),
        sa.UniqueConstraint("program_id", "category_key", name="reward_earn_rules_one_per_category"),
    )
    op.create_table(
        "reward_accounts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("program_id", sa.Uuid(), sa.ForeignKey("reward_programs.id"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False, index=True),
        sa.Column("balance", POINTS, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("balance >= 0", name="reward_accounts_balance_not_negative"),
        sa.UniqueConstraint("program_id", "user_id", name="reward_accounts_once_per_member"),
    )
    op.create_table(
        "reward_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("reward_accounts.id"), nullable=False),
        sa.Column("points", POINTS, nullable=False),
        sa.Column("reason", sa.String(8), nullable=False),
        sa.Column("txn_id", sa.String(40), nullable=True),
        sa.Column("note", sa.String(300), nullable=True),
        sa.Column("idempotency_key", sa.String(250), nullable=True),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("reason IN ('earn', 'redeem', 'adjust', 'expire')", name="reward_entries_reason"),
        sa.CheckConstraint("points <> 0", name="reward_entries_not_zero"),
        sa.CheckConstraint("(reason = 'earn') = (txn_id IS NOT NULL)", name="reward_entries_earn_has_txn"),
        sa.UniqueConstraint("account_id", "txn_id", name="reward_entries_earn_once"),
        sa.UniqueConstraint("account_id", "idempotency_key", name="reward_entries_idempotent"),
    )
    op.create_index("reward_entries_account", "reward_entries", ["account_id", "id"])


def downgrade() -> None:
    op.drop_table("reward_entries")
    op.drop_table("reward_accounts")
    op.drop_table("reward_earn_rules")
    op.drop_table("reward_programs")
    op.drop_table("transaction_exports")
