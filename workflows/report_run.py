"""A report generated in the background (`report-<run id>`): the file made and stored once, then its requester told
once, by email and in-app, whether it is ready or failed. A worker killed at any step resumes there: generating is
idempotent by the run's row, telling by the notification's dedupe key (activities/report_runs.py).

ScheduledReportWorkflow is what a report definition's Schedule starts: it opens the run of its scheduled time (one
per definition and time, however often that time is started) and runs it as a child."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.schedule_time import scheduled_start

with workflow.unsafe.imports_passed_through():
    from activities.report_runs import ReportRunActivities
    from models.report_runs import (
        ReportRunInput,
        ReportRunOutcome,
        RunStatus,
        ScheduledReportInput,
        ScheduledRunStep,
    )

# A report is one set-based query and a render; a database or storage outage is retried for a while, then the run
# fails and its requester is told rather than waiting on it forever.
GENERATE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(maximum_attempts=8, maximum_interval=timedelta(minutes=1)),
)
STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class ReportRunWorkflow:
    def __init__(self) -> None:
        self._stage = "generating"

    @workflow.query
    def progress(self) -> str:
        """generating, notifying, then ready or failed."""
        return self._stage

    @workflow.run
    async def run(self, req: ReportRunInput) -> ReportRunOutcome:
        workflow.set_current_details("generating the report")
        try:
            outcome = await workflow.execute_activity_method(ReportRunActivities.generate_report, req, **GENERATE)
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            failed = ReportRunOutcome(run_id=req.run_id, status=RunStatus.failed, failure=reason)
            outcome = await workflow.execute_activity_method(ReportRunActivities.fail_report_run, failed, **STEP)
        self._stage = "notifying"
        workflow.set_current_details(f"{outcome.status}: telling the requester")
        await workflow.execute_activity_method(ReportRunActivities.notify_report_run, req, **STEP)
        self._stage = outcome.status.value
        workflow.set_current_details(f"{outcome.status}" + (f": {outcome.failure}" if outcome.failure else ""))
        return outcome


@workflow.defn
class ScheduledReportWorkflow:
    @workflow.run
    async def run(self, req: ScheduledReportInput) -> ReportRunOutcome | None:
        step = ScheduledRunStep(definition_id=req.definition_id, scheduled_for=scheduled_start())
        opened = await workflow.execute_activity_method(ReportRunActivities.open_scheduled_run, step, **STEP)
        if opened.run_id is None:
            workflow.set_current_details("skipped: the definition is paused or deleted")
            return None
        workflow.set_current_details(f"run {opened.run_id} for {step.scheduled_for:%Y-%m-%d %H:%M} UTC")
        return await workflow.execute_child_workflow(
            ReportRunWorkflow.run,
            ReportRunInput(run_id=opened.run_id),
            id=f"report-{opened.run_id}",
            task_queue=opened.task_queue,
        )
