"""NACHA files encrypted at rest: ach_files.content (clear text) becomes content_encrypted + content_key_id

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 14:00:00

Each file's text is sealed with AES-256-GCM under the first FILE_ENCRYPTION_KEYS key (core/crypto.py FileCipher), its
key id stored beside it, bound to its row by the context `ach_file:<id>` (core/ach_files.py). The keys come from the
app's settings, as every process reads them: the FILE_ENCRYPTION_KEYS env var or `.env` of the environment alembic
runs in (`make run`/`make test` run `alembic upgrade head` with the app's environment), or a Settings object a caller
passes in `config.attributes["settings"]` (tests). Run it with the keys the API and worker will use: a file sealed
under another key does not open. Downgrade opens every file with any configured key and writes its text back.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import context, op

from core.config import PRODUCTION, development_secrets, get_settings
from core.crypto import FileCipher

revision: str = "0013"
down_revision: Union[str, None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BATCH = 500


def cipher() -> FileCipher:
    settings = context.config.attributes.get("settings") or get_settings()
    if settings.environment.strip().lower() == PRODUCTION and "FILE_ENCRYPTION_KEYS" in development_secrets(settings):
        # Sealed under the development key, the files would not open once production's own key is set.
        raise RuntimeError(
            "ENVIRONMENT=production: set FILE_ENCRYPTION_KEYS (the keys the API and worker will use) "
            "before this migration encrypts the stored NACHA files"
        )
    return FileCipher.from_settings(settings)


def rows(columns: str, where: str):
    """Every ach_files row matching `where`, in keyset batches of BATCH (the table is never read whole at once)."""
    connection, after = op.get_bind(), None
    while True:
        batch = connection.execute(
            sa.text(
                f"SELECT id, {columns} FROM ach_files WHERE {where} AND (CAST(:after AS uuid) IS NULL OR id > :after) "
                "ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": BATCH},
        ).all()
        yield from batch
        if len(batch) < BATCH:
            return
        after = batch[-1].id


def upgrade() -> None:
    op.add_column("ach_files", sa.Column("content_encrypted", sa.LargeBinary(), nullable=True))
    op.add_column("ach_files", sa.Column("content_key_id", sa.String(length=32), nullable=True))
    files, connection = cipher(), op.get_bind()
    for row in rows("content", "content_encrypted IS NULL"):
        key_id, sealed = files.encrypt(row.content.encode("ascii"), f"ach_file:{row.id}")
        connection.execute(
            sa.text("UPDATE ach_files SET content_encrypted = :sealed, content_key_id = :key WHERE id = :id"),
            {"sealed": sealed, "key": key_id, "id": row.id},
        )
    op.alter_column("ach_files", "content_encrypted", nullable=False)
    op.alter_column("ach_files", "content_key_id", nullable=False)
    op.drop_column("ach_files", "content")


def downgrade() -> None:
    op.add_column("ach_files", sa.Column("content", sa.Text(), nullable=True))
    files, connection = cipher(), op.get_bind()
    for row in rows("content_encrypted, content_key_id", "content IS NULL"):
        text = files.decrypt(row.content_key_id, row.content_encrypted, f"ach_file:{row.id}").decode("ascii")
        connection.execute(
            sa.text("UPDATE ach_files SET content = :content WHERE id = :id"), {"content": text, "id": row.id}
        )
    op.alter_column("ach_files", "content", nullable=False)
    op.drop_column("ach_files", "content_key_id")
    op.drop_column("ach_files", "content_encrypted")
