"""Webhooks out: the outbox the status changes write to, and the delivery log and dead letters staff read and replay.

Emitting. Each status change is already recorded in one place, in its own transaction: a payment's history event
(`add_payment_event` below, from activities/payments.py, and domain/payments.py for a new payment), a loan's status
(activities/loans.py set_status; activities/loan_servicing.py when a loan closes or a reversed repayment reopens it)
and a member's KYC status (activities/kyc.py set_kyc_status). There `emit` (or the payment's own statement) adds one
`webhook_events` row per active subscription of the organization that takes the event type, in the same transaction:
the event exists exactly when the change does (a crash loses neither, a rollback keeps neither), and its key (entity,
transition) makes a retried activity write it once (ON CONFLICT DO NOTHING).

Delivering (workflows/webhooks.py): the rows are the outbox; a dispatcher wakes each subscription's delivery
workflow for the rows it has not woken it for, and that workflow sends its subscription's events in order."""

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from api.pagination import Page, PageParams, paginate
from core import access, audit
from core.access import Entity
from models.users import User
from models.webhooks import DeliveryStatus, WebhookDeliveryOut, WebhookEvent, WebhookEventType

_EMIT = text("""
    WITH fresh AS (
        SELECT gen_random_uuid() AS id, s.id AS subscription_id, s.org_id
        FROM webhook_subscriptions s
        WHERE s.org_id = :org AND s.status = 'active' AND CAST(:type AS varchar) = ANY(s.event_types))
    INSERT INTO webhook_events (id, subscription_id, org_id, event_type, entity_type, entity_id, event_key, body)
    SELECT f.id, f.subscription_id, f.org_id, :type, :entity_type, :entity_id, :key,
           jsonb_build_object('id', f.id, 'type', CAST(:type AS text), 'created_at', now(),
                              'data', CAST(:data AS jsonb))::text
    FROM fresh f
    ON CONFLICT ON CONSTRAINT webhook_events_once DO NOTHING""")


async def emit(
    session: AsyncSession,
    *,
    org_id: uuid.UUID | None,
    event_type: WebhookEventType,
    entity_type: str,
    entity_id: uuid.UUID,
    event_key: str,
    data: dict[str, Any],
) -> None:
    """Writes the event for every active subscription of `org_id` to `event_type`, once per (entity, event_key)."""
    if org_id is None:  # bank-wide things have no subscribers
        return
    await session.execute(
        _EMIT,
        {
            "org": org_id,
            "type": str(event_type),
            "entity_type": entity_type,
            "entity_id": entity_id,
            "key": event_key[:200],
            "data": json.dumps(data, default=str),
        },
    )


_PAYMENT_EVENT = text("""
    WITH event AS (
        INSERT INTO payment_events (payment_id, event_key, status, detail)
        VALUES (:payment_id, :key, :status, CAST(:detail AS jsonb))
        ON CONFLICT ON CONSTRAINT payment_events_once DO NOTHING
        RETURNING payment_id),
    fresh AS (
        SELECT gen_random_uuid() AS id, s.id AS subscription_id, s.org_id, p.kind, p.amount, p.currency
        FROM event e JOIN payments p ON p.id = e.payment_id
        JOIN webhook_subscriptions s ON s.org_id = p.org_id
        WHERE s.status = 'active' AND CAST(:type AS varchar) = ANY(s.event_types)),
    emitted AS (
        INSERT INTO webhook_events (id, subscription_id, org_id, event_type, entity_type, entity_id, event_key, body)
        SELECT f.id, f.subscription_id, f.org_id, :type, 'payment', :payment_id, :webhook_key,
               jsonb_build_object('id', f.id, 'type', CAST(:type AS text), 'created_at', now(),
                                  'data', jsonb_build_object(
                                      'payment_id', CAST(:payment_id AS text), 'kind', f.kind,
                                      'amount', CAST(f.amount AS text), 'currency', f.currency,
                                      'status', CAST(:status AS text), 'detail', CAST(:detail AS jsonb)))::text
        FROM fresh f
        ON CONFLICT ON CONSTRAINT webhook_events_once DO NOTHING)
    SELECT count(*) FROM event""")


async def add_payment_event(
    session: AsyncSession, payment_id: uuid.UUID, status: str, event_key: str, detail: dict | None
) -> bool:
    """The payment's history event, once per event_key, and with it, when it is new, the event for the organization's
    webhook subscribers: one statement (three round trips a status change before), in the caller's transaction. True
    when the event is new."""
    new = await session.execute(
        _PAYMENT_EVENT,
        {
            "payment_id": payment_id,
            "key": event_key,
            "webhook_key": event_key[:200],
            "status": str(status),
            "detail": None if detail is None else json.dumps(detail, default=str),
            "type": str(WebhookEventType.payment_status_changed),
        },
    )
    return bool(new.scalar_one())


async def emit_loan(
    session: AsyncSession,
    loan_id: uuid.UUID,
    org_id: uuid.UUID | None,
    status: str,
    previous: str | None,
    event_key: str,
    reason: str | None = None,
) -> None:
    await emit(
        session,
        org_id=org_id,
        event_type=WebhookEventType.loan_status_changed,
        entity_type="loan",
        entity_id=loan_id,
        event_key=event_key,
        data={"loan_id": str(loan_id), "status": str(status), "previous_status": previous, "reason": reason},
    )


# --- the delivery log and dead letters ---------------------------------------------------------------------------


def delivery_out(event: WebhookEvent) -> WebhookDeliveryOut:
    return WebhookDeliveryOut.model_validate({**event.model_dump(), "payload": json.loads(event.body)})


async def list_deliveries(
    session: AsyncSession,
    user: User,
    page: PageParams,
    subscription_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
    entity_id: uuid.UUID | None = None,
) -> Page[WebhookDeliveryOut]:
    """Newest first, as the caller may see them."""
    statement = access.scope(user, Entity.webhook_delivery, select(WebhookEvent))
    if subscription_id is not None:
        statement = statement.where(WebhookEvent.subscription_id == subscription_id)
    if status is not None:
        statement = statement.where(WebhookEvent.status == status)
    if entity_id is not None:
        statement = statement.where(WebhookEvent.entity_id == entity_id)
    items, total = await paginate(session, statement, page, [col(WebhookEvent.seq).desc()])
    return Page(items=[delivery_out(e) for e in items], total=total, limit=page.limit, offset=page.offset)


async def replay(session: AsyncSession, user: User, event_id: uuid.UUID) -> WebhookDeliveryOut:
    """A dead letter goes back to pending: the dispatcher wakes its subscription's workflow, which sends it (with
    the same id and body, so a receiver that did get it once dedupes). Only a dead letter is replayed (409 else)."""
    event: WebhookEvent = await access.visible(session, user, Entity.webhook_delivery, event_id, for_update=True)
    access.gate(user, Entity.webhook_delivery, access.Action.repair)
    if event.status != DeliveryStatus.dead:
        raise AppError(
            409, "not_dead_letter", "only a dead letter is replayed: this event is not one", {"status": event.status}
        )
    subscription_status = (
        await session.execute(
            text("SELECT status FROM webhook_subscriptions WHERE id = :id"), {"id": event.subscription_id}
        )
    ).scalar_one()
    if subscription_status == "deleted":
        raise AppError(409, "subscription_deleted", "the subscription was deleted: its events are not sent")
    event.status, event.dead_at, event.dispatched_at = DeliveryStatus.pending, None, None
    event.replays += 1
    session.add(event)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="webhook_event.replayed",
        entity_type="webhook_event",
        entity_id=event.id,
        before={"status": DeliveryStatus.dead},
        after={"status": DeliveryStatus.pending, "replays": event.replays},
    )
    await session.commit()
    await session.refresh(event)
    return delivery_out(event)
