"""Categories of members' transactions: the predefined ones (user_id NULL) and a member's own, referenced by key.
A member's key never repeats a predefined one (a key must name one category for its member)."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from api.fields import line_rules
from core import access
from core.access import Action, Entity
from models.money import Category, CategoryKind, ShareWhat
from models.users import Role, User

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"  # the table's own check (categories_key_shape)
CategoryKey = Annotated[str, Field(pattern=KEY_PATTERN, examples=["groceries"])]


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: CategoryKey
    name: Annotated[str, *line_rules(100, 1, strip=True)]
    kind: CategoryKind


class CategoryOut(BaseModel):
    key: str
    name: str
    kind: str
    predefined: bool
    user_id: uuid.UUID | None
    created_at: datetime


def _out(row: Category) -> CategoryOut:
    return CategoryOut(
        key=row.key,
        name=row.name,
        kind=row.kind,
        predefined=row.user_id is None,
        user_id=row.user_id,
        created_at=row.created_at,
    )


def usable(key: str, owner_id: Any):
    """The clause "`key` is a category `owner_id` may use": a predefined one, or the owner's own (None: an
    organization's rule, predefined only)."""
    mine = [col(Category.user_id) == owner_id] if owner_id is not None else []
    return exists().where(col(Category.key) == key, or_(col(Category.user_id).is_(None), *mine))


async def check_usable(session: AsyncSession, key: str, owner_id: uuid.UUID | None) -> None:
    if not (await session.execute(select(usable(key, owner_id)))).scalar():
        raise AppError(
            422,
            "unknown_category",
            f"no category {key!r}: use a predefined one or one of the member's own",
            {"field": "category_key", "value": key},
        )


def member_of(user: User, member_id: uuid.UUID | None) -> uuid.UUID | None:
    """Whose records a request is about: the named member, else the caller when a member, else nobody in particular."""
    if member_id is not None:
        return member_id
    return user.id if user.role == Role.member else None


async def listing(session: AsyncSession, user: User, member_id: uuid.UUID | None) -> list[CategoryOut]:
    """The predefined categories and the member's own (when the caller may read that member's transactions)."""
    access.gate(user, Entity.category, Action.read)
    owner = member_of(user, member_id)
    clause: ColumnElement[bool] = col(Category.user_id).is_(None)
    if owner is not None:
        owner_org = select(col(User.org_id)).where(col(User.id) == col(Category.user_id)).scalar_subquery()
        readable = access.money_rows(
            user, ShareWhat.transactions, col(Category.user_id), owner_org, category_col=col(Category.key)
        )
        clause = or_(clause, (col(Category.user_id) == owner) & readable)
    statement = select(Category).where(clause).order_by(col(Category.user_id).is_not(None), col(Category.key))
    return [_out(row) for row in (await session.execute(statement)).scalars()]


async def create(session: AsyncSession, user: User, body: CategoryIn) -> CategoryOut:
    """A member's own category; its key must be new to them and not a predefined one (409)."""
    access.gate(user, Entity.category, Action.create, "a category of your own is a member's")
    taken = exists().where(
        col(Category.key) == body.key, or_(col(Category.user_id).is_(None), col(Category.user_id) == user.id)
    )
    duplicate = AppError(409, "duplicate", f"a category {body.key!r} exists", {"field": "key", "value": body.key})
    if (await session.execute(select(taken))).scalar():
        raise duplicate
    row = Category(key=body.key, name=body.name, kind=body.kind, user_id=user.id)
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:  # the same key made at the same moment (categories_member_key)
        raise duplicate from exc
    await session.refresh(row)
    return _out(row)
