"""What breaks during the run, spread over its first `window` seconds: the worker SIGKILLed `kills` times (and
started again at once, as a process manager would), the Temporal server restarted once (it persists to its
SQLite file), Postgres stopped and started again once on the same data dir; and, all along, the sandbox bank and
bureau failing a fifth of their calls and delivering every webhook twice, each file's events newest first."""

import asyncio
import time
from urllib.parse import urlparse

import httpx

from bench.stack import Stack
from devstack import processes

ERROR_RATE = 0.2
BANK = {  # the ODFI's delays (ms) and delivery modes
    "settlement_delay_ms": 200,
    "return_delay_ms": 200,
    "settled_return_delay_ms": 300,
    "late_return_delay_ms": 1500,
    "duplicate_deliveries": True,
    "out_of_order": True,
}
POSTGRES_DOWN_FOR = 3.0  # seconds


async def faults_on(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=10) as sandbox:
        (
            await sandbox.put("/odfi/_control", json={"webhook_url": f"{stack.api_url}/api/v1/webhooks/bank", **BANK})
        ).raise_for_status()
        (await sandbox.put("/_control/faults", json={"error_rate": ERROR_RATE})).raise_for_status()


async def faults_off(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=10) as sandbox:
        (await sandbox.put("/_control/faults", json={"error_rate": 0})).raise_for_status()


def _restart_worker(stack: Stack) -> None:
    worker = stack.restart("worker", kill=True)
    port = urlparse(f"//{stack.env['WORKER_METRICS_ADDRESS']}").port
    assert port is not None
    processes.wait_for_port(port, worker, name="worker")


def _restart_temporal(stack: Stack) -> None:
    server = stack.restart("temporal")
    port = urlparse(f"//{stack.env['TEMPORAL_ADDRESS']}").port
    assert port is not None
    processes.wait_for_port(port, server, name="temporal")


def _restart_postgres(stack: Stack) -> None:
    stack.restart_postgres(POSTGRES_DOWN_FOR)


async def disrupt(stack: Stack, window: float, kills: int, log: list[str]) -> None:
    """Runs the plan; `log` gets a line per disruption (when, what, how long it took)."""
    plan = [(window * (i + 1) / (kills + 1), "worker SIGKILL", _restart_worker) for i in range(kills)]
    plan += [
        (window * 0.45, "Temporal restart", _restart_temporal),
        (window * 0.7, "Postgres restart", _restart_postgres),
    ]
    started = time.monotonic()
    for at, what, action in sorted(plan, key=lambda step: step[0]):
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        began = time.monotonic()
        await asyncio.to_thread(action, stack)
        log.append(f"{began - started:.0f}s {what} ({time.monotonic() - began:.1f}s)")
