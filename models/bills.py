"""Bills a member pays: reminders before the due date, overdue marking, optional auto-pay by ACH debit.

Status: upcoming (due today or later) -> overdue (the daily run, once the due date has passed) -> paid;
processing while an auto-pay ACH debit is in flight (back to processing when a settled debit comes back to be
re-presented; back to upcoming/overdue when it ends returned, failed or reversed); canceled is the soft delete."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class BillStatus(StrEnum):
    upcoming = "upcoming"
    overdue = "overdue"
    processing = "processing"  # an auto-pay debit is on its way
    paid = "paid"
    canceled = "canceled"


# A bill still to be paid: editable, reminded, payable.
DUE_STATUSES = frozenset({BillStatus.upcoming, BillStatus.overdue})


class Bill(SQLModel, table=True):
    __tablename__ = "bills"
    __table_args__ = (
        CheckConstraint("amount > 0", name="bills_amount_positive"),
        CheckConstraint("status IN ('upcoming','overdue','processing','paid','canceled')", name="bills_status_valid"),
        CheckConstraint(
            "NOT autopay OR (external_account_id IS NOT NULL AND account_id IS NOT NULL)", name="bills_autopay_accounts"
        ),
        # The daily run's keyset scans: by status and due date, in id order.
        Index("bills_run", "status", "due_date", "id"),
    )
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    payer_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    payee_name: str = Field(max_length=200)
    amount: Decimal = money()
    due_date: date
    memo: str = Field(default="", max_length=500)
    status: str = Field(default=BillStatus.upcoming, max_length=16)
    autopay: bool = False
    external_account_id: uuid.UUID | None = Field(default=None, foreign_key="external_accounts.id")  # debited
    account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id")  # credited
    # The latest auto-pay debit: its id is derived from the bill and due date and set before the payment row
    # exists (the ACH activity writes that row next), hence no foreign key.
    payment_id: uuid.UUID | None = None
    paid_at: datetime | None = timestamp()
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class BillReminder(SQLModel, table=True):
    """A scheduled reminder claimed by the daily run, in the transaction that writes its notification and email:
    one per bill, due date and offset, however often the run repeats or crashes. (A rescheduled bill is
    reminded again for its new due date.)"""

    __tablename__ = "bill_reminders"
    __table_args__ = (UniqueConstraint("bill_id", "due_date", "offset_days", name="bill_reminders_once"),)
    id: uuid.UUID = uuid_pk()
    bill_id: uuid.UUID = Field(foreign_key="bills.id", index=True)
    due_date: date
    offset_days: int  # days before the due date; 0 is the due day
    run_day: date
    created_at: datetime = created_at()


# Workflow and activity arguments.


class BillRunInput(BaseModel):
    """The daily run. A schedule gives only the time zone; `day` None is the schedule's local day."""

    day: date | None = None
    timezone: str = "America/New_York"
    # Continue-as-new state: what is done already.
    stage: str = "overdue"  # overdue -> reminders -> autopay
    after_id: uuid.UUID | None = None
    totals: dict[str, int] = {}
    max_batches: int = 200  # per run before continuing as new (small in tests, to exercise it)


class BillBatch(BaseModel):
    day: date
    after_id: uuid.UUID | None = None  # keyset: the last bill (member, in the due_alerts stage) of the previous batch


class BatchResult(BaseModel):
    processed: int  # bills looked at in this batch
    done: int  # bills marked overdue, reminder emails sent, or auto-pays started
    last_id: uuid.UUID | None = None  # None: no more batches


class BillRunResult(BaseModel):
    day: date
    overdue_marked: int
    reminders_sent: int
    autopays_started: int
    due_alerts_signalled: int = 0  # members whose bill_due subscriptions were evaluated


class AutopayInput(BaseModel):
    bill_id: uuid.UUID
    due_date: date
    late_return_window_seconds: float  # after completion a late return still puts the bill back to due


class AutopayStart(BaseModel):
    """What begin_autopay found: None payment when the bill is no longer one to auto-pay."""

    bill_id: uuid.UUID
    payment_id: uuid.UUID | None = None
    amount: Decimal | None = None
    account_id: uuid.UUID | None = None
    external_account_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None
    payer_id: uuid.UUID | None = None
    payee_name: str = ""
    reason: str | None = None


class AutopayOutcome(BaseModel):
    bill_id: uuid.UUID
    due_date: date
    payment_id: uuid.UUID
    status: str  # the payment's: settled, completed, returned, failed, canceled, reversed
    return_code: str | None = None
    failure_reason: str | None = None
    represent: bool = False  # returned, and to be presented again: the bill waits for that presentment
    presentment: int = 1
