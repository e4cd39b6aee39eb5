"""Async SQLAlchemy engine and sessions on psycopg 3.

`DATABASE_URL` may be given as `postgresql://...` (as pgserver and most tools print it); we always
drive it through psycopg.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import TextClause, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from core.cache.commit_hook import CACHE_INFO
from core.cache.store import Cache


def sqlalchemy_url(database_url: str) -> str:
    if not database_url:
        raise RuntimeError("DATABASE_URL is not set (make run and make test set it for you)")
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise RuntimeError(f"unsupported DATABASE_URL scheme: {database_url.split(':', 1)[0]}")


def libpq_url(database_url: str) -> str:
    """The same URL as plain libpq understands it (psql, psycopg.connect)."""
    return sqlalchemy_url(database_url).replace("postgresql+psycopg://", "postgresql://", 1)


def _engine(database_url: str, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(database_url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


PSYCOPG = psycopg_dialect()


def psycopg_sql(statement: TextClause) -> str:
    """`statement` as a psycopg connection runs it, compiled by SQLAlchemy's own psycopg dialect: `:name` becomes
    `%(name)s` and a literal `%` is doubled (a hand-made replace of the names would miss both)."""
    return str(statement.compile(dialect=PSYCOPG))


async def execute_planned_afresh(session: AsyncSession, statement: TextClause, params: dict[str, Any]) -> Any:
    """The one row of `statement`, run in the session's transaction as an unnamed statement that is never prepared,
    so Postgres plans it for these values each time. For batch statements run many times on one connection with a
    keyset cursor: psycopg prepares a statement from its 5th run and Postgres may then keep a generic plan that
    reads every row before the cursor (`:after IS NULL OR id > :after` is a filter, not an index range) and guesses
    the batch size. Forcing custom plans with plan_cache_mode instead also re-plans, row by row, the lookups of the
    foreign-key and ledger triggers the statement fires: 3 to 4 times their cost (bench/notes/interest_posting.md)."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # a pooled connection checked out by the session
    async with driver.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(psycopg_sql(statement), params, prepare=False)
        return await cursor.fetchone()


# Connections (and as many overflow) of the pool that cache misses read on.
CACHE_POOL_SIZE = 2


class Database:
    """Sessions on the primary, and read-only sessions on the read replica (`read_url`), or on the primary when
    there is none; `cache` holds the process's reference data (core/cache), off when not given. Its writes through
    `session()` drop their cached rows at commit (core/cache/commit_hook.py).

    What the cache loads is read on a small pool of its own (`cache_session()`): committed rows only, never the
    caller's transaction, and a caller that holds a connection of the main pool never waits on that same pool for a
    second one (with every main connection taken, that wait would never end)."""

    def __init__(self, database_url: str, pool_size: int = 10, read_url: str = "", cache: Cache | None = None):
        self.engine: AsyncEngine = _engine(database_url, pool_size)
        self.cache = cache if cache is not None else Cache(ttl_seconds=0)
        self.sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, info={CACHE_INFO: self.cache}
        )
        self.cache_engine = _engine(database_url, CACHE_POOL_SIZE)
        self.cache_sessions = async_sessionmaker(self.cache_engine, class_=AsyncSession, expire_on_commit=False)
        self.read_engine = _engine(read_url, pool_size) if read_url else self.engine
        self.read_sessions = async_sessionmaker(self.read_engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """For reads that write nothing after (lists, reports): a replica lags the primary by a moment, so what a
        request has just written is read back from `session()`. Read-only on the primary too, so that a write
        slipped into a read path fails in every test, not only where a replica is configured."""
        async with self.read_sessions() as session:
            await session.execute(text("SET TRANSACTION READ ONLY"))
            yield session

    @asynccontextmanager
    async def cache_session(self) -> AsyncIterator[AsyncSession]:
        async with self.cache_sessions() as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
        await self.cache_engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
