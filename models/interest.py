"""Savings products, daily interest accruals, month-end interest postings, and the inputs and results of the
workflows and activities that write them."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import CHAR, CheckConstraint, Column, Date, ForeignKey, Numeric, PrimaryKeyConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import created_at, money, timestamp, uuid_pk

RATE = Numeric(9, 6)  # an annual rate as a fraction: 0.036500 is 3.65 %
ACCRUAL = Numeric(24, 10)  # accruals keep 10 decimals; money is rounded from them only when posted
PERIOD = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # ASCII digits: \d is any Unicode digit


class SavingsProduct(SQLModel, table=True):
    """`tiers` is None for a flat `annual_rate`, else bands [{"up_to": "1000.00" | null, "rate": "0.01"}, ...]
    (finance.interest.TieredRate: each rate on the slice of the balance inside its band)."""

    __tablename__ = "savings_products"
    __table_args__ = (
        CheckConstraint(
            "day_count IN ('actual/365','actual/360','30/360','actual/actual')", name="savings_products_day_count"
        ),
        CheckConstraint("annual_rate >= 0 AND annual_rate < 1", name="savings_products_rate"),
    )
    id: uuid.UUID = uuid_pk()
    name: str = SQLField(unique=True, max_length=120)
    annual_rate: Decimal = SQLField(sa_column=Column(RATE, nullable=False))
    tiers: list | None = SQLField(default=None, sa_column=Column(JSONB(none_as_null=True), nullable=True))
    day_count: str = SQLField(default="actual/365", max_length=16)
    active: bool = True
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class SavingsAccount(SQLModel, table=True):
    """A deposit account that earns interest. The row stays when the product is removed (product_id None):
    month-end still posts what the account accrued before."""

    __tablename__ = "savings_accounts"
    account_id: uuid.UUID = SQLField(sa_column=Column(ForeignKey("ledger_accounts.id"), primary_key=True))
    product_id: uuid.UUID | None = SQLField(
        default=None, sa_column=Column(ForeignKey("savings_products.id"), nullable=True, index=True)
    )
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class InterestAccrual(SQLModel, table=True):
    """One account's interest for one day, on its end-of-day ledger balance."""

    __tablename__ = "interest_accruals"
    __table_args__ = (PrimaryKeyConstraint("account_id", "day", name="interest_accruals_once"),)
    account_id: uuid.UUID = SQLField(sa_column=Column(ForeignKey("ledger_accounts.id"), nullable=False))
    day: date = SQLField(sa_column=Column(Date, nullable=False))
    product_id: uuid.UUID = SQLField(sa_column=Column(ForeignKey("savings_products.id"), nullable=False))
    balance: Decimal = money()
    amount: Decimal = SQLField(sa_column=Column(ACCRUAL, nullable=False))


class AccrualRun(SQLModel, table=True):
    """A day whose accrual ran to the end (every account's row for it written): month-end posting accrues the days
    of its month without one before it posts."""

    __tablename__ = "accrual_runs"
    day: date = SQLField(sa_column=Column(Date, primary_key=True))
    accounts: int
    accrued: Decimal = SQLField(sa_column=Column(ACCRUAL, nullable=False))
    completed_at: datetime = created_at()


class InterestPosting(SQLModel, table=True):
    """The interest of one account for one month, posted once: the sum of its daily accruals rounded half up."""

    __tablename__ = "interest_postings"
    # Period first: a month's postings are one index range (its summary) and its inserts, in account order, append.
    __table_args__ = (
        PrimaryKeyConstraint("period", "account_id", name="interest_postings_once"),
        CheckConstraint("amount > 0", name="interest_postings_amount_positive"),
    )
    account_id: uuid.UUID = SQLField(sa_column=Column(ForeignKey("ledger_accounts.id"), nullable=False))
    period: str = SQLField(sa_column=Column(CHAR(7), nullable=False))
    accrued: Decimal = SQLField(sa_column=Column(ACCRUAL, nullable=False))
    amount: Decimal = money()
    journal_entry_id: uuid.UUID = SQLField(
        sa_column=Column(ForeignKey("journal_entries.id"), nullable=False, unique=True)
    )
    created_at: datetime = created_at()


class InterestPostingRun(SQLModel, table=True):
    """The summary of a period's posting, written once when the last batch is done."""

    __tablename__ = "interest_posting_runs"
    period: str = SQLField(sa_column=Column(CHAR(7), primary_key=True))
    accounts: int
    total: Decimal = money()
    completed_at: datetime = created_at()


# --- workflow and activity types ------------------------------------------------------------------------------


class AccrualRunInput(BaseModel):
    """DailyAccrualWorkflow: `day` None -> the day before the scheduled start in `timezone`."""

    day: date | None = None
    timezone: str = "America/New_York"
    batch_size: int | None = Field(default=None, ge=1)


class AccrualDay(BaseModel):
    day: date
    batch_size: int | None = Field(default=None, ge=1)  # None: the worker's setting


class AccrualResult(BaseModel):
    day: date
    accounts: int  # accounts with an accrual for the day (this run's or an earlier one's)
    accrued: Decimal  # their sum, 10 decimals
    batches: int


class MonthEndInput(BaseModel):
    """MonthEndPostingWorkflow: `period` None -> the month before the scheduled start in `timezone`."""

    period: str | None = Field(default=None, pattern=PERIOD)
    timezone: str = "America/New_York"
    batch_size: int | None = Field(default=None, ge=1)
    continue_as_new_after: int | None = Field(default=None, ge=1)


class PostingProgress(BaseModel):
    accounts_done: int = 0
    accounts_total: int = 0
    posted: int = 0  # accounts with a posting (zero interest is skipped)
    amount_posted: Decimal = Decimal("0.00")
    batches: int = 0


class InterestPostingInput(BaseModel):
    """InterestPostingWorkflow, id `interest-posting-YYYY-MM`. A continued run carries the cursor (the last
    account id done) and the running totals. `timezone` decides when the month is over."""

    period: str = Field(pattern=PERIOD)
    timezone: str = "America/New_York"
    batch_size: int | None = Field(default=None, ge=1)
    continue_as_new_after: int | None = Field(default=None, ge=1)
    after: uuid.UUID | None = None
    progress: PostingProgress | None = None


class PostingPlan(BaseModel):
    accounts_total: int
    batch_size: int
    continue_as_new_after: int


class PostingBatch(BaseModel):
    period: str = Field(pattern=PERIOD)
    after: uuid.UUID | None = None
    batch_size: int = Field(ge=1)


class BatchResult(BaseModel):
    last_account_id: uuid.UUID | None  # None: no accounts were left
    accounts: int
    posted: int  # postings of the batch's accounts for the period, new or earlier
    amount: Decimal
    new_postings: int


class PostingSummary(BaseModel):
    period: str
    accounts: int
    total: Decimal
    recipients: list[uuid.UUID] = Field(default_factory=list)  # operators and superusers to email
