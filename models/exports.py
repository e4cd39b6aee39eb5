"""Exports of a member's data made in the background (migration 0042): a transactions export (`export-<id>`) or a
GDPR export of everything held on the member (`gdpr-export-<id>`), stored sealed, handed out by a signed link."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from models.base import created_at, jsonb, timestamp, uuid_pk


class ExportKind(StrEnum):
    transactions = "transactions"
    gdpr = "gdpr"


class ExportStatus(StrEnum):
    queued = "queued"
    ready = "ready"
    failed = "failed"


class TransactionExport(SQLModel, table=True):
    __tablename__ = "transaction_exports"
    id: uuid.UUID = uuid_pk()
    kind: str = Field(max_length=16)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True)  # the member (GDPR; a filter)
    requested_by: uuid.UUID = Field(foreign_key="users.id", index=True)
    filters: dict[str, Any] | None = jsonb()
    format: str = Field(max_length=8)
    status: str = Field(max_length=16)
    idempotency_key: str | None = Field(default=None, max_length=250, unique=True)
    storage_key: str | None = Field(default=None, max_length=300)
    key_id: str | None = Field(default=None, max_length=64)
    filename: str | None = Field(default=None, max_length=200)
    content_type: str | None = Field(default=None, max_length=100)
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    row_count: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    failure: str | None = Field(default=None, max_length=500)
    workflow_id: str = Field(max_length=200)
    created_at: datetime = created_at()
    finished_at: datetime | None = timestamp()


class ExportInput(BaseModel):
    export_id: uuid.UUID


class ExportOutcome(BaseModel):
    export_id: uuid.UUID
    status: ExportStatus
    failure: str | None = None
