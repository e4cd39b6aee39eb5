"""The bank's events as recorded (the outbox of activities/bank_events.py), and the operators' exception list:
events no open payment workflow could take. The superuser and bank_operations see every event; operators and
org admins those of their organization's payments (an event for no payment of ours is the bank's) (core/access.py)."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import ReadSessionDep, SessionDep, allowed
from api.errors import AppError
from api.fields import BIGINT_MAX, BusinessDateTime, Filter, multiline_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core.access import Action, Entity
from models.ach import BankEvent, BankEventStatus
from models.base import utcnow
from models.users import User

router = APIRouter(prefix="/bank-events", tags=["bank events"])

Staff = Annotated[User, Depends(allowed(Entity.bank_event, Action.read))]
Resolver = Annotated[User, Depends(allowed(Entity.bank_event, Action.resolve))]
EventId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="the event's row id")]


class BankEventOut(BaseModel):
    id: int
    event_id: str
    type: str
    trace_number: str | None
    payment_id: uuid.UUID | None
    status: str = Field(
        description="pending, delivered, applied (a late return reversed the payment by policy), "
        "exception (waits for an operator) or resolved"
    )
    detail: str | None
    payload: dict | None
    received_at: datetime
    signaled_at: datetime | None
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None
    resolution_note: str | None


class Resolution(BaseModel):
    note: Annotated[str, *multiline_rules(1000, 1)] = Field(
        examples=["Settlement after the R02 return: the bank confirmed no money moved; nothing to do."]
    )


def _visible(user: User):
    return access.scope(user, Entity.bank_event, select(BankEvent))


@router.get(
    "",
    response_model=Page[BankEventOut],
    summary="Bank events, newest first (status=exception: the operators' exception list)",
)
async def list_bank_events(
    session: ReadSessionDep,
    user: Staff,
    page: PageDep,
    status: BankEventStatus | None = None,
    type: Literal["entry.settled", "entry.returned"] | None = None,
    payment_id: uuid.UUID | None = None,
    trace_number: Filter | None = None,
    received_from: Annotated[BusinessDateTime | None, Query(description="inclusive")] = None,
    received_to: Annotated[BusinessDateTime | None, Query(description="exclusive")] = None,
):
    statement = _visible(user)
    for column, value in (
        (BankEvent.status, status),
        (BankEvent.type, type),
        (BankEvent.payment_id, payment_id),
        (BankEvent.trace_number, trace_number),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if received_from:
        statement = statement.where(BankEvent.received_at >= received_from)
    if received_to:
        statement = statement.where(BankEvent.received_at < received_to)
    items, total = await paginate(
        session, statement, page, [col(BankEvent.received_at).desc(), col(BankEvent.id).desc()]
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def _event(session, user: User, event_id: int, lock: bool = False) -> BankEvent:
    event: BankEvent = await access.visible(session, user, Entity.bank_event, event_id, for_update=lock)
    return event


@router.get("/{event_id}", response_model=BankEventOut, summary="One bank event")
async def get_bank_event(event_id: EventId, session: SessionDep, user: Staff):
    return await _event(session, user, event_id)


@router.post(
    "/{event_id}/resolve",
    response_model=BankEventOut,
    responses={409: {"description": "the event is not on the exception list (never was, or resolved already)"}},
    summary="Close an exception, with a note saying what was done about it",
)
async def resolve_bank_event(event_id: EventId, body: Resolution, session: SessionDep, user: Resolver):
    event = await _event(session, user, event_id, lock=True)
    if event.status != BankEventStatus.exception:
        raise AppError(
            409,
            "not_an_exception",
            f"the event is {event.status}: only an exception can be resolved",
            {"status": event.status},
        )
    before = audit.snapshot(event, ["status", "detail"])
    event.status, event.resolved_by, event.resolved_at = BankEventStatus.resolved, user.id, utcnow()
    event.resolution_note = body.note
    session.add(event)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="bank_event.resolved",
        entity_type="bank_event",
        entity_id=event.id,
        before=before,
        after={
            **audit.snapshot(event, ["status", "resolution_note"]),
            "payment_id": str(event.payment_id) if event.payment_id else None,
        },
    )
    await session.commit()
    await session.refresh(event)
    return event
