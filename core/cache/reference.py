"""The cached reads of reference data: the signed-in user (every API request), loan and savings products, the active
approval rules (every application, and the activity that routes it).

The cache keeps immutable snapshots of column values, never an ORM instance: each read gives a new detached
(transient) instance that no session knows, so whatever a caller does to it touches neither the cache nor a
session. A miss loads committed rows on a short session of the cache's own pool (core/db.py: never the caller's,
which may hold writes not yet committed). Code that changes one of these rows loads it from the database (`session.get`), not from here.
"""

import copy
import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlmodel import SQLModel, select

from core.db import Database
from finance.approval_routing import Rule
from models.interest import SavingsProduct
from models.loans import ApprovalRule, LoanProduct
from models.users import User

M = TypeVar("M", bound=SQLModel)

USERS, LOAN_PRODUCTS, SAVINGS_PRODUCTS, APPROVAL_RULES = "users", "loan_products", "savings_products", "approval_rules"


@dataclass(frozen=True, slots=True)
class Frozen(Generic[M]):
    """A row's column values; `thaw()` makes a new instance of them (JSON values copied: lists and dicts mutate)."""

    model: type[M]
    values: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, row: M, **replace: Any) -> "Frozen[M]":
        columns = type(row).__table__.columns  # type: ignore[attr-defined]
        return cls(type(row), tuple((c.key, replace.get(c.key, getattr(row, c.key))) for c in columns))

    def thaw(self) -> M:
        return self.model(**{k: copy.deepcopy(v) if isinstance(v, list | dict) else v for k, v in self.values})


async def _row(db: Database, model: type[M], row_id: uuid.UUID | str, **replace: Any) -> Frozen[M] | None:
    async with db.cache_session() as session:
        row = await session.get(model, row_id)
        return Frozen.of(row, **replace) if row is not None else None


async def _cached(db: Database, name: str, model: type[M], row_id: uuid.UUID | str, **replace: Any) -> M | None:
    frozen = await db.cache.get(name, str(row_id), lambda: _row(db, model, row_id, **replace))
    return frozen.thaw() if frozen is not None else None


async def user(db: Database, user_id: uuid.UUID | str) -> User | None:
    """The user, without the password hash (blank): login and password changes read the row itself."""
    return await _cached(db, USERS, User, user_id, hashed_password="")


async def loan_product(db: Database, product_id: uuid.UUID) -> LoanProduct | None:
    return await _cached(db, LOAN_PRODUCTS, LoanProduct, product_id)


async def savings_product(db: Database, product_id: uuid.UUID) -> SavingsProduct | None:
    return await _cached(db, SAVINGS_PRODUCTS, SavingsProduct, product_id)


async def _active_rules(db: Database) -> tuple[Rule, ...]:
    async with db.cache_session() as session:
        rows = (await session.exec(select(ApprovalRule).where(ApprovalRule.active))).all()
        return tuple(Rule.model_validate(row) for row in rows)  # frozen pydantic models


async def active_rules(db: Database) -> tuple[Rule, ...]:
    """Every active approval rule, cached as one list (any change to the table drops it)."""
    return await db.cache.get(APPROVAL_RULES, None, lambda: _active_rules(db)) or ()
