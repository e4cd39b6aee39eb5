"""ACH plumbing: cutoff windows, NACHA files sent to the ODFI, their entries, and the bank's webhook events."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import created_at, jsonb, money, timestamp, uuid_pk


class AchWindow(SQLModel, table=True):
    """One cutoff window. Closing it (under a row lock) is what freezes the payments queued for it."""

    __tablename__ = "ach_windows"
    id: str = Field(primary_key=True, max_length=40)  # e.g. 2026-11-23T14:45-05:00
    cutoff_at: datetime = timestamp(nullable=False)
    same_day: bool
    effective_date: date
    status: str = Field(default="open", max_length=16)  # open, closed
    file_id: uuid.UUID | None = None
    created_at: datetime = created_at()


class AchFile(SQLModel, table=True):
    """A NACHA file. Its text holds account numbers and names: it is stored only encrypted (core/ach_files.py)."""

    __tablename__ = "ach_files"
    __table_args__ = (UniqueConstraint("window_id", "sequence", name="ach_files_once_per_window_sequence"),)
    id: uuid.UUID = uuid_pk()
    window_id: str = Field(foreign_key="ach_windows.id", max_length=40)
    sequence: int = 1  # a window's entries fill one file or more (the bank's per-file limits)
    content_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # AES-256-GCM: nonce + ciphertext
    content_key_id: str = Field(max_length=32)  # which FILE_ENCRYPTION_KEYS key encrypted it
    entry_count: int
    total_debit: Decimal = money()
    total_credit: Decimal = money()
    # built -> uploaded; or rejected (the bank refused it) / failed (no answer by the upload deadline, and the bank
    # says it has no such file). A rejected or failed file is never sent again: its payments went back to be queued.
    status: str = Field(default="built", max_length=16)
    odfi_file_id: str | None = Field(default=None, max_length=100)
    uploaded_at: datetime | None = timestamp()
    error: str | None = Field(default=None, max_length=1000)  # the bank's answer to a rejected or failed file
    rejected_at: datetime | None = timestamp()
    created_at: datetime = created_at()


class AchEntry(SQLModel, table=True):
    """One presentment of a payment in a file; the trace number routes the bank's events to the payment."""

    __tablename__ = "ach_entries"
    # However a retry goes, a presentment is one entry sent to the bank. An entry of a file the bank rejected never
    # reached it: the presentment goes again in a later file, with a new trace number, as the same presentment.
    __table_args__ = (
        Index(
            "ach_entries_once_per_presentment",
            "payment_id",
            "presentment",
            unique=True,
            postgresql_where=text("NOT rejected"),
        ),
    )
    trace_number: str = Field(primary_key=True, max_length=15)
    payment_id: uuid.UUID = Field(foreign_key="payments.id", index=True)
    file_id: uuid.UUID = Field(foreign_key="ach_files.id", index=True)
    presentment: int
    amount: Decimal = money()
    transaction_code: int
    # Its file never reached the bank (rejected, or failed at the upload deadline).
    rejected: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    created_at: datetime = created_at()


class AchPrenote(SQLModel, table=True):
    """The prenote (zero-dollar entry) an organization that requires one sends before the first live debit to a new
    external account: queued for a window, sent in its file; the debit waits until `clears_at` (the window's cutoff
    plus ACH_PRENOTE_WAIT) has passed without a return. A return disables the account as its R-code says."""

    __tablename__ = "ach_prenotes"
    __table_args__ = (
        UniqueConstraint("external_account_id", name="ach_prenotes_once_per_account"),
        UniqueConstraint("trace_number", name="ach_prenotes_trace_number_key"),
        CheckConstraint("status IN ('queued','sent','returned')", name="ach_prenotes_status_valid"),
    )
    id: uuid.UUID = uuid_pk()
    external_account_id: uuid.UUID = Field(foreign_key="external_accounts.id")
    window_id: str = Field(foreign_key="ach_windows.id", index=True, max_length=40)
    status: str = Field(default="queued", max_length=16, sa_column_kwargs={"server_default": "queued"})
    clears_at: datetime = timestamp(nullable=False)
    trace_number: str | None = Field(default=None, max_length=15)
    file_id: uuid.UUID | None = Field(default=None, foreign_key="ach_files.id")
    transaction_code: int | None = None
    return_code: str | None = Field(default=None, max_length=3)
    created_at: datetime = created_at()


class BankEventStatus(StrEnum):
    pending = "pending"  # recorded; not yet handed to the payment's workflow
    delivered = "delivered"  # signalled to the payment's open workflow, which takes it or sets it aside
    applied = "applied"  # applied by policy, the payment's workflow having ended: a late return reversed it
    exception = "exception"  # nobody could take it: on the operators' exception list
    resolved = "resolved"  # an operator closed the exception, with a note


class BankEvent(SQLModel, table=True):
    """Webhook events from the bank, recorded once each by the bank's event id: the outbox from which each is
    delivered to its payment's workflow (activities/bank_events.py)."""

    __tablename__ = "bank_events"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','delivered','applied','exception','resolved')", name="bank_events_status_valid"
        ),
    )
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    event_id: str = Field(unique=True, max_length=100)
    type: str = Field(max_length=40)
    trace_number: str | None = Field(default=None, max_length=15, index=True)
    payload: dict | None = jsonb()
    payment_id: uuid.UUID | None = Field(default=None, foreign_key="payments.id", index=True)  # by the trace number
    status: str = Field(default=BankEventStatus.pending, max_length=16, index=True)
    detail: str | None = Field(default=None, max_length=500)  # why it is an exception, or what the policy did
    signaled_at: datetime | None = timestamp()  # delivered to the payment's workflow
    resolved_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    resolved_at: datetime | None = timestamp()
    resolution_note: str | None = Field(default=None, max_length=1000)
    received_at: datetime = created_at()


class BankEventDelivery(BaseModel):
    event_id: str


class DeliveryOutcome(BaseModel):
    """Where an event went. A late return applied by policy carries what the delivery workflow tells next."""

    status: str
    payment_id: uuid.UUID | None = None
    detail: str | None = None
    org_id: uuid.UUID | None = None
    notice: dict = {}  # the payment_returned email's context
    presentment: int = 1
    return_code: str | None = None
    return_reason: str | None = None
    notify_workflow_id: str | None = None
    notify_reference: str = ""


class SetAsideEvents(BaseModel):
    """Events a payment's workflow cannot take, for the exception list."""

    payment_id: uuid.UUID
    event_ids: list[str]
    reason: str


class BankEventSweepInput(BaseModel):
    interval_seconds: float  # between sweeps; 0: sweep once and end (an operator's or a test's run)
    rounds_before_continue: int = 100  # sweeps per run before it continues as new


class Notification(SQLModel, table=True):
    """In-app notifications; the dedupe key makes each one exist once per user whatever retries happen."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("user_id", "dedupe_key", name="notifications_once_per_user"),)
    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=60)
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    entity_type: str | None = Field(default=None, max_length=40)
    entity_id: str | None = Field(default=None, max_length=100)
    dedupe_key: str = Field(max_length=200)
    read_at: datetime | None = timestamp()
    created_at: datetime = created_at()


class EmailOutbox(SQLModel, table=True):
    """Every email once: written before sending, marked sent after, so a retry never sends it twice
    (unless the SMTP server accepted it and we crashed before marking: at-least-once at that one point)."""

    __tablename__ = "email_outbox"
    id: uuid.UUID = uuid_pk()
    dedupe_key: str = Field(unique=True, max_length=200)
    to_address: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(default="pending", max_length=16)  # pending, sent, rejected (a permanent 5xx refusal)
    error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = timestamp()
    redacted_at: datetime | None = timestamp()  # retention blanked the bodies; the row stays, its key still dedupes
    created_at: datetime = created_at()


class AchTraceCounter(SQLModel, table=True):
    """A single row: the next 7-digit trace sequence. Files reserve a contiguous block of it atomically."""

    __tablename__ = "ach_trace_counter"
    id: int = Field(primary_key=True)
    next_sequence: int = Field(sa_column=Column(BigInteger, nullable=False))
