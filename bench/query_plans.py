"""The plans of the statements an endpoint really runs: the API app is run in this process, each request goes
through it (httpx's ASGI transport), every SELECT its engine sends is recorded with its parameters, and EXPLAIN
shows how Postgres would run it on the seeded data."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# A sequential scan of one of these, at the benchmark's size, reads the whole table for one page of a list.
WATCHED = ("payments", "payment_events", "loans", "journal_entries", "postings", "holds", "ledger_accounts")
BIG = 50_000  # rows: below this a sequential scan is the planner's sound choice, not a missing index


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT the engine runs inside the block, as sent (statement, parameters)."""
    statements: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@dataclass(frozen=True)
class Scan:
    relation: str
    node: str  # Seq Scan, Index Scan, Index Only Scan, Bitmap Heap Scan
    index: str | None

    def __str__(self) -> str:
        return f"{self.relation}: {self.node}" + (f" ({self.index})" if self.index else "")


def scans(plan: dict) -> list[Scan]:
    """The scans of watched tables anywhere in an EXPLAIN (FORMAT JSON) plan; a bitmap heap scan names the index
    its bitmap index scan below it used."""
    found = []
    relation = plan.get("Relation Name")
    if relation in WATCHED and plan["Node Type"].endswith("Scan"):
        index = plan.get("Index Name")
        if plan["Node Type"] == "Bitmap Heap Scan":
            index = ",".join(sorted({s.index for s in _bitmap_indexes(plan) if s.index}))
        found.append(Scan(relation, plan["Node Type"], index or None))
    for child in plan.get("Plans", []):
        found.extend(scans(child))
    return found


def _bitmap_indexes(plan: dict) -> list[Scan]:
    out = []
    for child in plan.get("Plans", []):
        if child["Node Type"] == "Bitmap Index Scan":
            out.append(Scan("", child["Node Type"], child.get("Index Name")))
        out.extend(_bitmap_indexes(child))
    return out


async def explain(conn: psycopg.AsyncConnection, statement: str, parameters: Any) -> dict:
    cursor = await conn.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
    row = await cursor.fetchone()
    assert row is not None  # EXPLAIN always answers one row
    document = row[0] if isinstance(row[0], list) else json.loads(row[0])
    plan: dict = document[0]["Plan"]
    return plan


async def table_rows(conn: psycopg.AsyncConnection) -> dict[str, int]:
    """The planner's row estimate of each watched table (pg_class.reltuples, set by ANALYZE)."""
    cursor = await conn.execute(
        "SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s)", (list(WATCHED),)
    )
    return dict(await cursor.fetchall())
