"""Structured logs: structlog renders every record (ours, uvicorn's, temporalio's) as one JSON line.

Temporal's workflow and activity loggers put their context in `extra` (`temporal_workflow`,
`temporal_activity`); we lift workflow_id and run_id from there to the top level of each line. Our own `extra`
fields (`log.info("chunk loaded", extra={"lines": 50_000})`) become fields of the line too.
"""

import logging
import sys

import structlog
from opentelemetry import trace
from temporalio import activity, workflow

_TEMPORAL_KEYS = ("workflow_id", "run_id", "workflow_type", "activity_id", "activity_type", "attempt", "task_queue")


def _lift_temporal_context(_, __, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    record = event.get("_record")
    for extra_name in ("temporal_workflow", "temporal_activity"):
        context = getattr(record, extra_name, None) if record is not None else None
        if isinstance(context, dict):
            for key in _TEMPORAL_KEYS:
                if key in context:
                    event.setdefault(key, context[key])
            if "workflow_run_id" in context:  # activities call it workflow_run_id
                event.setdefault("run_id", context["workflow_run_id"])
    return event


_RECORD_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Extras that are not fields of ours: Temporal's contexts (lifted above), uvicorn's coloured copy of its message.
_NOT_FIELDS = frozenset({"temporal_workflow", "temporal_activity", "color_message"})
_JSON_NATIVE = (str, int, float, bool, type(None), list, dict)


def _add_extra_fields(_, __, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """A stdlib record's `extra` as fields of the line, never over the line's own (event, level, timestamp, ...);
    values JSON does not know (a UUID, a Decimal) as their str, not their repr."""
    record = event.get("_record")
    if record is None:
        return event
    for key, value in record.__dict__.items():
        if key in _RECORD_KEYS or key in _NOT_FIELDS or key.startswith("_"):
            continue
        event.setdefault(key, value if isinstance(value, _JSON_NATIVE) else str(value))
    return event


def _add_trace_ids(_, __, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """The current span's trace and span ids (when tracing is on and a span is current), to find a line's trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def configure_logging(level: str = "INFO", json: bool = True, service: str = "backoffice") -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _lift_temporal_context,
        _add_extra_fields,
        _add_trace_ids,
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.contextvars.bind_contextvars(service=service)
    # The ids are fields of their own (see _lift_temporal_context), not a dict appended to each message.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The access log through ours too, unless uvicorn was told --no-access-log: it then left its logger without a
    # handler and not propagating, and its protocols write no line a request while the logger has none to reach.
    # (The app factory runs after uvicorn configured its loggers: routing it to the root here would undo the flag.)
    access = logging.getLogger("uvicorn.access")
    if access.handlers or access.propagate:
        access.handlers[:] = []
        access.propagate = True
