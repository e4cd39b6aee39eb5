"""approval rounds and the member's type on their record

A level of an approval is decided in rounds: a new round starts when the level escalates and when the applicant
answers a request for information, and only decisions of the current round count. Decisions keep their round
(one vote per person, level and round); the request keeps its current round for the inbox.
The member type that routes a loan is on the member's record (staff set it), not in the loan request.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:30:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("users", sa.Column("member_type", sa.String(length=40), server_default="consumer", nullable=False))
    op.add_column(
        "approval_requests", sa.Column("current_round", sa.Integer(), server_default=sa.text("1"), nullable=False)
    )
    op.add_column("approval_decisions", sa.Column("round", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.drop_constraint("approval_decisions_once", "approval_decisions", type_="unique")
    op.create_unique_constraint(
        "approval_decisions_once", "approval_decisions", ["request_id", "level", "round", "approver_id"]
    )


def downgrade() -> None:
    # One vote per person and level again: an earlier round's vote of someone who voted again later goes (the
    # audit log keeps every decision).
    op.execute("""DELETE FROM approval_decisions d USING approval_decisions later
                  WHERE later.request_id = d.request_id AND later.level = d.level
                    AND later.approver_id = d.approver_id AND later.round > d.round""")
    op.drop_constraint("approval_decisions_once", "approval_decisions", type_="unique")
    op.create_unique_constraint("approval_decisions_once", "approval_decisions", ["request_id", "level", "approver_id"])
    op.drop_column("approval_decisions", "round")
    op.drop_column("approval_requests", "current_round")
    op.drop_column("users", "member_type")
