"""members' budgets and alerts

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-02 15:00:00

`member_budgets`: a member's spending limit for one category, monthly or yearly, in their base currency (not the
organization's `budgets` of the budget variance report). `member_budget_alerts` holds each threshold crossing
(80 %, 100 %) of a budget's period once: the unique key is what makes re-evaluations and retries notify once.
`alert_subscriptions` say which alerts a member wants and how; `member_alerts` are the alerts raised, once per
member and dedupe key.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0039"
down_revision: Union[str, None] = "0038"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MONEY = sa.Numeric(20, 2)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "member_budgets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("category_key", sa.String(40), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="USD"),
        sa.Column("rollover", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.CheckConstraint("period IN ('monthly', 'yearly')", name="member_budgets_period"),
        sa.CheckConstraint("amount > 0", name="member_budgets_amount_positive"),
    )
    op.create_index("member_budgets_user", "member_budgets", ["user_id"], postgresql_where=sa.text("ended_at IS NULL"))
    op.create_table(
        "member_budget_alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("budget_id", sa.Uuid(), sa.ForeignKey("member_budgets.id"), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("spent", MONEY, nullable=False),
        sa.Column("limit_amount", MONEY, nullable=False),
        sa.Column("sent_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("threshold IN (80, 100)", name="member_budget_alerts_threshold"),
        sa.UniqueConstraint("budget_id", "period_start", "threshold", name="member_budget_alerts_once"),
    )
    op.create_table(
        "alert_subscriptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("channels", ARRAY(sa.String(8)), nullable=False),
        sa.Column("params", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=True),
        sa.CheckConstraint(
            "type IN ('low_balance', 'bill_due', 'budget_threshold', 'large_transaction', 'payment_returned')",
            name="alert_subscriptions_type",
        ),
        sa.CheckConstraint(
            "cardinality(channels) > 0 AND channels <@ ARRAY['email', 'in_app', 'push']::varchar[]",
            name="alert_subscriptions_channels",
        ),
    )
    op.create_index("alert_subscriptions_user", "alert_subscriptions", ["user_id", "type"])
    op.create_table(
        "member_alerts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=True),
        sa.Column("entity_id", sa.String(100), nullable=True),
        sa.Column("subscription_id", sa.Uuid(), sa.ForeignKey("alert_subscriptions.id"), nullable=True),
        sa.Column("dedupe_key", sa.String(160), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("dismissed_at", TS, nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        sa.UniqueConstraint("user_id", "dedupe_key", name="member_alerts_once_per_user"),
    )
    op.create_index("member_alerts_user", "member_alerts", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("member_alerts")
    op.drop_table("alert_subscriptions")
    op.drop_table("member_budget_alerts")
    op.drop_table("member_budgets")
