"""Small steps the CRUD routers share."""

import uuid

from sqlalchemy.exc import IntegrityError

from api.errors import AppError, not_found


async def flush_unique_name(session, entity: str, name: str) -> None:
    """Flushes a new or renamed row; a name already taken is a 409 naming the field."""
    try:
        await session.flush()
    except IntegrityError:
        raise AppError(409, "duplicate", f"a {entity} named {name!r} exists", {"field": "name", "value": name})


async def get_for_update(session, model, row_id: uuid.UUID, entity: str):
    row = await session.get(model, row_id, with_for_update=True)
    if row is None:
        raise not_found(entity, row_id)
    return row
