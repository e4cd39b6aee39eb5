"""MonthEndPostingWorkflow: the Schedule's launcher of a month's interest posting. It starts the child
`interest-posting-YYYY-MM` (which first accrues any day of the month never accrued) and waits for its summary.
When that child already ran to completion (a second trigger, a backfill of a posted month) or is running now, it
starts nothing: the period posts once."""

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.interest_posting import InterestPostingActivities
    from models.interest import InterestPostingInput, MonthEndInput, PostingSummary
    from workflows.interest_posting import DB_STEP, InterestPostingWorkflow
    from workflows.schedule_time import previous_month


def posting_workflow_id(period: str) -> str:
    return f"interest-posting-{period}"


@workflow.defn
class MonthEndPostingWorkflow:
    @workflow.run
    async def run(self, req: MonthEndInput) -> PostingSummary | None:
        period = req.period or previous_month(req.timezone)
        workflow.set_current_details(f"posting interest for {period}")
        try:
            handle = await workflow.start_child_workflow(
                InterestPostingWorkflow.run,
                InterestPostingInput(
                    period=period,
                    timezone=req.timezone,
                    batch_size=req.batch_size,
                    continue_as_new_after=req.continue_as_new_after,
                ),
                id=posting_workflow_id(period),
                static_summary=f"Interest posting for {period}",
                task_queue=workflow.info().task_queue,
                # A completed period is never started again; a failed or terminated one may be (it resumes safely).
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            summary = await workflow.execute_activity_method(
                InterestPostingActivities.stored_summary, period, **DB_STEP
            )
            workflow.set_current_details(f"{period} was posted already" if summary else f"{period} is being posted")
            return summary
        summary = await handle
        workflow.set_current_details(f"{period}: {summary.accounts} accounts posted, {summary.total}")
        return summary
