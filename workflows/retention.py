"""RetentionWorkflow: the daily purge of what is past its retention (Schedule `data-retention`; the rules are in
core/retention.py). Ages are measured from the run's start; the run's audit row carries the counts per table."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retention import RetentionActivities
    from models.backups import RetentionInput, RetentionRequest, RetentionResult


@workflow.defn
class RetentionWorkflow:
    @workflow.run
    async def run(self, req: RetentionInput) -> RetentionResult:
        workflow.set_current_details("purging what is past its retention")
        result = await workflow.execute_activity_method(
            RetentionActivities.apply_retention,
            RetentionRequest(now=workflow.now(), run_id=workflow.info().run_id),
            start_to_close_timeout=timedelta(hours=4),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5)),
        )
        workflow.set_current_details(", ".join(f"{name}: {n}" for name, n in result.counts.items()))
        return result
