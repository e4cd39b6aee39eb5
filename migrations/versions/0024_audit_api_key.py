"""the API key an audited action was taken with

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 03:00:00

A machine client acts as the user who created its key (core/api_keys.py); the audit row says so, beside the user,
so that what a key did is told apart from what its creator did by hand (NULL: a person, or the system).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: Union[str, None] = "0023"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("api_key_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_log", "api_key_id")
