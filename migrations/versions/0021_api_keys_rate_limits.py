"""API keys for machine clients, and the rate limiter's token buckets

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 00:00:00

`api_keys`: a key acts as the user who created it, narrowed to its scopes (core/api_keys.py); only the SHA-256 of
its secret is stored, its public prefix finds it. A rotation links the successor to its predecessor (`rotated_from`,
unique: a key is rotated once).

`rate_limit_buckets`: one token bucket per endpoint group and identity (core/rate_limit.py), taken and refilled by
one UPSERT per request. UNLOGGED: no WAL for a row written on every request; after a crash Postgres empties it, which
only refills every bucket.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0021"
down_revision: Union[str, None] = "0020"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE api_keys (
            id uuid PRIMARY KEY,
            prefix varchar(16) NOT NULL UNIQUE,
            secret_hash varchar(64) NOT NULL,
            name varchar(200) NOT NULL,
            scopes varchar(64)[] NOT NULL,
            org_id uuid REFERENCES organizations (id),
            created_by uuid NOT NULL REFERENCES users (id),
            idempotency_key varchar(200),
            expires_at timestamptz NOT NULL,
            last_used_at timestamptz,
            revoked_at timestamptz,
            revoked_by uuid REFERENCES users (id),
            rotated_from uuid UNIQUE REFERENCES api_keys (id),
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_api_keys_idempotency UNIQUE (created_by, idempotency_key)
        );
        CREATE INDEX ix_api_keys_org_id ON api_keys (org_id);
        CREATE INDEX ix_api_keys_created_by ON api_keys (created_by);
        CREATE UNLOGGED TABLE rate_limit_buckets (
            key text PRIMARY KEY,
            tokens double precision NOT NULL,
            capacity double precision NOT NULL,
            rate double precision NOT NULL,
            allowed boolean NOT NULL,
            updated_at timestamptz NOT NULL
        );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE rate_limit_buckets; DROP TABLE api_keys;")
