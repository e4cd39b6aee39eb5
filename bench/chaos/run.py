"""The chaos run: its own stack (bench/stack.py, with a Temporal server it can restart), the data, the load and
the disruptions at once, a wait until every process has ended (or the deadline), then the verdict as one line."""

import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import psycopg

from bench.chaos import checks, disruptions, load, setup
from bench.chaos.checks import Verdict
from bench.stack import Stack, running_stack
from core.db import libpq_url


@dataclass(frozen=True)
class Size:
    payments: int
    loans: int
    kills: int = 4
    window: float = 60.0  # seconds over which the disruptions are spread
    drain: float = 600.0  # seconds at most, after the load, for every process to end before the verdict
    stall: float = 300.0  # the verdict comes sooner when nothing has moved for this long: something is stuck

    @property
    def bills(self) -> int:
        return max(2, self.payments // 20)

    @property
    def savings_accounts(self) -> int:
        return max(100, self.payments * 5)


def stack_settings(size: Size) -> dict[str, str]:
    """Every duration in seconds (PRODUCT.md §3.6): a cutoff window every second, a return window that holds the
    bank's returns, a loan month of 7.5 s (a loan day is a quarter second)."""
    batch = max(20, size.savings_accounts // 30)
    return {
        "ACH_WINDOW_INTERVAL": "PT1S",
        "ACH_RETURN_WINDOW": "PT2S",
        "ACH_LATE_RETURN_WINDOW": "PT2S",
        "LOAN_DAY_SECONDS": "0.25",
        "BANK_EVENT_SWEEP_INTERVAL": "PT2S",
        "BANK_EVENT_SWEEP_GRACE": "PT5S",
        "BILL_BATCH_SIZE": "10",
        "INTEREST_BATCH_SIZE": str(batch),
        "INTEREST_CONTINUE_AS_NEW_AFTER": "5",
        "WORKER_MAX_CONCURRENT_ACTIVITIES": "100",
        # A thousand new workflows at once on two busy cores: 100 workflow tasks at a time each outlast the 10 s
        # workflow task timeout, and the worker times out everything it takes (core/config.py).
        "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "10",
        # Over a thousand workflows running at once: above the SDK's cache of 1,000 each task would replay its history.
        "WORKER_MAX_CACHED_WORKFLOWS": "5000",
        "DB_POOL_SIZE": "30",
        "ACCESS_TOKEN_TTL": "PT3H",
        "LOG_JSON": "false",
    }


def progress(message: str, started: float) -> None:
    print(f"  {time.monotonic() - started:6.1f}s {message}", file=sys.stderr, flush=True)


OUTSTANDING_TIMEOUT = 60  # seconds for one look: a call caught in a restart can hang, and the wait must go on


async def outstanding(stack: Stack, world: setup.World) -> tuple[dict[str, int], int]:
    """What has not ended, and how many steps the payments have taken so far (their history rows)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(stack.database_url), autocommit=True) as conn:
        [(steps,)] = await checks.rows(conn, "SELECT count(*) FROM payment_events")
        return await checks.outstanding(conn, stack.client, stack.its_workflows, world), steps


async def wait_until_done(stack: Stack, world: setup.World, size: Size, started: float) -> str:
    """Until every process has ended; or, sooner, until nothing has moved for size.stall seconds: no process
    ended and no payment took a step (a slow machine drains slowly but steadily, and a payment's way to a final
    state is long: only a stall, or the drain's end, cuts the wait short). How the wait ended."""
    deadline = time.monotonic() + size.window + size.drain
    reported = 0.0
    fewest, most_steps, progressed = None, -1, time.monotonic()
    while time.monotonic() < deadline:
        steps = most_steps
        try:
            left, steps = await asyncio.wait_for(outstanding(stack, world), timeout=OUTSTANDING_TIMEOUT)
        except Exception as error:  # Postgres or Temporal restarting, a call caught in it: look again
            left = {f"{type(error).__name__}: {error}"[:120]: 1}
        if not left and all(case.loan_id for case in world.loans):
            return "every process ended"
        total = sum(left.values())
        moved = fewest is None or total < fewest or steps > most_steps
        fewest, most_steps = total if fewest is None else min(fewest, total), max(most_steps, steps)
        if moved:
            progressed = time.monotonic()
        elif time.monotonic() - progressed > size.stall:
            return f"nothing moved for {size.stall:.0f} s (stuck: {left})"
        if time.monotonic() - reported > 10:
            progress(f"not ended yet: {left}", started)
            reported = time.monotonic()
        await asyncio.sleep(1)
    return f"the drain's {size.drain:.0f} s are over (not ended: {left})"


async def chaos(size: Size, keep: bool = False) -> tuple[Verdict, list[str], float]:
    """Runs it all; the verdict, what was disrupted, and the seconds from the first process started to the end."""
    launched = time.monotonic()
    async with (
        running_stack(stack_settings(size), name="chaos", persistent_temporal=True) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=httpx.Limits(max_connections=64)) as http,
    ):
        progress("stack up", launched)
        world = await setup.build(http, stack, size.payments, size.loans, size.bills, size.savings_accounts)
        progress("data set up; faults on, load and disruptions start", launched)
        await disruptions.faults_on(stack)
        started = time.monotonic()
        stop_at = started + size.window + size.drain
        disrupted: list[str] = []
        # The loans are driven until the wait ends (every process ended, or a stall): not beyond, whatever is left.
        watch = asyncio.create_task(wait_until_done(stack, world, size, launched))
        driven = asyncio.gather(
            disruptions.disrupt(stack, size.window, size.kills, disrupted),
            load.payments(http, world),
            load.loans(http, world, give_up=lambda: time.monotonic() > stop_at or watch.done()),
            load.bill_run(stack.client, stack.routine_task_queue),
            load.month_end(stack.client, stack.routine_task_queue),
        )
        await driven
        progress(f"load driven, disruptions done: {', '.join(disrupted)}", launched)
        ended = await watch
        elapsed = time.monotonic() - started
        progress(f"{ended}; judging", launched)
        await disruptions.faults_off(stack)
        verdict = await checks.judge(
            stack.database_url, stack.client, stack.its_workflows, stack.sandbox_url, stack.dir / "mail", world
        )
        stack.keep = bool(verdict.failures) or keep
    return verdict, disrupted, elapsed


def line(size: Size, verdict: Verdict, disrupted: list[str], elapsed: float) -> str:
    f = verdict.figures
    what = (
        f"{f.get('payments', 0)} ACH payments of {len(load.SCENARIOS)} scenarios, {f.get('loans', 0)} loans, "
        f"{f.get('bills', 0)} auto-pay bills, month-end interest on {f.get('savings_accounts', 0)} accounts; "
        f"bank+bureau {disruptions.ERROR_RATE:.0%} errors, webhooks twice and out of order; "
        f"{sum('SIGKILL' in d for d in disrupted)} worker SIGKILLs, Temporal and Postgres restarted "
        f"({', '.join(disrupted)})"
    )
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s"
    if verdict.failures:
        return f"CHAOS FAILED [{stamp}] {what}: " + " | ".join(verdict.failures)
    return (
        f"CHAOS OK [{stamp}] {what}: every process in its expected final state, none stuck; "
        f"{f.get('bank_entries', 0)} bank entries each received once per presentment; "
        f"{f.get('journal_entries', 0)} journal entries balanced, ledger total 0; payments' net effects match, "
        f"no hold left; {f.get('emails', 0)} emails each sent once; {f.get('workflows', 0)} workflows"
    )
