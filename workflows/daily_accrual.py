"""DailyAccrualWorkflow: one day's interest accrual for every account with a savings product (the Schedule runs
it after midnight for the day just ended; a backfill accrues its own day). The work is one heartbeating
activity that walks the accounts in keyset batches, resumes from its last heartbeat after a crash, and records the
day as run (accrual_runs). Month-end posting runs it as a child for each day of its month missing that record."""

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.accrual import AccrualActivities
    from models.interest import AccrualDay, AccrualResult, AccrualRunInput
    from workflows.schedule_time import previous_day


def accrual_workflow_id(day: date) -> str:
    """The id month-end posting gives the accrual of a day it finds missing (core/schedules.py's runs carry the
    schedule's own ids; both may run a day: each account's accrual for a day is written once)."""
    return f"interest-accrual-{day:%Y-%m-%d}"


@workflow.defn
class DailyAccrualWorkflow:
    @workflow.run
    async def run(self, req: AccrualRunInput) -> AccrualResult:
        day = req.day or previous_day(req.timezone)
        workflow.set_current_details(f"accruing interest for {day}")
        result = await workflow.execute_activity_method(
            AccrualActivities.accrue_day,
            AccrualDay(day=day, batch_size=req.batch_size),
            start_to_close_timeout=timedelta(hours=4),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
        )
        workflow.set_current_details(
            f"accrued {day}: {result.accounts} accounts, {result.accrued} in {result.batches} batches"
        )
        return result
