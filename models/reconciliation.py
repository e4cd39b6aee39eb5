"""Bank reconciliation (PRODUCT.md §4.8, migration 0030): a bank statement of one ledger account, its lines, and
which ledger postings each line is matched to. One reconciliation per (account, statement identity): re-importing the
same statement finds it again. A posting is matched to one statement line at most, ever (a unique constraint)."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Identity, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class ReconciliationStatus(StrEnum):
    matching = "matching"  # imported; its workflow loads the lines and runs the automatic passes
    open = "open"  # waiting on the operator for what the passes left
    closed = "closed"  # every line matched or explained; nothing changes any more


class LineStatus(StrEnum):
    open = "open"
    matched = "matched"
    explained = "explained"


class MatchKind(StrEnum):
    trace = "trace"  # automatic: trace number + amount + date window
    score = "score"  # automatic: amount + date window + description/counterparty similarity
    manual = "manual"  # an operator: one line to its posting(s)
    split_line = "split"  # an operator: one line to several postings summing to it


class ExplanationCode(StrEnum):
    bank_fee = "bank_fee"
    interest = "interest"
    amount_mismatch = "amount_mismatch"
    timing = "timing"  # in the ledger on another day than the window allows, or still in transit
    bank_error = "bank_error"
    duplicate = "duplicate"
    other = "other"


class Reconciliation(SQLModel, table=True):
    __tablename__ = "reconciliations"
    __table_args__ = (
        UniqueConstraint("account_id", "statement_ref", name="reconciliations_one_per_statement"),
        CheckConstraint("status IN ('matching','open','closed')", name="reconciliations_status_valid"),
    )
    id: uuid.UUID = uuid_pk()
    account_id: uuid.UUID = Field(foreign_key="ledger_accounts.id", index=True)
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)  # the account's
    statement_ref: str = Field(max_length=140)  # the statement's own identity (camt.053 Stmt/Id, a CSV's hash)
    format: str = Field(max_length=16)
    content_hash: str = Field(max_length=64)  # the same identity with other content is refused
    content: str = Field(sa_column=Column(Text, nullable=False))  # the file, which the load activity parses again
    currency: str | None = Field(default=None, max_length=3)
    opening_balance: Decimal | None = money(nullable=True)
    closing_balance: Decimal | None = money(nullable=True)
    period_start: date | None = None
    period_end: date | None = None
    line_count: int
    status: str = Field(default=ReconciliationStatus.matching, max_length=16, index=True)
    workflow_id: str = Field(max_length=200, unique=True)
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
    closed_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    closed_at: datetime | None = timestamp()


class ReconciliationLine(SQLModel, table=True):
    __tablename__ = "reconciliation_lines"
    __table_args__ = (
        UniqueConstraint("reconciliation_id", "line_no", name="reconciliation_lines_once"),
        CheckConstraint("status IN ('open','matched','explained')", name="reconciliation_lines_status_valid"),
        CheckConstraint("amount <> 0", name="reconciliation_lines_amount_nonzero"),
    )
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    reconciliation_id: uuid.UUID = Field(sa_column=Column(ForeignKey("reconciliations.id"), nullable=False))
    line_no: int
    value_date: date
    amount: Decimal = money()  # as the bank sees it: positive money in
    ledger_amount: Decimal = money()  # the posting amount it should match on the account (sign by normal balance)
    description: str = Field(default="", max_length=500)
    reference: str = Field(default="", max_length=140)
    counterparty: str = Field(default="", max_length=200)
    status: str = Field(default=LineStatus.open, max_length=16)
    reason_code: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, max_length=500)
    resolved_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")  # null: the automatic passes
    resolved_at: datetime | None = timestamp()


class ReconciliationMatch(SQLModel, table=True):
    __tablename__ = "reconciliation_matches"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    reconciliation_id: uuid.UUID = Field(sa_column=Column(ForeignKey("reconciliations.id"), nullable=False))
    line_id: int = Field(sa_column=Column(BigInteger, ForeignKey("reconciliation_lines.id"), nullable=False))
    # A posting is on one bank statement line at most: the second match of it is refused by the database.
    posting_id: int = Field(sa_column=Column(BigInteger, ForeignKey("postings.id"), nullable=False, unique=True))
    kind: str = Field(max_length=16)
    score: Decimal | None = None
    created_at: datetime = created_at()


# --- workflow and activity arguments ------------------------------------------------------------------------------


class ReconciliationInput(BaseModel):
    reconciliation_id: uuid.UUID


class ReconciliationParams(ReconciliationInput):
    """The workflow's input: the matching window and least score come from Settings through the API (a workflow
    reads no configuration)."""

    window_days: int
    min_score: Decimal


class LineState(BaseModel):
    line_no: int
    ledger_amount: Decimal
    status: LineStatus


class ReconciliationSnapshot(BaseModel):
    """What the workflow keeps to validate the operator's actions without I/O."""

    status: ReconciliationStatus
    lines: list[LineState]
    matched_by_trace: int = 0
    matched_by_score: int = 0


class AutoMatchInput(BaseModel):
    reconciliation_id: uuid.UUID
    window_days: int
    min_score: Decimal


class ReconciliationAction(BaseModel):
    """An operator's action (a Temporal update): match or split a line to postings (their journal entries on the
    account), explain it, or unmatch it. The API checks the postings first; the activity again under lock."""

    action: Literal["match", "split", "explain", "unmatch"]
    line_no: int
    entry_ids: list[uuid.UUID] = PydanticField(default_factory=list)
    reason_code: ExplanationCode | None = None
    note: str = ""
    actor_id: uuid.UUID
    actor_email: str


class ActionInput(BaseModel):
    reconciliation_id: uuid.UUID
    action: ReconciliationAction


class CloseInput(BaseModel):
    actor_id: uuid.UUID
    actor_email: str


class CloseRequest(BaseModel):
    reconciliation_id: uuid.UUID
    actor_id: uuid.UUID
    actor_email: str


class ReconciliationProgress(BaseModel):
    reconciliation_id: uuid.UUID
    phase: str  # loading, matching, open, closing, closed
    lines: int
    open: int
    matched: int
    explained: int
    matched_by_trace: int
    matched_by_score: int
