"""Payments: book transfers now, ACH debits and credits next. One workflow per payment (`payment-<id>`)."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Identity, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import created_at, jsonb, money, timestamp, uuid_pk


class PaymentKind(StrEnum):
    book = "book"
    ach_debit = "ach_debit"
    ach_credit = "ach_credit"


class PaymentStatus(StrEnum):
    created = "created"
    validated = "validated"
    funds_held = "funds_held"
    queued = "queued"
    submitted = "submitted"
    pending_settlement = "pending_settlement"
    settled = "settled"
    completed = "completed"
    canceled = "canceled"
    failed = "failed"
    returned = "returned"
    reversed = "reversed"


# No further transition but a late return (completed -> reversed).
FINAL_STATUSES = frozenset(
    {
        PaymentStatus.completed,
        PaymentStatus.canceled,
        PaymentStatus.failed,
        PaymentStatus.returned,
        PaymentStatus.reversed,
    }
)
CANCELABLE_STATUSES = frozenset(
    {PaymentStatus.created, PaymentStatus.validated, PaymentStatus.funds_held, PaymentStatus.queued}
)


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        # The Idempotency-Key is scoped to the caller, as a card network scopes it to the merchant.
        UniqueConstraint("created_by", "idempotency_key", name="payments_idempotency_key"),
        CheckConstraint("amount > 0", name="payments_amount_positive"),
        CheckConstraint("kind IN ('book','ach_debit','ach_credit')", name="payments_kind_valid"),
    )
    id: uuid.UUID = uuid_pk()
    kind: str = Field(max_length=16)
    status: str = Field(default=PaymentStatus.created, max_length=24, index=True)
    amount: Decimal = money()
    currency: str = Field(default="USD", max_length=3)
    from_account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id", index=True)
    to_account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id", index=True)
    memo: str = Field(default="", max_length=140)
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)
    created_by: uuid.UUID = Field(foreign_key="users.id")
    idempotency_key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)  # the same key with another body is a conflict
    workflow_id: str = Field(unique=True, max_length=200)
    journal_entry_id: uuid.UUID | None = Field(default=None, foreign_key="journal_entries.id")
    # ACH only
    external_account_id: uuid.UUID | None = Field(default=None, foreign_key="external_accounts.id", index=True)
    sec_code: str | None = Field(default=None, max_length=3)
    same_day: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    window_id: str | None = Field(default=None, max_length=40, index=True)  # the cutoff window it is queued for
    trace_number: str | None = Field(default=None, max_length=15, index=True)  # of the latest presentment
    presentments: int = Field(
        default=0, sa_column_kwargs={"server_default": text("0")}
    )  # 1 for the original entry, +1 for each re-presentment
    effective_date: date | None = None
    settlement_date: date | None = None
    return_code: str | None = Field(default=None, max_length=3)
    failure_code: str | None = Field(default=None, max_length=40)
    failure_reason: str | None = Field(default=None, max_length=500)
    # A parent workflow (a loan, a bill's auto-pay) told of each step: kept here so that a return handled after
    # the payment's own workflow ended still reaches it.
    notify_workflow_id: str | None = Field(default=None, max_length=200)
    notify_reference: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class PaymentEvent(SQLModel, table=True):
    """Every transition of a payment, written once each (event_key is unique per payment)."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("payment_id", "event_key", name="payment_events_once"),)
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    payment_id: uuid.UUID = Field(sa_column=Column(ForeignKey("payments.id"), nullable=False, index=True))
    event_key: str = Field(max_length=80)
    status: str = Field(max_length=24)
    detail: dict | None = jsonb()
    at: datetime = created_at()


# Workflow and activity arguments: one pydantic model each, so fields can be added later.


class BookTransferInput(BaseModel):
    payment_id: uuid.UUID
    amount: Decimal
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    org_id: uuid.UUID | None = None


class PaymentOutcome(BaseModel):
    payment_id: uuid.UUID
    status: str
    journal_entry_id: uuid.UUID | None = None
    failure_code: str | None = None
    failure_reason: str | None = None


class AchPaymentInput(BaseModel):
    payment_id: uuid.UUID
    kind: PaymentKind
    amount: Decimal
    # Business durations come with the input (workflows read no configuration), so tests run them in seconds.
    return_window_seconds: float
    late_return_window_seconds: float
    max_representments: int
    # A parent business workflow (a loan, a bill) told of each step by a `payment_progress` signal.
    notify_workflow_id: str | None = None
    notify_reference: str = ""


class AchChildPayment(BaseModel):
    """An ACH payment a workflow makes on its own (a loan's disbursement or auto-debit, a bill's auto-pay).
    Its id is derived from the business key by the caller, so a replay or a second run finds the same payment."""

    payment_id: uuid.UUID
    kind: PaymentKind
    amount: Decimal
    account_id: uuid.UUID  # the internal account: debited by a credit, credited by a debit
    external_account_id: uuid.UUID
    org_id: uuid.UUID
    created_by: uuid.UUID  # the member the payment is made for
    idempotency_key: str  # unique per created_by, like an API caller's key
    memo: str = ""
    summary: str = ""
    notify_workflow_id: str | None = None
    notify_reference: str = ""  # given back in every progress signal (e.g. "installment:3")


class PaymentProgress(BaseModel):
    """A step of a child ACH payment, signalled to its parent: settled, completed, returned to be re-presented
    (status "returned" with represent=True: not an end, the next presentment's "settled"/"completed" or its end
    follows), or a final state: returned, failed, canceled, reversed (a return after completion)."""

    payment_id: uuid.UUID
    reference: str
    status: str
    return_code: str | None = None
    failure_reason: str | None = None
    represent: bool = False  # a return that the payment re-presents: not its end
    presentment: int = 1  # which presentment this step is about


class QueuedPayment(BaseModel):
    status: str
    window_id: str | None = None
    cutoff_at: datetime | None = None
    effective_date: date | None = None
    failure_reason: str | None = None  # when it is not queued because it failed (e.g. its file was rejected)


class SubmittedSignal(BaseModel):
    trace_number: str
    presentment: int
    file_id: uuid.UUID


class FileRejectedSignal(BaseModel):
    """The file a presentment was in never reached the bank (rejected, or given up at the upload deadline): the
    batch has already put the payment back in a queue, or failed it, by policy; the payment reads which."""

    file_id: uuid.UUID
    presentment: int
    error: str = ""


class BankEventSignal(BaseModel):
    event_id: str
    type: str  # entry.settled | entry.returned
    trace_number: str
    settlement_date: date | None = None
    return_code: str | None = None
    return_reason: str | None = None


class PresentmentRef(BaseModel):
    payment_id: uuid.UUID
    presentment: int
    trace_number: str | None = None
    settlement_date: date | None = None
    event_id: str | None = None  # the bank event this step takes (marked delivered with it)


class ReturnInput(BaseModel):
    payment_id: uuid.UUID
    presentment: int
    return_code: str
    return_reason: str
    settled: bool
    completed: bool
    max_representments: int
    event_id: str | None = None  # the bank event this return takes (marked delivered with it)


class ReturnOutcome(BaseModel):
    status: str
    represent: bool
    org_id: uuid.UUID | None = None
    notice: dict = {}  # the payment_returned email's context


class CancelRequest(BaseModel):
    payment_id: uuid.UUID
    actor: str
    actor_id: uuid.UUID | None = None


class AchBatchInput(BaseModel):
    window_id: str
    cutoff_at: datetime
    # How long the upload may go unanswered (5xx, timeouts) before the file is given up; None: never.
    upload_deadline_seconds: float | None = None


class UploadOutcome(BaseModel):
    status: str  # uploaded, rejected (the bank refused the file), failed (given up at the deadline)
    odfi_file_id: str | None = None
    error: str | None = None


class UnansweredUpload(BaseModel):
    file_id: uuid.UUID
    error: str


class ReleasedFile(BaseModel):
    """What became of the payments of a file that never reached the bank."""

    policy: str  # requeue or fail
    entries: int


class BuiltEntry(BaseModel):
    payment_id: uuid.UUID
    workflow_id: str
    trace_number: str
    presentment: int


class BuiltFile(BaseModel):
    file_id: uuid.UUID
    entries: list[BuiltEntry]


class DroppedEntry(BaseModel):
    """A queued payment the cutoff failed instead of filing (its external account can no longer take it)."""

    workflow_id: str
    presentment: int
    reason: str


class BuiltWindow(BaseModel):
    """The files of one cutoff window (several when the bank's per-file limits are reached), and the payments failed
    at the cutoff, each told like a payment of a rejected file (`dropped_id` stands for the file)."""

    file_ids: list[uuid.UUID] = []  # in order; each file's entries come with `built_file` (one payload each)
    dropped: list[DroppedEntry] = []
    dropped_id: uuid.UUID | None = None
