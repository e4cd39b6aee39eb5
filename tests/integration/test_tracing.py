"""One trace from the HTTP request to the HTTP call an activity makes: a loan application through the API starts the
loan's workflow, whose credit-check activity calls the (sandbox) bureau. An in-memory exporter records the spans of
an API, a client and a worker built while tracing is installed, beside the session's untraced ones."""

import asyncio
import time
import uuid

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core import tracing
from core.temporal import connect
from tests.conftest import ApiServer, make_org, open_account
from tests.integration.test_loans import apply
from worker import build_worker


@pytest.fixture(scope="module")
async def traced(settings, db, temporal_env):
    """A traced API and worker (their own task queue), and the exporter their spans go to."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        tuned = settings.model_copy(update={"task_queue": f"traced-{uuid.uuid4().hex[:8]}"})
        client = await connect(tuned)
        async with (
            build_worker(client, tuned, db),
            ApiServer(tuned) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        ):
            yield http, exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


def parent_of(span: ReadableSpan, spans: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return spans.get(span.parent.span_id) if span.parent is not None else None


async def test_one_trace_from_the_request_through_workflow_and_activity_to_the_bureau_call(
    traced, sandbox_url, product, su
):
    http, exporter = traced
    org = await make_org(http, su, roles=("member",))  # an applicant is all a credit check needs
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    exporter.clear()
    loan = await apply(http, sandbox_url, org, product)

    def bureau_call() -> ReadableSpan | None:
        for span in exporter.get_finished_spans():
            url = str((span.attributes or {}).get("url.full") or (span.attributes or {}).get("http.url") or "")
            if span.kind == SpanKind.CLIENT and url.startswith(sandbox_url) and "bureau" in url:
                parent = parent_of(span, {s.context.span_id: s for s in exporter.get_finished_spans()})
                if parent is not None and parent.name.startswith("RunActivity:"):
                    return span
        return None

    deadline = time.monotonic() + 30
    while (call := bureau_call()) is None:
        assert time.monotonic() < deadline, [s.name for s in exporter.get_finished_spans()]
        await asyncio.sleep(0.2)

    spans = {s.context.span_id: s for s in exporter.get_finished_spans()}
    chain = [call]
    while (parent := parent_of(chain[-1], spans)) is not None:
        chain.append(parent)
    names = [s.name for s in reversed(chain)]  # root first
    assert {s.context.trace_id for s in chain} == {call.context.trace_id}, names
    # The test's own request (httpx is instrumented process-wide) is the root: the API continued its trace.
    assert names == [
        "POST",
        "POST /api/v1/loans",
        "StartWorkflow:LoanWorkflow",
        "StartActivity:check_credit",
        "RunActivity:check_credit",
        "POST",
    ], names
    assert chain[-1].parent is None and chain[-1].kind == SpanKind.CLIENT
    server, start = chain[-2], chain[-3]
    assert server.kind == SpanKind.SERVER and start.attributes["temporalWorkflowID"] == f"loan-{loan['id']}"
    assert str(call.attributes.get("url.full") or call.attributes.get("http.url")).startswith(f"{sandbox_url}/bureau")

    in_trace = [s for s in spans.values() if s.context.trace_id == call.context.trace_id]
    # The legacy interceptor's workflow span is a sibling of the workflow's activities, under StartWorkflow.
    run = [s for s in in_trace if s.name == "RunWorkflow:LoanWorkflow"]
    assert len(run) == 1 and parent_of(run[0], spans) is start
    # The API's SQL is in the trace too, under the request's span.
    sql = [s for s in in_trace if "db.system" in (s.attributes or {}) or "db.system.name" in (s.attributes or {})]
    assert any(s.name == "INSERT" and parent_of(s, spans) is server for s in sql), [
        (s.name, getattr(parent_of(s, spans), "name", None)) for s in sql
    ]
