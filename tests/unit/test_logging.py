import json
import logging
import uuid
from decimal import Decimal

import uvicorn
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


def test_uvicorns_no_access_log_survives_and_its_access_log_comes_through_ours(capsys):
    access = logging.getLogger("uvicorn.access")
    try:
        uvicorn.Config(app=None, access_log=False)  # configures uvicorn's loggers, as `--no-access-log` does
        configure_logging("INFO", json=True, service="api")  # then the app factory's
        assert not access.hasHandlers()  # uvicorn's protocols log access only while the logger has handlers

        uvicorn.Config(app=None)  # its default: an access log
        configure_logging("INFO", json=True, service="api")
        assert access.hasHandlers()
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
        line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    finally:
        configure_logging("INFO", json=False)
    assert (line["logger"], line["service"]) == ("uvicorn.access", "api") and "/healthz" in line["event"]


def test_a_records_extra_fields_become_fields_of_its_line_never_over_its_own(capsys):
    import_id = uuid.uuid4()
    configure_logging("INFO", json=True, service="worker")
    try:
        logging.getLogger("activities.transaction_imports").info(
            "import chunk loaded",
            extra={"import_id": import_id, "lines": 50_000, "ratio": Decimal("0.25"), "level": "loud", "service": "x"},
        )
        logging.getLogger("api").info("Started", extra={"color_message": "\x1b[1mStarted\x1b[0m"})
        chunk, started = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()[-2:]]
    finally:
        configure_logging("INFO", json=False)
    assert (chunk["event"], chunk["import_id"], chunk["lines"], chunk["ratio"]) == (
        "import chunk loaded",
        str(import_id),
        50_000,
        "0.25",
    )
    assert (chunk["level"], chunk["service"]) == ("info", "worker")  # the line's own fields stand
    assert "color_message" not in started and "temporal_activity" not in chunk
