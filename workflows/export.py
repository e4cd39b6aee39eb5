"""An export made in the background (`export-<id>` for a member's transactions, `gdpr-export-<id>` for everything
held on a member): the file made and stored once, then its requester told once, with a signed link, whether it is
ready or failed. A worker killed at any step resumes there (activities/exports.py)."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.exports import ExportActivities
    from models.exports import ExportInput, ExportOutcome, ExportStatus

# A database or storage outage is retried for a while, then the export fails and its requester is told.
MAKE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=15),
    retry_policy=RetryPolicy(maximum_attempts=8, maximum_interval=timedelta(minutes=1)),
)
STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class ExportWorkflow:
    @workflow.run
    async def run(self, req: ExportInput) -> ExportOutcome:
        workflow.set_current_details("making the file")
        try:
            outcome = await workflow.execute_activity_method(ExportActivities.make_export, req, **MAKE)
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            failed = ExportOutcome(export_id=req.export_id, status=ExportStatus.failed, failure=reason)
            outcome = await workflow.execute_activity_method(ExportActivities.fail_export, failed, **STEP)
        workflow.set_current_details(f"{outcome.status}: telling the requester")
        await workflow.execute_activity_method(ExportActivities.notify_export, req, **STEP)
        workflow.set_current_details(f"{outcome.status}" + (f": {outcome.failure}" if outcome.failure else ""))
        return outcome
