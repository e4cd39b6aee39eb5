"""Column helpers shared by the tables: UUID keys, timestamptz, NUMERIC money, JSONB."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, DateTime, Numeric, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

MONEY = Numeric(20, 2)


def utcnow() -> datetime:
    return datetime.now(UTC)


def uuid_pk() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def created_at() -> Any:
    return Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


def timestamp(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def money(nullable: bool = False) -> Any:
    return Field(sa_column=Column(MONEY, nullable=nullable))


def jsonb() -> Any:
    return Field(default=None, sa_column=Column(JSONB, nullable=True))


__all__ = ["MONEY", "Decimal", "created_at", "jsonb", "money", "timestamp", "utcnow", "uuid_pk"]
