"""The bank's webhooks: settlement notices and returns, signed with HMAC-SHA256 over `<timestamp>.<raw body>`.

A bad signature or a stale timestamp is a 401 and nothing is recorded. Each event is recorded once by its
id; a repeat is answered 200 and has no second effect (the workflow also ignores an event id it has seen)."""

import hashlib
import hmac
import json
import time
from datetime import date

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from temporalio.service import RPCError

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import AppError
from models.payments import BankEventSignal

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class BankEvent(BaseModel):
    event_id: str
    type: str
    trace_number: str
    file_id: str | None = None
    amount: str | None = None
    settlement_date: date | None = None
    return_code: str | None = None
    return_reason: str | None = None
    occurred_at: str | None = None


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _unauthorized(message: str) -> AppError:
    return AppError(401, "invalid_signature", message)


@router.post("/bank", summary="Settlement and return notices from the bank (signed)")
async def bank_webhook(request: Request, session: SessionDep, settings: SettingsDep, client: TemporalDep,
                       x_bank_timestamp: str = Header(default=""), x_bank_signature: str = Header(default="")):
    body = await request.body()
    try:
        sent_at = int(x_bank_timestamp)
    except ValueError:
        raise _unauthorized("missing or malformed X-Bank-Timestamp")
    if abs(time.time() - sent_at) > settings.bank_webhook_tolerance.total_seconds():
        raise _unauthorized("the timestamp is outside the tolerance: a replay or a skewed clock")
    expected = expected_signature(settings.bank_webhook_secret.get_secret_value(), x_bank_timestamp, body)
    if not hmac.compare_digest(expected, x_bank_signature):
        raise _unauthorized("the signature does not match")
    try:
        event = BankEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise AppError(400, "bad_event", "the event body is not a valid bank event", str(exc)[:500])
    if event.type not in ("entry.settled", "entry.returned"):
        raise AppError(400, "unknown_event_type", f"unknown event type {event.type}")

    await session.execute(text(
        """INSERT INTO bank_events (event_id, type, trace_number, payload) VALUES (:id, :type, :trace, CAST(:payload AS jsonb))
           ON CONFLICT (event_id) DO NOTHING"""),
        {"id": event.event_id, "type": event.type, "trace": event.trace_number, "payload": body.decode()})
    await session.commit()
    recorded = (await session.execute(text(
        "SELECT b.signaled_at, p.workflow_id FROM bank_events b LEFT JOIN ach_entries e ON e.trace_number = "
        "b.trace_number LEFT JOIN payments p ON p.id = e.payment_id WHERE b.event_id = :id"),
        {"id": event.event_id})).one()
    if recorded.signaled_at is not None:
        return {"status": "duplicate"}
    if recorded.workflow_id is None:
        return {"status": "unmatched"}  # recorded; an operator can look at it
    await session.commit()  # no pooled connection held across the signal
    try:
        await client.get_workflow_handle(recorded.workflow_id).signal("bank_event", BankEventSignal(
            event_id=event.event_id, type=event.type, trace_number=event.trace_number,
            settlement_date=event.settlement_date, return_code=event.return_code, return_reason=event.return_reason))
    except RPCError as exc:
        # Not signaled: a 503 makes the bank deliver again, and then we signal (the row is already there).
        raise AppError(503, "workflow_unavailable", "the payment's workflow could not be told; deliver again",
                       str(exc)[:300])
    await session.execute(text("UPDATE bank_events SET signaled_at = now() WHERE event_id = :id"),
                          {"id": event.event_id})
    await session.commit()
    return {"status": "accepted"}
