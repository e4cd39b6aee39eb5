"""Webhooks out (domain/webhooks.py says where events come from; activities/webhooks.py why a dispatcher wakes these).

WebhookDispatchWorkflow (`webhook-dispatch-<queue>`, started by the worker): runs the dispatch activity back to back (each
looks at the outbox every interval for a few minutes, heartbeating), continuing as new now and then.

WebhookDeliveryWorkflow (`webhook-delivery-<subscription id>`, signalled-with-start by the dispatcher): sends its
subscription's pending events one at a time, oldest first, so a receiver sees each entity's events in order. Each
event is retried with exponential backoff for at most the configured time, then parked as a dead letter and the
next one is sent. With nothing to send it waits for the next `wake`. Delivery is at least once (an answer lost after
the receiver acted means a second POST): every POST carries the event's id for the receiver to dedupe."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import NOT_ACTIVE, WebhookActivities
    from models.webhooks import (
        DeliveryAttempt,
        ParkWebhookEvent,
        SubscriptionStatus,
        WebhookDeliveryInput,
        WebhookDispatchInput,
    )

DB_STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30))
)


@workflow.defn
class WebhookDispatchWorkflow:
    @workflow.run
    async def run(self, req: WebhookDispatchInput) -> None:
        for _ in range(req.rounds_before_continue):
            woken = await workflow.execute_activity_method(
                WebhookActivities.dispatch_webhook_events,
                req,
                start_to_close_timeout=timedelta(seconds=req.run_for_seconds + 60),
                heartbeat_timeout=timedelta(seconds=max(30.0, 5 * req.interval_seconds)),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            workflow.set_current_details(f"last round woke delivery for {woken} event(s)")
        workflow.continue_as_new(req)


@workflow.defn
class WebhookDeliveryWorkflow:
    def __init__(self) -> None:
        self._woken = False
        self._delivered = 0
        self._dead = 0

    @workflow.signal
    def wake(self) -> None:
        """New events wait in the outbox (or a dead letter was replayed, or the subscription resumed)."""
        self._woken = True

    @workflow.query
    def progress(self) -> dict[str, int]:
        """Events delivered and parked by this run."""
        return {"delivered": self._delivered, "dead": self._dead}

    @workflow.run
    async def run(self, req: WebhookDeliveryInput) -> None:
        for _ in range(req.events_before_continue):
            self._woken = False  # a wake from here on may be for an event the next look does not see yet
            upcoming = await workflow.execute_activity_method(
                WebhookActivities.next_webhook_event, req.subscription_id, **DB_STEP
            )
            if upcoming.subscription_status == SubscriptionStatus.deleted:
                workflow.set_current_details("the subscription was deleted")
                return
            if upcoming.event_id is None:
                workflow.set_current_details(
                    f"waiting ({upcoming.subscription_status}); {self._delivered} delivered, {self._dead} dead"
                )
                await workflow.wait_condition(lambda: self._woken)
                continue
            workflow.set_current_details(f"sending event {upcoming.event_id}")
            await self._send(req, upcoming.event_id)
        # The next run starts by reading the outbox, so a wake that reaches this run as it ends loses nothing.
        workflow.continue_as_new(req)

    async def _send(self, req: WebhookDeliveryInput, event_id) -> None:
        retry = req.retry
        try:
            await workflow.execute_activity_method(
                WebhookActivities.deliver_webhook_event,
                DeliveryAttempt(event_id=event_id, timeout_seconds=retry.request_timeout_seconds),
                start_to_close_timeout=timedelta(seconds=retry.request_timeout_seconds + 10),
                schedule_to_close_timeout=timedelta(seconds=retry.max_time_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=retry.initial_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=retry.max_interval_seconds),
                    non_retryable_error_types=[NOT_ACTIVE],
                ),
            )
            self._delivered += 1
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == NOT_ACTIVE:
                return  # paused or deleted meanwhile: the event waits (the next look says which)
            inner = getattr(cause, "cause", None)  # a timeout carries the last attempt's failure
            reason = str(inner or cause or error)
            await workflow.execute_activity_method(
                WebhookActivities.park_webhook_event,
                ParkWebhookEvent(event_id=event_id, reason=f"gave up after {retry.max_time_seconds:g} s: {reason}"),
                **DB_STEP,
            )
            self._dead += 1
