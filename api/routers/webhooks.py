"""The bank's webhooks (and the card gateway's, at the end: domain/gateway.py): settlement notices and returns, signed with HMAC-SHA256 over `<timestamp>.<raw body>`.

A bad signature or a stale timestamp is a 401 and nothing is recorded. Each event is recorded once by its id
(the bank-event outbox, activities/bank_events.py) and answered 200 once it is, whatever its payment's workflow
is doing: it is signalled to that workflow here when Temporal answers in time, and otherwise delivered later by
a retried delivery workflow. A repeat is answered 200 and has no second effect. The only 503 is our own
database being unreachable: then nothing is recorded and the bank must deliver again."""

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from activities.ach import mark_delivered
from activities.bank_events import signal_payment, start_delivery
from api.deps import SessionDep, SettingsDep
from api.errors import AppError
from api.fields import line_rules
from core.config import Settings
from core.crypto import AccountNumberCipher
from domain import ach_notices, gateway
from finance import nacha
from finance.ach_corrections import read_correction
from models.ach import BankEventStatus

log = logging.getLogger("api.webhooks")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class BankEvent(BaseModel):
    event_id: Annotated[str, *line_rules(100, 1)]
    type: Annotated[str, *line_rules(40)]
    trace_number: Annotated[str, *line_rules(15, 1)]
    file_id: Annotated[str, *line_rules(100)] | None = None
    amount: Annotated[str, *line_rules(40)] | None = None
    settlement_date: date | None = None
    return_code: Annotated[str, *line_rules(10)] | None = None
    return_reason: Annotated[str, *line_rules(500)] | None = None
    occurred_at: Annotated[str, *line_rules(64)] | None = None
    # entry.corrected (a notification of change): the COR entry's type 98 addenda record, as the bank received it.
    change_code: Annotated[str, *line_rules(3)] | None = None
    addenda_record: Annotated[str, *line_rules(94)] | None = None


# Seconds since the epoch in ASCII digits: int() alone would take " 12", "1_2" or "١٢", and a 400-digit number
# overflows the float it is compared with.
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _unauthorized(message: str) -> AppError:
    return AppError(401, "invalid_signature", message)


@router.post("/bank", summary="Settlement and return notices from the bank (signed)")
async def bank_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    # Documented with their shapes; checked by the handler, so a malformed one is a 401, not a 422.
    x_bank_timestamp: str = Header(
        default="", json_schema_extra={"pattern": "^[0-9]{1,12}$"}, description="seconds since the epoch"
    ),
    x_bank_signature: str = Header(
        default="",
        json_schema_extra={"pattern": "^v1=[0-9a-f]{64}$"},
        description="v1=<HMAC-SHA256 of `<timestamp>.<body>`, hex>",
    ),
):
    body = await request.body()
    if not _TIMESTAMP.fullmatch(x_bank_timestamp):
        raise _unauthorized("missing or malformed X-Bank-Timestamp")
    if abs(time.time() - int(x_bank_timestamp)) > settings.bank_webhook_tolerance.total_seconds():
        raise _unauthorized("the timestamp is outside the tolerance: a replay or a skewed clock")
    expected = expected_signature(settings.bank_webhook_secret.get_secret_value(), x_bank_timestamp, body)
    # As bytes: compare_digest refuses a str with non-ASCII characters (a header decoded as Latin-1).
    if not hmac.compare_digest(expected.encode(), x_bank_signature.encode("utf-8", "surrogateescape")):
        raise _unauthorized("the signature does not match")
    try:
        payload = json.loads(body)
        event = BankEvent.model_validate(payload)
        # The payload is stored as jsonb, which refuses NUL characters and lone surrogates anywhere in it.
        json.dumps(payload, ensure_ascii=False).encode()
        if "\\u0000" in body.decode():
            raise ValueError("the event has a NUL character")
    except (ValueError, ValidationError) as exc:
        raise AppError(400, "bad_event", "the event body is not a valid bank event", str(exc)[:500]) from exc
    if event.type not in ("entry.settled", "entry.returned", "entry.corrected"):
        raise AppError(400, "unknown_event_type", f"unknown event type {event.type}")
    try:
        if event.type == "entry.corrected":
            return await _correction(session, settings, event, body)
        prenote = await ach_notices.prenote_of(session, event.trace_number)
        if prenote is not None:  # a prenote's event: about the external account, no payment to tell
            status = await ach_notices.apply_prenote_event(
                session,
                prenote,
                event_id=event.event_id,
                event_type=event.type,
                body=body.decode(),
                return_code=event.return_code,
            )
            delivery = await ach_notices.event_status(session, event.event_id)
            await session.commit()
            return {"status": "duplicate" if status == "duplicate" else "accepted", "delivery": delivery}
    except (OperationalError, InterfaceError, PoolTimeout, OSError) as exc:
        log.error("bank event %s not applied: the database is unreachable: %s", event.event_id, exc)
        raise AppError(503, "database_unavailable", "the event could not be recorded; deliver it again") from exc

    try:
        inserted, status, workflow_id = await _record(session, event, body)
    except (OperationalError, InterfaceError, PoolTimeout, OSError) as exc:
        log.error("bank event %s not recorded: the database is unreachable: %s", event.event_id, exc)
        raise AppError(503, "database_unavailable", "the event could not be recorded; deliver it again") from exc
    if status == BankEventStatus.pending and workflow_id is not None:  # a pending event has its payment
        status = await _hand_over(request, session, settings, event.event_id, json.loads(body), workflow_id)
    return {"status": "accepted" if inserted else "duplicate", "delivery": status}


async def _correction(session, settings: Settings, event: BankEvent, body: bytes) -> dict:
    """A notification of change: its addenda read by the NACHA parser, applied to the external account once."""
    try:
        addenda = nacha.parse_change_addenda(event.addenda_record or "")
        correction = read_correction(addenda.change_code, addenda.corrected_data)
    except nacha.NachaError as exc:
        raise AppError(
            400, "bad_event", "the notification of change has no valid type 98 addenda", exc.message
        ) from exc
    if (
        addenda.original_trace != event.trace_number
        or (event.change_code or addenda.change_code) != addenda.change_code
    ):
        raise AppError(400, "bad_event", "the addenda's original trace or change code differs from the event's")
    status = await ach_notices.apply_correction(
        session,
        AccountNumberCipher.from_settings(settings),
        event_id=event.event_id,
        trace=event.trace_number,
        body=body.decode(),
        correction=correction,
    )
    delivery = await ach_notices.event_status(session, event.event_id)
    await session.commit()
    return {"status": "duplicate" if status == "duplicate" else "accepted", "delivery": delivery}


async def _record(session, event: BankEvent, body: bytes) -> tuple[bool, str, str | None]:
    """(inserted now, delivery status, the payment's workflow id) of the event's row, written once by its id, with
    its payment found by the trace number (an event for no payment of ours goes straight to the exception list)."""
    row = (
        await session.execute(
            text(
                """WITH entry AS (SELECT e.payment_id, p.workflow_id FROM ach_entries e JOIN payments p ON p.id = e.payment_id
                          WHERE e.trace_number = :trace),
                inserted AS (
                    INSERT INTO bank_events (event_id, type, trace_number, payload, payment_id, status, detail)
                    SELECT :id, :type, :trace, CAST(:payload AS jsonb), (SELECT payment_id FROM entry),
                           CASE WHEN EXISTS (SELECT 1 FROM entry) THEN 'pending' ELSE 'exception' END,
                           CASE WHEN EXISTS (SELECT 1 FROM entry) THEN NULL ELSE 'no payment has this trace number' END
                    ON CONFLICT (event_id) DO NOTHING RETURNING status)
           SELECT status, (SELECT workflow_id FROM entry) AS workflow_id FROM inserted"""
            ),
            {"id": event.event_id, "type": event.type, "trace": event.trace_number, "payload": body.decode()},
        )
    ).first()
    inserted = row is not None
    if not inserted:  # a repeat; its own statement, so it sees a row another delivery committed meanwhile
        row = (
            await session.execute(
                text(
                    "SELECT b.status, p.workflow_id FROM bank_events b LEFT JOIN payments p ON p.id = b.payment_id "
                    "WHERE b.event_id = :id"
                ),
                {"id": event.event_id},
            )
        ).one()
    await session.commit()  # durable before the bank hears 200, and no pooled connection held across Temporal
    return inserted, row.status, row.workflow_id


async def _hand_over(
    request: Request, session, settings: Settings, event_id: str, payload: dict, workflow_id: str
) -> str:
    """Signals the payment's workflow, or starts the event's delivery when that workflow has ended, if Temporal
    answers in time; otherwise the sweep will (the event is recorded). Returns the event's delivery status."""
    timeout = settings.bank_event_handover_timeout.total_seconds()
    try:
        client = await asyncio.wait_for(request.app.state.temporal.get(), timeout)
        if await asyncio.wait_for(signal_payment(client, workflow_id, payload), timeout):
            await mark_delivered(session, event_id)
            await session.commit()
            return BankEventStatus.delivered
        await asyncio.wait_for(start_delivery(client, settings, event_id), timeout)
    except Exception as exc:
        log.warning("bank event %s recorded; delivery left to the sweep: %r", event_id, exc)
    return BankEventStatus.pending


@router.post("/gateway", summary="Charge outcomes from the card/payment gateway (signed, HMAC-SHA512 of the raw body)")
async def gateway_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    # Documented with its shape; checked by the handler, so a malformed one is a 401, not a 422.
    x_gateway_signature: str = Header(
        default="",
        json_schema_extra={"pattern": "^[0-9a-f]{128}$"},
        description="hex HMAC-SHA512 of the raw body under the gateway secret key",
    ),
):
    """A bad signature is a 401 and nothing is recorded. Each event is recorded once by its id and handed to its
    payment's workflow (domain/gateway.py); a repeat is answered 200 and has no second effect."""
    body = await request.body()
    gateway.check_signature(settings, body, x_gateway_signature)
    event = gateway.parse_event(body)
    if event.event not in gateway.EVENT_TYPES:
        return {"status": "ignored"}  # an event type we do not act on (as a gateway may add new ones)
    try:
        inserted, status, payment = await gateway.record_event(session, event, body)
    except (OperationalError, InterfaceError, PoolTimeout, OSError) as exc:
        log.error("gateway event %s not recorded: the database is unreachable: %s", event.id, exc)
        raise AppError(503, "database_unavailable", "the event could not be recorded; deliver it again") from exc
    if status == "pending" and payment is not None:
        try:
            client = await asyncio.wait_for(
                request.app.state.temporal.get(), settings.bank_event_handover_timeout.total_seconds()
            )
            status = await gateway.hand_over(session, client, settings, event, payment)
        except Exception as exc:
            log.warning("gateway event %s recorded; Temporal unreachable: %r", event.id, exc)
        if status == "pending":  # recorded, not handed over: the gateway delivers again (each retry tries again)
            raise AppError(503, "temporal_unavailable", "the event is recorded but not yet applied; deliver it again")
    return {"status": "accepted" if inserted else "duplicate", "delivery": status}
