"""A member's transaction import (`import-<id>`): the file loaded a chunk at a time, each chunk's activity told
where the previous one ended (byte offset and line number) and committing its lines with the new offset, so a worker
killed mid-file resumes at the chunk it was loading; then the lines categorised by the rules, the import finished,
and the member told once. A very long file continues as new every CHUNKS_PER_RUN chunks, keeping the history short.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.transaction_imports import TransactionImportActivities
    from models.transaction_imports import (
        ImportChunkInput,
        ImportChunkOutcome,
        ImportFailure,
        ImportInput,
        ImportProgress,
        ImportRef,
    )

CHUNKS_PER_RUN = 500
# A chunk heartbeats every second while it works: a killed worker's chunk is retried seconds later.
LOAD: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=5),
    retry_policy=RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(minutes=1)),
)
CATEGORISE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=30),
    retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(minutes=1)),
)
STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=60))


@workflow.defn
class TransactionImportWorkflow:
    def __init__(self) -> None:
        self._progress = ImportProgress()

    @workflow.query
    def progress(self) -> ImportProgress:
        """Rows read, loaded, duplicate and rejected so far (committed), and the stage."""
        return self._progress

    @workflow.run
    async def run(self, req: ImportInput) -> ImportProgress:
        chunk = ImportChunkInput(import_id=req.import_id, offset=req.offset, line_no=req.line_no, columns=req.columns)
        ref = ImportRef(import_id=req.import_id)
        out: ImportChunkOutcome | None = None
        try:
            for _ in range(CHUNKS_PER_RUN):
                workflow.set_current_details(f"loading from line {chunk.line_no}")
                loaded = await workflow.execute_activity_method(TransactionImportActivities.load_chunk, chunk, **LOAD)
                out = loaded
                self._progress = ImportProgress(**loaded.model_dump(include=set(ImportProgress.model_fields)))
                if loaded.done:
                    break
                chunk = ImportChunkInput(
                    import_id=req.import_id, offset=loaded.next_offset, line_no=loaded.next_line, columns=loaded.columns
                )
            else:
                workflow.continue_as_new(
                    ImportInput(
                        import_id=req.import_id, offset=chunk.offset, line_no=chunk.line_no, columns=chunk.columns
                    )
                )
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            failure = ImportFailure(import_id=req.import_id, error=f"the file could not be loaded: {reason}")
            out = await workflow.execute_activity_method(TransactionImportActivities.fail_import, failure, **STEP)
        assert out is not None
        if out.status == "running":
            self._progress.status = "categorising"
            workflow.set_current_details("categorising by the rules")
            await workflow.execute_activity_method(TransactionImportActivities.categorise_import, ref, **CATEGORISE)
        self._progress = await workflow.execute_activity_method(TransactionImportActivities.finish_import, ref, **STEP)
        workflow.set_current_details(f"{self._progress.status}: telling the member")
        await workflow.execute_activity_method(TransactionImportActivities.notify_import, ref, **STEP)
        workflow.set_current_details(
            f"{self._progress.status}: {self._progress.rows_loaded} loaded, {self._progress.rows_duplicate} "
            f"duplicate, {self._progress.rows_rejected} rejected"
        )
        return self._progress
