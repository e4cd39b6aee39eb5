"""transaction imports: occurrence counts written per chunk, ahead of the chunk's own transaction

Revision ID: 0049
Revises: 0048
Create Date: 2026-12-03 05:00:00

An imported line's dedup key numbers its occurrence within the file, so a chunk needs how often each of its lines'
identities appeared in the chunks before it (`import_tuple_counts`). The counts of a chunk were upserted inside its
own transaction, after its INSERT: a fifth of the chunk's time, on the one core Postgres used. They depend on the
chunk's lines alone, so they can be written while the chunk before it inserts, on another connection: each chunk's
counts are a set of their own now (`first_line`), announced in `import_count_sets` (with the number of lines it
counted) and marked `committed` by the chunk's own transaction; a line's earlier occurrences are the sum over
committed sets. A set written for a chunk that ran with other bounds is never committed, so it counts for nothing.
Counts from before this migration become one committed set at line 0."""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0049"
down_revision: Union[str, None] = "0048"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "import_count_sets",
        sa.Column("import_id", sa.Uuid(), sa.ForeignKey("transaction_imports.id"), primary_key=True),
        sa.Column("first_line", sa.BigInteger(), primary_key=True),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("committed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("import_tuple_counts", sa.Column("first_line", sa.BigInteger(), nullable=False, server_default="0"))
    op.alter_column("import_tuple_counts", "first_line", server_default=None)
    op.drop_constraint("import_tuple_counts_pkey", "import_tuple_counts", type_="primary")
    op.create_primary_key("import_tuple_counts_pkey", "import_tuple_counts", ["import_id", "tuple_hash", "first_line"])
    op.execute("""
        INSERT INTO import_count_sets (import_id, first_line, lines, committed)
        SELECT DISTINCT import_id, 0, 0, true FROM import_tuple_counts
    """)


def downgrade() -> None:
    op.execute("""
        DELETE FROM import_tuple_counts c USING import_count_sets m
         WHERE m.import_id = c.import_id AND m.first_line = c.first_line AND NOT m.committed
    """)
    op.execute("""
        CREATE TEMP TABLE import_tuple_totals ON COMMIT DROP AS
        SELECT import_id, tuple_hash, sum(seen)::bigint AS seen FROM import_tuple_counts GROUP BY import_id, tuple_hash
    """)
    op.execute("DELETE FROM import_tuple_counts")
    op.drop_constraint("import_tuple_counts_pkey", "import_tuple_counts", type_="primary")
    op.drop_column("import_tuple_counts", "first_line")
    op.create_primary_key("import_tuple_counts_pkey", "import_tuple_counts", ["import_id", "tuple_hash"])
    op.execute("INSERT INTO import_tuple_counts (import_id, tuple_hash, seen) SELECT * FROM import_tuple_totals")
    op.drop_table("import_count_sets")
