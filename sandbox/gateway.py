"""A card/payment gateway, Paystack-style: initialize a transaction, a hosted checkout page, verify, signed webhooks.

State lives in memory; a restart forgets every transaction.

Gateway API (`Authorization: Bearer <gateway_secret_key>`; fault injection applies, see app.py):
  POST /gateway/transaction/initialize   {"amount": 1250 (minor units) or "12.50" (a decimal string), "currency",
                                          "reference", "callback_url"?, "metadata"?}
       -> 200 {"status": true, "data": {"authorization_url", "access_code", "reference"}}. The reference is the
          merchant's idempotency key: the same reference with the same amount and currency answers the same
          checkout again; with another amount or currency it is 400 DUPLICATE_REFERENCE.
  GET  /gateway/transaction/verify/{reference}
       -> 200 {"status": true, "data": {"reference", "amount" (minor units), "currency", "status", "paid_at", "id"}}
          status: "pending" until the checkout is paid, then "success" or "failed"; "abandoned" once the checkout
          has been left unpaid for `abandon_after_ms`. 404 for a reference never initialized.
The hosted checkout (what the customer's browser opens; no key):
  GET  /gateway/checkout/{access_code}   an HTML page with the amount and a form posting back here
  POST /gateway/checkout/{access_code}   form or JSON field `outcome`: "success" (default) or "failed" (the card was
                                         declined) -> 200 {"reference", "status"}; the webhook goes out. A transaction
                                         that is already success/failed answers its status again (no second webhook).
Webhooks: POST `webhook_url` with the compact JSON body
  {"id": "<event id>", "event": "charge.success"|"charge.failed",
   "data": {"id", "reference", "amount" (minor units), "currency", "status", "paid_at", "metadata"}}
and `X-Gateway-Signature: <hex HMAC-SHA512(gateway_secret_key, raw body)>` (as Paystack's x-paystack-signature).
Delivered in the background, retried on non-2xx or connection errors (200 ms doubling, capped at 5 s) up to
delivery_max_attempts; a retry sends the same bytes.
Instrumentation for tests (never faulted): GET/PUT /gateway/_control
  {"webhook_url", "drop_webhooks": N (the next N events are lost: never sent), "duplicate_webhooks": bool (each
   event sent twice, the second after the first succeeded), "webhook_delay_ms", "abandon_after_ms",
   "charge_amount_delta": N (minor units added to what is charged and reported: a gateway disagreeing with us)}
  GET /gateway/_control/webhooks[?reference=]   every event and each of its delivery attempts
"""

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sandbox.settings import SandboxSettings

log = logging.getLogger("sandbox.gateway")

router = APIRouter(prefix="/gateway", tags=["payment gateway"])
checkout_router = APIRouter(prefix="/gateway/checkout", tags=["payment gateway"])
control_router = APIRouter(prefix="/gateway/_control", tags=["control"])

SIGNATURE_HEADER = "X-Gateway-Signature"
FIRST_RETRY_DELAY_S, MAX_RETRY_DELAY_S, DELIVERY_TIMEOUT_S = 0.2, 5.0, 10.0
CURRENCIES = frozenset({"USD", "NGN", "GHS", "KES", "ZAR"})
MAX_MINOR = 10**15
_DECIMAL_AMOUNT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,2})?", re.ASCII)


def sign(secret: str, body: bytes) -> str:
    """The X-Gateway-Signature value: hex HMAC-SHA512 of the raw body with the secret key."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def minor_units(amount: int | str) -> int | None:
    """An amount in minor units from an integer (minor units already) or a decimal string ("12.50")."""
    if isinstance(amount, bool):
        return None
    if isinstance(amount, int):
        return amount if 0 < amount < MAX_MINOR else None
    if not _DECIMAL_AMOUNT.fullmatch(amount):
        return None
    try:
        minor = int(Decimal(amount) * 100)
    except InvalidOperation:
        return None
    return minor if 0 < minor < MAX_MINOR else None


@dataclass
class Transaction:
    id: int
    reference: str
    access_code: str
    amount: int  # minor units, as the merchant asked
    currency: str
    callback_url: str | None
    metadata: dict
    created: float = field(default_factory=time.monotonic)
    status: str = "pending"  # pending -> success | failed; abandoned when left unpaid (seen by verify)
    charged: int | None = None  # minor units actually charged (the amount, unless charge_amount_delta)
    paid_at: str | None = None

    def view(self, abandon_after_ms: int) -> dict:
        status = self.status
        if status == "pending" and (time.monotonic() - self.created) * 1000 >= abandon_after_ms:
            status = "abandoned"
        return {
            "id": self.id,
            "reference": self.reference,
            "amount": self.charged if self.charged is not None else self.amount,
            "currency": self.currency,
            "status": status,
            "paid_at": self.paid_at,
            "metadata": self.metadata,
        }


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret_key: str
    webhook_url: str | None
    drop_webhooks: int = Field(ge=0)
    duplicate_webhooks: bool
    webhook_delay_ms: int = Field(ge=0)
    abandon_after_ms: int = Field(ge=0)
    charge_amount_delta: int
    delivery_max_attempts: int = Field(ge=1)


class GatewayConfigUpdate(BaseModel):
    """PUT body: only the fields present change (webhook_url may be set to null to stop delivering)."""

    model_config = ConfigDict(extra="forbid")

    secret_key: str | None = None
    webhook_url: str | None = None
    drop_webhooks: int | None = Field(default=None, ge=0)
    duplicate_webhooks: bool | None = None
    webhook_delay_ms: int | None = Field(default=None, ge=0)
    abandon_after_ms: int | None = Field(default=None, ge=0)
    charge_amount_delta: int | None = None
    delivery_max_attempts: int | None = Field(default=None, ge=1)


class GatewayState:
    def __init__(self, settings: SandboxSettings):
        self.config = GatewayConfig(
            secret_key=settings.gateway_secret_key,
            webhook_url=settings.gateway_webhook_url,
            drop_webhooks=0,
            duplicate_webhooks=False,
            webhook_delay_ms=0,
            abandon_after_ms=settings.gateway_abandon_after_ms,
            charge_amount_delta=0,
            delivery_max_attempts=settings.delivery_max_attempts,
        )
        self.by_reference: dict[str, Transaction] = {}
        self.by_code: dict[str, Transaction] = {}
        self.events: list[dict] = []  # every event: its body and each delivery attempt
        self.next_id = 1_000_000
        self.http = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S)
        self.tasks: set[asyncio.Task] = set()

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.http.aclose()

    def emit(self, transaction: Transaction) -> None:
        """The transaction's webhook, sent in the background (or lost, by the control)."""
        body = json.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "event": f"charge.{transaction.status}",
                "data": transaction.view(self.config.abandon_after_ms),
            },
            separators=(",", ":"),
        ).encode()
        record: dict[str, Any] = {"reference": transaction.reference, "body": body.decode(), "attempts": []}
        self.events.append(record)
        if self.config.drop_webhooks > 0:
            self.config = self.config.model_copy(update={"drop_webhooks": self.config.drop_webhooks - 1})
            record["dropped"] = True
            log.info("gateway webhook for %s dropped on purpose", transaction.reference)
            return
        task = asyncio.create_task(self._deliver(record, body, twice=self.config.duplicate_webhooks))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, record: dict, body: bytes, twice: bool) -> None:
        if self.config.webhook_delay_ms:
            await asyncio.sleep(self.config.webhook_delay_ms / 1000)
        for _ in range(2 if twice else 1):
            if not await self._send(record, body):
                return

    async def _send(self, record: dict, body: bytes) -> bool:
        delay = FIRST_RETRY_DELAY_S
        for _ in range(self.config.delivery_max_attempts):
            url = self.config.webhook_url
            if url is None:
                record["attempts"].append({"at": time.time(), "status": None, "error": "no webhook_url"})
                return False
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.config.secret_key, body)}
            try:
                response = await self.http.post(url, content=body, headers=headers)
                record["attempts"].append({"at": time.time(), "status": response.status_code})
                if response.is_success:
                    return True
            except httpx.HTTPError as exc:
                record["attempts"].append({"at": time.time(), "status": None, "error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)
        return False


def _state(request: Request) -> GatewayState:
    return request.app.state.gateway


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"status": False, "code": code, "message": message}, status_code=status)


def _authorized(request: Request, authorization: str) -> bool:
    expected = f"Bearer {_state(request).config.secret_key}".encode()
    return hmac.compare_digest(expected, authorization.encode("utf-8", "surrogateescape"))


Reference = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._=-]+$")]


class Initialize(BaseModel):
    amount: int | str
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)] = "USD"
    reference: Reference
    callback_url: Annotated[str, StringConstraints(max_length=500)] | None = None
    metadata: dict = Field(default_factory=dict)


@router.post("/transaction/initialize")
async def initialize(body: Initialize, request: Request, authorization: str = Header(default="")) -> JSONResponse:
    state = _state(request)
    if not _authorized(request, authorization):
        return _error(401, "UNAUTHORIZED", "invalid secret key")
    amount = minor_units(body.amount)
    if amount is None:
        return _error(400, "INVALID_AMOUNT", "amount: minor units as a positive integer, or a decimal string")
    if body.currency not in CURRENCIES:
        return _error(400, "UNSUPPORTED_CURRENCY", f"currency {body.currency} is not supported")
    existing = state.by_reference.get(body.reference)
    if existing is not None:
        if (existing.amount, existing.currency) != (amount, body.currency):
            return _error(400, "DUPLICATE_REFERENCE", "this reference was initialized with another amount")
        transaction = existing
    else:
        state.next_id += 1
        transaction = Transaction(
            id=state.next_id,
            reference=body.reference,
            access_code=uuid.uuid4().hex[:16],
            amount=amount,
            currency=body.currency,
            callback_url=body.callback_url,
            metadata=body.metadata,
        )
        state.by_reference[transaction.reference] = transaction
        state.by_code[transaction.access_code] = transaction
    return JSONResponse(
        {
            "status": True,
            "message": "Authorization URL created",
            "data": {
                "authorization_url": str(request.url_for("checkout_page", access_code=transaction.access_code)),
                "access_code": transaction.access_code,
                "reference": transaction.reference,
            },
        }
    )


@router.get("/transaction/verify/{reference}")
async def verify(reference: str, request: Request, authorization: str = Header(default="")) -> JSONResponse:
    state = _state(request)
    if not _authorized(request, authorization):
        return _error(401, "UNAUTHORIZED", "invalid secret key")
    transaction = state.by_reference.get(reference)
    if transaction is None:
        return _error(404, "TRANSACTION_NOT_FOUND", "no transaction has this reference")
    return JSONResponse(
        {"status": True, "message": "Verification successful", "data": transaction.view(state.config.abandon_after_ms)}
    )


@checkout_router.get("/{access_code}", response_class=HTMLResponse, name="checkout_page")
async def checkout_page(access_code: str, request: Request) -> HTMLResponse:
    transaction = _state(request).by_code.get(access_code)
    if transaction is None:
        return HTMLResponse("<h1>Unknown checkout</h1>", status_code=404)
    amount = f"{Decimal(transaction.amount) / 100:.2f} {transaction.currency}"
    return HTMLResponse(
        f"""<!doctype html><html><body>
<h1>Pay {escape(amount)}</h1><p>Reference {escape(transaction.reference)}: {escape(transaction.status)}</p>
<form method="post"><input name="card" value="4084 0840 8408 4081">
<button name="outcome" value="success">Pay</button><button name="outcome" value="failed">Decline</button></form>
</body></html>"""
    )


@checkout_router.post("/{access_code}")
async def pay(access_code: str, request: Request) -> JSONResponse:
    state = _state(request)
    transaction = state.by_code.get(access_code)
    if transaction is None:
        return _error(404, "CHECKOUT_NOT_FOUND", "no checkout has this access code")
    if request.headers.get("content-type", "").startswith("application/json"):
        outcome = str((await request.json()).get("outcome", "success"))
    else:
        outcome = str((await request.form()).get("outcome", "success"))
    if outcome not in ("success", "failed"):
        return _error(400, "INVALID_OUTCOME", "outcome: success or failed")
    if transaction.status == "pending":
        transaction.status = outcome
        transaction.charged = transaction.amount + state.config.charge_amount_delta
        transaction.paid_at = datetime.now(UTC).isoformat() if outcome == "success" else None
        state.emit(transaction)
        if transaction.callback_url:
            log.info("checkout %s done: the browser would go to %s", transaction.reference, transaction.callback_url)
    return JSONResponse({"reference": transaction.reference, "status": transaction.status})


@control_router.get("", response_model=GatewayConfig)
async def get_control(request: Request) -> GatewayConfig:
    return _state(request).config


@control_router.put("", response_model=GatewayConfig)
async def put_control(change: GatewayConfigUpdate, request: Request) -> GatewayConfig:
    state = _state(request)
    changes = {k: v for k, v in change.model_dump(exclude_unset=True).items() if v is not None or k == "webhook_url"}
    state.config = state.config.model_copy(update=changes)
    log.info("gateway control changed: %s", state.config.model_dump(exclude={"secret_key"}))
    return state.config


@control_router.get("/webhooks")
async def webhooks(request: Request, reference: str | None = None) -> dict:
    events = _state(request).events
    return {"items": [e for e in events if reference is None or e["reference"] == reference]}
