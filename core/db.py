"""Async SQLAlchemy engine and sessions on psycopg 3.

`DATABASE_URL` may be given as `postgresql://...` (as pgserver and most tools print it); we always
drive it through psycopg.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


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


class Database:
    def __init__(self, database_url: str, pool_size: int = 10):
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(database_url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
