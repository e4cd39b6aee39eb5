"""Small steps the CRUD routers share."""

import uuid
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.errors import AppError, not_found
from api.pagination import Page, paginate
from core import access
from core.access import Entity
from models.users import User

T = TypeVar("T")


def required(value: T | None, what: str) -> T:
    """`value`, which must be there (a row read again after this request wrote or locked it, rows that are never
    deleted): a clear error, still a 500, if it is not."""
    if value is None:
        raise RuntimeError(f"{what} is missing")
    return value


async def flush_unique_name(session, entity: str, name: str) -> None:
    """Flushes a new or renamed row; a name already taken is a 409 naming the field."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AppError(409, "duplicate", f"a {entity} named {name!r} exists", {"field": "name", "value": name}) from exc


async def get_for_update(session, model, row_id: uuid.UUID, entity: str):
    row = await session.get(model, row_id, with_for_update=True)
    if row is None:
        raise not_found(entity, row_id)
    return row


async def list_catalog(
    session, user: User, page, model, entity: Entity, active: bool, name: str | None, **equal
) -> Page:
    """A product catalogue (loan or savings products), by name: active rows for all, deactivated ones for a
    superuser (core/access.py); `equal` filters on columns, each skipped when None."""
    if not active:
        access.see_deactivated(user, entity)
    statement = access.scope(user, entity, select(model).where(model.active == active))
    for column, value in equal.items():
        if value is not None:
            statement = statement.where(getattr(model, column) == value)
    if name:
        statement = statement.where(col(model.name).ilike(f"%{name}%"))
    items, total = await paginate(session, statement, page, [model.name, model.id])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def catalog_item(session, user: User, model, row_id: uuid.UUID, entity: Entity):
    """One catalogue row: a deactivated one only for a superuser (404 for the others)."""
    return await access.visible(session, user, entity, row_id)
