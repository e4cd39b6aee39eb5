"""The bank-event outbox's workflows (activities/bank_events.py says what the outbox is).

BankEventDeliveryWorkflow (`bank-event-<event id>`): delivers one recorded event, retrying until Temporal and the
database answer. When the payment's workflow had ended and the event was a late return, the payment was reversed
by policy: the org admins and the payment's parent (a loan, a bill's auto-pay) are told here, as the payment's
workflow would have told them; a bill whose auto-pay has ended is made due again directly.

BankEventSweepWorkflow (`bank-event-sweep`, started by the worker): every interval, hands the events still
pending (the webhook could not reach Temporal) to their delivery workflows; continues as new now and then."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.bank_events import BankEventActivities
    from activities.bills import BillActivities
    from activities.notifications import NotificationActivities
    from models.ach import BankEventDelivery, BankEventStatus, BankEventSweepInput, DeliveryOutcome
    from models.notifications import NotifyOrgAdmins
    from models.payments import PaymentProgress, PaymentStatus

# No end to the retries: an event is never dropped; a long outage just delays it.
PATIENT: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(minutes=1)),
)


@workflow.defn
class BankEventDeliveryWorkflow:
    @workflow.run
    async def run(self, req: BankEventDelivery) -> str:
        workflow.set_current_details("delivering")
        outcome = await workflow.execute_activity_method(BankEventActivities.deliver_bank_event, req, **PATIENT)
        workflow.set_current_details(f"{outcome.status}: {outcome.detail or ''} payment {outcome.payment_id}")
        if outcome.status == BankEventStatus.applied:
            await self._tell_of_reversal(outcome)
        return outcome.status

    async def _tell_of_reversal(self, outcome: DeliveryOutcome) -> None:
        await workflow.execute_activity_method(
            NotificationActivities.notify_org_admins,
            NotifyOrgAdmins(
                org_id=outcome.org_id,
                kind="payment_returned",
                template="payment_returned",
                context=outcome.notice,
                entity_type="payment",
                entity_id=str(outcome.payment_id),
                dedupe_key=f"payment-returned:{outcome.payment_id}:{outcome.presentment}",
            ),
            start_to_close_timeout=timedelta(seconds=60),
        )
        if not outcome.notify_workflow_id:
            return
        progress = PaymentProgress(
            payment_id=outcome.payment_id,
            reference=outcome.notify_reference,
            status=PaymentStatus.reversed,
            return_code=outcome.return_code,
            failure_reason=outcome.return_reason,
            presentment=outcome.presentment,
        )
        try:
            await workflow.get_external_workflow_handle(outcome.notify_workflow_id).signal("payment_progress", progress)
            return
        except Exception as error:  # the parent has ended
            workflow.logger.warning("could not tell %s of the reversal: %s", outcome.notify_workflow_id, error)
        if outcome.notify_reference.startswith("bill:"):
            notice = await workflow.execute_activity_method(BillActivities.autopay_reversed, progress, **PATIENT)
            if notice is not None:
                await workflow.execute_activity_method(
                    NotificationActivities.notify_users, notice, start_to_close_timeout=timedelta(seconds=60)
                )


@workflow.defn
class BankEventSweepWorkflow:
    def __init__(self) -> None:
        self._handed_over = 0

    @workflow.query
    def handed_over(self) -> int:
        """Pending events handed to delivery by this run."""
        return self._handed_over

    @workflow.run
    async def run(self, req: BankEventSweepInput) -> int:
        for _ in range(req.rounds_before_continue):
            self._handed_over += await workflow.execute_activity_method(
                BankEventActivities.sweep_bank_events,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            workflow.set_current_details(
                f"{self._handed_over} pending events handed to delivery; next sweep in {req.interval_seconds:g} s"
            )
            if req.interval_seconds <= 0:
                return self._handed_over  # one sweep, as an operator or a test asks
            await workflow.sleep(req.interval_seconds)
        workflow.continue_as_new(req)
