"""transaction imports: where an import resumes, its sealed upload, its Idempotency-Key; occurrence counts

Revision ID: 0044
Revises: 0042
Create Date: 2026-12-02 15:00:00

An import is loaded chunk by chunk (workflows/transaction_import.py); each chunk's transaction moves `next_offset`
(the byte where the next chunk starts) and `next_line` with the counts, so a retried chunk finds it done. The upload
is kept sealed in segments (`segments` of `segment_bytes`, under `key_id`). `import_tuple_counts` holds, per import,
how often each identical line (hashed) was seen in the chunks committed so far: the occurrence number in each line's
dedup key carries across chunks without holding the file in memory; it is emptied when the import ends.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0044"
down_revision: Union[str, None] = "0042"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("transaction_imports", sa.Column("idempotency_key", sa.String(250), nullable=True))
    op.create_unique_constraint("transaction_imports_idempotency_key", "transaction_imports", ["idempotency_key"])
    op.add_column("transaction_imports", sa.Column("key_id", sa.String(32), nullable=True))
    op.add_column("transaction_imports", sa.Column("size_bytes", sa.BigInteger(), nullable=True))
    op.add_column("transaction_imports", sa.Column("segments", sa.Integer(), nullable=True))
    op.add_column("transaction_imports", sa.Column("segment_bytes", sa.Integer(), nullable=True))
    op.add_column("transaction_imports", sa.Column("next_offset", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("transaction_imports", sa.Column("next_line", sa.BigInteger(), nullable=False, server_default="1"))
    op.create_table(
        "import_tuple_counts",
        # No foreign key: a work table written once per line at bulk speed, emptied when its import ends.
        sa.Column("import_id", sa.Uuid(), primary_key=True),
        sa.Column("tuple_hash", sa.LargeBinary(), primary_key=True),  # sha256: compared bytewise, no collation
        sa.Column("seen", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("import_tuple_counts")
    for column in ("next_line", "next_offset", "segment_bytes", "segments", "size_bytes", "key_id"):
        op.drop_column("transaction_imports", column)
    op.drop_constraint("transaction_imports_idempotency_key", "transaction_imports")
    op.drop_column("transaction_imports", "idempotency_key")
