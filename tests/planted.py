"""Imported lines that tests plant straight into the database, as an import would have loaded them: every line
belongs to an import of one of its member's external accounts (migration 0048: one foreign key from the line to its
import vouches for the member, organization and account), so a planted line needs both; `planted_import` makes them."""

import uuid

from sqlalchemy import text

from core.db import psycopg_sql

PLANT = text("""
    WITH account AS (
        INSERT INTO external_accounts (id, org_id, owner_id, holder_name, institution_name, source, routing_number,
                                       account_number_encrypted, account_last4, fingerprint, account_type, status,
                                       debits_blocked, created_by)
        VALUES (gen_random_uuid(), :org, :user, 'Planted', 'Planted Bank', 'manual', '021000021', 'planted', '0000',
                md5(CAST(random() AS text)), 'checking', 'verified', false, :user)
        RETURNING id
    )
    INSERT INTO transaction_imports (id, org_id, user_id, external_account_id, source, workflow_id, status, created_by)
    SELECT gen_random_uuid(), :org, :user, id, 'csv', 'import-planted-' || gen_random_uuid(), 'completed', :user
      FROM account
    RETURNING id, external_account_id
""")


PLANT_PSYCOPG = psycopg_sql(PLANT)  # for a psycopg connection
FOUND = text("""
    SELECT id, external_account_id FROM transaction_imports
     WHERE user_id = :user AND workflow_id LIKE 'import-planted-%' ORDER BY created_at LIMIT 1
""")


async def planted_import(session, org_id, user_id) -> dict:
    """The member's planted import (made once: a completed import of an external account of theirs made for it):
    {"import": id, "account": id}, the two columns (import_id, external_account_id) a planted line names.
    `session`: an SQLAlchemy async session or connection."""
    params = {"org": str(org_id), "user": str(user_id)}
    row = (await session.execute(FOUND, params)).first() or (await session.execute(PLANT, params)).one()
    return {"import": uuid.UUID(str(row[0])), "account": uuid.UUID(str(row[1]))}


async def planted_import_psycopg(conn, org_id, user_id) -> dict:
    """planted_import on a psycopg async connection (the benchmarks' seeding)."""
    params = {"org": str(org_id), "user": str(user_id)}
    row = await (await conn.execute(PLANT_PSYCOPG, params)).fetchone()
    return {"import": row[0], "account": row[1]}
