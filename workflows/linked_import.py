"""A linked account's transactions synced from the account-linking provider (`import-<id>`, source 'linked'): the
provider's feed read a page at a time from the cursor the account's last sync ended at, each page committed with the
cursor it moves to (a worker killed mid-sync resumes at the page it was on), then the lines categorised by the rules,
the import finished and the member told once, as a CSV import is (activities/transaction_imports.py)."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.linked_imports import LinkedImportActivities
    from activities.transaction_imports import TransactionImportActivities
    from models.transaction_imports import ImportFailure, ImportProgress, ImportRef, LinkedImportInput, SyncPage

from workflows.transaction_import import CATEGORISE, STEP  # the same finishing steps as a CSV import

PAGES_PER_RUN = 500
PAGE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(minutes=1)),
)


@workflow.defn
class LinkedImportWorkflow:
    def __init__(self) -> None:
        self._progress = ImportProgress()

    @workflow.query
    def progress(self) -> ImportProgress:
        """Lines read, loaded, already there and unreadable so far (committed), and the stage."""
        return self._progress

    @workflow.run
    async def run(self, req: LinkedImportInput) -> ImportProgress:
        ref, cursor, failed = ImportRef(import_id=req.import_id), req.cursor, False
        try:
            for _ in range(PAGES_PER_RUN):
                workflow.set_current_details(f"reading the provider's feed from {cursor or 'the start'}")
                page = await workflow.execute_activity_method(
                    LinkedImportActivities.sync_page, SyncPage(import_id=req.import_id, cursor=cursor), **PAGE
                )
                self._progress = ImportProgress(**page.model_dump(include=set(ImportProgress.model_fields)))
                if not page.has_more or page.status != "running":
                    break
                cursor = page.next_cursor
            else:
                workflow.continue_as_new(LinkedImportInput(import_id=req.import_id, cursor=cursor))
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            failure = ImportFailure(import_id=req.import_id, error=f"the provider's feed could not be read: {reason}")
            await workflow.execute_activity_method(TransactionImportActivities.fail_import, failure, **STEP)
            failed = True
        if not failed and self._progress.status == "running":
            self._progress.status = "categorising"
            workflow.set_current_details("categorising by the rules")
            await workflow.execute_activity_method(TransactionImportActivities.categorise_import, ref, **CATEGORISE)
        self._progress = await workflow.execute_activity_method(TransactionImportActivities.finish_import, ref, **STEP)
        workflow.set_current_details(f"{self._progress.status}: telling the member")
        await workflow.execute_activity_method(TransactionImportActivities.notify_import, ref, **STEP)
        return self._progress
