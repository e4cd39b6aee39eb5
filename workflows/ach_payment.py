"""An ACH debit or credit, from creation to completion (or cancel, failure, return, reversal).

created -> validated -> funds held (credits) -> queued for a cutoff window -> submitted (in a file) ->
pending settlement -> settled -> completed after the return window. A return can find the payment pending
settlement, settled (the usual timing) or completed: R01/R09 re-present it (at most max_representments times,
not after completion), other codes end it returned or failed; after completion it is reversed. The workflow
listens for a late return until the late-return window closes; a return after that is the bank-event
outbox's to handle (activities/bank_events.py). A file the bank rejects (or never answers) sends its payments back
to be queued for the next window, as the same presentment, or fails them, by policy (`file_rejected`).

Bank events reach it by the `bank_event` signal, each at most once by its event id. One it cannot take (for a
presentment already returned, a second settlement, anything left when it ends) is set aside on the operators'
exception list rather than dropped."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows.local_steps import local_since

with workflow.unsafe.imports_passed_through():
    from activities.ach import AchActivities
    from activities.bank_events import BankEventActivities
    from activities.notifications import NotificationActivities
    from core import search_attributes as sa
    from models.ach import SetAsideEvents
    from models.notifications import NotifyOrgAdmins
    from models.payments import (
        CANCELABLE_STATUSES,
        AchPaymentInput,
        BankEventSignal,
        CancelRequest,
        FileRejectedSignal,
        PaymentOutcome,
        PaymentProgress,
        PaymentStatus,
        PresentmentRef,
        QueuedPayment,
        ReturnInput,
        SubmittedSignal,
    )

# Short timeouts: a worker that dies mid-activity is noticed quickly; every step is safe to run again.
DB_STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=["NotCancelable"],
    ),
)
# The short database steps as local activities (since the patch LOCAL_DB_STEPS): each runs in the worker within
# the workflow task that needs it, not as an activity task dispatched through the server, which saves a round trip
# to Temporal's matching service and a workflow task per step (bench/README.md: what a payment costs). A worker
# that dies mid-step loses its workflow task; the next one replays and runs the step again: every step is
# idempotent by payment and presentment, as it was as an activity. Only steps that lock nothing but the payment's
# own rows: validation, which waits on the account's lock, stays an activity.
LOCAL_DB_STEPS = "ach-local-db-steps"

Arg = TypeVar("Arg")
Result = TypeVar("Result")


async def db_step(step: Callable[[Any, Arg], Awaitable[Result]], arg: Arg) -> Result:
    """A short database step: a local activity, or an activity in a history from before LOCAL_DB_STEPS."""
    return await local_since(LOCAL_DB_STEPS, step, arg, **DB_STEP)


@workflow.defn
class AchPaymentWorkflow:
    def __init__(self) -> None:
        self._status = PaymentStatus.created
        self._presentment = 0
        self._trace: str | None = None
        self._submitted: SubmittedSignal | None = None
        # A later presentment's `submitted` that came before this workflow moved on to it: its queue_payment, a local
        # activity, commits before the workflow task that ran it completes, and a batch may file and signal the entry
        # while that task is retried (a worker died or the task timed out) from a point still at the earlier one.
        self._submitted_ahead: dict[int, SubmittedSignal] = {}
        self._rejected: FileRejectedSignal | None = None  # the file of this presentment never reached the bank
        self._rejected_files: set[str] = set()  # a rejection told twice is one
        self._events: dict[str, BankEventSignal] = {}  # received, not yet taken nor set aside, by event id
        self._seen: set[str] = set()  # every event id received: a repeated delivery is one event
        self._settled_traces: set[str] = set()
        self._returned_traces: set[str] = set()
        self._canceled = False
        self._return_code: str | None = None
        self._return_reason: str | None = None

    @property
    def _submission(self) -> SubmittedSignal:
        """The current presentment's `submitted`: read once _queue has seen it."""
        assert self._submitted is not None
        return self._submitted

    @property
    def _submitted_trace(self) -> str:
        """The current presentment's trace number: read only once it is submitted."""
        assert self._trace is not None
        return self._trace

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.signal
    def submitted(self, signal: SubmittedSignal) -> None:
        if signal.presentment == self._presentment:
            self._submitted = signal
        elif signal.presentment > self._presentment:
            self._submitted_ahead[signal.presentment] = signal

    @workflow.signal
    def file_rejected(self, signal: FileRejectedSignal) -> None:
        # Too late once a later file carried the presentment: that file's `submitted` wins.
        if (
            signal.presentment == self._presentment
            and self._submitted is None
            and str(signal.file_id) not in self._rejected_files
        ):
            self._rejected_files.add(str(signal.file_id))
            self._rejected = signal

    @workflow.signal
    async def bank_event(self, event: BankEventSignal) -> None:
        if event.event_id in self._seen:
            return
        self._seen.add(event.event_id)
        if event.trace_number in self._returned_traces:
            await self._set_aside([event], f"trace {event.trace_number} was already returned")
        elif event.type == "entry.settled" and event.trace_number in self._settled_traces:
            await self._set_aside([event], f"trace {event.trace_number} was already settled")
        else:
            self._events[event.event_id] = event

    @workflow.update
    async def cancel(self, req: CancelRequest) -> PaymentOutcome:
        result = await db_step(AchActivities.cancel_payment, req)
        self._canceled = True
        self._set_status(PaymentStatus.canceled, f"canceled by {req.actor}")
        return result

    @cancel.validator
    def _validate_cancel(self, req: CancelRequest) -> None:
        if self._status not in CANCELABLE_STATUSES or self._canceled:
            raise ApplicationError(f"the payment is {self._status}: too late to cancel", type="NotCancelable")

    @workflow.query
    def status(self) -> str:
        return self._status

    # --- the lifecycle ---------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, req: AchPaymentInput) -> PaymentOutcome:
        self._req = req
        self._set_status(PaymentStatus.created, "validating")
        # An activity, not a local one: it waits its turn on the account's row lock (a busy account's payments
        # queue there), and a local activity would hold the workflow task while it waits.
        result = await workflow.execute_activity_method(AchActivities.validate_ach_payment, req, **DB_STEP)
        self._set_status(
            PaymentStatus(result.status), "validated" if result.status != "failed" else result.failure_reason
        )
        if result.status == PaymentStatus.failed:
            await self._tell_parent(failure_reason=result.failure_reason)
            return result
        while True:
            self._presentment += 1
            self._submitted = self._submitted_ahead.pop(self._presentment, None)
            self._rejected = None
            ended = await self._queue()
            if ended is not None:
                return await self._finish(failure_reason=ended.failure_reason)
            self._trace = self._submission.trace_number
            await db_step(AchActivities.record_submitted, self._ref())
            self._set_status(PaymentStatus.pending_settlement, f"trace {self._trace}: waiting for settlement")

            if await self._after_submission():
                continue  # re-present in the next window
            return await self._finish()

    async def _queue(self) -> QueuedPayment | None:
        """Queues this presentment and waits until a file carries it to the bank (None then), or until the payment
        ends before (canceled, or failed with a file the bank rejected: how it ended). A rejected file's batch has
        already queued the payment again (the same presentment, in a later window) or failed it: queue_payment
        reads which."""
        queued = await db_step(AchActivities.queue_payment, self._ref())
        note = ""
        while queued.status == PaymentStatus.queued:
            self._set_status(
                PaymentStatus.queued,
                f"presentment {self._presentment} queued for the window "
                f"{queued.window_id}, effective {queued.effective_date}{note}",
            )
            await workflow.wait_condition(
                lambda: self._submitted is not None or self._canceled or self._rejected is not None
            )
            if self._canceled:
                return QueuedPayment(status=PaymentStatus.canceled)
            if self._submitted is not None:
                return None
            rejected = self._rejected
            assert rejected is not None  # neither submitted nor canceled: what ended the wait
            note = f" (file {rejected.file_id} did not reach the bank: {rejected.error[:200]})"
            self._rejected = None
            queued = await db_step(AchActivities.queue_payment, self._ref())
        if not self._canceled:  # else the cancel update sets it
            self._set_status(PaymentStatus(queued.status), queued.failure_reason)
        return queued

    async def _after_submission(self) -> bool:
        """Settlement, the return window, completion and the late-return window of the current presentment.
        True when a return sends the payment to its next presentment."""
        event = await self._next_event()
        assert event is not None  # no timeout: it waits for one
        settled = event.type == "entry.settled"
        if settled:
            self._settled_traces.add(self._submitted_trace)
            await db_step(
                AchActivities.record_settled, self._ref(settlement_date=event.settlement_date, event_id=event.event_id)
            )
            self._set_status(PaymentStatus.settled, f"settled {event.settlement_date}; return window open")
            await self._tell_parent()
            event = await self._next_event(timeout=self._req.return_window_seconds, returns_only=True)
        if event is not None:
            return await self._returned(event, settled=settled, completed=False)
        await db_step(AchActivities.complete_payment, self._ref())
        self._set_status(PaymentStatus.completed, "completed; listening for a late return")
        await self._tell_parent()
        late = await self._next_event(timeout=self._req.late_return_window_seconds, returns_only=True)
        if late is not None:
            await self._returned(late, settled=True, completed=True)
        return False

    def _current_event(self, returns_only: bool) -> BankEventSignal | None:
        """The bank's next word on the current trace. A settlement comes before a return that is there with it:
        the bank settles an entry before it sends it back."""
        events = [e for e in self._events.values() if e.trace_number == self._trace]
        settled = [] if returns_only else [e for e in events if e.type == "entry.settled"]
        returned = [e for e in events if e.type == "entry.returned"]
        first = settled or returned
        return first[0] if first else None

    async def _next_event(self, timeout: float | None = None, returns_only: bool = False) -> BankEventSignal | None:
        """Takes the next event on the current trace; None when the timeout passes first."""
        try:
            await workflow.wait_condition(
                lambda: self._current_event(returns_only) is not None,
                timeout=timedelta(seconds=timeout) if timeout is not None else None,
            )
        except TimeoutError:
            pass  # one more look: an event that came with the timer still counts
        event = self._current_event(returns_only)
        if event is not None:
            del self._events[event.event_id]
        return event

    async def _returned(self, event: BankEventSignal, settled: bool, completed: bool) -> bool:
        self._returned_traces.add(self._submitted_trace)
        self._return_code, self._return_reason = event.return_code, event.return_reason
        result = await db_step(
            AchActivities.apply_return,
            ReturnInput(
                payment_id=self._req.payment_id,
                presentment=self._presentment,
                return_code=event.return_code or "R??",
                return_reason=event.return_reason or "returned",
                settled=settled,
                completed=completed,
                max_representments=self._req.max_representments,
                event_id=event.event_id,
            ),
        )
        when = "after completion" if completed else "after settlement" if settled else "before settlement"
        if result.represent:
            self._set_status(
                PaymentStatus.returned,
                f"{event.return_code} {when}: {event.return_reason}; "
                f"re-presenting (presentment {self._presentment + 1})",
            )
        else:
            self._set_status(PaymentStatus(result.status), f"{event.return_code} {when}: {event.return_reason}")
        await workflow.execute_activity_method(
            NotificationActivities.notify_org_admins,
            NotifyOrgAdmins(
                org_id=result.org_id,
                kind="payment_returned",
                template="payment_returned",
                context=result.notice,
                entity_type="payment",
                entity_id=str(self._req.payment_id),
                dedupe_key=f"payment-returned:{self._req.payment_id}:{self._presentment}",
            ),
            start_to_close_timeout=timedelta(seconds=60),
        )
        # Whatever else came for this presentment can no longer be taken: a re-presentment gets a new trace.
        leftovers = [e for e in self._events.values() if e.trace_number == self._trace]
        for e in leftovers:
            del self._events[e.event_id]
        if leftovers:
            await self._set_aside(leftovers, f"trace {self._trace} was already returned")
        if result.represent:
            await self._tell_parent(represent=True)
        return result.represent

    async def _set_aside(self, events: list[BankEventSignal], reason: str) -> None:
        """Puts events this payment cannot take on the operators' exception list."""
        await db_step(
            BankEventActivities.set_aside_bank_events,
            SetAsideEvents(payment_id=self._req.payment_id, event_ids=[e.event_id for e in events], reason=reason),
        )

    async def _finish(self, failure_reason: str | None = None) -> PaymentOutcome:
        """Tells the parent of the end, and takes or sets aside every event still here. Nothing is awaited between
        the last look at the events and the return: Temporal delivers a signal that comes as the workflow ends
        before it lets it complete, so such an event is still handled here, never dropped."""
        told = self._status == PaymentStatus.completed  # completed was told when it happened
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            late = self._current_event(returns_only=True) if self._status == PaymentStatus.completed else None
            if late is not None:
                del self._events[late.event_id]
                await self._returned(late, settled=True, completed=True)
                told = False
            elif not told:
                await self._tell_parent(failure_reason=failure_reason)
                told = True
            elif self._events:
                leftovers = list(self._events.values())
                self._events.clear()
                await self._set_aside(leftovers, f"the payment had ended {self._status}")
            else:
                return PaymentOutcome(
                    payment_id=self._req.payment_id, status=self._status, failure_code=self._return_code
                )

    async def _tell_parent(self, failure_reason: str | None = None, represent: bool = False) -> None:
        """A loan or a bill that made this payment learns of each step: settled, completed, returned to be
        re-presented (represent=True), or its end."""
        if not self._req.notify_workflow_id:
            return
        try:
            await workflow.get_external_workflow_handle(self._req.notify_workflow_id).signal(
                "payment_progress",
                PaymentProgress(
                    payment_id=self._req.payment_id,
                    reference=self._req.notify_reference,
                    status=self._status,
                    return_code=self._return_code,
                    failure_reason=failure_reason or self._return_reason,
                    represent=represent,
                    presentment=max(self._presentment, 1),
                ),
            )
        except Exception as error:  # the parent has closed meanwhile: nobody is left to tell
            workflow.logger.warning(
                "could not tell %s of payment %s: %s", self._req.notify_workflow_id, self._status, error
            )

    def _ref(self, **extra) -> PresentmentRef:
        return PresentmentRef(
            payment_id=self._req.payment_id, presentment=self._presentment, trace_number=self._trace, **extra
        )

    def _set_status(self, status: PaymentStatus, detail: str | None) -> None:
        self._status = status
        workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(status)])
        workflow.set_current_details(f"{status}: {detail}" if detail else status)
