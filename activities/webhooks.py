"""Webhooks out: waking the delivery workflows for the outbox rows (domain/webhooks.py), and sending each event.

How an outbox row starts its delivery: a poller, not the writer. The rows are written inside other activities' (and
the API's) transactions, often in the middle of a larger change; signalling Temporal from there would happen before
the commit (a signal for a row that may roll back) or need every writer to signal after it (and a crash in between
would lose the wake-up). Instead one long-lived dispatcher (`webhook-dispatch-<routine queue>`) looks at the outbox every
webhook_dispatch_interval and signals-with-start `webhook-delivery-<subscription>` for the rows it has not woken it
for, then marks them (dispatched_at). A crash between the signal and the mark only wakes the workflow twice, which
is harmless: the workflow reads what to send from the outbox itself, in order, so the signal carries nothing."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from core import webhook_signing, webhook_targets
from core.config import Settings
from core.crypto import AccountNumberCipher
from core.db import Database
from core.task_queues import queue_for
from models.webhooks import (
    DeliveryAttempt,
    DeliveryStatus,
    NextWebhookEvent,
    ParkWebhookEvent,
    SubscriptionStatus,
    WebhookDeliveryInput,
    WebhookDispatchInput,
    WebhookRetry,
)

DISPATCHER_WORKFLOW_PREFIX = "webhook-dispatch"
DISPATCH_BATCH = 1000
NOT_ACTIVE = "SubscriptionNotActive"  # the error type of a delivery whose subscription was paused or deleted
NOT_ALLOWED = "EndpointNotAllowed"  # production: the endpoint resolves to an internal address (parked at once)


def delivery_workflow_id(subscription_id: uuid.UUID | str) -> str:
    return f"webhook-delivery-{subscription_id}"


def dispatcher_workflow_id(settings: Settings) -> str:
    """One dispatcher a deployment, named after the queue it runs on: a stack of other queues on the same Temporal
    namespace (a test's crash worker, a benchmark) starts its own, and never attaches to one nobody serves."""
    return f"{DISPATCHER_WORKFLOW_PREFIX}-{queue_for(settings, 'WebhookDispatchWorkflow')}"


def retry_of(settings: Settings) -> WebhookRetry:
    return WebhookRetry(
        initial_seconds=settings.webhook_retry_initial.total_seconds(),
        max_interval_seconds=settings.webhook_retry_max_interval.total_seconds(),
        max_time_seconds=settings.webhook_delivery_max_time.total_seconds(),
        request_timeout_seconds=settings.webhook_request_timeout.total_seconds(),
    )


async def start_dispatcher(client: Client, settings: Settings) -> None:
    """Starts the outbox's dispatcher, unless it runs already."""
    await client.start_workflow(
        "WebhookDispatchWorkflow",
        WebhookDispatchInput(
            interval_seconds=settings.webhook_dispatch_interval.total_seconds(),
            rewake_after_seconds=settings.webhook_rewake_after.total_seconds(),
        ),
        id=dispatcher_workflow_id(settings),
        task_queue=queue_for(settings, "WebhookDispatchWorkflow"),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Wakes the webhook delivery workflows for new outbox rows",
    )


class WebhookActivities:
    def __init__(self, db: Database, settings: Settings, client: Client):
        self.db = db
        self.settings = settings
        self.client = client
        self.cipher = AccountNumberCipher.from_settings(settings)

    @activity.defn
    async def dispatch_webhook_events(self, req: WebhookDispatchInput) -> int:
        """Looks at the outbox every interval for run_for_seconds (heartbeating), waking the workflows of the
        subscriptions with rows to send; returns early when the worker shuts down. Returns how many rows it woke for."""
        woken, deadline = 0, time.monotonic() + req.run_for_seconds
        while True:
            woken += await self._dispatch_once(req.rewake_after_seconds)
            activity.heartbeat(woken)
            if time.monotonic() >= deadline:
                return woken
            try:
                await asyncio.wait_for(activity.wait_for_worker_shutdown(), timeout=req.interval_seconds)
                return woken
            except TimeoutError:
                pass

    async def _dispatch_once(self, rewake_after_seconds: float) -> int:
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    text(
                        """SELECT e.id, e.subscription_id FROM webhook_events e
                           JOIN webhook_subscriptions s ON s.id = e.subscription_id AND s.status = 'active'
                           WHERE e.status = 'pending'
                             AND (e.dispatched_at IS NULL OR e.dispatched_at < now() - make_interval(secs => :stale))
                           ORDER BY e.seq LIMIT :n"""
                    ),
                    {"stale": rewake_after_seconds, "n": DISPATCH_BATCH},
                )
            ).all()
        if not rows:
            return 0
        retry = retry_of(self.settings)
        for subscription_id in dict.fromkeys(row.subscription_id for row in rows):
            await self.client.start_workflow(
                "WebhookDeliveryWorkflow",
                WebhookDeliveryInput(subscription_id=subscription_id, retry=retry),
                id=delivery_workflow_id(subscription_id),
                task_queue=queue_for(self.settings, "WebhookDeliveryWorkflow"),
                start_signal="wake",
                static_summary=f"Webhook deliveries of subscription {subscription_id}",
            )
        async with self.db.session() as session, session.begin():
            await session.execute(
                text("UPDATE webhook_events SET dispatched_at = now() WHERE id = ANY(:ids)"),
                {"ids": [row.id for row in rows]},
            )
        return len(rows)

    @activity.defn
    async def next_webhook_event(self, subscription_id: uuid.UUID) -> NextWebhookEvent:
        """The subscription's oldest event still to send (none while it is not active)."""
        async with self.db.session() as session:
            status = (
                await session.execute(
                    text("SELECT status FROM webhook_subscriptions WHERE id = :id"), {"id": subscription_id}
                )
            ).scalar_one_or_none()
            if status != SubscriptionStatus.active:
                return NextWebhookEvent(subscription_status=status or SubscriptionStatus.deleted)
            event_id = (
                await session.execute(
                    text(
                        "SELECT id FROM webhook_events WHERE subscription_id = :id AND status = 'pending' "
                        "ORDER BY seq LIMIT 1"
                    ),
                    {"id": subscription_id},
                )
            ).scalar_one_or_none()
        return NextWebhookEvent(subscription_status=status, event_id=event_id)

    @activity.defn
    async def deliver_webhook_event(self, req: DeliveryAttempt) -> str:
        """One attempt: POSTs the event's stored body, signed with its subscription's secret at this attempt's time,
        and records the answer on the row (the delivery log). A non-2xx answer or no answer raises, for the retry
        policy; a 2xx marks it delivered. An event no longer pending (delivered meanwhile) is not sent again."""
        async with self.db.session() as session:
            row = (
                await session.execute(
                    text(
                        """SELECT e.status, e.body, e.event_type, s.url, s.status AS subscription_status,
                                  s.secret_ciphertext
                           FROM webhook_events e JOIN webhook_subscriptions s ON s.id = e.subscription_id
                           WHERE e.id = :id"""
                    ),
                    {"id": req.event_id},
                )
            ).one()
        if row.status != DeliveryStatus.pending:
            return row.status
        if row.subscription_status != SubscriptionStatus.active:
            raise ApplicationError(
                f"the subscription is {row.subscription_status}", type=NOT_ACTIVE, non_retryable=True
            )
        if webhook_targets.enforced(self.settings) and (refusal := await webhook_targets.resolved_refusal(row.url)):
            await self._record_attempt(req.event_id, None, refusal)
            raise ApplicationError(refusal, type=NOT_ALLOWED, non_retryable=True)
        body = row.body.encode()
        headers = webhook_signing.headers(
            self.cipher.decrypt(row.secret_ciphertext), str(req.event_id), row.event_type, int(time.time()), body
        )
        code: int | None = None
        try:
            async with httpx.AsyncClient(timeout=req.timeout_seconds, follow_redirects=False) as http:
                response = await http.post(row.url, content=body, headers=headers)
            code = response.status_code
            error = None if 200 <= code < 300 else f"HTTP {code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        await self._record_attempt(req.event_id, code, error)
        if error is not None:
            raise ApplicationError(f"webhook {req.event_id} not delivered: {error}", type="DeliveryFailed")
        return DeliveryStatus.delivered

    async def _record_attempt(self, event_id: uuid.UUID, code: int | None, error: str | None) -> None:
        """The attempt on the row (the delivery log); a success marks it delivered."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    """UPDATE webhook_events SET attempts = attempts + 1, last_attempt_at = :now,
                              last_status_code = :code, last_error = :error,
                              status = CASE WHEN :ok THEN 'delivered' ELSE status END,
                              delivered_at = CASE WHEN :ok THEN :now ELSE delivered_at END
                       WHERE id = :id AND status = 'pending'"""
                ),
                {
                    "id": event_id,
                    "now": datetime.now(UTC),
                    "code": code,
                    "error": error[:500] if error else None,
                    "ok": error is None,
                },
            )

    @activity.defn
    async def park_webhook_event(self, req: ParkWebhookEvent) -> None:
        """Retried for the configured time: a dead letter, until someone replays it."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE webhook_events SET status = 'dead', dead_at = now(), "
                    "last_error = coalesce(last_error, :reason) WHERE id = :id AND status = 'pending'"
                ),
                {"id": req.event_id, "reason": req.reason[:500]},
            )
        activity.logger.warning("webhook event %s parked as a dead letter: %s", req.event_id, req.reason)
