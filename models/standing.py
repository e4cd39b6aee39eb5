"""Standing instructions: a recurring book transfer (migration 0029) or ACH credit or debit (0035), each its own
Temporal Schedule whose runs (StandingInstructionRunWorkflow) pay with deterministic payment ids."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class InstructionStatus(StrEnum):
    active = "active"
    paused = "paused"
    canceled = "canceled"


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


class InstructionKind(StrEnum):
    book = "book"
    ach_credit = "ach_credit"  # pushed to a linked external account
    ach_debit = "ach_debit"  # pulled from a linked external account


class StandingInstruction(SQLModel, table=True):
    __tablename__ = "standing_instructions"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    created_by: uuid.UUID = Field(foreign_key="users.id", index=True)
    idempotency_key: str = Field(max_length=250, unique=True)
    # book: both internal accounts; ach_credit: from_account_id to external_account_id; ach_debit: from
    # external_account_id into to_account_id (the sides a payment's own row uses; migration 0035's CHECK).
    kind: str = Field(default="book", max_length=16, sa_column_kwargs={"server_default": "book"})
    from_account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id")
    to_account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id")
    external_account_id: uuid.UUID | None = Field(default=None, foreign_key="external_accounts.id")
    amount: Decimal = money()
    memo: str = Field(default="", max_length=140)
    frequency: str | None = Field(default=None, max_length=20)
    every_seconds: int | None = None
    day: int | None = None  # weekly: the weekday (0 Sunday); monthly: the day of the month; None: the start's
    start_at: datetime | None = timestamp()
    end_at: datetime | None = timestamp()
    count: int | None = None
    status: str = Field(max_length=20)
    schedule_id: str = Field(max_length=200)
    created_at: datetime = created_at()
    canceled_at: datetime | None = timestamp()


class StandingInstructionRun(SQLModel, table=True):
    __tablename__ = "standing_instruction_runs"
    instruction_id: uuid.UUID = Field(foreign_key="standing_instructions.id", primary_key=True)
    scheduled_for: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    attempt: int = Field(primary_key=True)
    payment_id: uuid.UUID | None = None
    status: str = Field(max_length=20)
    failure_code: str | None = Field(default=None, max_length=60)
    failure_reason: str | None = Field(default=None, max_length=500)
    at: datetime = created_at()


class StandingRunInput(BaseModel):
    """The schedule's argument, the same for every run: the run's time comes from the schedule itself."""

    instruction_id: uuid.UUID
    attempts: int = 3  # tries of one run before its failure is notified (insufficient funds may clear)
    retry_after_seconds: float = 3600.0


class StandingRunStep(BaseModel):
    instruction_id: uuid.UUID
    scheduled_for: datetime
    attempt: int


class StandingRunOutcome(BaseModel):
    # completed, failed, skipped (the instruction is no longer active); an ACH run: initiated (its payment made and
    # its workflow started: the payment's own status tells the rest of its days-long life)
    status: str
    payment_id: uuid.UUID | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
