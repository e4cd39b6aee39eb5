"""A routine workflow for the flood test (tests/integration/test_task_queues.py): its one activity holds a routine
worker slot until the test opens the gate. Apart from the test module, so the workflow sandbox imports little."""

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

HOLD = "hold_routine_slot"


@workflow.defn
class FloodWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(HOLD, start_to_close_timeout=timedelta(minutes=5))


class Gate:
    """Counts the activities that took a slot; each holds it until `opened` is set."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.held = 0

    @activity.defn(name=HOLD)
    async def hold(self) -> None:
        self.held += 1
        await self.opened.wait()
