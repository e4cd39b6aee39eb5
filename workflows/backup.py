"""BackupWorkflow: the daily dump of the application database (Schedule `database-backup`). One activity dumps,
verifies and records it (named for this run's start, so a retry overwrites the same file), the next prunes the
dumps past the retention. A failed dump fails the run, which the Temporal UI shows and alerting catches."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.backups import BackupActivities
    from models.backups import BackupInput, BackupRequest, BackupResult, PruneRequest


@workflow.defn
class BackupWorkflow:
    @workflow.run
    async def run(self, req: BackupInput) -> BackupResult:
        # Named for now, not for the scheduled time: a dump holds the data of when it ran, backfilled or not.
        now = workflow.now()
        workflow.set_current_details("dumping the database")
        result = await workflow.execute_activity_method(
            BackupActivities.take_backup,
            BackupRequest(at=now),
            start_to_close_timeout=timedelta(hours=6),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=10), maximum_interval=timedelta(minutes=10), maximum_attempts=5
            ),
        )
        result.pruned = await workflow.execute_activity_method(
            BackupActivities.prune_backups, PruneRequest(now=now), start_to_close_timeout=timedelta(minutes=10)
        )
        workflow.set_current_details(
            f"{result.name}: {result.size_bytes} bytes, {result.toc_entries} entries verified; "
            f"{len(result.pruned)} pruned"
        )
        return result
