import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from core.logging import configure_logging


def test_json_lines_carry_temporal_workflow_and_run_ids(capsys):
    configure_logging("INFO", json=True, service="worker")
    try:
        logging.getLogger("temporalio.activity").info(
            "payment moved",
            extra={
                "temporal_activity": {"workflow_id": "payment-1", "workflow_run_id": "run-1", "activity_type": "post"}
            },
        )
        logging.getLogger("temporalio.workflow").info(
            "transfer done", extra={"temporal_workflow": {"workflow_id": "payment-2", "run_id": "run-2"}}
        )
        activity_line, workflow_line = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()[-2:]]
    finally:
        configure_logging("INFO", json=False)
    assert (activity_line["event"], activity_line["workflow_id"], activity_line["run_id"]) == (
        "payment moved",
        "payment-1",
        "run-1",
    )
    assert (workflow_line["workflow_id"], workflow_line["run_id"], workflow_line["service"]) == (
        "payment-2",
        "run-2",
        "worker",
    )
    assert activity_line["level"] == "info" and "timestamp" in activity_line


def test_lines_logged_inside_a_span_carry_its_trace_and_span_ids_and_others_none(capsys):
    tracer = TracerProvider().get_tracer("test")
    configure_logging("INFO", json=True, service="api")
    try:
        with tracer.start_as_current_span("request") as span:
            logging.getLogger("api").info("inside")
        logging.getLogger("api").info("outside")
        inside, outside = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()[-2:]]
    finally:
        configure_logging("INFO", json=False)
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x") and len(inside["trace_id"]) == 32
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside and "span_id" not in outside
