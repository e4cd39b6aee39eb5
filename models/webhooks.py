"""Webhooks out: an organization's subscriptions, and the outbox of events each one is sent (domain/webhooks.py)."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from models.base import created_at, timestamp, uuid_pk


class WebhookEventType(StrEnum):
    """The whitelist a subscription chooses from."""

    payment_status_changed = "payment.status_changed"
    loan_status_changed = "loan.status_changed"
    kyc_status_changed = "kyc.status_changed"


class SubscriptionStatus(StrEnum):
    active = "active"
    paused = "paused"  # no new events; those already waiting are sent once it is active again
    deleted = "deleted"  # the row stays for its delivery log


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    dead = "dead"  # retried for webhook_delivery_max_time: waits for a replay


class WebhookSubscription(SQLModel, table=True):
    """An endpoint of an organization and the event types it gets. Its signing secret is stored encrypted with the
    account-number keys (core/crypto.py), as MFA secrets are: we must sign with it, so it cannot be a hash."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        UniqueConstraint("created_by", "idempotency_key", name="uq_webhook_subscriptions_idempotency"),
        CheckConstraint("status IN ('active','paused','deleted')", name="webhook_subscriptions_status_valid"),
    )
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(sa_column=Column(ARRAY(String(64)), nullable=False))
    status: str = Field(default=SubscriptionStatus.active, max_length=16)
    secret_ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    secret_hint: str = Field(max_length=16)  # the secret's first characters, to tell secrets apart
    created_by: uuid.UUID = Field(foreign_key="users.id")
    idempotency_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class WebhookEvent(SQLModel, table=True):
    """One event for one subscription (the outbox row, and its delivery log entry): written in the transaction that
    changed the status, once per entity and transition (`event_key`); `body` is the exact JSON sent every time."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("subscription_id", "entity_type", "entity_id", "event_key", name="webhook_events_once"),
        CheckConstraint("status IN ('pending','delivered','dead')", name="webhook_events_status_valid"),
    )
    id: uuid.UUID = uuid_pk()
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), nullable=False, unique=True))
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscriptions.id")
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    event_type: str = Field(max_length=64)
    entity_type: str = Field(max_length=32)
    entity_id: uuid.UUID
    event_key: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=DeliveryStatus.pending, max_length=16)
    attempts: int = 0
    last_attempt_at: datetime | None = timestamp()
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    dispatched_at: datetime | None = timestamp()  # when its subscription's workflow was last woken for it
    delivered_at: datetime | None = timestamp()
    dead_at: datetime | None = timestamp()
    replays: int = 0
    created_at: datetime = created_at()


class WebhookDeliveryOut(BaseModel):
    """An event of a subscription, as its delivery log shows it."""

    id: uuid.UUID = Field(description="the event's id, sent as X-Webhook-Id (dedupe on it)")
    seq: int
    subscription_id: uuid.UUID
    event_type: str
    entity_type: str
    entity_id: uuid.UUID
    status: str
    attempts: int
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None
    replays: int
    payload: dict[str, Any] = Field(description="the body sent, parsed")


# --- workflow and activity arguments -----------------------------------------------------------------------------


class WebhookDispatchInput(BaseModel):
    interval_seconds: float  # between looks at the outbox
    rewake_after_seconds: float
    run_for_seconds: float = 300  # one dispatch activity's life (heartbeating), before the workflow starts the next
    rounds_before_continue: int = 100


class WebhookRetry(BaseModel):
    initial_seconds: float
    max_interval_seconds: float
    max_time_seconds: float  # after this, the event is a dead letter
    request_timeout_seconds: float


class WebhookDeliveryInput(BaseModel):
    subscription_id: uuid.UUID
    retry: WebhookRetry
    events_before_continue: int = 200


class NextWebhookEvent(BaseModel):
    subscription_status: str
    event_id: uuid.UUID | None = None


class DeliveryAttempt(BaseModel):
    event_id: uuid.UUID
    timeout_seconds: float


class ParkWebhookEvent(BaseModel):
    event_id: uuid.UUID
    reason: str
