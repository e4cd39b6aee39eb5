"""Where a transaction-import chunk's time goes (`python -m bench import_bench --import-profile N`): the statements
of `load_chunk` (activities/transaction_imports.py, its own SQL) replayed chunk by chunk against the benchmark's
Postgres into one import, each step timed, the last chunk's INSERT under EXPLAIN (ANALYZE, BUFFERS, WAL) for its
triggers (the foreign keys) and its WAL. The steps run one after the other here; in the import, a chunk's parsing
and counts are done while the chunk before it inserts. The activity, its workflow task and the read of the sealed
upload are not in it: the end-to-end figure minus these is what they cost."""

import asyncio
import statistics
import time
import uuid

import httpx
import psycopg
from sqlalchemy import text as sa_text

from activities import transaction_imports as chunk_sql
from activities.transaction_imports import ReadChunk, TransactionImportActivities
from bench.stack import Stack
from core.db import Database, libpq_url
from domain import categorise
from domain.import_csv import parse_chunk

INSERT = "INSERT ... ON CONFLICT into imported_transactions"
PARSE = "parse in Python (csv, checks, sha256 of each identity)"
COUNTS = "the chunk's occurrence counts: a set of its own, COPYed (ahead: another connection)"
HEADER = ["date", "amount", "description", "merchant", "currency"]


async def profile_chunks(
    http: httpx.AsyncClient, stack: Stack, member: dict, account_id: str, chunks: int, lines: int, line
) -> str:
    import_id = await an_import(http, stack, member, account_id, line)
    url = libpq_url(stack.database_url)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (
            await conn.execute("SELECT org_id, user_id FROM transaction_imports WHERE id = %s", [import_id])
        ).fetchone()
        await conn.execute("UPDATE transaction_imports SET status = 'running' WHERE id = %s", [import_id])
        await conn.commit()
    assert row is not None
    params = {"import_id": import_id, "org_id": row[0], "user_id": row[1], "external_account_id": account_id}
    steps: dict[str, list[float]] = {}
    plan: list[str] = []

    def took(step: str, began: float) -> float:
        now = time.monotonic()
        steps.setdefault(step, []).append(now - began)
        return now

    for chunk in range(chunks):
        first = 10_000_000 + chunk * lines
        began = time.monotonic()
        text = "".join(line(i) for i in range(first, first + lines))
        parsed = parse_chunk(text, 2 + chunk * lines, HEADER, account_id, frozenset())
        at = took(PARSE, began)
        read = ReadChunk(0, 2 + chunk * lines, HEADER, frozenset(), len(text), lines, parsed, None, HEADER)
        async with await psycopg.AsyncConnection.connect(url) as conn, conn.cursor() as cur:
            await TransactionImportActivities.write_count_set(cur, import_id, read)
            await conn.commit()
        at = took(COUNTS, at)
        async with await psycopg.AsyncConnection.connect(url) as conn, conn.cursor() as cur:
            await cur.execute(chunk_sql.STAGE)
            await cur.execute("SET LOCAL work_mem = '64MB'")
            async with cur.copy("COPY import_stage FROM STDIN") as copy:
                await copy.write(parsed.copy_rows.encode())
            at = took("COPY into the staging table", at)
            load = {**params, "first_line": read.line_no}
            if chunk == chunks - 1:
                await cur.execute("EXPLAIN (ANALYZE, BUFFERS, WAL) " + chunk_sql.LOAD, load)
                plan = [r[0] for r in await cur.fetchall()]
            else:
                await cur.execute(chunk_sql.LOAD, load)
            at = took(INSERT, at)
            await cur.execute(chunk_sql.COMMIT_SET, {**params, "first_line": read.line_no})
            await cur.execute(chunk_sql.REJECT, params)
            await conn.commit()
            took("the set marked committed, rejections, commit", at)
    ending = await time_the_end(stack, import_id, row[1])
    out = [f"  one import, {chunks} chunks of {lines:,} lines (median seconds a chunk):"]
    out += [f"    {statistics.median(times):6.3f}  {step}" for step, times in steps.items()]
    out.append("  each chunk's INSERT, in order: " + " ".join(f"{t:.2f}" for t in steps[INSERT]))
    serial = sum(statistics.median(times) for step, times in steps.items() if step not in (PARSE, COUNTS))
    out.append(
        f"    {serial:6.3f}  in the chunk's transaction = {lines / serial * 60:,.0f} rows/min for these steps alone"
        " (the parsing and the counts of the next chunk overlap it: read ahead on the other core)"
    )
    out.append(f"  the import's end, once ({chunks * lines:,} lines):")
    out += [f"    {seconds:6.3f}  {step}" for step, seconds in ending.items()]
    out.append("  the last chunk's INSERT, EXPLAIN (ANALYZE, BUFFERS, WAL):")
    out += [f"    {p}" for p in plan if "Trigger" in p or "WAL" in p or "Execution" in p or "Insert" in p]
    return "\n".join(out)


async def time_the_end(stack: Stack, import_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, float]:
    """Seconds of each of the import's last steps (categorise_import, finish_import's statements)."""
    db = Database(stack.database_url, pool_size=1)
    took: dict[str, float] = {}
    try:
        began = time.monotonic()
        async with db.session() as session, session.begin():
            await categorise.apply_rules(session, user_id, import_id=import_id)
        took["the rules applied to the import's lines (categorise_import)"] = time.monotonic() - began
        began = time.monotonic()
        async with db.session() as session, session.begin():
            for statement in chunk_sql.FORGET_COUNTS:
                await session.execute(sa_text(statement), {"id": import_id})
        took["the occurrence counts forgotten (finish_import, once the import is marked ended)"] = (
            time.monotonic() - began
        )
    finally:
        await db.close()
    return took


async def an_import(http: httpx.AsyncClient, stack: Stack, member: dict, account_id: str, line) -> uuid.UUID:
    """An import row of the member's account (a one-line file imported through the API)."""
    response = await http.post(
        "/api/v1/transaction-imports",
        headers={**member, "Idempotency-Key": uuid.uuid4().hex},
        files={"file": ("one.csv", ",".join(HEADER) + "\n" + line(0), "text/csv")},
        data={"external_account_id": account_id},
    )
    response.raise_for_status()
    import_id = response.json()["id"]
    for _ in range(300):
        if (await http.get(f"/api/v1/transaction-imports/{import_id}", headers=member)).json()["status"] != "running":
            return uuid.UUID(import_id)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the one-line import {import_id} did not end within a minute")
