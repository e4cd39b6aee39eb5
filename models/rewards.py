"""Rewards (migration 0042): an organization's programs and their earn rules, a member's account in a program and
its entries. The balance changes only with an entry saying why, in the same transaction, never below zero."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Identity, Numeric
from sqlmodel import Field, SQLModel

from models.base import created_at, timestamp, uuid_pk

POINTS = Numeric(20, 2)


class RewardReason(StrEnum):
    earn = "earn"
    redeem = "redeem"
    adjust = "adjust"
    expire = "expire"


class RewardProgram(SQLModel, table=True):
    __tablename__ = "reward_programs"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    name: str = Field(max_length=120)
    active: bool = True
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class RewardEarnRule(SQLModel, table=True):
    __tablename__ = "reward_earn_rules"
    id: uuid.UUID = uuid_pk()
    program_id: uuid.UUID = Field(foreign_key="reward_programs.id")
    category_key: str = Field(max_length=40)
    points_per_unit: Decimal = Field(sa_column=Column(Numeric(12, 4), nullable=False))  # per 1.00 spent
    min_amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(20, 2), nullable=True))


class RewardAccount(SQLModel, table=True):
    __tablename__ = "reward_accounts"
    id: uuid.UUID = uuid_pk()
    program_id: uuid.UUID = Field(foreign_key="reward_programs.id")
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    balance: Decimal = Field(default=Decimal("0"), sa_column=Column(POINTS, nullable=False, server_default="0"))
    created_at: datetime = created_at()


class RewardEntry(SQLModel, table=True):
    __tablename__ = "reward_entries"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    account_id: uuid.UUID = Field(foreign_key="reward_accounts.id")
    points: Decimal = Field(sa_column=Column(POINTS, nullable=False))  # signed: earned positive, redeemed negative
    reason: str = Field(max_length=8)
    txn_id: str | None = Field(default=None, max_length=40)  # the member_transactions row an earn is for
    note: str | None = Field(default=None, max_length=300)
    idempotency_key: str | None = Field(default=None, max_length=250)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = created_at()
