"""The daily bill run (`BillRunWorkflow`, started by a Temporal Schedule): marks the bills past due overdue,
sends the reminders due on the day, starts the auto-pay of each auto-pay bill due that day, and signals the
money-events workflow of each member whose bill_due alert subscription has a bill within its days (the day turning
is what makes a bill due soon: the alert is evaluated on that event, not by polling).

Each stage goes in batches of set-based activities (keyset by bill id); every batch is safe to run again, so a
repeated run or a crash and replay writes and sends nothing twice. The run continues as new before its history
grows large, carrying its stage, cursor and totals."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.bills import BillActivities
    from models.bills import BillBatch, BillRunInput, BillRunResult
    from workflows.schedule_time import scheduled_local_date

# A killed worker is noticed by the missing heartbeat within seconds, not after the whole timeout.
BATCH_STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
)
STAGES = ("overdue", "reminders", "autopay", "due_alerts")
# Runs begun before the due_alerts stage existed replay without it.
DUE_ALERTS_PATCH = "bill-run-due-alerts"


@workflow.defn
class BillRunWorkflow:
    def __init__(self) -> None:
        self._stage = "starting"
        self._totals: dict[str, int] = {}

    @workflow.query
    def progress(self) -> dict:
        """The current stage and, per stage, the bills marked overdue, reminders sent and auto-pays started."""
        return {"stage": self._stage, **self._totals}

    @workflow.run
    async def run(self, req: BillRunInput) -> BillRunResult:
        day = req.day or scheduled_local_date(req.timezone)
        self._totals = {stage: req.totals.get(stage, 0) for stage in STAGES}
        steps = {
            "overdue": BillActivities.mark_overdue,
            "reminders": BillActivities.send_reminders,
            "autopay": BillActivities.start_autopays,
            "due_alerts": BillActivities.signal_due_alerts,
        }
        stages = STAGES if workflow.patched(DUE_ALERTS_PATCH) else STAGES[:-1]
        after, batches = req.after_id, 0
        for stage in stages[stages.index(req.stage) :]:
            self._stage = stage
            while True:
                if batches >= req.max_batches or workflow.info().is_continue_as_new_suggested():
                    workflow.continue_as_new(
                        BillRunInput(
                            day=day,
                            timezone=req.timezone,
                            stage=stage,
                            after_id=after,
                            totals=self._totals,
                            max_batches=req.max_batches,
                        )
                    )
                result = await workflow.execute_activity_method(
                    steps[stage], BillBatch(day=day, after_id=after), **BATCH_STEP
                )
                batches += 1
                self._totals[stage] += result.done
                self._details(day)
                if result.processed == 0:
                    break
                after = result.last_id
            after = None
        self._stage = "done"
        self._details(day)
        return BillRunResult(
            day=day,
            overdue_marked=self._totals["overdue"],
            reminders_sent=self._totals["reminders"],
            autopays_started=self._totals["autopay"],
            due_alerts_signalled=self._totals["due_alerts"],
        )

    def _details(self, day) -> None:
        t = self._totals
        workflow.set_current_details(
            f"bill run for {day}: {self._stage}; {t['overdue']} marked overdue, "
            f"{t['reminders']} reminders sent, {t['autopay']} auto-pays started, "
            f"{t['due_alerts']} members' bill-due alerts evaluated"
        )
