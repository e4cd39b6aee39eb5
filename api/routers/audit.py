import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import ReadSessionDep, allowed
from api.fields import BusinessDateTime, Filter
from api.pagination import Page, PageDep, paginate
from core import access
from core.access import Action, Entity
from models.audit import AuditLog
from models.users import User

router = APIRouter(prefix="/audit", tags=["audit"])

AuditReader = Annotated[User, Depends(allowed(Entity.audit, Action.read))]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor: str
    api_key_id: uuid.UUID | None = Field(description="the API key the actor acted through (null: by hand)")
    action: str
    entity_type: str
    entity_id: str
    before: dict | None
    after: dict | None
    request_id: str | None


@router.get("", response_model=Page[AuditOut], summary="The audit log, newest first (superuser)")
async def query_audit_log(
    session: ReadSessionDep,
    user: AuditReader,
    page: PageDep,
    since: Annotated[BusinessDateTime | None, Query(description="inclusive")] = None,
    until: Annotated[BusinessDateTime | None, Query(description="exclusive")] = None,
    actor_id: uuid.UUID | None = None,
    actor: Filter | None = None,
    api_key_id: uuid.UUID | None = None,
    entity_type: Filter | None = None,
    entity_id: Filter | None = None,
    action: Filter | None = None,
):
    statement = access.scope(user, Entity.audit, select(AuditLog))
    if since:
        statement = statement.where(AuditLog.at >= since)
    if until:
        statement = statement.where(AuditLog.at < until)
    for column, value in (
        (AuditLog.actor_id, actor_id),
        (AuditLog.actor, actor),
        (AuditLog.api_key_id, api_key_id),
        (AuditLog.entity_type, entity_type),
        (AuditLog.entity_id, entity_id),
        (AuditLog.action, action),
    ):
        if value is not None:
            statement = statement.where(column == value)
    items, total = await paginate(session, statement, page, [col(AuditLog.at).desc(), col(AuditLog.id).desc()])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
