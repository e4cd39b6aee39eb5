"""Tracing with OpenTelemetry: one trace from an HTTP request through the workflow it starts, the workflow's
activities and the HTTP calls and SQL they make.

Off unless a tracer provider is installed: `configure_tracing` installs one exporting by OTLP/HTTP when
OTEL_EXPORTER_OTLP_ENDPOINT is set; tests install their own (an in-memory exporter) with `install`. While it is off,
nothing is instrumented and no Temporal interceptor is added, so workflow histories and requests are unchanged.
The provider is passed explicitly to each instrumentation (not only set globally), so a test can install and
uninstall it in a process that also runs untraced apps and workers.
"""

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.contrib.opentelemetry import TracingInterceptor

from core.config import Settings

# Probes and scrapes would only add noise: a span every few seconds per replica.
UNTRACED_URLS = "healthz,readyz,metrics"

_provider: TracerProvider | None = None


def configure_tracing(settings: Settings, service: str) -> None:
    """The API's and the worker's start: exports by OTLP/HTTP when an endpoint is configured, else stays off."""
    if not settings.otel_exporter_otlp_endpoint or _provider is not None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"  # the OTLP/HTTP traces path
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)  # for any library that asks the global API
    install(provider)


def install(provider: TracerProvider) -> None:
    global _provider
    _provider = provider
    # Every httpx client of the process: the activities' calls to the bank, the bureau, the linking provider.
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def uninstall() -> None:
    """Back to off (tests): apps and clients built from now on are untraced."""
    global _provider
    if _provider is not None:
        HTTPXClientInstrumentor().uninstrument()
        SQLAlchemyInstrumentor().uninstrument()
        _provider = None


def enabled() -> bool:
    return _provider is not None


def client_interceptors() -> list[Any]:
    """The Temporal client's interceptors; a worker built on that client takes them too (workflow and activity
    spans, the trace context carried in workflow and activity headers)."""
    if _provider is None:
        return []
    return [TracingInterceptor(_provider.get_tracer("temporalio"))]


def instrument_app(app) -> None:
    if _provider is not None:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls=UNTRACED_URLS)


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement. The instrumentation declares sqlalchemy < 2.1 but works with 2.1's events (the
    tracing test sees the API's statements): its version check is skipped. One engine per process (API, worker)."""
    if _provider is not None:
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=_provider, skip_dep_check=True)
