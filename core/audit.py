"""Audit rows are written inside the transaction of the change they describe, so one never exists
without the other."""

import uuid
from typing import Any

from asgi_correlation_id import correlation_id
from sqlmodel.ext.asyncio.session import AsyncSession

from core.api_keys import acting_key
from models.audit import AuditLog


def snapshot(obj: Any, fields: list[str] | None = None, exclude: frozenset[str] = frozenset()) -> dict:
    """A JSON-safe picture of a row for `before`/`after` (secrets are left out by the caller)."""
    data = obj.model_dump(mode="json") if hasattr(obj, "model_dump") else dict(obj)
    keys = fields or list(data)
    return {k: data[k] for k in keys if k in data and k not in exclude}


async def record(
    session: AsyncSession,
    *,
    actor: str,
    actor_id: uuid.UUID | None,
    action: str,
    entity_type: str,
    entity_id: Any,
    before: dict | None = None,
    after: dict | None = None,
    request_id: str | None = None,
) -> None:
    if request_id is None:
        request_id = correlation_id.get()  # the X-Request-ID of the API call, when there is one
    session.add(
        AuditLog(
            actor=actor,
            actor_id=actor_id,
            api_key_id=acting_key.get(),
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            before=before,
            after=after,
            request_id=request_id,
        )
    )
