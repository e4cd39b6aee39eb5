"""The reversal of a posted journal entry, maker-checker (domain/reversals.py): an approval request for the checker,
the ApprovalWorkflow as a child (on the interactive queue: a person waits on its answer), then the exact opposite
entry once it is approved, or the request closed when it is not.

Every step is idempotent (the request's rows, the entry's unique key), so a worker killed between two steps posts
the reversal once; the workflow id `reversal-<request id>` keeps one run a request."""

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.reversals import ReversalActivities
    from models.approvals import ApprovalProgress, ApprovalState
    from models.reversals import ReversalInput, ReversalOutcome, ReversalStatus
    from workflows.approval import ApprovalWorkflow

STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class ReversalWorkflow:
    def __init__(self) -> None:
        self._status = ReversalStatus.pending_approval

    @workflow.run
    async def run(self, req: ReversalInput) -> ReversalOutcome:
        workflow.set_current_details("waiting on the checker")
        approval = await workflow.execute_activity_method(ReversalActivities.create_reversal_approval, req, **STEP)
        outcome: ApprovalState = await workflow.execute_child_workflow(
            ApprovalWorkflow.run,
            approval,
            id=f"approval-{approval.request_id}",
            static_summary=f"Approval of {approval.title}",
            task_queue=approval.task_queue or workflow.info().task_queue,
        )
        step = ReversalActivities.post_reversal if outcome.status == "approved" else ReversalActivities.close_reversal
        result: ReversalOutcome = await workflow.execute_activity_method(step, req, **STEP)
        self._status = result.status
        workflow.set_current_details(
            f"{result.status}"
            + (f": entry {result.reversal_entry_id}" if result.reversal_entry_id else "")
            + (f": {result.failure}" if result.failure else "")
        )
        return result

    @workflow.signal
    def approval_progress(self, progress: ApprovalProgress) -> None:
        """The approval child tells its parent where it stands: shown in the Temporal UI."""
        if self._status == ReversalStatus.pending_approval and progress.waiting_on_role:
            workflow.set_current_details(f"waiting on {progress.waiting_on_role.replace('_', ' ')}")

    @workflow.query
    def status(self) -> str:
        return self._status
