"""Alembic runs migrations synchronously over psycopg against DATABASE_URL."""

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import models  # noqa: F401  registers every table on SQLModel.metadata
from core.config import get_settings
from core.db import sqlalchemy_url

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=sqlalchemy_url(get_settings().database_url), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = context.config.attributes.get("database_url") or get_settings().database_url
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
