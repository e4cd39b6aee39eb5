"""backups and retention: the backup catalogue; the ledger is never deleted

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 17:00:00

* `backups`: one row per database dump the backup workflow took and verified (core/backups.py), and when it was
  pruned past retention.
* `email_outbox.redacted_at`: retention blanks the bodies of sent emails past their retention and keeps the row,
  whose dedupe key still stops a late retry from sending the email again.
* The ledger is never deleted, whatever the code or a psql session does: DELETE and TRUNCATE are refused on
  journal_entries and ledger_accounts (postings refuse them since 0001; accounts are closed, not deleted).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: Union[str, None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_NEVER_DELETED = ("journal_entries", "ledger_accounts")


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("database", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("toc_entries", sa.Integer(), nullable=False),  # what pg_restore --list read back from it
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("backups_finished_at", "backups", ["finished_at"])
    op.add_column("email_outbox", sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("""
        CREATE FUNCTION ledger_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is part of the ledger and is never deleted', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$;
    """)
    for table in _NEVER_DELETED:
        op.execute(f"""
            CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION ledger_never_deleted();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION ledger_never_deleted();
        """)


def downgrade() -> None:
    for table in _NEVER_DELETED:
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}; DROP TRIGGER {table}_never_deleted ON {table};")
    op.execute("DROP FUNCTION ledger_never_deleted();")
    op.drop_column("email_outbox", "redacted_at")
    op.drop_index("backups_finished_at", table_name="backups")
    op.drop_table("backups")
