"""One cutoff window: wait for the cutoff, write the NACHA file of every payment queued for it, upload it to
the ODFI, and tell each payment its trace number."""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.ach import AchActivities
    from models.payments import AchBatchInput, SubmittedSignal


@workflow.defn
class AchBatchWorkflow:
    def __init__(self) -> None:
        self._stage = "waiting for the cutoff"

    @workflow.run
    async def run(self, req: AchBatchInput) -> int:
        workflow.set_current_details(f"waiting for the cutoff at {req.cutoff_at.isoformat()}")
        wait = (req.cutoff_at - workflow.now()).total_seconds()
        if wait > 0:
            await workflow.sleep(wait)
        self._stage = "building the file"
        built = await workflow.execute_activity_method(
            AchActivities.build_file, req, start_to_close_timeout=timedelta(seconds=30))
        if built is None:
            self._stage = "closed: no payments"
            workflow.set_current_details(self._stage)
            return 0
        self._stage = f"uploading {len(built.entries)} entries"
        workflow.set_current_details(self._stage)
        await workflow.execute_activity_method(
            AchActivities.upload_file, built.file_id, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                                     non_retryable_error_types=["FileRejected"]))
        # All in one workflow task: the signals go out together rather than one round trip each.
        await asyncio.gather(*(
            workflow.get_external_workflow_handle(entry.workflow_id).signal(
                "submitted", SubmittedSignal(trace_number=entry.trace_number, presentment=entry.presentment,
                                             file_id=built.file_id))
            for entry in built.entries))
        self._stage = f"uploaded file {built.file_id} with {len(built.entries)} entries"
        workflow.set_current_details(self._stage)
        return len(built.entries)

    @workflow.query
    def stage(self) -> str:
        return self._stage
