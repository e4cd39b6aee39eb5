"""Tracing is off unless configured: no interceptor, no instrumentation, nothing exported; an OTLP endpoint turns
it on."""

from opentelemetry.sdk.trace import TracerProvider
from temporalio.contrib.opentelemetry import TracingInterceptor

from api.main import create_app
from core import tracing
from core.config import Settings


def test_off_by_default_adds_no_interceptor_and_no_middleware():
    assert not tracing.enabled()
    assert tracing.client_interceptors() == []
    app = create_app(Settings())
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_installed_it_adds_the_temporal_interceptor_and_instruments_the_app_until_uninstalled():
    tracing.install(TracerProvider())
    try:
        assert [type(i) for i in tracing.client_interceptors()] == [TracingInterceptor]
        app = create_app(Settings())
        assert app._is_instrumented_by_opentelemetry  # the instrumentation wraps the middleware stack
    finally:
        tracing.uninstall()
    assert tracing.client_interceptors() == []


def test_an_otlp_endpoint_turns_it_on(monkeypatch):
    monkeypatch.setattr(tracing, "install", lambda provider: installed.append(provider))
    monkeypatch.setattr(tracing.trace, "set_tracer_provider", lambda provider: None)
    installed: list = []
    tracing.configure_tracing(Settings(), service="api")
    assert installed == []
    tracing.configure_tracing(Settings(otel_exporter_otlp_endpoint="http://collector:4318"), service="api")
    assert len(installed) == 1 and installed[0].resource.attributes["service.name"] == "api"
