"""ACH extras: several files per cutoff window, prenotes, notifications of change

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02 07:00:00

A window's entries may fill several files (the bank's per-file limits): ach_files gets its sequence within the
window instead of one file per window. An organization may require a prenote (a zero-dollar entry) before the
first live debit to a new external account: ach_prenotes holds one per external account.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: Union[str, None] = "0026"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("ach_files", sa.Column("sequence", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.drop_constraint("ach_files_window_id_key", "ach_files", type_="unique")
    op.create_unique_constraint("ach_files_once_per_window_sequence", "ach_files", ["window_id", "sequence"])
    op.add_column(
        "organizations",
        sa.Column("require_ach_prenote", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_table(
        "ach_prenotes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_account_id", sa.Uuid(), sa.ForeignKey("external_accounts.id"), nullable=False),
        sa.Column("window_id", sa.String(length=40), sa.ForeignKey("ach_windows.id"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("clears_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_number", sa.String(length=15), nullable=True),
        sa.Column("file_id", sa.Uuid(), sa.ForeignKey("ach_files.id"), nullable=True),
        sa.Column("transaction_code", sa.Integer(), nullable=True),
        sa.Column("return_code", sa.String(length=3), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_account_id", name="ach_prenotes_once_per_account"),
        sa.UniqueConstraint("trace_number", name="ach_prenotes_trace_number_key"),
        sa.CheckConstraint("status IN ('queued','sent','returned')", name="ach_prenotes_status_valid"),
    )
    op.create_index("ix_ach_prenotes_window_id", "ach_prenotes", ["window_id"])


def downgrade() -> None:
    op.drop_index("ix_ach_prenotes_window_id", table_name="ach_prenotes")
    op.drop_table("ach_prenotes")
    op.drop_column("organizations", "require_ach_prenote")
    op.drop_constraint("ach_files_once_per_window_sequence", "ach_files", type_="unique")
    # Fails while a window has several files: they cannot be folded back into one.
    op.create_unique_constraint("ach_files_window_id_key", "ach_files", ["window_id"])
    op.drop_column("ach_files", "sequence")
