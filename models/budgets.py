"""Budgets: an amount per organization, report line (a GL account's code or a member control line such as
MEMBER-LOAN, as finance/reports.py names them) and month, compared with the ledger by the budget variance report.
Every change is audited (core/audit.py); maker-checker on changes comes later."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class Budget(SQLModel, table=True):
    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("org_id", "line_key", "period", name="budgets_once"),
        CheckConstraint("extract(day FROM period) = 1", name="budgets_period_is_a_month"),
    )
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    line_key: str = Field(max_length=40)
    period: date  # the month's first day
    amount: Decimal = money()  # on the line's normal side, as the statements show it
    updated_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()
