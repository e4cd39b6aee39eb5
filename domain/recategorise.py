"""Bulk re-categorisation: one statement sets a category on every transaction of a selection (named ids, or the
list's filters) that the caller may change, imported lines and ledger postings' tags alike, as a manual choice
(rules no longer touch them), with a history row per line that changed (reason 'bulk_recategorise')."""

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import BigInteger, exists, func, literal, null, select, text, union_all, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core import access
from core.access import Action, Entity
from domain.categories import CategoryKey, check_usable, usable
from domain.transactions import TxnFilters, TxnId, filtered, invalid, visible
from models.money import MEMBER_TRANSACTIONS as V
from models.money import Category, ImportedTransaction, LedgerTransactionTag, TransactionChange
from models.users import Role, User

MAX_IDS = 1000


class RecategoriseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_key: CategoryKey
    txn_ids: Annotated[list[TxnId] | None, Field(min_length=1, max_length=MAX_IDS)] = None
    filters: TxnFilters | None = Field(default=None, description="the list's filters (instead of txn_ids)")

    @model_validator(mode="after")
    def _one_selection(self) -> "RecategoriseIn":
        if (self.txn_ids is None) == (self.filters is None):
            raise ValueError("give either txn_ids or filters")
        return self


class RecategoriseOut(BaseModel):
    changed: int = Field(description="transactions whose category changed")


def _number(txn_id: Any) -> Any:
    return sql_cast(func.substr(txn_id, 2), BigInteger)


async def _owners(session: AsyncSession, txn_ids: list[str]) -> list[uuid.UUID]:
    """The members of the named transactions: the view is then read member by member (its txn_id has no index)."""
    numbers = {kind: [int(t[1:]) for t in txn_ids if t[0] == kind] for kind in "IL"}
    rows = await session.execute(
        text(
            "SELECT user_id FROM imported_transactions WHERE id = ANY(:i) UNION "
            "SELECT a.owner_id FROM postings p JOIN ledger_accounts a ON a.id = p.account_id "
            "WHERE p.id = ANY(:l) AND a.owner_id IS NOT NULL"
        ),
        {"i": numbers["I"], "l": numbers["L"]},
    )
    return list(rows.scalars())


async def recategorise(session: AsyncSession, user: User, body: RecategoriseIn) -> RecategoriseOut:
    access.gate(user, Entity.transaction, Action.update)
    key = body.category_key
    if body.filters is not None:
        if problems := body.filters.problems("body"):
            raise invalid([{**p, "loc": ["body", "filters", *p["loc"][1:]]} for p in problems])
        if body.filters.member_id is None and user.role != Role.member:
            raise invalid([{"loc": ["body", "filters", "member_id"], "message": "name the member", "type": "missing"}])
        where = filtered(user, body.filters)
        owner = body.filters.member_id or user.id
        await check_usable(session, key, owner)
    else:
        assert body.txn_ids is not None
        where = [V.c.user_id.in_(await _owners(session, body.txn_ids)), V.c.txn_id.in_(body.txn_ids)]
        # Each line is checked for its own member below; a key nobody has is a 422 here.
        if not (await session.execute(select(exists().where(col(Category.key) == key)))).scalar():
            await check_usable(session, key, None)
    target = (
        select(V.c.txn_id, V.c.user_id, V.c.category_key.label("old_key"))
        .where(*where, visible(user, edit=True), V.c.category_key != key, usable(key, V.c.user_id))
        .cte("target")
    )
    imported = (
        update(ImportedTransaction)
        .where(col(ImportedTransaction.id) == _number(target.c.txn_id), target.c.txn_id.startswith("I"))
        .values(category_key=key, category_source="manual", category_rule_id=None)
        .returning(target.c.txn_id, target.c.user_id, target.c.old_key)
        .cte("imported")
    )
    tag = insert(LedgerTransactionTag)
    tagged = (
        tag.from_select(
            ["posting_id", "user_id", "category_key", "category_source"],
            select(_number(target.c.txn_id), target.c.user_id, literal(key), literal("manual")).where(
                target.c.txn_id.startswith("L")
            ),
        )
        .on_conflict_do_update(
            index_elements=["posting_id"],
            set_={
                "category_key": tag.excluded.category_key,
                "category_source": "manual",
                "category_rule_id": null(),
                "updated_at": func.now(),
            },
        )
        .returning(col(LedgerTransactionTag.posting_id))
        .cte("tagged")
    )
    ledger = select(target.c.txn_id, target.c.user_id, target.c.old_key).where(
        target.c.txn_id.startswith("L"), _number(target.c.txn_id).in_(select(tagged.c.posting_id))
    )
    changed = union_all(select(imported.c.txn_id, imported.c.user_id, imported.c.old_key), ledger).subquery()
    history = insert(TransactionChange).from_select(
        ["txn_id", "user_id", "field", "old_value", "new_value", "changed_by", "reason"],
        select(
            changed.c.txn_id,
            changed.c.user_id,
            literal("category"),
            changed.c.old_key,
            literal(key),
            literal(user.id),
            literal("bulk_recategorise"),
        ),
    )
    # The data-modifying CTEs must be the statement's own (Postgres: at the top level), not its SELECT's.
    written = history.add_cte(target, imported, tagged).returning(col(TransactionChange.id))
    changed_count = len((await session.execute(written)).all())
    await session.commit()
    return RecategoriseOut(changed=changed_count)
