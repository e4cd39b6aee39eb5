"""The processes the run keeps in flight: ACH payments of every scenario, loans from application to closing, the
bill run's auto-pays and the month-end interest posting. Each driver acts as a client would through outages:
it retries with the same Idempotency-Key (retry.call) and, for a loan, acts on whatever state it finds."""

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from bench.chaos.retry import RETRY_FOR, call, ok
from bench.chaos.scenarios import ACH_SCENARIOS
from bench.chaos.setup import BILL_DAY, LOAN_AMOUNT, LOAN_TERM, LoanCase, World, bounded
from bench.interest_posting import PERIOD
from models.bills import BillRunInput
from models.interest import MonthEndInput
from workflows.bill_run import BillRunWorkflow
from workflows.month_end_posting import MonthEndPostingWorkflow

SCENARIOS = {s.name: s for s in ACH_SCENARIOS}
LOAN_DONE = {"closed", "declined", "rejected", "on_hold", "withdrawn", "failed"}
LOOK_AGAIN = 2.0  # seconds between two looks at a loan
BILL_RUN_ID, MONTH_END_ID = f"chaos-bill-run-{BILL_DAY}", f"chaos-month-end-{PERIOD}"


async def payments(http: httpx.AsyncClient, world: World, concurrency: int = 16) -> None:
    async def create(key: str, name: str, amount: str, external: str) -> None:
        try:
            await created(key, name, amount, external)
        except RuntimeError as error:  # never accepted: the checks find it missing
            print(f"  payment {key} not created: {error}", file=sys.stderr, flush=True)

    async def created(key: str, name: str, amount: str, external: str) -> None:
        await ok(
            http,
            "POST",
            "/api/v1/payments",
            headers={**world.ach_admin, "Idempotency-Key": key},
            json={
                "kind": SCENARIOS[name].kind,
                "amount": amount,
                "account_id": world.ach_account_id,
                "external_account_id": external,
            },
        )

    await bounded((create(*payment) for payment in world.payments), concurrency)


async def loan(
    http: httpx.AsyncClient, world: World, case: LoanCase, give_up: Callable[[], bool], slots: asyncio.Semaphore
) -> None:
    """Applies, then acts on each state the loan is found in: approves it (the officer), pays it off (by hand, as
    soon as it is active: a 409 loan_not_active in the moment of activation is looked at again), until it ends.
    Every loan is in flight at once; `slots` bounds the requests they make together."""
    while not give_up():
        try:
            async with slots:
                if not case.loan_id:
                    await apply(http, world, case)
                elif await step(http, world, case):
                    return
        except RuntimeError as error:  # an outage outlasted the retries: look again (the checks judge the end)
            print(f"  loan of {case.member_id}: {error}", file=sys.stderr, flush=True)
        await asyncio.sleep(LOOK_AGAIN)


async def apply(http: httpx.AsyncClient, world: World, case: LoanCase) -> None:
    applied = await ok(
        http,
        "POST",
        "/api/v1/loans",
        headers={**case.member, "Idempotency-Key": f"chaos-loan-{case.member_id}"},
        json={
            "product_id": world.product_id,
            "amount": LOAN_AMOUNT,
            "term": LOAN_TERM,
            "purpose": "Chaos",
            "monthly_income": "20000.00",
            "monthly_debt": "300.00",
            "deposit_account_id": case.deposit_account_id,
            **({"external_account_id": case.external_account_id, "auto_debit": True} if case.auto_debit else {}),
        },
    )
    case.loan_id = applied["id"]


async def step(http: httpx.AsyncClient, world: World, case: LoanCase) -> bool:
    """One look at the loan and what its state asks for; True once it has ended."""
    state: Any = await ok(http, "GET", f"/api/v1/loans/{case.loan_id}", headers=world.su)
    if state["status"] in LOAN_DONE:
        return True
    if state["status"] == "pending_approval" and state.get("approval_request_id"):
        # A 4xx: the level is not open yet, or this approval already counted (a retry after an outage).
        await call(
            http,
            "POST",
            f"/api/v1/approvals/{state['approval_request_id']}/decisions",
            headers=world.loan_officer,
            json={"decision": "approve", "reason": "chaos run"},
        )
    elif state["status"] == "active" and not case.auto_debit:
        quote = await call(http, "GET", f"/api/v1/loans/{case.loan_id}/payoff-quote", headers=case.member)
        if quote.is_success:
            await call(
                http,
                "POST",
                f"/api/v1/loans/{case.loan_id}/repayments",
                headers={**case.member, "Idempotency-Key": uuid.uuid4().hex},
                json={"amount": quote.json()["amount"], "mode": "payoff"},
            )
    return False


async def loans(http: httpx.AsyncClient, world: World, give_up: Callable[[], bool]) -> None:
    slots = asyncio.Semaphore(16)
    await asyncio.gather(*(loan(http, world, case, give_up, slots) for case in world.loans))


async def start(client: Client, starter: Callable[[], Awaitable[WorkflowHandle]]) -> None:
    """Starts a workflow through a Temporal outage: an existing one (a start that went through) is fine."""
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            await starter()
            return
        except WorkflowAlreadyStartedError:
            return
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def bill_run(client: Client, task_queue: str) -> None:
    await start(
        client,
        lambda: client.start_workflow(
            BillRunWorkflow.run, BillRunInput(day=BILL_DAY), id=BILL_RUN_ID, task_queue=task_queue
        ),
    )


async def month_end(client: Client, task_queue: str) -> None:
    await start(
        client,
        lambda: client.start_workflow(
            MonthEndPostingWorkflow.run, MonthEndInput(period=PERIOD), id=MONTH_END_ID, task_queue=task_queue
        ),
    )
