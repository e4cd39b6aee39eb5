"""The filters of a transactions export and the one query they make over `member_transactions`, narrowed by the
access policy (money_rows)."""

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Select, select

from api.fields import BusinessDate, Filter, SignedMoney
from core import access
from domain.transactions import narrowing
from models.money import MEMBER_TRANSACTIONS as MT
from models.money import ShareWhat
from models.users import User

COLUMNS = (
    "txn_id",
    "posted_on",
    "amount",
    "currency",
    "category_key",
    "merchant",
    "description",
    "notes",
    "source",
    "account_id",
    "external_account_id",
    "user_id",
)


class ExportFilters(BaseModel):
    """The transactions list's filters (domain/transactions.narrowing gives each the same meaning), but for the
    member: by default everyone the caller sees, and one account_id for an internal or a linked account."""

    member_id: uuid.UUID | None = Field(default=None, description="one member's transactions (default: all you see)")
    date_from: BusinessDate | None = None
    date_to: BusinessDate | None = None
    category: str | None = Field(default=None, max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")
    account_id: uuid.UUID | None = Field(default=None, description="an internal account or a linked bank account")
    min_amount: SignedMoney | None = Field(default=None, description="signed: money out is negative")
    max_amount: SignedMoney | None = Field(default=None, description="signed: money out is negative")
    merchant: Filter | None = Field(default=None, description="a part of the merchant's name, in any case")
    source: Literal["ledger", "csv", "linked"] | None = None
    q: Filter | None = Field(default=None, description="a part of the merchant, description or notes, in any case")

    @model_validator(mode="after")
    def _ordered(self) -> "ExportFilters":
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        if self.min_amount is not None and self.max_amount is not None and self.min_amount > self.max_amount:
            raise ValueError("min_amount is above max_amount")
        return self


def where(user: User, filters: ExportFilters) -> list[Any]:
    clauses: list[Any] = [
        access.money_rows(user, ShareWhat.transactions, MT.c.user_id, MT.c.org_id, MT.c.amount, MT.c.category_key)
    ]
    if filters.member_id is not None:
        clauses.append(MT.c.user_id == filters.member_id)
    if filters.account_id is not None:
        clauses.append((MT.c.account_id == filters.account_id) | (MT.c.external_account_id == filters.account_id))
    return clauses + narrowing(filters)


def rows_query(user: User, filters: ExportFilters) -> Select:
    """The rows in statement order: by day, then as they were recorded."""
    return (
        select(*(MT.c[name] for name in COLUMNS))
        .where(*where(user, filters))
        .order_by(MT.c.posted_on, MT.c.created_at, MT.c.txn_id)
    )
