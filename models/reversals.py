"""Reversals of posted journal entries: each a maker-checker request (ReversalWorkflow, an ApprovalWorkflow child)
that posts the exact opposite entry once, linked to the original (migration 0028)."""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from models.base import created_at, timestamp, uuid_pk


class ReversalStatus(StrEnum):
    pending_approval = "pending_approval"
    posted = "posted"
    rejected = "rejected"  # by the checker, or the approval's deadline passed (its outcome: decline)
    failed = "failed"  # approved, but the ledger refused it (an account closed since): the reason is kept


class EntryReversal(SQLModel, table=True):
    __tablename__ = "entry_reversals"
    id: uuid.UUID = uuid_pk()
    entry_id: uuid.UUID = Field(foreign_key="journal_entries.id", index=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    reason: str = Field(max_length=500)
    requested_by: uuid.UUID = Field(foreign_key="users.id")
    idempotency_key: str = Field(max_length=250, unique=True)  # the maker's id and their Idempotency-Key
    status: str = Field(max_length=20)
    approval_request_id: uuid.UUID | None = None
    reversal_entry_id: uuid.UUID | None = Field(default=None, foreign_key="journal_entries.id", unique=True)
    failure: str | None = Field(default=None, max_length=500)
    workflow_id: str = Field(max_length=200)
    created_at: datetime = created_at()
    closed_at: datetime | None = timestamp()


class ReversalInput(BaseModel):
    reversal_id: uuid.UUID


class ReversalOutcome(BaseModel):
    reversal_id: uuid.UUID
    status: ReversalStatus
    reversal_entry_id: uuid.UUID | None = None
    failure: str | None = None
