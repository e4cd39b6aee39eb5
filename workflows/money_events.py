"""One member's money events (`money-events-<user id>`): whatever moved their money (a deposit, a withdrawal, a
transfer, a returned payment, an import) signals it with signal-with-start (domain/money_events.py), and the
workflow evaluates the member's budgets and alert subscriptions in an activity. Signals arriving while an evaluation
runs are batched into the next one: one evaluation covers any number of events, since it reads the member's state
as it is (and raises each alert once by its key, so evaluating twice is harmless).

After CONTINUE_AFTER events (or when Temporal suggests it) the workflow continues as new, carrying the signals not
yet evaluated; it ends after IDLE without an event, only once no signal is pending and every handler has finished
(a signal racing the end makes the completion fail and the workflow go on; the next signal-with-start would start a
new run anyway)."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.money_events import MoneyEventActivities
    from models.money_events import EvaluateMoneyEvents, MoneyEvent, MoneyEventsInput

IDLE = timedelta(minutes=2)
CONTINUE_AFTER = 200
BATCH = 100
EVALUATE_TIMEOUT = timedelta(seconds=60)
EVALUATE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


@workflow.defn
class MoneyEventsWorkflow:
    def __init__(self) -> None:
        self.pending: list[MoneyEvent] = []

    @workflow.signal
    def changed(self, event: MoneyEvent) -> None:
        self.pending.append(event)

    @workflow.query
    def waiting(self) -> int:
        return len(self.pending)

    @workflow.run
    async def run(self, req: MoneyEventsInput) -> int:
        # Carried-over events first, then those signalled to this run (the start signal among them).
        self.pending[:0] = req.pending
        handled = 0
        while True:
            try:
                await workflow.wait_condition(lambda: bool(self.pending), timeout=IDLE)
            except TimeoutError:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.pending:
                    return req.handled + handled
                continue
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            workflow.set_current_details(f"evaluating {len(batch)} events ({batch[-1].cause} {batch[-1].ref})")
            await workflow.execute_activity_method(
                MoneyEventActivities.evaluate_money_events,
                EvaluateMoneyEvents(user_id=req.user_id, events=batch),
                start_to_close_timeout=EVALUATE_TIMEOUT,
                retry_policy=EVALUATE_RETRY,
            )
            handled += len(batch)
            if handled >= CONTINUE_AFTER or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    MoneyEventsInput(user_id=req.user_id, pending=self.pending, handled=req.handled + handled)
                )
