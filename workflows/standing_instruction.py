"""One run of a standing instruction, started by its Temporal Schedule (domain/standing.py): pays the run's book
transfer, retries a failed one by policy (insufficient funds may clear), and tells the instruction's owner when
every attempt failed. The run is for the time the schedule meant it to start (a catch-up's past time included):
each attempt's payment has an Idempotency-Key of the instruction, that time and the attempt, so a run started twice
for the same time, or an activity retried after a worker died, pays once."""

from datetime import timedelta
from typing import Any

from temporalio import workflow

from workflows.schedule_time import scheduled_start

with workflow.unsafe.imports_passed_through():
    from activities.standing import StandingActivities
    from models.standing import StandingRunInput, StandingRunOutcome, StandingRunStep

STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=60))


@workflow.defn
class StandingInstructionRunWorkflow:
    @workflow.run
    async def run(self, req: StandingRunInput) -> StandingRunOutcome:
        scheduled_for = scheduled_start()
        outcome = StandingRunOutcome(status="skipped")
        for attempt in range(1, req.attempts + 1):
            workflow.set_current_details(f"run for {scheduled_for:%Y-%m-%d %H:%M:%S} UTC, attempt {attempt}")
            step = StandingRunStep(instruction_id=req.instruction_id, scheduled_for=scheduled_for, attempt=attempt)
            outcome = await workflow.execute_activity_method(StandingActivities.pay_run, step, **STEP)
            if outcome.status != "failed":
                break
            if attempt < req.attempts:
                await workflow.sleep(timedelta(seconds=req.retry_after_seconds))
        else:
            await workflow.execute_activity_method(StandingActivities.notify_failure, step, **STEP)
        workflow.set_current_details(
            f"{outcome.status}: run for {scheduled_for:%Y-%m-%d %H:%M:%S} UTC"
            + (f", payment {outcome.payment_id}" if outcome.payment_id else "")
            + (f", {outcome.failure_code}" if outcome.failure_code else "")
        )
        return outcome
