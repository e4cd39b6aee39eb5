"""The webhook outbox as operations see it (domain/webhooks.py): every subscription's deliveries, the dead letters
among them (retried for the configured time, then parked), and their replay. The operator roles see and replay
them; an org admin or operator only their organization's."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import ReadSessionDep, SessionDep, allowed
from api.pagination import Page, PageDep
from core.access import Action, Entity
from domain import webhooks
from models.users import User
from models.webhooks import DeliveryStatus, WebhookDeliveryOut

router = APIRouter(prefix="/webhook-deliveries", tags=["webhooks"])

Reader = Annotated[User, Depends(allowed(Entity.webhook_delivery, Action.read))]
Repairer = Annotated[User, Depends(allowed(Entity.webhook_delivery, Action.repair))]


@router.get("", response_model=Page[WebhookDeliveryOut], summary="Webhook deliveries (status=dead: the dead letters)")
async def list_deliveries(
    session: ReadSessionDep,
    actor: Reader,
    page: PageDep,
    status: DeliveryStatus | None = None,
    subscription_id: uuid.UUID | None = None,
    entity_id: uuid.UUID | None = None,
):
    return await webhooks.list_deliveries(
        session, actor, page, subscription_id=subscription_id, status=status, entity_id=entity_id
    )


@router.post(
    "/{event_id}/replay", response_model=WebhookDeliveryOut, summary="Send a dead letter again (audited; 409 otherwise)"
)
async def replay_delivery(event_id: uuid.UUID, session: SessionDep, actor: Repairer):
    """Back to pending with the same id and body: its subscription's workflow sends it within the dispatch interval
    and the retry policy starts afresh."""
    return await webhooks.replay(session, actor, event_id)
