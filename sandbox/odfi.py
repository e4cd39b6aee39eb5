"""The bank (ODFI): receives our NACHA files and answers, later, with signed settlement and return webhooks.

State lives in memory; a restart forgets every file and event.

Bank API (fault injection applies, see app.py):
  POST /odfi/files    raw NACHA text; `Authorization: Bearer <odfi_api_key>`, `Idempotency-Key` required.
                      201 new file, 200 same key + same bytes (replayed, nothing processed again),
                      401 UNAUTHORIZED, 400 MISSING_IDEMPOTENCY_KEY, 422 INVALID_FILE (+ "line"),
                      409 IDEMPOTENCY_KEY_REUSED (same key, other bytes), 409 DUPLICATE_TRACE (a trace number
                      already received in an earlier file: the whole file is rejected).
                      With the control `reject_next_files: N`, the next N valid uploads are refused with
                      `reject_status` (default 422) FILE_REJECTED: the bank's review turned the file down (a 5xx
                      status plays an outage instead). A refused file is forgotten, as by a real bank.
  GET  /odfi/files[?key=]   the accepted files (by Idempotency-Key: whether the bank has a file).
Instrumentation for tests (never faulted, like /_control):
  GET/PUT /odfi/_control, GET /odfi/entries[?trace_number=], GET /odfi/events[?trace_number=],
  POST /odfi/events/{event_id}/redeliver, GET /odfi/uploads[?key=] (every upload attempt's answer, by key).

What happens to each entry of an accepted file, by the cents of its amount:

  | cents | outcome                                                                                  |
  |-------|------------------------------------------------------------------------------------------|
  | .01   | returned R01 (Insufficient funds), every presentment                                     |
  | .11   | returned R01 on the first presentment; settles when re-presented (batch "RETRY PYMT")    |
  | .31   | settles, then returned R01 inside the return window; settles for good when re-presented   |
  | .32   | settles, then returned R01 inside the return window, every presentment                    |
  | .02   | returned R02 (Account closed)                                                            |
  | .03   | returned R03 (No account/unable to locate account)                                       |
  | .04   | returned R04 (Invalid account number)                                                    |
  | .05   | returned R05 (Unauthorized debit to consumer account using corporate SEC code)           |
  | .07   | returned R07 (Authorization revoked by customer)                                         |
  | .09   | returned R09 (Uncollected funds)                                                         |
  | .20   | returned R20 (Non-transaction account)                                                   |
  | .29   | returned R29 (Corporate customer advises not authorized)                                 |
  | .10   | settles, then returned R10 (Customer advises not authorized): a late return              |
  | .41   | settles, then a notification of change C01: account number (the old one with "7" added)  |
  | .42   | settles, then a NOC C02: routing number 011000015 (021000021 if it was that)             |
  | .43   | settles, then a NOC C03: both of the above                                               |
  | .45   | settles, then a NOC C05: transaction code (checking <-> savings)                         |
  | .46   | settles, then a NOC C06: account number and transaction code                             |
  | other | settles                                                                                  |

A prenote (zero-dollar entry, codes 23/28/33/38) has no settlement event; it is returned with the control
`prenote_return_code` when that is set (e.g. "R03"), after return_delay_ms.

Timing, from the file's acceptance: `entry.settled` after settlement_delay_ms; `entry.returned` (instead of
settling) after return_delay_ms; the R01 of .31/.32 settled_return_delay_ms after its settlement (the usual
real-world timing of a return: the entry settled, and the RDFI sends it back within two banking days); the late
R10 late_return_delay_ms after its settlement.

Webhooks: `POST webhook_url` with the compact JSON body below and `X-Bank-Timestamp: <unix seconds>`,
`X-Bank-Signature: v1=<hex HMAC-SHA256(webhook_secret, f"{timestamp}." + body)>` (see `sign`):
  {"event_id", "type": "entry.settled"|"entry.returned"|"entry.corrected", "file_id", "trace_number", "amount": "125.01",
   "settlement_date": "YYYY-MM-DD" (settled only), "return_code", "return_reason" (returned only),
   "change_code", "change_reason", "corrected_data", "addenda_record" (corrected only: the COR entry's 94-character
   type 98 addenda), "occurred_at": ISO-8601 UTC}
A notification of change comes settled_return_delay_ms after the entry's settlement.
A file's events go out one at a time, in due order (each waits for the previous delivery to finish).
Non-2xx or connection errors are retried with exponential backoff (200 ms doubling, capped at 5 s) up to
delivery_max_attempts; a retry re-signs with a fresh timestamp but sends the same bytes. Modes:
duplicate_deliveries sends each event again (same event_id) after it first succeeds; out_of_order lets a
file's events happen at their times but holds their delivery until the last one, then sends newest first.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finance.ach_corrections import CHANGE_REASONS, corrected_data
from finance.fedcalendar import next_business_day
from finance.nacha import ChangeAddenda, NachaError, TransactionCode, parse, write_change_addenda
from sandbox.settings import SandboxSettings

log = logging.getLogger("sandbox.odfi")

RETRY_DESCRIPTION = "RETRY PYMT"  # the entry description of a batch of re-presented entries
FIRST_RETRY_DELAY_S = 0.2
MAX_RETRY_DELAY_S = 5.0
DELIVERY_TIMEOUT_S = 10.0

RETURN_REASONS = {
    "R01": "Insufficient funds",
    "R02": "Account closed",
    "R03": "No account/unable to locate account",
    "R04": "Invalid account number",
    "R05": "Unauthorized debit to consumer account using corporate SEC code",
    "R07": "Authorization revoked by customer",
    "R09": "Uncollected funds",
    "R10": "Customer advises not authorized",
    "R20": "Non-transaction account",
    "R29": "Corporate customer advises not authorized",
}
RETURNED_BY_CENTS = {1: "R01", 2: "R02", 3: "R03", 4: "R04", 5: "R05", 7: "R07", 9: "R09", 20: "R20", 29: "R29"}
FIRST_PRESENTMENT_R01_CENTS = 11
SETTLED_THEN_R01_ONCE_CENTS = 31
SETTLED_THEN_R01_CENTS = 32
LATE_R10_CENTS = 10
NOC_BY_CENTS = {41: "C01", 42: "C02", 43: "C03", 45: "C05", 46: "C06"}
NOC_ROUTING, NOC_ROUTING_ALTERNATIVE = "011000015", "021000021"

EventType = Literal["entry.settled", "entry.returned", "entry.corrected"]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Bank-Signature value: the timestamp is signed with the body so a captured request can't be
    replayed later under a new timestamp."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


@dataclass(frozen=True)
class Scenario:
    """What the bank does with one entry: return it instead of settling, or settle it and return it afterwards
    (inside the return window, or late)."""

    returned: str | None = None
    returned_after_settlement: str | None = None
    late_return: str | None = None
    change_code: str | None = None  # a notification of change after settlement


def scenario(amount: Decimal, entry_description: str) -> Scenario:
    """The outcome of one entry, by the cents of its amount; see the table."""
    cents = int(amount * 100) % 100
    represented = entry_description == RETRY_DESCRIPTION
    if cents == FIRST_PRESENTMENT_R01_CENTS:
        return Scenario() if represented else Scenario(returned="R01")
    if cents == SETTLED_THEN_R01_ONCE_CENTS:
        return Scenario() if represented else Scenario(returned_after_settlement="R01")
    if cents == SETTLED_THEN_R01_CENTS:
        return Scenario(returned_after_settlement="R01")
    if cents == LATE_R10_CENTS:
        return Scenario(late_return="R10")
    if cents in NOC_BY_CENTS:
        return Scenario(change_code=NOC_BY_CENTS[cents])
    return Scenario(returned=RETURNED_BY_CENTS.get(cents))


def correction_for(change_code: str, account_number: str, routing: str, transaction_code: int) -> str:
    """The corrected data the sandbox bank sends for an entry (see the table)."""
    code = TransactionCode(transaction_code)
    flipped = TransactionCode(code + 10 if code // 10 == 2 else code - 10)  # checking <-> savings
    return corrected_data(
        change_code,
        account_number=(account_number + "7")[-17:],
        routing_number=NOC_ROUTING_ALTERNATIVE if routing == NOC_ROUTING else NOC_ROUTING,
        transaction_code=flipped,
    )


# --- runtime configuration ---------------------------------------------------------------------------


class OdfiConfig(BaseModel):
    odfi_api_key: str
    webhook_url: str | None
    webhook_secret: str
    settlement_delay_ms: int = Field(ge=0)
    return_delay_ms: int = Field(ge=0)
    settled_return_delay_ms: int = Field(ge=0)
    late_return_delay_ms: int = Field(ge=0)
    duplicate_deliveries: bool
    out_of_order: bool
    delivery_max_attempts: int = Field(ge=1)
    reject_next_files: int = Field(ge=0)
    reject_status: int = Field(ge=400, le=599)
    prenote_return_code: str | None = None

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> "OdfiConfig":
        return cls.model_validate(settings.model_dump(include=set(cls.model_fields)))


class OdfiConfigUpdate(BaseModel):
    """PUT body: only the fields present change (webhook_url may be set to null to stop delivering)."""

    model_config = ConfigDict(extra="forbid")

    odfi_api_key: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    settlement_delay_ms: int | None = None
    return_delay_ms: int | None = None
    settled_return_delay_ms: int | None = None
    late_return_delay_ms: int | None = None
    duplicate_deliveries: bool | None = None
    out_of_order: bool | None = None
    delivery_max_attempts: int | None = None
    reject_next_files: int | None = None
    reject_status: int | None = None
    prenote_return_code: str | None = None


# --- state -------------------------------------------------------------------------------------------


@dataclass
class ReceivedFile:
    file_id: str
    key: str
    content_sha256: str
    received_at: datetime
    entry_count: int

    def receipt(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "entry_count": self.entry_count, "status": "accepted"}


@dataclass
class ReceivedEntry:
    trace_number: str
    file_id: str
    amount: Decimal
    transaction_code: int
    account_number: str
    rdfi_routing: str
    sec_code: str
    entry_description: str
    received_count: int = 1  # > 1 when later files repeated this trace (they were rejected)


@dataclass
class PlannedEvent:
    due_s: float  # seconds after acceptance
    type: EventType
    entry: ReceivedEntry
    return_code: str | None = None
    change_code: str | None = None


@dataclass
class OdfiEvent:
    event_id: str
    type: EventType
    trace_number: str
    payload: dict[str, Any]
    body: bytes  # signed and sent as is, so every delivery of the event carries the same bytes
    attempts: int = 0
    deliveries: int = 0  # successful ones

    def view(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "trace_number": self.trace_number,
            "attempts": self.attempts,
            "deliveries": self.deliveries,
            "delivered": self.deliveries > 0,
            "payload": self.payload,
        }


class OdfiError(Exception):
    def __init__(self, status: int, error_code: str, error_message: str, **extra: Any):
        self.status, self.body = status, {"error_code": error_code, "error_message": error_message, **extra}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


class OdfiState:
    """Files, entries and events in memory, plus the background tasks that deliver the events. Handlers
    mutate it without awaiting in between, so each upload is atomic on the event loop."""

    def __init__(self, settings: SandboxSettings):
        self.config = OdfiConfig.from_settings(settings)
        self.files_by_key: dict[str, ReceivedFile] = {}
        self.entries: dict[str, ReceivedEntry] = {}  # by trace number
        self.events: dict[str, OdfiEvent] = {}  # by event_id, in creation order
        self.uploads: dict[str, list[int]] = {}  # Idempotency-Key -> the status of each upload attempt
        self.tasks: set[asyncio.Task] = set()
        self.http = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()

    # upload

    def authenticate(self, authorization: str | None) -> None:
        expected = f"Bearer {self.config.odfi_api_key}".encode()
        if not hmac.compare_digest((authorization or "").encode(), expected):
            raise OdfiError(401, "UNAUTHORIZED", "missing or invalid bearer API key")

    def receive(self, key: str, content: bytes) -> tuple[int, dict[str, Any]]:
        """(status, receipt) for an upload; raises OdfiError when it is refused."""
        digest = hashlib.sha256(content).hexdigest()
        previous = self.files_by_key.get(key)
        if previous is not None:
            if previous.content_sha256 != digest:
                raise OdfiError(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a different file")
            return 200, previous.receipt()

        try:
            text = content.decode("ascii")
        except UnicodeDecodeError as exc:
            line = content[: exc.start].count(b"\n") + 1
            raise OdfiError(422, "INVALID_FILE", "NACHA files are ASCII only", line=line) from None
        try:
            nacha_file = parse(text)
        except NachaError as exc:
            raise OdfiError(422, "INVALID_FILE", exc.message, line=exc.line_number) from None

        if self.config.reject_next_files:
            self.config = self.config.model_copy(update={"reject_next_files": self.config.reject_next_files - 1})
            raise OdfiError(
                self.config.reject_status,
                "FILE_REJECTED",
                "the file was rejected by the bank's file review (sandbox reject_next_files)",
            )

        traces = [entry.trace_number for _, entry in nacha_file.iter_entries()]
        repeated = [trace for trace in traces if trace in self.entries]
        if repeated:
            for trace in repeated:  # counted, so tests can see the back office sent an entry twice
                self.entries[trace].received_count += 1
            raise OdfiError(
                409, "DUPLICATE_TRACE", f"trace numbers already received: {', '.join(repeated)}", trace_numbers=repeated
            )

        received = ReceivedFile(str(uuid.uuid4()), key, digest, datetime.now(UTC), len(traces))
        self.files_by_key[key] = received
        new_entries = []
        for batch, entry in nacha_file.iter_entries():
            new_entries.append(
                ReceivedEntry(
                    trace_number=entry.trace_number,
                    file_id=received.file_id,
                    amount=entry.amount,
                    transaction_code=int(entry.transaction_code),
                    account_number=entry.account_number,
                    rdfi_routing=entry.rdfi_routing,
                    sec_code=str(batch.sec_code),
                    entry_description=batch.entry_description,
                )
            )
        self.entries.update((e.trace_number, e) for e in new_entries)
        log.info("accepted file %s key=%s entries=%d", received.file_id, key, len(new_entries))
        self._spawn(self._process_file(received, self._plan(new_entries)))
        return 201, received.receipt()

    def _plan(self, entries: list[ReceivedEntry]) -> list[PlannedEvent]:
        config = self.config  # delays as they are at acceptance
        settle_s, return_s = config.settlement_delay_ms / 1000, config.return_delay_ms / 1000
        plan = []
        for entry in entries:
            if TransactionCode(entry.transaction_code).is_prenote:  # no money moves: only a return is news
                if config.prenote_return_code:
                    plan.append(PlannedEvent(return_s, "entry.returned", entry, config.prenote_return_code))
                continue
            outcome = scenario(entry.amount, entry.entry_description)
            if outcome.returned:
                plan.append(PlannedEvent(return_s, "entry.returned", entry, outcome.returned))
                continue
            plan.append(PlannedEvent(settle_s, "entry.settled", entry))
            # Counted from the settlement, so a return after settlement never comes before it.
            if outcome.returned_after_settlement:
                plan.append(
                    PlannedEvent(
                        settle_s + config.settled_return_delay_ms / 1000,
                        "entry.returned",
                        entry,
                        outcome.returned_after_settlement,
                    )
                )
            if outcome.change_code:
                plan.append(
                    PlannedEvent(
                        settle_s + config.settled_return_delay_ms / 1000,
                        "entry.corrected",
                        entry,
                        change_code=outcome.change_code,
                    )
                )
            if outcome.late_return:
                plan.append(
                    PlannedEvent(
                        settle_s + config.late_return_delay_ms / 1000, "entry.returned", entry, outcome.late_return
                    )
                )
        return sorted(plan, key=lambda p: p.due_s)  # stable: file order among events due together

    # events

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event task failed", exc_info=task.exception())

    async def _process_file(self, received: ReceivedFile, plan: list[PlannedEvent]) -> None:
        loop = asyncio.get_running_loop()
        accepted_at = loop.time()
        hold_for_reverse = self.config.out_of_order
        held: list[OdfiEvent] = []
        for planned in plan:
            await asyncio.sleep(max(0.0, accepted_at + planned.due_s - loop.time()))
            event = self._record_event(received, planned)
            if hold_for_reverse:
                held.append(event)
            else:
                await self._deliver_as_configured(event)
        for event in reversed(held):
            await self._deliver_as_configured(event)

    def _record_event(self, received: ReceivedFile, planned: PlannedEvent) -> OdfiEvent:
        entry = planned.entry
        payload: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": planned.type,
            "file_id": received.file_id,
            "trace_number": entry.trace_number,
            "amount": f"{entry.amount:.2f}",
        }
        if planned.type == "entry.settled":
            payload["settlement_date"] = next_business_day(received.received_at.date()).isoformat()
        elif planned.type == "entry.corrected":
            assert planned.change_code is not None  # a planned NOC has its code
            data = correction_for(planned.change_code, entry.account_number, entry.rdfi_routing, entry.transaction_code)
            cor_trace = f"{entry.rdfi_routing[:8]}{len(self.events) % 9_999_999 + 1:07d}"
            addenda = ChangeAddenda(
                change_code=planned.change_code,
                original_trace=entry.trace_number,
                original_rdfi=entry.rdfi_routing[:8],
                corrected_data=data,
                trace_number=cor_trace,
            )
            payload["change_code"] = planned.change_code
            payload["change_reason"] = CHANGE_REASONS[planned.change_code]
            payload["corrected_data"] = addenda.corrected_data
            payload["addenda_record"] = write_change_addenda(addenda)
        else:
            assert planned.return_code is not None  # a planned return has its code
            payload["return_code"] = planned.return_code
            payload["return_reason"] = RETURN_REASONS.get(planned.return_code, "Returned")
        payload["occurred_at"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = json.dumps(payload, separators=(",", ":")).encode()
        event = OdfiEvent(payload["event_id"], planned.type, entry.trace_number, payload, body)
        self.events[event.event_id] = event
        return event

    async def _deliver_as_configured(self, event: OdfiEvent) -> None:
        if await self.deliver(event) and self.config.duplicate_deliveries:
            await self.deliver(event)

    async def deliver(self, event: OdfiEvent) -> bool:
        """One delivery of the event, retried; True once the receiver answered 2xx."""
        retry_delay = FIRST_RETRY_DELAY_S
        attempt = 0
        while True:
            url, secret = self.config.webhook_url, self.config.webhook_secret  # live: tests repoint them
            if url is None:
                return False
            attempt += 1
            event.attempts += 1
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-Bank-Timestamp": str(timestamp),
                "X-Bank-Signature": sign(secret, timestamp, event.body),
            }
            try:
                response = await self.http.post(url, content=event.body, headers=headers)
                if response.is_success:
                    event.deliveries += 1
                    return True
                outcome = f"status {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            if attempt >= self.config.delivery_max_attempts:
                log.warning("giving up on event %s after %d attempts (%s)", event.event_id, attempt, outcome)
                return False
            log.info(
                "event %s attempt %d failed (%s); retrying in %.1fs", event.event_id, attempt, outcome, retry_delay
            )
            await asyncio.sleep(retry_delay)
            retry_delay = min(retry_delay * 2, MAX_RETRY_DELAY_S)


# --- routes ------------------------------------------------------------------------------------------

router = APIRouter(prefix="/odfi", tags=["odfi"])  # the bank's API: fault injection applies
control_router = APIRouter(prefix="/odfi", tags=["odfi control"])  # test instrumentation: never faulted


def _state(request: Request) -> OdfiState:
    return request.app.state.odfi


@router.post(
    "/files",
    status_code=201,
    responses={
        200: {"description": "replay of an earlier upload with the same key and bytes"},
        400: {},
        401: {},
        409: {},
        422: {"description": "INVALID_FILE, with the line number"},
    },
)
async def upload_file(
    request: Request,
    authorization: str | None = Header(None),
    idempotency_key: str | None = Header(None),
) -> JSONResponse:
    """Body: the NACHA file as text/plain. Returns {file_id, entry_count, status: "accepted"}."""
    state = _state(request)
    content = await request.body()
    try:
        state.authenticate(authorization)
        if not idempotency_key:
            raise OdfiError(400, "MISSING_IDEMPOTENCY_KEY", "the Idempotency-Key header is required")
        try:
            status, receipt = state.receive(idempotency_key, content)
        except OdfiError as exc:
            state.uploads.setdefault(idempotency_key, []).append(exc.status)
            raise
    except OdfiError as exc:
        return exc.response()
    state.uploads.setdefault(idempotency_key, []).append(status)
    return JSONResponse(receipt, status_code=status)


@router.get("/files")
async def list_files(request: Request, key: str | None = None) -> dict[str, list[dict[str, Any]]]:
    return {
        "files": [
            {"file_id": f.file_id, "key": f.key, "received_at": f.received_at.isoformat(), "entry_count": f.entry_count}
            for f in _state(request).files_by_key.values()
            if key is None or f.key == key
        ]
    }


@control_router.get("/entries")
async def list_entries(request: Request, trace_number: str | None = None) -> dict[str, list[dict[str, Any]]]:
    return {
        "entries": [
            {
                "trace_number": e.trace_number,
                "file_id": e.file_id,
                "amount": f"{e.amount:.2f}",
                "transaction_code": e.transaction_code,
                "account_number": e.account_number,
                "rdfi_routing": e.rdfi_routing,
                "sec_code": e.sec_code,
                "entry_description": e.entry_description,
                "received_count": e.received_count,
            }
            for e in _state(request).entries.values()
            if trace_number is None or e.trace_number == trace_number
        ]
    }


@control_router.get("/uploads")
async def list_uploads(request: Request, key: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every upload attempt that got past authentication, by Idempotency-Key: the statuses answered, in order."""
    return {
        "uploads": [
            {"key": k, "statuses": statuses}
            for k, statuses in _state(request).uploads.items()
            if key is None or k == key
        ]
    }


@control_router.get("/events")
async def list_events(request: Request, trace_number: str | None = None) -> dict[str, list[dict[str, Any]]]:
    return {
        "events": [
            e.view() for e in _state(request).events.values() if trace_number is None or e.trace_number == trace_number
        ]
    }


@control_router.post("/events/{event_id}/redeliver")
async def redeliver_event(event_id: str, request: Request) -> JSONResponse:
    """Delivers the event once more (retrying as usual) and answers when done, with the event's record."""
    state = _state(request)
    event = state.events.get(event_id)
    if event is None:
        return OdfiError(404, "EVENT_NOT_FOUND", f"no event {event_id!r}").response()
    if state.config.webhook_url is None:
        return OdfiError(409, "NO_WEBHOOK_URL", "webhook_url is not set").response()
    await state.deliver(event)
    return JSONResponse(event.view())


@control_router.get("/_control", response_model=OdfiConfig)
async def get_control(request: Request) -> OdfiConfig:
    return _state(request).config


@control_router.put("/_control", response_model=OdfiConfig)
async def put_control(change: OdfiConfigUpdate, request: Request) -> OdfiConfig:
    state = _state(request)
    try:
        # Re-validated whole, so an explicit null is refused for every field but webhook_url.
        state.config = OdfiConfig.model_validate({**state.config.model_dump(), **change.model_dump(exclude_unset=True)})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    log.info("odfi config changed: %s", change.model_dump(exclude_unset=True))
    return state.config
