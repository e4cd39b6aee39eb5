"""Queues by urgency: a backlog of routine work far larger than the routine pool never holds back a payment."""

import asyncio
import uuid

import httpx
import pytest

from core.task_queues import Urgency, queue_for, queue_name
from tests.conftest import ApiServer
from tests.flood import FloodWorkflow, Gate
from tests.integration.test_ach import pay, wait_status
from tests.integration.test_ach_returns import batches_done
from tests.polling import poll
from worker import build_worker

FLOOD = 200  # routine workflows, against a routine pool of 2 activity slots


@pytest.fixture
async def flooded(temporal_env, settings, db):
    """A worker serving both queues of its own with a 2-slot routine pool, its API, and a closed gate."""
    own = settings.model_copy(
        update={
            "task_queue": f"flood-{uuid.uuid4().hex[:8]}",
            "routine_max_concurrent_activities": 2,
            "routine_max_concurrent_workflow_tasks": 2,
        }
    )
    gate = Gate()
    async with (
        build_worker(temporal_env.client, own, db, extra_workflows=[FloodWorkflow], extra_activities=[gate.hold]),
        ApiServer(own) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        yield own, gate, api
        gate.opened.set()  # the flood drains (or was already): nothing is left holding a slot at shutdown
        await batches_done(temporal_env.client, own.task_queue)


async def test_payments_complete_while_routine_backlog_waits(temporal_env, flooded, ach_org):
    own, gate, api = flooded
    client = temporal_env.client
    routine = queue_name(own, Urgency.routine)
    assert queue_for(own, "BillRunWorkflow") == routine != own.task_queue

    handles = await asyncio.gather(
        *(
            client.start_workflow(FloodWorkflow.run, id=f"flood-{uuid.uuid4().hex}", task_queue=routine)
            for _ in range(FLOOD)
        )
    )

    # The routine pool is full: every slot is held, and the rest of the flood waits behind it.
    async def held() -> int:
        return gate.held

    await poll(held, lambda n: n == 2, 30, "routine slots taken")

    payments = [await pay(api, ach_org, kind, "12.34") for kind in ("ach_debit", "ach_credit", "ach_debit")]
    for payment in payments:
        done = await wait_status(api, ach_org.headers["org_admin"], payment["id"], timeout=60)
        assert done["status"] == "completed", done

    # The payments went through while the gate was shut: no routine activity finished, none beyond the pool began.
    assert gate.held == 2
    assert not gate.opened.is_set()
    described = await asyncio.gather(*(h.describe() for h in handles))
    assert all(d.status is not None and d.status.name == "RUNNING" for d in described)

    # The flood is not drained here (through 2 slots it would take a while): ended at once instead.
    gate.opened.set()
    await asyncio.gather(*(h.terminate("flood test over") for h in handles), return_exceptions=True)
