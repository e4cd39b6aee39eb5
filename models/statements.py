"""Monthly statements: one row per account and month, written once by "MonthlyStatementsWorkflow"; the PDF is
rendered from the ledger on request (documents/statement.py), as of the row's generated_at."""

import re
import uuid
from calendar import monthrange
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Identity, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at, money

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # ASCII digits: \d is any Unicode digit


def period_bounds(period: str) -> tuple[date, date]:
    """'2026-10' -> (2026-10-01, 2026-10-31). ValueError for anything but YYYY-MM."""
    if not re.fullmatch(PERIOD_PATTERN, period):
        raise ValueError(f"a period is YYYY-MM, got {period!r}")
    year, month = int(period[:4]), int(period[5:])
    if year < 1900:
        raise ValueError(f"a period is YYYY-MM, got {period!r}")
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def period_ended(period: str, now: datetime, timezone: str) -> bool:
    """A statement is written once and never again, so only for a month that is over (in `timezone`)."""
    return period_bounds(period)[1] < now.astimezone(ZoneInfo(timezone)).date()


class Statement(SQLModel, table=True):
    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("account_id", "period", name="statements_once_per_period"),
        CheckConstraint("period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name="statements_period_valid"),
    )
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    account_id: uuid.UUID = Field(sa_column=Column(ForeignKey("ledger_accounts.id"), nullable=False))
    period: str = Field(max_length=7)  # YYYY-MM
    period_start: date
    period_end: date
    # Balances on the account's normal side (a deposit's money in is positive), like account_balances.
    opening_balance: Decimal = money()
    closing_balance: Decimal = money()
    interest: Decimal = money()
    entry_count: int
    generated_at: datetime = created_at()


class StatementRunInput(BaseModel):
    """Input of "MonthlyStatementsWorkflow"; `{"timezone": ...}` alone is a scheduled run for last month."""

    period: str | None = PydanticField(default=None, pattern=PERIOD_PATTERN, description="None: the month just ended")
    timezone: str = "America/New_York"
    batch_size: int = PydanticField(default=1000, ge=1, le=50_000)
    notify_owners: bool = True
    batches_per_run: int = PydanticField(default=500, ge=1, description="batches before continue-as-new")
    # Carried over continue-as-new.
    after_account_id: uuid.UUID | None = None
    accounts_done: int = 0
    statements_written: int = 0


class StatementBatch(BaseModel):
    period: str
    timezone: str
    after_account_id: uuid.UUID | None
    limit: int
    notify_owners: bool

    @field_validator("period")
    @classmethod
    def _valid_period(cls, period: str) -> str:
        period_bounds(period)
        return period


class StatementBatchResult(BaseModel):
    accounts: int  # accounts looked at in this batch
    written: int  # statements written now (0 on a re-run)
    last_account_id: uuid.UUID | None


class StatementRunResult(BaseModel):
    period: str
    accounts: int
    statements_written: int
