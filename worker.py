"""The Temporal worker: every workflow and activity, the pydantic converter, Prometheus metrics from the
Temporal runtime, and a graceful shutdown on SIGTERM/SIGINT (in-flight activities get time to finish).

`python worker.py --queues money,routine,interactive` chooses the task queues this process serves
(core/task_queues.py), each with its own pool of workflow-task and activity slots; the default is all three."""

import argparse
import asyncio
import compileall
import contextlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import uvloop
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.bank_events import start_sweep
from activities.registry import all_activities
from activities.webhooks import start_dispatcher
from core.cache.listener import CacheListener
from core.cache.store import Cache
from core.config import InsecureSettings, Settings, check_production_secrets, get_settings
from core.db import Database
from core.logging import configure_logging
from core.schedules import ensure_schedules
from core.task_queues import Urgency, parse_queues, queue_name
from core.temporal import connect
from core.tracing import configure_tracing, instrument_engine
from workflows import registry as workflow_registry
from workflows.registry import ALL_WORKFLOWS

log = logging.getLogger("worker")


class QueueWorkers:
    """One Worker per task queue served, run together as one `async with`."""

    def __init__(self, workers: dict[Urgency, Worker]):
        self.workers = workers

    async def __aenter__(self) -> "QueueWorkers":
        self._stack = contextlib.AsyncExitStack()
        for worker in self.workers.values():
            await self._stack.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._stack.aclose()


def metrics_runtime(settings: Settings) -> Runtime:
    """The Temporal runtime serving the SDK's own metrics (temporal_*: task latencies, failures, slots, polls) for
    Prometheus on WORKER_METRICS_ADDRESS."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=settings.worker_metrics_address)))


def pool_limits(settings: Settings, urgency: Urgency) -> tuple[int, int]:
    """(activity slots, workflow-task slots) of the queue's pool."""
    if urgency is Urgency.money:
        return settings.worker_max_concurrent_activities, settings.worker_max_concurrent_workflow_tasks
    if urgency is Urgency.interactive:
        return settings.interactive_max_concurrent_activities, settings.interactive_max_concurrent_workflow_tasks
    return settings.routine_max_concurrent_activities, settings.routine_max_concurrent_workflow_tasks


def cache_workflow_bytecode() -> bool:
    """The workflow modules compiled to bytecode beside their source, once. The sandbox imports a workflow's module
    afresh for every run it starts or replays; with PYTHONDONTWRITEBYTECODE (our image sets it, as many do) nothing
    caches the compiled module, so each run compiled the source again: 13 % of the worker's CPU samples under the ACH
    benchmark (bench/README.md). Written explicitly, bytecode is read whatever that setting says; the image compiles
    it at build time, which leaves this nothing to do. False when some module has no bytecode and cannot get it (the
    directory read-only: logged)."""
    folder = Path(workflow_registry.__file__).parent
    if os.access(folder, os.W_OK):
        return bool(compileall.compile_dir(folder, maxlevels=0, quiet=1))
    missing = [m.name for m in folder.glob("*.py") if not Path(importlib.util.cache_from_source(str(m))).exists()]
    if missing:
        log.warning("workflow modules without bytecode in read-only %s: %s; compile them in the image", folder, missing)
    return not missing


def build_worker(
    client,
    settings: Settings,
    db: Database,
    queues: list[Urgency] | None = None,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable] = (),
) -> QueueWorkers:
    """Workers for the given queues (all by default). Each registers every workflow and activity: which queue a
    workflow runs on is decided where it is started, and one started on the money queue before the split still
    finds its code there. `extra_*` add test workflows and activities."""
    cache_workflow_bytecode()
    activities = [*all_activities(db, settings, client), *extra_activities]
    workers = {}
    for urgency in queues or list(Urgency):
        activity_slots, workflow_task_slots = pool_limits(settings, urgency)
        workers[urgency] = Worker(
            client,
            task_queue=queue_name(settings, urgency),
            workflows=[*ALL_WORKFLOWS, *extra_workflows],
            activities=activities,
            max_concurrent_activities=activity_slots,
            # Local activities (the short database steps) hold their workflow task while they run: no more at once
            # than the database pool serves (pool + overflow), so none times out queued for a connection.
            max_concurrent_local_activities=2 * settings.db_pool_size,
            max_concurrent_workflow_tasks=workflow_task_slots,
            max_cached_workflows=settings.worker_max_cached_workflows,
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
    return QueueWorkers(workers)


async def main(queues: list[Urgency]) -> None:
    settings = get_settings()
    check_production_secrets(settings)  # in production, no development default secret: refuse to start
    configure_logging(settings.log_level, settings.log_json, service="worker")
    configure_tracing(settings, service="worker")  # before connecting: the client takes the tracing interceptor
    client = await connect(settings, runtime=metrics_runtime(settings))
    db = Database(settings.database_url, settings.db_pool_size, cache=Cache.from_settings(settings))
    instrument_engine(db.engine)
    worker = build_worker(client, settings, db, queues)
    # Here, not in build_worker: tests build workers too, and keep their schedules apart.
    log.info("schedules", extra={"schedules": await ensure_schedules(client, settings)})
    await start_sweep(client, settings)  # the bank-event outbox's sweep, unless it runs already
    await start_dispatcher(client, settings)  # the webhook outbox's dispatcher, likewise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    served = [queue_name(settings, urgency) for urgency in queues]
    log.info(
        "worker started",
        extra={"task_queues": served, "metrics": settings.worker_metrics_address, "event_loop": type(loop).__module__},
    )
    retry = settings.cache_listener_retry.total_seconds()
    async with CacheListener(db.cache, settings.database_url, "worker", retry), worker:
        await stop.wait()
        log.info("shutting down: finishing in-flight tasks")
    await db.close()
    log.info("worker stopped")


def queues_option(text: str) -> list[Urgency]:
    try:
        return parse_queues(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The back office's Temporal worker.")
    parser.add_argument(
        "--queues",
        type=queues_option,
        default=list(Urgency),
        help="comma-separated task queues to serve: money, routine, interactive (default: all)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    try:
        # On uvloop, as the API runs (uvicorn's default): the activities' database and Temporal round trips and the
        # hand-offs of each workflow activation between the loop and the SDK's threads cost less CPU than on asyncio's
        # own loop (7.35 against 6.88 payments/s, alternated, bench/README.md). Workflows run on the SDK's own loop.
        uvloop.run(main(args.queues))
    except InsecureSettings as refused:
        sys.exit(f"worker not started: {refused}")
