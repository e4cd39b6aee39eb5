"""report runs and scheduled report definitions

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-02 10:30:00

A run is one `report-<id>` workflow; a definition is one Temporal Schedule (`report-definition-<id>`) whose runs are
recorded once per scheduled time (the unique index), so a catch-up or a run started twice makes one file.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0034"
down_revision: Union[str, None] = "0033"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "report_definitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("period", sa.String(30), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("frequency", sa.String(10), nullable=False),
        sa.Column("day", sa.Integer(), nullable=True),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(250), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("schedule_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.CheckConstraint("status IN ('active', 'paused', 'deleted')", name="report_definitions_status"),
        sa.CheckConstraint("frequency IN ('daily', 'weekly', 'monthly')", name="report_definitions_frequency"),
        sa.CheckConstraint("hour BETWEEN 0 AND 23", name="report_definitions_hour"),
    )
    op.create_index("ix_report_definitions_org_id", "report_definitions", ["org_id"])
    op.create_index("ix_report_definitions_created_by", "report_definitions", ["created_by"])
    op.create_table(
        "report_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("params", JSONB(), nullable=True),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("requested_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(250), nullable=True),
        sa.Column("definition_id", sa.Uuid(), sa.ForeignKey("report_definitions.id"), nullable=True),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("storage_key", sa.String(300), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("failure", sa.String(500), nullable=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("definition_id", "scheduled_for", name="report_runs_once_per_scheduled_time"),
        sa.CheckConstraint("status IN ('queued', 'ready', 'failed')", name="report_runs_status"),
        sa.CheckConstraint(
            "status <> 'ready' OR (storage_key IS NOT NULL AND key_id IS NOT NULL AND sha256 IS NOT NULL)",
            name="report_runs_ready_has_a_file",
        ),
    )
    op.create_index("ix_report_runs_org_id", "report_runs", ["org_id"])
    op.create_index("ix_report_runs_requested_by", "report_runs", ["requested_by"])
    op.create_index("ix_report_runs_definition_id", "report_runs", ["definition_id"])


def downgrade() -> None:
    op.drop_table("report_runs")
    op.drop_table("report_definitions")
