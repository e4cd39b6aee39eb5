"""The bank-event outbox. The webhook records each event (bank_events, status pending) and answers the bank
once it is recorded. Meanwhile, if Temporal answers in time, it signals the payment's open workflow itself (the
common case: one call) or, when that workflow has ended, starts the event's BankEventDeliveryWorkflow
(`bank-event-<event id>`); whatever it could not hand over, the sweep (BankEventSweepWorkflow) hands to a
delivery workflow later. Delivery retries until it is done.

Delivery signals the payment's workflow while it is open (it takes the event, or sets it aside when it cannot:
a settlement of an entry already returned, a second settlement). A payment whose workflow has ended cannot take
anything: a return of its completed last presentment reverses it by policy (the ledger once, status `reversed`);
anything else goes on the operators' exception list (status `exception`) with its payment, until an operator
resolves it with a note."""

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import CursorResult, text
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.ach import AchActivities, return_notice
from activities.payments import lock_payment
from core.config import Settings
from core.db import Database
from core.task_queues import queue_for
from domain.money_events import money_changed_for_accounts
from models.ach import (
    BankEvent,
    BankEventDelivery,
    BankEventStatus,
    BankEventSweepInput,
    DeliveryOutcome,
    SetAsideEvents,
)
from models.external_accounts import ExternalAccount
from models.payments import BankEventSignal, Payment, PaymentStatus, ReturnInput

SWEEP_WORKFLOW_ID = "bank-event-sweep"


def delivery_workflow_id(event_id: str) -> str:
    return f"bank-event-{event_id}"


async def start_delivery(client: Client, settings: Settings, event_id: str) -> None:
    """Starts the event's delivery workflow, or finds it running; one that ended is started again, and finds the
    event delivered already unless it is still pending."""
    await client.start_workflow(
        "BankEventDeliveryWorkflow",
        BankEventDelivery(event_id=event_id),
        id=delivery_workflow_id(event_id),
        task_queue=queue_for(settings, "BankEventDeliveryWorkflow"),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"Bank event {event_id}",
    )


async def start_sweep(client: Client, settings: Settings) -> None:
    """Starts the sweep that delivers what the webhook could not hand over, unless it runs already."""
    await client.start_workflow(
        "BankEventSweepWorkflow",
        BankEventSweepInput(interval_seconds=settings.bank_event_sweep_interval.total_seconds()),
        id=SWEEP_WORKFLOW_ID,
        task_queue=queue_for(settings, "BankEventSweepWorkflow"),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Delivers bank events still pending in the outbox",
    )


async def signal_payment(client: Client, workflow_id: str, payload: dict | None) -> bool:
    """Signals a recorded event to its payment's workflow; False when that workflow has ended (or is gone)."""
    try:
        await client.get_workflow_handle(workflow_id).signal("bank_event", BankEventSignal.model_validate(payload))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise  # Temporal is unreachable or busy: try again later
        return False
    return True


def closed_payment_verdict(event_type: str, event_presentment: int | None, payment: Payment) -> str | None:
    """For an event that reached a payment after its workflow ended: None when it is a return of the payment's
    completed last presentment (reversed by policy), else why it goes on the exception list."""
    if event_presentment != payment.presentments:
        return f"an event of presentment {event_presentment}; the payment is on presentment {payment.presentments}"
    if event_type != "entry.returned":
        return f"a settlement for a payment already {payment.status}"
    if payment.status != PaymentStatus.completed:
        return f"a return for a payment already {payment.status}"
    return None


class BankEventActivities:
    def __init__(self, db: Database, settings: Settings, client: Client, ach: AchActivities):
        self.db = db
        self.settings = settings
        self.client = client
        self.ach = ach  # the return's ledger entries and reaction, shared with the payment's workflow

    @activity.defn
    async def deliver_bank_event(self, req: BankEventDelivery) -> DeliveryOutcome:
        async with self.db.session() as session:
            event = (await session.exec(select(BankEvent).where(BankEvent.event_id == req.event_id))).first()
            payment = await session.get(Payment, event.payment_id) if event and event.payment_id else None
        if event is None:
            return DeliveryOutcome(status="unknown", detail="no such event")
        if event.status != BankEventStatus.pending:
            if event.status == BankEventStatus.applied and payment is not None:
                # A retry after the commit (the first attempt's result lost with its worker): the same outcome
                # again, so the workflow still tells the org admins and the parent; the member is told again too
                # (every notice is deduplicated by its key).
                await self._tell_member_of_late_return(event, payment)
                return await self._applied(event, payment)
            return DeliveryOutcome(status=event.status, payment_id=event.payment_id, detail=event.detail)
        if payment is None:
            return await self._set_status(req.event_id, BankEventStatus.exception, "no payment has this trace number")
        if not await signal_payment(self.client, payment.workflow_id, event.payload):
            outcome = await self._after_the_workflow(req.event_id)
            if outcome.status == BankEventStatus.applied:
                await self._tell_member_of_late_return(event, payment)
            return outcome
        return await self._set_status(req.event_id, BankEventStatus.delivered, None)

    async def _applied(self, event: BankEvent, payment: Payment) -> DeliveryOutcome:
        """The outcome of a late return an earlier attempt applied, as that attempt answered it."""
        async with self.db.session() as session:
            presentment = await self._presentment(session, event)
            external = await session.get(ExternalAccount, payment.external_account_id)
        assert external is not None  # every ACH payment has its external account
        signal = BankEventSignal.model_validate(event.payload)
        return DeliveryOutcome(
            status=event.status,
            payment_id=payment.id,
            detail=event.detail,
            org_id=payment.org_id,
            notice=return_notice(payment, external, signal.return_code, signal.return_reason),
            presentment=presentment,
            return_code=signal.return_code,
            return_reason=signal.return_reason,
            notify_workflow_id=payment.notify_workflow_id,
            notify_reference=payment.notify_reference or "",
        )

    @staticmethod
    async def _presentment(session, event: BankEvent) -> int | None:
        return (
            await session.execute(
                text("SELECT presentment FROM ach_entries WHERE trace_number = :t"), {"t": event.trace_number}
            )
        ).scalar_one_or_none()

    async def _tell_member_of_late_return(self, event: BankEvent, payment: Payment) -> None:
        """A late return reversed the payment by policy: the member's money-events workflow is told, as for a timely
        one (their payment_returned alert: once, by the presentment and code, however often this runs)."""
        async with self.db.session() as session:
            presentment = await self._presentment(session, event)
        code = BankEventSignal.model_validate(event.payload).return_code
        await money_changed_for_accounts(
            self.client,
            self.db,
            [self.ach.member_account(payment)],
            "payment_returned",
            f"{payment.id}:{presentment}:{code}",
            self.settings,
        )

    async def _set_status(self, event_id: str, status: BankEventStatus, detail: str | None) -> DeliveryOutcome:
        """Moves a pending event on; one that the payment's workflow set aside meanwhile stays where it is."""
        async with self.db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        "UPDATE bank_events SET status = :status, detail = coalesce(CAST(:detail AS varchar), detail), "
                        "signaled_at = CASE WHEN :delivered THEN now() ELSE signaled_at END "
                        "WHERE event_id = :id AND status = 'pending' RETURNING payment_id"
                    ),
                    {
                        "status": status,
                        "detail": detail,
                        "delivered": status == BankEventStatus.delivered,
                        "id": event_id,
                    },
                )
            ).first()
            if row is None:
                event = (await session.exec(select(BankEvent).where(BankEvent.event_id == event_id))).one()
                return DeliveryOutcome(status=event.status, payment_id=event.payment_id, detail=event.detail)
        return DeliveryOutcome(status=status, payment_id=row.payment_id, detail=detail)

    async def _after_the_workflow(self, event_id: str) -> DeliveryOutcome:
        """The payment's workflow has ended: a late return reverses the payment by policy, in the same
        transaction that marks the event applied; anything else goes on the exception list."""
        async with self.db.session() as session, session.begin():
            event = (
                await session.exec(select(BankEvent).where(BankEvent.event_id == event_id).with_for_update())
            ).one()
            if event.status != BankEventStatus.pending:
                return DeliveryOutcome(status=event.status, payment_id=event.payment_id, detail=event.detail)
            assert event.payment_id is not None  # only an event of a payment is delivered to its workflow
            payment = await lock_payment(session, event.payment_id)
            presentment = await self._presentment(session, event)
            reason = closed_payment_verdict(event.type, presentment, payment)
            if reason is not None:
                event.status, event.detail = BankEventStatus.exception, f"the payment's workflow had ended: {reason}"
                session.add(event)
                activity.logger.warning("bank event %s for payment %s set aside: %s", event_id, payment.id, reason)
                return DeliveryOutcome(status=event.status, payment_id=payment.id, detail=event.detail)
            signal = BankEventSignal.model_validate(event.payload)
            returned = await self.ach.return_presentment(
                session,
                payment,
                ReturnInput(
                    payment_id=payment.id,
                    presentment=presentment,
                    return_code=signal.return_code or "R??",
                    return_reason=signal.return_reason or "returned",
                    settled=True,
                    completed=True,
                    max_representments=self.settings.ach_max_representments,
                ),
            )
            event.status = BankEventStatus.applied
            event.detail = f"a return after the late-return window: payment {returned.status} by policy"
            session.add(event)
            activity.logger.warning("bank event %s: payment %s %s by policy", event_id, payment.id, returned.status)
            return DeliveryOutcome(
                status=event.status,
                payment_id=payment.id,
                detail=event.detail,
                org_id=returned.org_id,
                notice=returned.notice,
                presentment=presentment,
                return_code=signal.return_code,
                return_reason=signal.return_reason,
                notify_workflow_id=payment.notify_workflow_id,
                notify_reference=payment.notify_reference or "",
            )

    @activity.defn
    async def set_aside_bank_events(self, req: SetAsideEvents) -> int:
        """Events a payment's workflow received but cannot take go on the exception list (once: a retry finds
        them there)."""
        async with self.db.session() as session, session.begin():
            count = cast(
                CursorResult,
                await session.execute(
                    text(
                        "UPDATE bank_events SET status = 'exception', detail = :reason "
                        "WHERE event_id = ANY(:ids) AND status IN ('pending', 'delivered')"
                    ),
                    {"reason": f"the payment's workflow could not take it: {req.reason}"[:500], "ids": req.event_ids},
                ),
            ).rowcount
        if count:
            activity.logger.warning("payment %s: %d bank event(s) set aside: %s", req.payment_id, count, req.reason)
        return count

    @activity.defn
    async def sweep_bank_events(self) -> int:
        """Starts the delivery of every event still pending after the grace period, oldest first, one batch."""
        async with self.db.session() as session:
            pending = list(
                (
                    await session.execute(
                        text(
                            "SELECT event_id FROM bank_events WHERE status = 'pending' AND received_at < :before "
                            "ORDER BY id LIMIT :n"
                        ),
                        {
                            "before": datetime.now(UTC) - self.settings.bank_event_sweep_grace,
                            "n": self.settings.bank_event_sweep_batch,
                        },
                    )
                ).scalars()
            )
        for started, event_id in enumerate(pending, 1):
            await start_delivery(self.client, self.settings, event_id)
            activity.heartbeat(started)
        if pending:
            activity.logger.info("bank-event sweep: %d pending event(s) handed to delivery", len(pending))
        return len(pending)
