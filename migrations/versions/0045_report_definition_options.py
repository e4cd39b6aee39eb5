"""report definitions: the custom report's groupings and filters

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-02 14:50:00

A scheduled ledger summary keeps the groupings and filters it was defined with (`options`, validated against the
whitelist of domain/ledger_summary.py when the definition is made); each run's params carry them.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0045"
down_revision: Union[str, None] = "0044"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("report_definitions", sa.Column("options", JSONB, nullable=True))
    op.create_check_constraint(
        "report_definitions_options_kind", "report_definitions", "options IS NULL OR kind = 'ledger-summary'"
    )


def downgrade() -> None:
    op.execute("DELETE FROM report_definitions WHERE kind = 'ledger-summary'")
    op.drop_constraint("report_definitions_options_kind", "report_definitions", type_="check")
    op.drop_column("report_definitions", "options")
