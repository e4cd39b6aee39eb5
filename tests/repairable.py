"""A workflow for the operator API's tests (tests/integration/test_operations.py): its one step fails while the test
has it broken, once (the workflow fails) or retrying (the workflow is stuck). Apart from the test module, so the
workflow sandbox imports little."""

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

STEP = "repairable_step"


@workflow.defn
class RepairableWorkflow:
    @workflow.run
    async def run(self, retrying: bool) -> str:
        return await workflow.execute_activity(
            STEP,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                backoff_coefficient=1.0,
                maximum_attempts=0 if retrying else 1,
            ),
            result_type=str,
        )


class Switch:
    """The workflows whose step fails, by workflow id."""

    def __init__(self) -> None:
        self.broken: set[str] = set()

    @activity.defn(name=STEP)
    async def step(self) -> str:
        if activity.info().workflow_id in self.broken:
            raise ApplicationError("the step's dependency is down")
        return "done"
