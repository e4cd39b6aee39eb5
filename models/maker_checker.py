"""Maker-checker requests (PRODUCT.md §4.8): a large deposit, withdrawal or book transfer, a manual journal entry or
the close of an organization's accounting period waits for a checker of the organization before it applies
(TransactionApprovalWorkflow, an ApprovalWorkflow child). Migration 0032."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class MakerCheckerKind(StrEnum):
    deposit = "deposit"
    withdrawal = "withdrawal"
    book_transfer = "book_transfer"
    journal_entry = "journal_entry"
    period_close = "period_close"
    budget_change = "budget_change"  # an organization's budget of a report line for a month (migration 0036)


class MakerCheckerStatus(StrEnum):
    pending_approval = "pending_approval"
    completed = "completed"  # approved and applied: the entry posted (journal_entry_id) or the period closed
    rejected = "rejected"  # by the checker, or the approval's deadline passed (its outcome: decline)
    failed = "failed"  # approved, but the ledger refused it (an account closed since, a period closed): kept why


class MakerCheckerRequest(SQLModel, table=True):
    __tablename__ = "maker_checker_requests"
    id: uuid.UUID = uuid_pk()
    kind: str = Field(max_length=20)
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    requested_by: uuid.UUID = Field(foreign_key="users.id")
    idempotency_key: str = Field(max_length=250, unique=True)  # the maker's id, the kind and their Idempotency-Key
    request_hash: str = Field(max_length=64)
    amount: Decimal = money()  # what moves (a manual entry: its debits); 0 for a period close
    account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id", index=True)
    counter_account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id")
    description: str = Field(max_length=500)
    effective_date: date | None = None  # a manual entry's
    legs: list | None = Field(default=None, sa_column=Column(JSONB, nullable=True))  # a manual entry's postings
    period_start: date | None = None
    period_end: date | None = None
    budget_line: str | None = Field(default=None, max_length=60)  # a budget change's report line (period_start: month)
    status: str = Field(default=MakerCheckerStatus.pending_approval, max_length=20, index=True)
    hold_id: uuid.UUID | None = Field(default=None, foreign_key="holds.id")
    approval_request_id: uuid.UUID | None = None
    journal_entry_id: uuid.UUID | None = Field(default=None, foreign_key="journal_entries.id", unique=True)
    closed_period_id: uuid.UUID | None = Field(default=None, foreign_key="closed_periods.id")
    failure: str | None = Field(default=None, max_length=500)
    workflow_id: str = Field(max_length=200, unique=True)
    created_at: datetime = created_at()
    closed_at: datetime | None = timestamp()


class MakerCheckerInput(BaseModel):
    request_id: uuid.UUID


class MakerCheckerOutcome(BaseModel):
    request_id: uuid.UUID
    status: MakerCheckerStatus
    journal_entry_id: uuid.UUID | None = None
    closed_period_id: uuid.UUID | None = None
    failure: str | None = None
