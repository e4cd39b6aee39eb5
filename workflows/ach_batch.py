"""One cutoff window: wait for the cutoff, write the NACHA file of every payment queued for it, upload it to
the ODFI, and tell each payment its trace number. A file that never reaches the bank (rejected, or unanswered
past the upload deadline and unknown to the bank) is never sent again: its payments go back to be queued for
the next window, or fail, by policy, and each is told."""

import asyncio
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.ach import AchActivities
    from models.payments import (
        AchBatchInput,
        BuiltFile,
        FileRejectedSignal,
        SubmittedSignal,
        UnansweredUpload,
        UploadOutcome,
    )

PATIENT = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# Since this patch a window closes into as many files as the bank's per-file limits need (build_files), each
# uploaded on its own, and the payments failed at the cutoff are told; a history from before built one file.
SEVERAL_FILES = "ach-batch-several-files"


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
        if workflow.patched(SEVERAL_FILES):
            return await self._several_files(req)
        built = await workflow.execute_activity_method(
            AchActivities.build_file, req, start_to_close_timeout=timedelta(seconds=30)
        )
        if built is None:
            self._stage = "closed: no payments"
            workflow.set_current_details(self._stage)
            return 0
        self._stage = f"uploading {len(built.entries)} entries"
        workflow.set_current_details(self._stage)
        uploaded = await self._upload(req, built)
        if uploaded.status != "uploaded":
            await self._release(built, uploaded)
            return 0
        # All in one workflow task: the signals go out together rather than one round trip each.
        await asyncio.gather(
            *(
                workflow.get_external_workflow_handle(entry.workflow_id).signal(
                    "submitted",
                    SubmittedSignal(
                        trace_number=entry.trace_number, presentment=entry.presentment, file_id=built.file_id
                    ),
                )
                for entry in built.entries
            )
        )
        self._stage = f"uploaded file {built.file_id} with {len(built.entries)} entries"
        workflow.set_current_details(self._stage)
        return len(built.entries)

    async def _several_files(self, req: AchBatchInput) -> int:
        # One transaction of set-based statements: seconds even at the 10,000-record file limit. The timeout is how
        # long a window waits when the worker building it dies mid-way (it had 5 minutes: a SIGKILL in the build left
        # the window's payments queued past test_ach_cancel_and_crash's wait). A timeout is not part of the command's
        # identity, so histories replay unchanged.
        window = await workflow.execute_activity_method(
            AchActivities.build_files, req, start_to_close_timeout=timedelta(seconds=60), retry_policy=PATIENT
        )
        if window.dropped:
            assert window.dropped_id is not None  # set with them
            await asyncio.gather(
                *(
                    self._tell(
                        d.workflow_id,
                        FileRejectedSignal(file_id=window.dropped_id, presentment=d.presentment, error=d.reason),
                    )
                    for d in window.dropped
                )
            )
        if not window.file_ids:
            self._stage = f"closed: no payments filed ({len(window.dropped)} failed at the cutoff)"
            workflow.set_current_details(self._stage)
            return 0
        self._stage = f"uploading {len(window.file_ids)} file(s)"
        workflow.set_current_details(self._stage)
        sent = await asyncio.gather(*(self._send(req, file_id) for file_id in window.file_ids))
        self._stage = f"uploaded {sum(1 for n in sent if n)} of {len(sent)} file(s) with {sum(sent)} entries"
        workflow.set_current_details(self._stage)
        return sum(sent)

    async def _send(self, req: AchBatchInput, file_id: uuid.UUID) -> int:
        """One file of the window: uploaded and its payments told their trace numbers (the number of them), or
        released as a rejected file's (0)."""
        stub = BuiltFile(file_id=file_id, entries=[])
        uploaded = await self._upload(req, stub)
        built = await workflow.execute_activity_method(
            AchActivities.built_file, file_id, start_to_close_timeout=timedelta(minutes=1), retry_policy=PATIENT
        )
        if uploaded.status != "uploaded":
            await self._release(built, uploaded)
            return 0
        await asyncio.gather(
            *(
                workflow.get_external_workflow_handle(entry.workflow_id).signal(
                    "submitted",
                    SubmittedSignal(trace_number=entry.trace_number, presentment=entry.presentment, file_id=file_id),
                )
                for entry in built.entries
            )
        )
        return len(built.entries)

    async def _upload(self, req: AchBatchInput, built: BuiltFile) -> UploadOutcome:
        """Uploaded or rejected by the bank; when it leaves the file unanswered past the deadline, the bank is asked
        whether it has it before its payments go anywhere else."""
        deadline = timedelta(seconds=req.upload_deadline_seconds) if req.upload_deadline_seconds else None
        try:
            return await workflow.execute_activity_method(
                AchActivities.upload_file,
                built.file_id,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=deadline,
                retry_policy=PATIENT,
            )
        except ActivityError as error:
            # The deadline passed: a timeout, or the last attempt's error when the next one would come after it.
            if not isinstance(error.cause, (TimeoutError, ApplicationError)):
                raise
            last = error.cause.cause or error.cause
            self._stage = f"file {built.file_id} unanswered by the deadline: asking the bank whether it has it"
            workflow.set_current_details(self._stage)
            return await workflow.execute_activity_method(
                AchActivities.confirm_upload,
                UnansweredUpload(file_id=built.file_id, error=str(last)),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PATIENT,
            )

    async def _release(self, built: BuiltFile, uploaded: UploadOutcome) -> None:
        released = await workflow.execute_activity_method(
            AchActivities.release_unsent_file,
            built.file_id,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PATIENT,
        )
        await asyncio.gather(
            *(
                self._tell(
                    entry.workflow_id,
                    FileRejectedSignal(
                        file_id=built.file_id, presentment=entry.presentment, error=uploaded.error or ""
                    ),
                )
                for entry in built.entries
            )
        )
        outcome = "queued again" if released.policy == "requeue" else "failed"
        self._stage = (
            f"file {built.file_id} {uploaded.status} ({(uploaded.error or '')[:200]}): its {released.entries} "
            f"payments {outcome}"
        )
        workflow.set_current_details(self._stage)

    @staticmethod
    async def _tell(workflow_id: str, rejected: FileRejectedSignal) -> None:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal("file_rejected", rejected)
        except Exception as error:  # the payment was canceled once queued again, and has ended meanwhile
            workflow.logger.info("could not tell %s its file was rejected: %s", workflow_id, error)

    @workflow.query
    def stage(self) -> str:
        return self._stage
