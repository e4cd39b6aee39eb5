"""bank reconciliation: statements of a ledger account, their lines, and the postings each line is matched to

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-02 10:40:00

One reconciliation per (account, statement identity), so a statement imported twice is found again; a line per
(reconciliation, line number), loaded ON CONFLICT DO NOTHING; a posting matched to one line at most (unique).
`recon_word_similarity` is the description score of the automatic matching's second pass: the share of words two
texts have in common (pg_trgm is not in the embedded PostgreSQL, and this needs no extension).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: Union[str, None] = "0029"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SIMILARITY = """
CREATE FUNCTION recon_word_similarity(a text, b text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH x AS (SELECT DISTINCT w FROM regexp_split_to_table(lower(coalesce(a, '')), '[^a-z0-9]+') AS w
               WHERE length(w) >= 2),
         y AS (SELECT DISTINCT w FROM regexp_split_to_table(lower(coalesce(b, '')), '[^a-z0-9]+') AS w
               WHERE length(w) >= 2),
         counts AS (SELECT (SELECT count(*) FROM x JOIN y USING (w)) AS common,
                           (SELECT count(*) FROM (SELECT w FROM x UNION SELECT w FROM y) u) AS every)
    SELECT CASE WHEN every = 0 THEN 0 ELSE round(common::numeric / every, 4) END FROM counts
$$
"""


def upgrade() -> None:
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=True),
        sa.Column("statement_ref", sa.String(140), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("opening_balance", sa.Numeric(20, 2), nullable=True),
        sa.Column("closing_balance", sa.Numeric(20, 2), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "statement_ref", name="reconciliations_one_per_statement"),
        sa.UniqueConstraint("workflow_id"),
        sa.CheckConstraint("status IN ('matching','open','closed')", name="reconciliations_status_valid"),
    )
    op.create_index("ix_reconciliations_account_id", "reconciliations", ["account_id"])
    op.create_index("ix_reconciliations_org_id", "reconciliations", ["org_id"])
    op.create_index("ix_reconciliations_status", "reconciliations", ["status"])
    op.create_table(
        "reconciliation_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("reconciliation_id", sa.Uuid(), sa.ForeignKey("reconciliations.id"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("ledger_amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("reference", sa.String(140), nullable=False),
        sa.Column("counterparty", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reconciliation_id", "line_no", name="reconciliation_lines_once"),
        sa.CheckConstraint("status IN ('open','matched','explained')", name="reconciliation_lines_status_valid"),
        sa.CheckConstraint("amount <> 0", name="reconciliation_lines_amount_nonzero"),
    )
    op.create_table(
        "reconciliation_matches",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("reconciliation_id", sa.Uuid(), sa.ForeignKey("reconciliations.id"), nullable=False),
        sa.Column("line_id", sa.BigInteger(), sa.ForeignKey("reconciliation_lines.id"), nullable=False),
        sa.Column("posting_id", sa.BigInteger(), sa.ForeignKey("postings.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score", sa.Numeric(6, 4), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("posting_id", name="reconciliation_matches_posting_once"),
    )
    op.create_index("ix_reconciliation_matches_line_id", "reconciliation_matches", ["line_id"])
    op.create_index("ix_reconciliation_matches_reconciliation_id", "reconciliation_matches", ["reconciliation_id"])
    op.execute(SIMILARITY)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS recon_word_similarity(text, text)")
    op.drop_table("reconciliation_matches")
    op.drop_table("reconciliation_lines")
    op.drop_table("reconciliations")
