"""members' money management: sharing between members

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-02 14:45:00

A share lets `grantee_id` see (access 'read') or also change (access 'edit') the owner's records (`what`
'transactions') or budgets ('budgets'): all of them, expenses only (amount < 0), income only (amount > 0), or those
of the listed categories. Owner and grantee are members of the same organization; one live share per owner,
grantee and `what` (a change replaces it); revoking sets `revoked_at`, so the history stays.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0038"
down_revision: Union[str, None] = "0037"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "money_shares",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("owner_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("grantee_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("access", sa.String(8), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False, server_default="all"),
        sa.Column("category_keys", ARRAY(sa.String(40)), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("what IN ('transactions', 'budgets')", name="money_shares_what"),
        sa.CheckConstraint("access IN ('read', 'edit')", name="money_shares_access"),
        sa.CheckConstraint("scope IN ('all', 'expenses', 'income', 'categories')", name="money_shares_scope"),
        sa.CheckConstraint(
            "(scope = 'categories') = (category_keys IS NOT NULL AND cardinality(category_keys) > 0)",
            name="money_shares_categories",
        ),
        sa.CheckConstraint("owner_id <> grantee_id", name="money_shares_not_self"),
    )
    op.create_index(
        "money_shares_live",
        "money_shares",
        ["owner_id", "grantee_id", "what"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_index(
        "money_shares_grantee", "money_shares", ["grantee_id", "what"], postgresql_where=sa.text("revoked_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("money_shares")
