"""ACH files the bank rejects: the file's error, and entries that never reached the bank

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:30:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("ach_files", sa.Column("error", sa.String(length=1000), nullable=True))
    op.add_column("ach_files", sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("ach_entries", sa.Column("rejected", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    # One live entry per presentment: an entry of a rejected file no longer counts, so the presentment can go
    # again in a later file (the same presentment, not a re-presentment).
    op.drop_constraint("ach_entries_once_per_presentment", "ach_entries", type_="unique")
    op.create_index(
        "ach_entries_once_per_presentment",
        "ach_entries",
        ["payment_id", "presentment"],
        unique=True,
        postgresql_where=sa.text("NOT rejected"),
    )


def downgrade() -> None:
    op.drop_index(
        "ach_entries_once_per_presentment", table_name="ach_entries", postgresql_where=sa.text("NOT rejected")
    )
    # The old constraint allows one entry per presentment whatever its file's fate: the entries of rejected
    # files (which never reached the bank) cannot stay.
    op.execute("DELETE FROM ach_entries WHERE rejected")
    op.create_unique_constraint("ach_entries_once_per_presentment", "ach_entries", ["payment_id", "presentment"])
    op.drop_column("ach_entries", "rejected")
    op.drop_column("ach_files", "rejected_at")
    op.drop_column("ach_files", "error")
