"""Members' budgets and alerts (migration 0039): a member's spending limit per category and period, each threshold
crossing of a budget's period (once), the alerts a member subscribes to and the alerts raised. Not the
organization's `budgets` (models/budgets.py) of the budget variance report."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from sqlalchemy import BigInteger, Column, Identity, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class BudgetPeriod(StrEnum):
    monthly = "monthly"
    yearly = "yearly"


class Threshold(IntEnum):
    warning = 80
    reached = 100


class AlertType(StrEnum):
    low_balance = "low_balance"
    bill_due = "bill_due"
    budget_threshold = "budget_threshold"
    large_transaction = "large_transaction"
    payment_returned = "payment_returned"


class Channel(StrEnum):
    email = "email"
    in_app = "in_app"
    push = "push"  # delivered from the in-app notification row (pushed over WebSocket)


class MemberBudget(SQLModel, table=True):
    __tablename__ = "member_budgets"
    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id")
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    category_key: str = Field(max_length=40)
    period: str = Field(max_length=8)
    amount: Decimal = money()
    currency: str = Field(default="USD", max_length=3)
    rollover: bool = False
    starts_on: date
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()
    ended_at: datetime | None = timestamp()


class MemberBudgetAlert(SQLModel, table=True):
    __tablename__ = "member_budget_alerts"
    __table_args__ = (UniqueConstraint("budget_id", "period_start", "threshold", name="member_budget_alerts_once"),)
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    budget_id: uuid.UUID = Field(foreign_key="member_budgets.id")
    period_start: date
    threshold: int
    spent: Decimal = money()
    limit_amount: Decimal = money()
    sent_at: datetime = created_at()


class AlertSubscription(SQLModel, table=True):
    __tablename__ = "alert_subscriptions"
    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id")
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    type: str = Field(max_length=24)
    channels: list[str] = Field(sa_column=Column(ARRAY(String(8)), nullable=False))
    params: dict = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}"))
    active: bool = True
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class MemberAlert(SQLModel, table=True):
    __tablename__ = "member_alerts"
    __table_args__ = (UniqueConstraint("user_id", "dedupe_key", name="member_alerts_once_per_user"),)
    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id")
    type: str = Field(max_length=24)
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    entity_type: str | None = Field(default=None, max_length=40)
    entity_id: str | None = Field(default=None, max_length=100)
    subscription_id: uuid.UUID | None = Field(default=None, foreign_key="alert_subscriptions.id")
    dedupe_key: str = Field(max_length=160)
    created_at: datetime = created_at()
    read_at: datetime | None = timestamp()
    dismissed_at: datetime | None = timestamp()
    deleted_at: datetime | None = timestamp()
