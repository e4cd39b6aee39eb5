"""A maker-checker request (domain/maker_checker.py): a large deposit, withdrawal or book transfer, a manual journal
entry or a period close. Its approval request for a checker of the organization, the ApprovalWorkflow as a child (on
the interactive queue: a person waits on its answer; its validators refuse the maker), then the request applied once
it is approved, or closed (its hold released, nothing posted) when it is rejected or its deadline passes.

Every step is idempotent (the request's rows, the entry's unique key `maker-checker:<id>`), so a worker killed
between two steps applies the request once; the workflow id `maker-checker-<request id>` keeps one run a request."""

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.maker_checker import MakerCheckerActivities
    from models.approvals import ApprovalProgress, ApprovalState
    from models.maker_checker import MakerCheckerInput, MakerCheckerOutcome, MakerCheckerStatus
    from workflows.approval import ApprovalWorkflow

STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class TransactionApprovalWorkflow:
    def __init__(self) -> None:
        self._status = MakerCheckerStatus.pending_approval

    @workflow.run
    async def run(self, req: MakerCheckerInput) -> MakerCheckerOutcome:
        workflow.set_current_details("waiting on the checker")
        approval = await workflow.execute_activity_method(
            MakerCheckerActivities.create_maker_checker_approval, req, **STEP
        )
        outcome: ApprovalState = await workflow.execute_child_workflow(
            ApprovalWorkflow.run,
            approval,
            id=f"approval-{approval.request_id}",
            static_summary=f"Approval of {approval.title}",
            task_queue=approval.task_queue or workflow.info().task_queue,
        )
        step = (
            MakerCheckerActivities.apply_maker_checker
            if outcome.status == "approved"
            else MakerCheckerActivities.close_maker_checker
        )
        result: MakerCheckerOutcome = await workflow.execute_activity_method(step, req, **STEP)
        self._status = result.status
        workflow.set_current_details(
            f"{result.status}"
            + (f": entry {result.journal_entry_id}" if result.journal_entry_id else "")
            + (f": closed period {result.closed_period_id}" if result.closed_period_id else "")
            + (f": {result.failure}" if result.failure else "")
        )
        return result

    @workflow.signal
    def approval_progress(self, progress: ApprovalProgress) -> None:
        """The approval child tells its parent where it stands: shown in the Temporal UI."""
        if self._status == MakerCheckerStatus.pending_approval and progress.waiting_on_role:
            workflow.set_current_details(f"waiting on {progress.waiting_on_role.replace('_', ' ')}")

    @workflow.query
    def status(self) -> str:
        return self._status
