"""Webhook subscriptions (domain/webhooks.py): an org admin (a superuser for any organization) subscribes an HTTP(S)
endpoint to event types of a fixed list, pauses, changes or deletes it, and reads its delivery log. Each subscription
signs with its own secret (core/webhook_signing.py), shown once at creation and stored encrypted."""

import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.deps import CipherDep, IdempotencyKey, ReadSessionDep, SessionDep, SettingsDep, allowed
from api.errors import AppError
from api.fields import line_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit, webhook_signing, webhook_targets
from core.access import Action, Entity
from core.config import Settings
from domain import webhooks
from models.base import utcnow
from models.users import Organization, User
from models.webhooks import (
    DeliveryStatus,
    SubscriptionStatus,
    WebhookDeliveryOut,
    WebhookEventType,
    WebhookSubscription,
)

router = APIRouter(prefix="/webhook-subscriptions", tags=["webhooks"])

Reader = Annotated[User, Depends(allowed(Entity.webhook_subscription, Action.read))]
Creator = Annotated[User, Depends(allowed(Entity.webhook_subscription, Action.create))]
Updater = Annotated[User, Depends(allowed(Entity.webhook_subscription, Action.update))]
Deleter = Annotated[User, Depends(allowed(Entity.webhook_subscription, Action.delete))]


def _endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL with a host")
    if not value.isascii() or " " in value:
        raise ValueError("must be ASCII without spaces (a host in punycode, a path percent-encoded)")
    if parts.username or parts.password or parts.fragment:
        raise ValueError("must not carry credentials or a #fragment: the signature authenticates us")
    return value


EndpointUrl = Annotated[str, *line_rules(2000, 1), AfterValidator(_endpoint)]


def _unique(values: list[WebhookEventType]) -> list[WebhookEventType]:
    return list(dict.fromkeys(values))


EventTypes = Annotated[
    list[WebhookEventType], Field(min_length=1, max_length=len(WebhookEventType)), AfterValidator(_unique)
]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: EndpointUrl = Field(examples=["https://erp.example.com/hooks/backoffice"])
    event_types: EventTypes = Field(examples=[["payment.status_changed", "loan.status_changed"]])
    description: Annotated[str, *line_rules(500)] | None = None
    org_id: uuid.UUID | None = Field(default=None, description="a superuser names the organization; others omit it")


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: EndpointUrl | None = None
    event_types: EventTypes | None = None
    description: Annotated[str, *line_rules(500)] | None = None
    status: Literal["active", "paused"] | None = Field(
        default=None, description="paused: no new events; those waiting are sent once it is active again"
    )


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    status: str
    secret_hint: str = Field(description="the secret's first characters")
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime | None


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="the signing secret, shown this once: verify X-Webhook-Signature with it")


def _check_target(settings: Settings, url: str) -> None:
    if webhook_targets.enforced(settings) and (refusal := webhook_targets.url_refusal(url)):
        raise AppError(422, "endpoint_not_allowed", refusal, {"url": url})


def _out(row: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(row, from_attributes=True)


def _snapshot(row: WebhookSubscription) -> dict:
    return {"url": row.url, "event_types": row.event_types, "status": row.status, "description": row.description}


async def _record(session, actor: User, action: str, row: WebhookSubscription, before: dict | None = None) -> None:
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action=action,
        entity_type="webhook_subscription",
        entity_id=row.id,
        before=before,
        after=_snapshot(row),
    )


def _already_created(row: WebhookSubscription) -> AppError:
    return AppError(
        409,
        "already_created",
        "a subscription was already created with this Idempotency-Key; its secret was shown then",
        {"id": str(row.id)},
    )


@router.post(
    "", response_model=SubscriptionCreated, status_code=201, summary="Subscribe an endpoint (secret shown once)"
)
async def create_subscription(
    body: SubscriptionIn,
    key: IdempotencyKey,
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    actor: Creator,
):
    """A retry with the same Idempotency-Key makes no second subscription: 409 naming the one made. In production
    the endpoint must be https:// on a public address (422 endpoint_not_allowed)."""
    _check_target(settings, body.url)
    org_id = access.target_org(actor, body.org_id)
    if org_id is None:
        raise AppError(422, "org_required", "a superuser names the organization (org_id)")
    if access.is_super(actor) and (await session.get(Organization, org_id)) is None:
        raise AppError(422, "unknown_organization", f"organization {org_id} does not exist")
    existing = (
        await session.exec(
            select(WebhookSubscription).where(
                WebhookSubscription.created_by == actor.id, WebhookSubscription.idempotency_key == key
            )
        )
    ).first()
    if existing is not None:
        raise _already_created(existing)
    secret = webhook_signing.new_secret()
    row = WebhookSubscription(
        org_id=org_id,
        url=body.url,
        description=body.description,
        event_types=[str(t) for t in body.event_types],
        secret_ciphertext=cipher.encrypt(secret),
        secret_hint=secret[:10],
        created_by=actor.id,
        idempotency_key=key,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # the same Idempotency-Key in a concurrent request
        await session.rollback()
        raise AppError(409, "already_created", "a subscription was already created with this Idempotency-Key") from None
    await _record(session, actor, "webhook_subscription.created", row)
    await session.commit()
    return SubscriptionCreated.model_validate({**_out(row).model_dump(), "secret": secret})


@router.get("", response_model=Page[SubscriptionOut], summary="Webhook subscriptions you can see")
async def list_subscriptions(
    session: ReadSessionDep,
    actor: Reader,
    page: PageDep,
    status: SubscriptionStatus | None = None,
    event_type: WebhookEventType | None = None,
):
    """Deleted ones only when asked for (status=deleted)."""
    statement = access.scope(actor, Entity.webhook_subscription, select(WebhookSubscription))
    if status is not None:
        statement = statement.where(WebhookSubscription.status == status)
    else:
        statement = statement.where(WebhookSubscription.status != SubscriptionStatus.deleted)
    if event_type is not None:
        statement = statement.where(col(WebhookSubscription.event_types).contains([str(event_type)]))
    items, total = await paginate(
        session, statement, page, [col(WebhookSubscription.created_at).desc(), WebhookSubscription.id]
    )
    return Page(items=[_out(r) for r in items], total=total, limit=page.limit, offset=page.offset)


@router.get("/{subscription_id}", response_model=SubscriptionOut, summary="One webhook subscription (never its secret)")
async def get_subscription(subscription_id: uuid.UUID, session: SessionDep, actor: Reader):
    return _out(await access.visible(session, actor, Entity.webhook_subscription, subscription_id))


@router.patch("/{subscription_id}", response_model=SubscriptionOut, summary="Change, pause or resume a subscription")
async def update_subscription(
    subscription_id: uuid.UUID, body: SubscriptionPatch, session: SessionDep, settings: SettingsDep, actor: Updater
):
    if body.url is not None:
        _check_target(settings, body.url)
    row: WebhookSubscription = await access.visible(
        session, actor, Entity.webhook_subscription, subscription_id, for_update=True
    )
    if row.status == SubscriptionStatus.deleted:
        raise AppError(409, "subscription_deleted", "a deleted subscription does not change")
    before = _snapshot(row)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("event_types") is not None:
        changes["event_types"] = [str(t) for t in changes["event_types"]]
    for field in ("url", "event_types", "status"):
        if field in changes and changes[field] is None:
            raise AppError(422, "validation_error", f"{field} cannot be null", {"field": field})
    for field, value in changes.items():
        setattr(row, field, value)
    if _snapshot(row) != before:
        row.updated_at = utcnow()
        session.add(row)
        await _record(session, actor, "webhook_subscription.updated", row, before)
        if before["status"] == SubscriptionStatus.paused and row.status == SubscriptionStatus.active:
            # What waited while it was paused: the dispatcher wakes its workflow for it again.
            await session.execute(
                text(
                    "UPDATE webhook_events SET dispatched_at = NULL WHERE subscription_id = :id AND status = 'pending'"
                ),
                {"id": row.id},
            )
    await session.commit()
    await session.refresh(row)
    return _out(row)


@router.delete("/{subscription_id}", response_model=SubscriptionOut, summary="Delete a subscription (its log stays)")
async def delete_subscription(subscription_id: uuid.UUID, session: SessionDep, actor: Deleter):
    """No event is written or sent for it any more; its delivery log stays readable. Again is a no-op."""
    row: WebhookSubscription = await access.visible(
        session, actor, Entity.webhook_subscription, subscription_id, for_update=True
    )
    if row.status != SubscriptionStatus.deleted:
        before = _snapshot(row)
        row.status, row.updated_at = SubscriptionStatus.deleted, utcnow()
        session.add(row)
        await _record(session, actor, "webhook_subscription.deleted", row, before)
        await session.commit()
        await session.refresh(row)
    return _out(row)


@router.get(
    "/{subscription_id}/deliveries", response_model=Page[WebhookDeliveryOut], summary="A subscription's delivery log"
)
async def subscription_deliveries(
    subscription_id: uuid.UUID,
    session: ReadSessionDep,
    actor: Reader,
    page: PageDep,
    status: DeliveryStatus | None = None,
):
    """Its events, newest first: attempts, the last answer, delivered or dead."""
    await access.visible(session, actor, Entity.webhook_subscription, subscription_id)
    return await webhooks.list_deliveries(session, actor, page, subscription_id=subscription_id, status=status)
