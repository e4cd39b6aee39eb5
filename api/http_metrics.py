"""Request metrics for Prometheus: rate, latency and errors by method, route and status.

The route label is the route's template (`/api/v1/payments/{payment_id}`), never the raw path, so the number of
series stays bounded whatever the callers send; a request that matches no route counts under one label.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other counts as OTHER

# From a cache hit to a book transfer waiting on its workflow (BOOK_TRANSFER_WAIT, 10 s by default).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry | None):
        self.requests = Counter(
            "backoffice_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "backoffice_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


def route_template(scope: Scope) -> str:
    """The matched route's full template, as the router left it in the (shared) scope. FastAPI (0.16x) puts the
    route of the included router in scope["route"], its path without the prefixes it was included under; the
    full template is on the effective route context beside it (tests/integration/test_metrics.py checks it)."""
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(effective, "path_format", None) or getattr(scope.get("route"), "path_format", None)
    return template or UNMATCHED


class HttpMetricsMiddleware:
    """Pure ASGI (no response buffering, streaming untouched); outermost, so it sees every answer, a 500 too."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception that escapes before any response is an error
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)
