"""A member's one list of transactions (the `member_transactions` view: ledger postings and imported lines), read
through the access policy (`access.money_rows`), and the manual change of a transaction's category or notes, each
change a history row (`transaction_changes`)."""

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, func, literal, or_, select, text
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from api.fields import BusinessDate, Filter, SignedMoney, multiline_rules
from api.pagination import Page, PageParams
from core import access
from core.access import Action, Entity
from domain.categories import CategoryKey, check_usable, member_of
from models.money import MEMBER_TRANSACTIONS as V
from models.money import ShareWhat, TransactionChange
from models.users import User

TXN_ID_PATTERN = r"^[LI][0-9]{1,18}$"  # 'L<posting id>' or 'I<imported row id>', a BIGINT
_TXN_ID = re.compile(TXN_ID_PATTERN)
TxnId = Annotated[str, Field(pattern=TXN_ID_PATTERN, examples=["I42"])]


class TxnFilters(BaseModel):
    """The list's filters (all optional), also the selection of a bulk re-categorisation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    member_id: uuid.UUID | None = None
    date_from: BusinessDate | None = Field(default=None, alias="from")
    date_to: BusinessDate | None = Field(default=None, alias="to")
    min_amount: SignedMoney | None = None
    max_amount: SignedMoney | None = None
    merchant: Filter | None = None
    category: Filter | None = None
    account_id: uuid.UUID | None = None
    external_account_id: uuid.UUID | None = None
    source: Literal["ledger", "csv", "linked"] | None = None
    q: Filter | None = None

    def problems(self, where: str) -> list[dict]:
        """The filters that contradict each other, as 422 details (FastAPI's shape)."""
        out = []
        if self.date_from and self.date_to and self.date_from > self.date_to:
            out.append({"loc": [where, "from"], "message": "must not be after `to`", "type": "value_error"})
        if self.min_amount is not None and self.max_amount is not None and self.min_amount > self.max_amount:
            out.append({"loc": [where, "min_amount"], "message": "must not exceed max_amount", "type": "value_error"})
        return out


class TransactionOut(BaseModel):
    txn_id: str
    source: str
    user_id: uuid.UUID
    org_id: uuid.UUID
    account_id: uuid.UUID | None
    external_account_id: uuid.UUID | None
    posted_on: date
    amount: Decimal = Field(description="money in positive, out negative")
    currency: str
    merchant: str | None
    description: str | None
    category_key: str
    category_source: str
    notes: str | None
    created_at: datetime


class ChangeOut(BaseModel):
    field: str
    old_value: str | None
    new_value: str | None
    changed_by: uuid.UUID | None
    rule_id: uuid.UUID | None
    reason: str
    changed_at: datetime


class TransactionDetail(TransactionOut):
    changes: list[ChangeOut]


class TransactionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_key: CategoryKey | None = None
    notes: Annotated[str | None, *multiline_rules(1000)] = None

    @model_validator(mode="after")
    def _category_not_null(self) -> "TransactionPatch":
        if "category_key" in self.model_fields_set and self.category_key is None:
            raise ValueError("category_key cannot be null (every transaction has a category)")
        return self


def invalid(details: list[dict]) -> AppError:
    return AppError(422, "validation_error", "the request is not valid", details)


def visible(user: User, edit: bool = False) -> ColumnElement[bool]:
    return access.money_rows(
        user, ShareWhat.transactions, V.c.user_id, V.c.org_id, V.c.amount, V.c.category_key, edit=edit
    )


def _contains(column: Any, value: str) -> ColumnElement[bool]:
    return column.icontains(value, autoescape=True)


def filtered(user: User, filters: TxnFilters) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `filters` (the member: the named one, else the caller when a member)."""
    f, where = filters, []
    owner = member_of(user, f.member_id)
    if owner is not None:
        where.append(V.c.user_id == owner)
    if f.account_id:
        where.append(V.c.account_id == f.account_id)
    if f.external_account_id:
        where.append(V.c.external_account_id == f.external_account_id)
    return where + narrowing(f)


def narrowing(f: Any) -> list[ColumnElement[bool]]:
    """The clauses of the filters the transactions list and an export share (`f` has date_from, date_to, min_amount,
    max_amount, merchant, category, source and q): one meaning for each, wherever it is used."""
    where = []
    if f.date_from:
        where.append(V.c.posted_on >= f.date_from)
    if f.date_to:
        where.append(V.c.posted_on <= f.date_to)
    if f.min_amount is not None:
        where.append(V.c.amount >= f.min_amount)
    if f.max_amount is not None:
        where.append(V.c.amount <= f.max_amount)
    if f.merchant:
        where.append(_contains(V.c.merchant, f.merchant))
    if f.category:
        where.append(V.c.category_key == f.category)
    if f.source:
        where.append(V.c.source == f.source)
    if f.q:
        where.append(or_(_contains(V.c.merchant, f.q), _contains(V.c.description, f.q), _contains(V.c.notes, f.q)))
    return where


async def listing(session: AsyncSession, user: User, filters: TxnFilters, page: PageParams) -> Page[TransactionOut]:
    access.gate(user, Entity.transaction, Action.read)
    if problems := filters.problems("query"):
        raise invalid(problems)
    where = [visible(user), *filtered(user, filters)]
    total = (await session.execute(select(func.count()).select_from(V).where(*where))).scalar_one()
    rows = await session.execute(
        select(V).where(*where).order_by(V.c.posted_on.desc(), V.c.txn_id.desc()).limit(page.limit).offset(page.offset)
    )
    items = [TransactionOut.model_validate(row, from_attributes=True) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def owner_of(session: AsyncSession, txn_id: str) -> uuid.UUID | None:
    """The member of a transaction, by its table's key (the view's txn_id is an expression no index serves: reads
    of one row are narrowed to its member first), or None when it does not exist."""
    if not _TXN_ID.fullmatch(txn_id):
        return None
    number = int(txn_id[1:])
    if txn_id[0] == "I":
        query = "SELECT user_id FROM imported_transactions WHERE id = :n"
    else:
        query = (
            "SELECT a.owner_id FROM postings p JOIN ledger_accounts a ON a.id = p.account_id "
            "WHERE p.id = :n AND a.kind = 'internal' AND a.owner_id IS NOT NULL"
        )
    return (await session.execute(text(query), {"n": number})).scalar()


async def visible_row(session: AsyncSession, user: User, txn_id: str) -> Any:
    """The view's row of `txn_id` if `user` may read it, else a 404 (the same for one that does not exist)."""
    owner = await owner_of(session, txn_id)
    if owner is None:
        raise access.not_visible(user, Entity.transaction, txn_id, exists=False)
    row = (await session.execute(select(V).where(V.c.user_id == owner, V.c.txn_id == txn_id, visible(user)))).first()
    if row is None:
        raise access.not_visible(user, Entity.transaction, txn_id)
    return row


async def detail(session: AsyncSession, user: User, txn_id: str) -> TransactionDetail:
    access.gate(user, Entity.transaction, Action.read)
    row = await visible_row(session, user, txn_id)
    changes = await session.execute(
        select(TransactionChange).where(col(TransactionChange.txn_id) == txn_id).order_by(col(TransactionChange.id))
    )
    return TransactionDetail(
        **TransactionOut.model_validate(row, from_attributes=True).model_dump(),
        changes=[ChangeOut.model_validate(c, from_attributes=True) for c in changes.scalars()],
    )


async def lock(session: AsyncSession, txn_id: str) -> None:
    """Two edits of one transaction run one after the other (each compares with what the other wrote)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"transaction:{txn_id}"})


async def update(session: AsyncSession, user: User, txn_id: str, patch: TransactionPatch) -> TransactionDetail:
    """A manual change of category and/or notes: only what differs is written, with one history row per field."""
    access.gate(user, Entity.transaction, Action.update)
    if _TXN_ID.fullmatch(txn_id):
        await lock(session, txn_id)
    row = await visible_row(session, user, txn_id)
    editable = select(literal(1)).select_from(V).where(V.c.user_id == row.user_id, V.c.txn_id == txn_id)
    if (await session.execute(editable.where(visible(user, edit=True)))).first() is None:
        raise access.forbid(user, Entity.transaction, txn_id, Action.update, "you may read this transaction only")
    sent = patch.model_fields_set
    changed: dict[str, tuple[str | None, str | None]] = {}
    if "category_key" in sent and patch.category_key != row.category_key:
        assert patch.category_key is not None  # the model refuses null
        await check_usable(session, patch.category_key, row.user_id)
        changed["category"] = (row.category_key, patch.category_key)
    if "notes" in sent and patch.notes != row.notes:
        changed["notes"] = (row.notes, patch.notes)
    if changed:
        await _write(session, row, txn_id, patch, changed)
        session.add_all(
            TransactionChange(
                txn_id=txn_id,
                user_id=row.user_id,
                field=field,
                old_value=old,
                new_value=new,
                changed_by=user.id,
                reason="manual",
            )
            for field, (old, new) in changed.items()
        )
    await session.commit()
    return await detail(session, user, txn_id)


async def _write(session: AsyncSession, row: Any, txn_id: str, patch: TransactionPatch, changed: dict) -> None:
    category = "category" in changed
    params = {"n": int(txn_id[1:]), "user": row.user_id, "key": patch.category_key, "notes": patch.notes}
    if txn_id[0] == "I":
        sets = ["notes = :notes"] if "notes" in changed else []
        if category:
            sets.append("category_key = :key, category_source = 'manual', category_rule_id = NULL")
        await session.execute(text(f"UPDATE imported_transactions SET {', '.join(sets)} WHERE id = :n"), params)
        return
    # A ledger posting's tag: a field not changed keeps its value (a new tag: NULL, the view's default).
    updates = ["updated_at = now()"]
    if category:
        updates.append("category_key = EXCLUDED.category_key, category_source = 'manual', category_rule_id = NULL")
    if "notes" in changed:
        updates.append("notes = EXCLUDED.notes")
    await session.execute(
        text(
            "INSERT INTO ledger_transaction_tags (posting_id, user_id, category_key, category_source, notes) "
            "VALUES (:n, :user, CASE WHEN :cat THEN CAST(:key AS varchar) END, CASE WHEN :cat THEN 'manual' END, "
            "CAST(:notes AS varchar)) "
            f"ON CONFLICT (posting_id) DO UPDATE SET {', '.join(updates)}"
        ),
        {**params, "cat": category, "notes": patch.notes if "notes" in changed else None},
    )
