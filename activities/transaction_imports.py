"""The transaction import's activities: a chunk of the file loaded (read from the sealed upload at a byte offset,
checked in Python, COPYed into a staging table and inserted set-based), the lines categorised by the rules, the
import finished or failed, and its member told once.

A chunk is exactly-once by the import's row: its transaction locks the row, does nothing when `next_offset` has
moved past the chunk's start (a retry of a chunk that committed), and commits the lines, the rejections, the counts
and the new `next_offset` together. A worker killed mid-chunk leaves nothing of it; the retry loads it whole.

While a chunk's statements run, the worker reads and parses the next chunk and writes its occurrence counts
(`read_ahead`: Python and a second Postgres backend on the other core); the next chunk's activity takes it when it
runs on the same worker, else reads its lines (and writes its counts) itself. Counts written ahead are a set of their
own (`import_count_sets`, migration 0049), counted for later chunks only once the chunk's own transaction marks it
committed: only the committed `next_offset` says where the import stands."""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from sqlalchemy import text
from temporalio import activity
from temporalio.client import Client

from activities.notifications import NotificationActivities
from core import import_files
from core.config import Settings
from core.crypto import FileCipher
from core.db import Database, libpq_url
from core.storage import ObjectStorage, storage_from_settings
from domain import categorise, money_events
from domain.import_csv import HeaderError, ParsedChunk, header_columns, parse_chunk
from models.money import ImportStatus, TransactionImport
from models.notifications import NotifyUsers
from models.transaction_imports import (
    ImportChunkInput,
    ImportChunkOutcome,
    ImportFailure,
    ImportProgress,
    ImportRef,
)

log = logging.getLogger(__name__)

STAGE = """
CREATE TEMP TABLE IF NOT EXISTS import_stage (
    line_no bigint, posted_on date, amount numeric(20, 2), currency text, merchant text, description text,
    category_key text, tuple_hash bytea, rank bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS import_stage_rejections (line_no bigint, reason text) ON COMMIT DELETE ROWS;
"""

# Each line's occurrence of its identical tuple: those seen in the committed chunks, then its rank in this chunk
# (counted by the parser). One index probe a line, of the counts of its tuple in the chunks before it (committed
# sets are all of earlier chunks; one written ahead for other bounds was never committed and counts for nothing,
# checked only for the rare tuple found, in a sub-select the planner cannot turn into a join that would drive the
# probes set by set): never a scan of the import's counts, nor a probe per set, both of which grow with the file (a
# join of the sets to the counts made the 20th chunk of a 1,000,000-line file probe 19 times a line).
LOAD = """
WITH staged AS (
    SELECT s.*, s.rank + coalesce(
               (SELECT sum(c.seen) FILTER (WHERE (SELECT m.committed FROM import_count_sets m
                                                   WHERE m.import_id = c.import_id AND m.first_line = c.first_line))
                  FROM import_tuple_counts c
                 WHERE c.import_id = %(import_id)s AND c.tuple_hash = s.tuple_hash AND c.first_line < %(first_line)s
               )::bigint, 0) AS occurrence
      FROM import_stage s
)
INSERT INTO imported_transactions (org_id, user_id, external_account_id, import_id, source, posted_on, amount,
                                   currency, merchant, description, category_key, category_source, dedup_key)
SELECT %(org_id)s, %(user_id)s, %(external_account_id)s, %(import_id)s, 'csv', posted_on, amount, currency,
       nullif(merchant, ''), description, coalesce(category_key, 'uncategorized'),
       CASE WHEN category_key IS NULL THEN 'default' ELSE 'manual' END,
       encode(sha256(tuple_hash || convert_to(':' || occurrence, 'UTF8')), 'hex')
  FROM staged
 ORDER BY line_no
ON CONFLICT (user_id, dedup_key) DO NOTHING
"""

# A chunk's set of counts is announced first: whoever announces it writes it (the read-ahead or the chunk itself).
ANNOUNCE_SET = """
INSERT INTO import_count_sets (import_id, first_line, lines) VALUES (%(import_id)s, %(first_line)s, %(lines)s)
ON CONFLICT (import_id, first_line) DO NOTHING
RETURNING lines
"""
SET_OF = (
    "SELECT lines, committed FROM import_count_sets WHERE import_id = %(import_id)s AND first_line = %(first_line)s"
)
# A set counted for other bounds than the chunk's (a worker with another chunk size read ahead): rare, scans the
# import's counts once.
DROP_SET = (
    "DELETE FROM import_tuple_counts WHERE import_id = %(import_id)s AND first_line = %(first_line)s",
    "DELETE FROM import_count_sets WHERE import_id = %(import_id)s AND first_line = %(first_line)s AND NOT committed",
)
COMMIT_SET = """
UPDATE import_count_sets SET committed = true WHERE import_id = %(import_id)s AND first_line = %(first_line)s
"""
FORGET_COUNTS = (
    "DELETE FROM import_tuple_counts WHERE import_id = :id",
    "DELETE FROM import_count_sets WHERE import_id = :id",
)

REJECT = """
INSERT INTO import_rejections (import_id, line_no, reason)
SELECT %(import_id)s, line_no, reason FROM import_stage_rejections
ON CONFLICT (import_id, line_no) DO NOTHING
"""

ADVANCE = """
UPDATE transaction_imports
   SET rows_read = rows_read + %(read)s, rows_loaded = rows_loaded + %(loaded)s,
       rows_duplicate = rows_duplicate + %(duplicate)s, rows_rejected = rows_rejected + %(rejected)s,
       next_offset = %(next_offset)s, next_line = %(next_line)s
 WHERE id = %(import_id)s
RETURNING rows_read, rows_loaded, rows_duplicate, rows_rejected
"""


@dataclass(frozen=True)
class ReadChunk:
    """A chunk read from the sealed upload and parsed: what `load_chunk` inserts."""

    offset: int
    line_no: int
    columns: list[str] | None  # as the workflow gave them (None: the chunk starts with the header)
    categories: frozenset[str]
    data_bytes: int
    lines: int
    parsed: ParsedChunk | None  # None: the header was bad
    header_error: str | None = None
    header_columns: list[str] | None = None  # the columns its lines were parsed with


READ_AHEAD_KEPT = 4  # chunks read ahead and not yet taken (another worker may have taken their import's next chunk)


@asynccontextmanager
async def heartbeating(every: float = 1.0) -> AsyncIterator[None]:
    """Heartbeats while the chunk works (its statements run for seconds): a killed worker's chunk is retried after
    the short heartbeat timeout, not the whole start-to-close one."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


def progress_of(row: TransactionImport) -> dict:
    return dict(
        status=row.status,
        rows_read=row.rows_read,
        rows_loaded=row.rows_loaded,
        rows_duplicate=row.rows_duplicate,
        rows_rejected=row.rows_rejected,
        error=row.error,
    )


def stored_file(row: TransactionImport) -> import_files.StoredFile:
    assert row.size_bytes is not None and row.segments and row.segment_bytes and row.key_id
    return import_files.StoredFile(row.size_bytes, row.segments, row.segment_bytes, row.key_id)


class TransactionImportActivities:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        notifications: NotificationActivities,
        storage: ObjectStorage | None = None,
        client: Client | None = None,
    ):
        self.db, self.settings, self.notifications, self.client = db, settings, notifications, client
        self.storage = storage or storage_from_settings(settings)
        self.cipher = FileCipher.from_settings(settings)
        self.ahead: dict[tuple[uuid.UUID, int], asyncio.Task[ReadChunk]] = {}

    async def read_chunk(
        self, row: TransactionImport, offset: int, line_no: int, columns: list[str] | None, categories: frozenset[str]
    ) -> ReadChunk:
        """The chunk at `offset` read and parsed (the parsing in a thread: it overlaps the previous chunk's INSERT
        when read ahead)."""
        given = columns
        data, lines = await self.read_lines(row, offset, self.settings.import_chunk_lines)
        content = data.decode("utf-8", errors="replace")
        first_line, body = line_no, content
        if offset == 0:
            header, _, body = content.partition("\n")
            try:
                columns = header_columns(header)
            except HeaderError as error:
                return ReadChunk(offset, line_no, given, categories, len(data), lines, None, header_error=str(error))
            first_line += 1
        assert columns is not None
        parsed = await asyncio.to_thread(
            parse_chunk, body, first_line, columns, str(row.external_account_id), categories
        )
        return ReadChunk(offset, line_no, given, categories, len(data), lines, parsed, header_columns=columns)

    def read_ahead(self, row: TransactionImport, chunk: ReadChunk) -> None:
        """Starts reading and parsing the chunk after `chunk` while this one is inserted (one worker, two cores:
        Python parses while Postgres writes). Only an optimisation: the next chunk takes it when it runs here with
        the same offset, columns and categories, else reads its lines itself."""
        next_offset = chunk.offset + chunk.data_bytes
        if chunk.parsed is None or next_offset >= (row.size_bytes or 0):
            return
        key = (row.id, next_offset)
        self.ahead[key] = asyncio.create_task(
            self.read_and_count(row, next_offset, chunk.line_no + chunk.lines, chunk.header_columns, chunk.categories)
        )
        while len(self.ahead) > READ_AHEAD_KEPT:  # the oldest was never taken
            self.ahead.pop(next(iter(self.ahead))).cancel()

    async def read_and_count(
        self, row: TransactionImport, offset: int, line_no: int, columns: list[str] | None, categories: frozenset[str]
    ) -> ReadChunk:
        """The chunk at `offset` read ahead, and its set of counts written (unless it is the file's last chunk)."""
        chunk = await self.read_chunk(row, offset, line_no, columns, categories)
        if chunk.parsed is not None and offset + chunk.data_bytes < (row.size_bytes or 0):
            try:
                async with await psycopg.AsyncConnection.connect(libpq_url(self.settings.database_url)) as conn:
                    async with conn.cursor() as cur:
                        # KEY SHARE: beside the running chunk's NO KEY UPDATE; never after the import ended.
                        await cur.execute(
                            "SELECT status FROM transaction_imports WHERE id = %s FOR KEY SHARE", [row.id]
                        )
                        status = await cur.fetchone()
                        if status is not None and status[0] == ImportStatus.running:
                            await self.write_count_set(cur, row.id, chunk)
                    await conn.commit()
            except Exception:  # the chunk writes them itself
                log.warning("an import chunk's counts written ahead failed", exc_info=True)
        return chunk

    async def ensure_count_set(self, cur: psycopg.AsyncCursor, import_id: uuid.UUID, chunk: ReadChunk) -> None:
        """The chunk's set of counts, in its own transaction, unless written ahead with the same bounds."""
        at = {"import_id": import_id, "first_line": chunk.line_no}
        await cur.execute(SET_OF, at)
        found = await cur.fetchone()
        if found is not None and found[0] == chunk.lines:
            return
        if found is not None:
            for statement in DROP_SET:
                await cur.execute(statement, at)
        if not await self.write_count_set(cur, import_id, chunk):
            raise RuntimeError(f"import {import_id}: the counts of line {chunk.line_no} on were written meanwhile")

    @staticmethod
    async def write_count_set(cur: psycopg.AsyncCursor, import_id: uuid.UUID, chunk: ReadChunk) -> bool:
        """Announces the chunk's set and COPYs its counts; False when a set of its first line exists already."""
        assert chunk.parsed is not None
        at = {"import_id": import_id, "first_line": chunk.line_no, "lines": chunk.lines}
        await cur.execute(ANNOUNCE_SET, at)
        if await cur.fetchone() is None:
            return False
        prefix = f"{import_id}\t{chunk.line_no}\t\\\\x"
        rows = "".join(f"{prefix}{tuple_hash}\t{seen}\n" for tuple_hash, seen in chunk.parsed.tuple_counts.items())
        async with cur.copy("COPY import_tuple_counts (import_id, first_line, tuple_hash, seen) FROM STDIN") as copy:
            await copy.write(rows.encode())
        return True

    async def taken_ahead(
        self, req: ImportChunkInput, columns: list[str] | None, categories: frozenset[str]
    ) -> ReadChunk | None:
        task = self.ahead.pop((req.import_id, req.offset), None)
        if task is None:
            return None
        try:
            chunk = await task
        except Exception:  # read again, in the open, by the caller
            log.warning("an import chunk read ahead failed", exc_info=True)
            return None
        if chunk.line_no != req.line_no or chunk.columns != columns or chunk.categories != categories:
            return None
        return chunk

    async def read_lines(self, row: TransactionImport, offset: int, max_lines: int) -> tuple[bytes, int]:
        """Up to `max_lines` whole lines of the file from `offset` (fewer at its end), and how many."""
        parts: list[bytes] = []
        lines = 0
        async for piece in import_files.read_from(self.storage, self.cipher, row.id, stored_file(row), offset):
            found = piece.count(b"\n")
            if lines + found >= max_lines:
                cut = -1
                for _ in range(max_lines - lines):
                    cut = piece.index(b"\n", cut + 1)
                parts.append(piece[: cut + 1])
                lines = max_lines
                break
            parts.append(piece)
            lines += found
        return b"".join(parts), lines

    @activity.defn
    async def load_chunk(self, req: ImportChunkInput) -> ImportChunkOutcome:
        async with heartbeating():
            return await self._load_chunk(req)

    async def _load_chunk(self, req: ImportChunkInput) -> ImportChunkOutcome:
        async with self.db.session() as session:
            row = await session.get(TransactionImport, req.import_id)
            assert row is not None, f"transaction import {req.import_id} not found"
            categories = frozenset(
                (
                    await session.execute(
                        text("SELECT key FROM categories WHERE user_id IS NULL OR user_id = :user_id"),
                        {"user_id": row.user_id},
                    )
                ).scalars()
            )
        if row.status != ImportStatus.running or row.next_offset != req.offset:  # this chunk committed already
            return self.outcome_of(row, req.columns)
        began = time.monotonic()
        given = None if req.offset == 0 else req.columns
        ahead = await self.taken_ahead(req, given, categories)
        chunk = ahead or await self.read_chunk(row, req.offset, req.line_no, given, categories)
        if chunk.header_error is not None:
            return await self.fail_import(ImportFailure(import_id=row.id, error=chunk.header_error))
        parsed, columns, lines = chunk.parsed, chunk.header_columns, chunk.lines
        assert parsed is not None and columns is not None
        next_offset, next_line = req.offset + chunk.data_bytes, req.line_no + lines
        parsed_at = time.monotonic()
        self.read_ahead(row, chunk)
        params = {"import_id": row.id, "org_id": row.org_id, "user_id": row.user_id}
        async with await psycopg.AsyncConnection.connect(libpq_url(self.settings.database_url)) as conn:
            async with conn.cursor() as cur:
                # NO KEY UPDATE: a count set written ahead (KEY SHARE) goes on beside it; the end of the import
                # (FOR UPDATE) waits for both.
                await cur.execute(
                    "SELECT next_offset, status FROM transaction_imports WHERE id = %(import_id)s FOR NO KEY UPDATE",
                    params,
                )
                locked = await cur.fetchone()
                if locked is None or locked[0] != req.offset or locked[1] != ImportStatus.running:
                    await conn.rollback()
                    return await self.current(req)
                last = next_offset >= (row.size_bytes or 0)  # no chunk after it needs its counts
                if not last:
                    await self.ensure_count_set(cur, row.id, chunk)
                await cur.execute(STAGE)
                await cur.execute("SET LOCAL work_mem = '64MB'")  # the chunk's sorts in memory, not on disk
                async with cur.copy("COPY import_stage FROM STDIN") as copy:
                    await copy.write(parsed.copy_rows.encode())
                async with cur.copy("COPY import_stage_rejections FROM STDIN WITH (FORMAT csv)") as copy:
                    await copy.write(parsed.rejections.encode())
                await cur.execute(
                    LOAD, {**params, "external_account_id": row.external_account_id, "first_line": req.line_no}
                )
                loaded = cur.rowcount
                staged = parsed.rows_read - parsed.rows_rejected
                await cur.execute(COMMIT_SET, {**params, "first_line": req.line_no})
                await cur.execute(REJECT, params)
                await cur.execute(
                    ADVANCE,
                    {
                        **params,
                        "read": parsed.rows_read,
                        "loaded": loaded,
                        "duplicate": staged - loaded,
                        "rejected": parsed.rows_rejected,
                        "next_offset": next_offset,
                        "next_line": next_line,
                    },
                )
                counts = await cur.fetchone()
                assert counts is not None
            await conn.commit()
        log.info(
            "import chunk loaded",
            extra={
                "import_id": str(row.id),
                "line_no": req.line_no,
                "lines": lines,
                "loaded": loaded,
                "read_ahead": ahead is not None,
                "read_parse_seconds": round(parsed_at - began, 3),
                "load_seconds": round(time.monotonic() - parsed_at, 3),
            },
        )
        read, loaded_total, duplicate, rejected = counts
        return ImportChunkOutcome(
            status=ImportStatus.running,
            rows_read=read,
            rows_loaded=loaded_total,
            rows_duplicate=duplicate,
            rows_rejected=rejected,
            next_offset=next_offset,
            next_line=next_line,
            columns=columns,
            done=next_offset >= (row.size_bytes or 0),
        )

    def outcome_of(self, row: TransactionImport, columns: list[str] | None) -> ImportChunkOutcome:
        return ImportChunkOutcome(
            **progress_of(row),
            next_offset=row.next_offset,
            next_line=row.next_line,
            columns=columns,
            done=row.status != ImportStatus.running or row.next_offset >= (row.size_bytes or 0),
        )

    async def current(self, req: ImportChunkInput) -> ImportChunkOutcome:
        async with self.db.session() as session:
            row = await session.get(TransactionImport, req.import_id)
            assert row is not None
            return self.outcome_of(row, req.columns)

    @activity.defn
    async def fail_import(self, req: ImportFailure) -> ImportChunkOutcome:
        """Marks a running import failed with its reason (a bad header, a file that cannot be read)."""
        async with self.db.session() as session, session.begin():
            row = await session.get(TransactionImport, req.import_id, with_for_update=True)
            assert row is not None
            if row.status == ImportStatus.running:
                row.status, row.error, row.finished_at = ImportStatus.failed, req.error[:500], datetime.now(UTC)
        await self.forget_counts(row)
        await self.discard_upload(row)
        return self.outcome_of(row, None)

    async def discard_upload(self, row: TransactionImport) -> None:
        """An ended import's uploaded file is deleted (a member's bank statement is not kept once its lines are
        loaded); `storage_key` is cleared after the segments are gone, so a retry or a crash in between deletes
        again, harmlessly (a missing segment is no error)."""
        if row.status == ImportStatus.running or row.storage_key is None or not row.segments:
            return
        await import_files.delete(self.storage, row.id, row.segments)
        async with self.db.session() as session, session.begin():
            await session.execute(
                text("UPDATE transaction_imports SET storage_key = NULL WHERE id = :id AND status <> 'running'"),
                {"id": row.id},
            )

    async def forget_counts(self, row: TransactionImport) -> None:
        """An ended import's occurrence counts serve no chunk: deleted once its status says it ended, so the member
        sees it done without waiting for them (0.9 s for 1,000,000 lines); a retry deletes again, harmlessly. None is
        written after: the read-ahead writes only while the row says running, under a lock the status change waits
        for."""
        if row.status == ImportStatus.running:
            return
        async with self.db.session() as session, session.begin():
            for statement in FORGET_COUNTS:
                await session.execute(text(statement), {"id": row.id})

    @activity.defn
    async def categorise_import(self, req: ImportRef) -> int:
        """The rules applied, set-based, to this import's lines; again on a retry changes nothing more."""
        async with self.db.session() as session, session.begin():
            row = await session.get(TransactionImport, req.import_id)
            assert row is not None
            if row.status != ImportStatus.running:
                return 0
            return await categorise.apply_rules(session, row.user_id, import_id=row.id)

    @activity.defn
    async def finish_import(self, req: ImportRef) -> ImportProgress:
        async with self.db.session() as session, session.begin():
            row = await session.get(TransactionImport, req.import_id, with_for_update=True)
            assert row is not None
            if row.status == ImportStatus.running:
                row.status, row.finished_at = ImportStatus.completed, datetime.now(UTC)
            evaluate = row.status == ImportStatus.completed and await money_events.has_something_to_evaluate(
                session, row.user_id
            )
        await self.forget_counts(row)
        await self.discard_upload(row)
        if evaluate and self.client is not None:
            # The member's budgets, alerts and rewards see the new lines (a retry signals again: evaluation is
            # idempotent).
            await money_events.money_changed(self.client, row.user_id, "import", str(row.id), self.settings)
        return ImportProgress(**progress_of(row))

    @activity.defn
    async def notify_import(self, req: ImportRef) -> int:
        """The member told once (in-app and email) how their import went: the dedupe key is the import's."""
        async with self.db.session() as session:
            row = await session.get(TransactionImport, req.import_id)
            assert row is not None
        link = f"{self.settings.public_base_url.rstrip('/')}/api/v1/transaction-imports/{row.id}"
        return await self.notifications.notify_users(
            NotifyUsers(
                kind="transaction_import",
                template="transaction_import",
                context={
                    **progress_of(row),
                    "completed": row.status == ImportStatus.completed,
                    "filename": row.filename or "your file",
                    "link": link,
                },
                entity_type="transaction_import",
                entity_id=str(row.id),
                dedupe_key=f"transaction-import:{row.id}",
                user_ids=[row.user_id],
            )
        )
