"""ACH standing instructions

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-02 11:05:00

A standing instruction is a book transfer (both internal accounts) or, by its `kind`, a recurring ACH credit (from
an internal account to a linked external account) or debit (from the external account into an internal one): the
internal account on the side the payment's own row uses, the other side NULL, and the CHECK holding the shape. An
ACH run is `initiated` once its payment is made and its workflow started (the payment's life is its own).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: Union[str, None] = "0034"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SHAPE = """(kind = 'book' AND from_account_id IS NOT NULL AND to_account_id IS NOT NULL
             AND external_account_id IS NULL)
        OR (kind = 'ach_credit' AND from_account_id IS NOT NULL AND to_account_id IS NULL
             AND external_account_id IS NOT NULL)
        OR (kind = 'ach_debit' AND from_account_id IS NULL AND to_account_id IS NOT NULL
             AND external_account_id IS NOT NULL)"""


def upgrade() -> None:
    op.add_column("standing_instructions", sa.Column("kind", sa.String(16), nullable=False, server_default="book"))
    op.add_column(
        "standing_instructions",
        sa.Column("external_account_id", sa.Uuid(), sa.ForeignKey("external_accounts.id"), nullable=True),
    )
    op.alter_column("standing_instructions", "from_account_id", nullable=True)
    op.alter_column("standing_instructions", "to_account_id", nullable=True)
    op.create_check_constraint("standing_instructions_shape", "standing_instructions", SHAPE)
    op.drop_constraint("standing_instruction_runs_status", "standing_instruction_runs", type_="check")
    op.create_check_constraint(
        "standing_instruction_runs_status",
        "standing_instruction_runs",
        "status IN ('completed', 'failed', 'skipped', 'initiated')",
    )


def downgrade() -> None:
    # The book transfers stay; the ACH instructions (and their runs) cannot be expressed without the new columns.
    op.execute(
        "DELETE FROM standing_instruction_runs WHERE instruction_id IN "
        "(SELECT id FROM standing_instructions WHERE kind <> 'book')"
    )
    op.execute("DELETE FROM standing_instructions WHERE kind <> 'book'")
    op.drop_constraint("standing_instruction_runs_status", "standing_instruction_runs", type_="check")
    op.create_check_constraint(
        "standing_instruction_runs_status", "standing_instruction_runs", "status IN ('completed', 'failed', 'skipped')"
    )
    op.drop_constraint("standing_instructions_shape", "standing_instructions", type_="check")
    op.alter_column("standing_instructions", "to_account_id", nullable=False)
    op.alter_column("standing_instructions", "from_account_id", nullable=False)
    op.drop_column("standing_instructions", "external_account_id")
    op.drop_column("standing_instructions", "kind")
