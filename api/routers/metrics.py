"""GET /metrics for Prometheus: the API's request metrics, the business metrics, the cache's and the process's own.

Not in the OpenAPI schema (it is for Prometheus, not for the API's users) and not behind the user access policy:
Prometheus has no user. When METRICS_TOKEN is set (production requires it) a scrape must bring
`Authorization: Bearer <METRICS_TOKEN>`.

Served by several processes (api/serve.py), the API is in Prometheus's multiprocess mode: each process writes its
counters and histograms to files in PROMETHEUS_MULTIPROC_DIR and whichever process a scrape reaches sums them all.
The process_* series then come from core/process_metrics.py, one set a process, labelled by pid (ProcessCollector
would show the answering process's alone).
"""

import secrets
from contextlib import AbstractAsyncContextManager, nullcontext

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

from api.deps import unauthorized
from api.http_metrics import HttpMetrics, HttpMetricsMiddleware
from core.business_metrics import BusinessMetrics
from core.cache.metrics import CacheMetrics, SharedCacheMetrics
from core.config import Settings
from core.process_metrics import shared_process_series

router = APIRouter(include_in_schema=False)


def multiprocess_mode() -> bool:
    """Decided by prometheus-client when first imported, from PROMETHEUS_MULTIPROC_DIR (set by api/serve.py)."""
    return values.ValueClass is not values.MutexValue


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """A registry of the app's own (several apps can live in one process: tests), its middleware and /metrics."""
    disable_created_metrics()  # no *_created series beside each counter: Prometheus has no use for them
    registry = CollectorRegistry()
    shared = multiprocess_mode()
    if shared:
        multiprocess.MultiProcessCollector(registry)
        SharedCacheMetrics(app.state.cache)
    else:
        ProcessCollector(registry=registry)
        registry.register(CacheMetrics(app.state.cache))

    async def temporal_health() -> None:
        client = await app.state.temporal.get()
        await client.service_client.check_health()

    app.state.metrics_registry = registry
    app.state.business_metrics = BusinessMetrics(lambda: app.state.db, temporal_health, settings)
    registry.register(app.state.business_metrics)  # the same snapshot from any process: computed in Postgres
    # In multiprocess mode the request series live in the shared files only (registered here too, they would be
    # the answering process's counts on top of everyone's).
    app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(None if shared else registry))
    app.include_router(router)


def process_series() -> AbstractAsyncContextManager[None]:
    """For the app's lifespan: in multiprocess mode, this process's process_* series, by pid (core/process_metrics)."""
    return shared_process_series() if multiprocess_mode() else nullcontext()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected):
            raise unauthorized("metrics need Authorization: Bearer <METRICS_TOKEN>")
    await request.app.state.business_metrics.refresh()
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
