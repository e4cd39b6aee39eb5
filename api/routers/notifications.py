"""The caller's in-app notifications (written by the notification activities)."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, update
from sqlmodel import col, select

from api.deps import CurrentUser, ReadSessionDep, SessionDep
from api.pagination import Page, PageDep, paginate
from core import access
from core.access import Entity
from models.ach import Notification

router = APIRouter(prefix="/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    body: str
    entity_type: str | None
    entity_id: str | None
    read_at: datetime | None
    created_at: datetime


@router.get("", response_model=Page[NotificationOut], summary="Your notifications, newest first")
async def list_notifications(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    unread: Annotated[bool | None, Query(description="true: unread only; false: read only")] = None,
):
    statement = access.scope(user, Entity.notification, select(Notification))
    if unread is not None:
        statement = statement.where(
            col(Notification.read_at).is_(None) if unread else col(Notification.read_at).is_not(None)
        )
    items, total = await paginate(
        session, statement, page, [col(Notification.created_at).desc(), col(Notification.id).desc()]
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationOut,
    summary="Mark one of your notifications read (again is a no-op: the first read time stays)",
)
async def mark_read(notification_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    # Someone else's notification is a 404, not a 403: no hint that it exists.
    notification: Notification = await access.visible(session, user, Entity.notification, notification_id)
    await session.execute(
        update(Notification)
        .where(col(Notification.id) == notification.id, col(Notification.read_at).is_(None))
        .values(read_at=func.now())
    )
    await session.commit()
    await session.refresh(notification)
    return notification
