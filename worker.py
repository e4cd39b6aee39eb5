"""The Temporal worker: every workflow and activity, the pydantic converter, Prometheus metrics from the
Temporal runtime, and a graceful shutdown on SIGTERM/SIGINT (in-flight activities get time to finish)."""

import asyncio
import logging
import signal
import sys
from datetime import timedelta

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities import all_activities
from activities.bank_events import start_sweep
from core.config import InsecureSettings, Settings, check_production_secrets, get_settings
from core.db import Database
from core.logging import configure_logging
from core.schedules import ensure_schedules
from core.temporal import connect
from workflows import ALL_WORKFLOWS

log = logging.getLogger("worker")


def build_worker(client, settings: Settings, db: Database) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=all_activities(db, settings, client),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def main() -> None:
    settings = get_settings()
    check_production_secrets(settings)  # in production, no development default secret: refuse to start
    configure_logging(settings.log_level, settings.log_json, service="worker")
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=settings.worker_metrics_address)))
    client = await connect(settings, runtime=runtime)
    db = Database(settings.database_url, settings.db_pool_size)
    worker = build_worker(client, settings, db)
    # Here, not in build_worker: tests build workers too, and keep their schedules apart.
    log.info("schedules", extra={"schedules": await ensure_schedules(client, settings)})
    await start_sweep(client, settings)  # the bank-event outbox's sweep, unless it runs already

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    log.info("worker started", extra={"task_queue": settings.task_queue, "metrics": settings.worker_metrics_address})
    async with worker:
        await stop.wait()
        log.info("shutting down: finishing in-flight tasks")
    await db.close()
    log.info("worker stopped")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except InsecureSettings as refused:
        sys.exit(f"worker not started: {refused}")
