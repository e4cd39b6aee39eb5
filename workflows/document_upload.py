"""DocumentUploadWorkflow (`document-upload-<upload id>`): an upload's scan, then its storing or its discarding. The
API stages the sealed bytes and waits for this result: a file is a document only once its scan passed, and the row
and the object are written by one activity that can run again without writing twice. A scanner that stays
unreachable fails the upload (after the staged bytes are discarded): the API answers 503, nothing stored."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from models.documents import UploadInput, UploadResult

STEP_TIMEOUT = timedelta(seconds=60)
SCAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5), maximum_attempts=4
)


@workflow.defn
class DocumentUploadWorkflow:
    @workflow.run
    async def run(self, upload: UploadInput) -> UploadResult:
        workflow.set_current_details(f"scanning {upload.filename} ({upload.size_bytes} bytes)")
        try:
            verdict = await workflow.execute_activity_method(
                DocumentActivities.scan_upload, upload, retry_policy=SCAN_RETRY, start_to_close_timeout=STEP_TIMEOUT
            )
        except ActivityError as error:
            await workflow.execute_activity_method(
                DocumentActivities.discard_upload, upload, start_to_close_timeout=STEP_TIMEOUT
            )
            workflow.set_current_details("not scanned: discarded")
            raise ApplicationError("the file could not be scanned", type="ScanFailed", non_retryable=True) from error
        if not verdict.clean:
            await workflow.execute_activity_method(
                DocumentActivities.discard_upload, upload, start_to_close_timeout=STEP_TIMEOUT
            )
            workflow.set_current_details(f"refused: {verdict.signature}")
            return UploadResult(stored=False, document_id=upload.document_id, signature=verdict.signature)
        number = await workflow.execute_activity_method(
            DocumentActivities.store_upload, upload, start_to_close_timeout=STEP_TIMEOUT
        )
        workflow.set_current_details(f"stored as version {number} of document {upload.document_id}")
        return UploadResult(stored=True, document_id=upload.document_id, version=number)
