"""A GDPR export: everything the system holds on a member, as a zip of JSON files (one per table, a row a line of a
JSON array) and their documents' files, written entry by entry to a file on disk (never the whole in memory).

The member's tables are found, not listed: every table with a foreign key to `users` (so a table added later is in
the next export), its rows where one of those columns is the member. Columns that hold credentials (hashes,
secrets, tokens, ciphertexts) are left out of every row; the rest is as stored (bank account numbers masked: only
their last four digits are kept in clear). Beside them: the profile, the postings of the member's accounts, their
transactions (`member_transactions`), the payments from or to their accounts, their reward entries, the audit rows
about them, and their documents (of themselves or of their loans) decrypted through the documents' read path
(core/documents.py sealing context)."""

import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.crypto import FileCipher
from core.documents import sealing_context
from core.storage import ObjectStorage

# Column names never exported: what would let someone sign in or decrypt, not information about the member.
SECRET_COLUMN = re.compile(r"hash|secret|token|password|totp|cipher|encrypted|fingerprint")

FOREIGN_KEYS_TO_USERS = """
SELECT c.conrelid::regclass::text AS tbl, array_agg(DISTINCT a.attname::text ORDER BY a.attname::text) AS cols
  FROM pg_constraint c
  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
 WHERE c.contype = 'f' AND c.confrelid = 'users'::regclass AND cardinality(c.conkey) = 1
 GROUP BY 1 ORDER BY 1"""

COLUMNS_OF = (
    "SELECT attname::text FROM pg_attribute WHERE attrelid = CAST(:tbl AS regclass) AND attnum > 0 AND NOT attisdropped"
)

MEMBER_DOCUMENTS = """
SELECT d.id AS document_id, v.id AS version_id, v.number, v.filename, v.storage_key, v.key_id
  FROM documents d JOIN document_versions v ON v.document_id = d.id
 WHERE (d.entity_type = 'user' AND d.entity_id = :uid)
    OR (d.entity_type = 'loan' AND d.entity_id IN (SELECT id FROM loans WHERE applicant_id = :uid))
 ORDER BY d.created_at, d.id, v.number"""

# The exports beside the generic tables: (file name, query returning one JSON text per row).
FIXED: list[tuple[str, str]] = [
    (
        "postings.json",
        "SELECT to_jsonb(p)::text FROM postings p JOIN ledger_accounts a ON a.id = p.account_id "
        "WHERE a.owner_id = :uid ORDER BY p.id",
    ),
    (
        "payments.json",
        "SELECT to_jsonb(p)::text FROM payments p WHERE p.created_by = :uid "
        "OR p.from_account_id IN (SELECT id FROM ledger_accounts WHERE owner_id = :uid) "
        "OR p.to_account_id IN (SELECT id FROM ledger_accounts WHERE owner_id = :uid) ORDER BY p.created_at, p.id",
    ),
    (
        "reward_entries.json",
        "SELECT to_jsonb(e)::text FROM reward_entries e JOIN reward_accounts a ON a.id = e.account_id "
        "WHERE a.user_id = :uid ORDER BY e.id",
    ),
    (
        "transactions.json",
        "SELECT to_jsonb(t)::text FROM member_transactions t WHERE t.user_id = :uid ORDER BY t.posted_on, t.txn_id",
    ),
    (
        "audit.json",
        "SELECT to_jsonb(l)::text FROM audit_log l WHERE l.actor_id = :uid OR l.entity_id = CAST(:uid AS text) "
        "OR l.entity_id IN (SELECT CAST(id AS text) FROM ledger_accounts WHERE owner_id = :uid) ORDER BY l.id",
    ),
    (
        "documents.json",
        "SELECT to_jsonb(d)::text FROM documents d WHERE (d.entity_type = 'user' AND d.entity_id = :uid) "
        "OR (d.entity_type = 'loan' AND d.entity_id IN (SELECT id FROM loans WHERE applicant_id = :uid)) ORDER BY d.id",
    ),
]


async def _secret_columns(session: AsyncSession, table: str) -> list[str]:
    names = (await session.execute(text(COLUMNS_OF), {"tbl": table})).scalars().all()
    return [n for n in names if SECRET_COLUMN.search(n)]


async def _write_json_rows(session: AsyncSession, archive: zipfile.ZipFile, name: str, query: str, uid: Any) -> int:
    """One JSON array, written row by row as the rows stream in; the number of rows."""
    count = 0
    with archive.open(name, "w") as out:
        out.write(b"[")
        result = await session.stream(text(query), {"uid": uid})
        async for (row_json,) in result:
            out.write((b"," if count else b"") + b"\n" + row_json.encode())
            count += 1
        out.write(b"\n]\n")
    return count


async def build_zip(
    session: AsyncSession, storage: ObjectStorage, cipher: FileCipher, member_id: uuid.UUID, path: Path
) -> int:
    """Writes the member's zip to `path`; the number of rows and files in it."""
    uid = member_id
    total = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        drop = await _secret_columns(session, "users")
        total += await _write_json_rows(
            session,
            archive,
            "profile.json",
            f"SELECT (to_jsonb(u) - {_array(drop)})::text FROM users u WHERE u.id = :uid",
            uid,
        )
        for name, query in FIXED:
            total += await _write_json_rows(session, archive, name, query, uid)
        tables = (await session.execute(text(FOREIGN_KEYS_TO_USERS))).all()
        for table, cols in tables:
            drop = await _secret_columns(session, table)
            match = " OR ".join(f'"{c}" = :uid' for c in cols)
            query = f"SELECT (to_jsonb(t) - {_array(drop)})::text FROM {table} t WHERE {match}"
            total += await _write_json_rows(session, archive, f"tables/{table.strip(chr(34))}.json", query, uid)
        for doc in (await session.execute(text(MEMBER_DOCUMENTS), {"uid": uid})).mappings().all():
            sealed = await storage.get(doc["storage_key"])
            content = cipher.decrypt(doc["key_id"], sealed, sealing_context(doc["document_id"], doc["version_id"]))
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", doc["filename"])[:100]
            archive.writestr(f"documents/{doc['document_id']}/v{doc['number']}-{safe}", content)
            total += 1
        archive.writestr(
            "README.txt",
            "Everything held on member "
            f"{uid}: profile.json, postings.json, transactions.json, audit.json, documents.json and the documents' "
            "files under documents/, and every table with a row about the member under tables/.\n",
        )
    return total


def _array(names: list[str]) -> str:
    # column names from the catalog, quoted as SQL literals (no quote can be in them: ours are [a-z_0-9])
    return (
        "ARRAY[" + ",".join("'" + n.replace("'", "''") + "'" for n in names) + "]::text[]"
        if names
        else "ARRAY[]::text[]"
    )
