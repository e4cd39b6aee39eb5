"""The sandbox's bank (ODFI): NACHA uploads in-process over ASGI, webhooks to a real loopback receiver.

The receiver is a bare ASGI app served by uvicorn on a free port, so the webhooks go through real HTTP;
signatures are checked with an independent HMAC, not with sandbox.odfi.sign.
"""

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
import uvicorn

from finance.fedcalendar import next_business_day
from finance.nacha import BatchSpec, EntrySpec, SecCode, TransactionCode, build_file, write
from sandbox.app import create_app
from sandbox.odfi import sign
from sandbox.settings import SandboxSettings

API_KEY = "sandbox-odfi-key"
SECRET = "sandbox-webhook-secret"
ODFI_ROUTING = "091000019"
RDFI_ROUTING = "011401533"
FAST = {"settlement_delay_ms": 50, "return_delay_ms": 50, "settled_return_delay_ms": 80, "late_return_delay_ms": 100}


# --- the webhook receiver ----------------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float  # monotonic

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Records every request; answers with the statuses queued in `fail_with` first, then 200."""

    def __init__(self):
        self.deliveries: list[Delivery] = []
        self.fail_with: list[int] = []

    async def __call__(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status = self.fail_with.pop(0) if self.fail_with else 200
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.deliveries.append(Delivery(headers, body, status, time.monotonic()))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def accepted(self) -> list[dict]:
        """Payloads of the deliveries answered 2xx, in arrival order, each signature verified."""
        payloads = []
        for d in self.deliveries:
            assert_signed(d)
            if d.status == 200:
                payloads.append(d.payload)
        return payloads


def assert_signed(delivery: Delivery, secret: str = SECRET) -> None:
    timestamp = delivery.headers["x-bank-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["x-bank-signature"] == f"v1={expected}"
    assert delivery.headers["content-type"] == "application/json"
    assert abs(int(timestamp) - time.time()) < 5
    # Compact JSON: the bytes signed are the bytes a verifier re-serializing the payload would not get otherwise.
    assert delivery.body == json.dumps(json.loads(delivery.body), separators=(",", ":")).encode()


@pytest.fixture(scope="module")
async def receiver_server():
    receiver = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(receiver, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield receiver, f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1/webhooks/bank"
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
def receiver(receiver_server) -> Receiver:
    receiver, _ = receiver_server
    receiver.deliveries.clear()
    receiver.fail_with.clear()
    return receiver


@pytest.fixture
def webhook_url(receiver_server) -> str:
    return receiver_server[1]


class Odfi:
    def __init__(self, app, client: httpx.AsyncClient):
        self.app, self.client = app, client

    @property
    def state(self):
        return self.app.state.odfi

    async def upload(self, text: str, key: str | None = None, api_key: str = API_KEY) -> httpx.Response:
        headers = {"Content-Type": "text/plain", "Authorization": f"Bearer {api_key}"}
        if key != "":
            headers["Idempotency-Key"] = key or uuid.uuid4().hex
        return await self.client.post("/odfi/files", content=text.encode(), headers=headers)

    async def idle(self, timeout: float = 5.0) -> None:
        """Until every event of every file is due and its delivery finished."""
        await wait_for(lambda: not self.state.tasks, timeout)

    async def events(self, **params) -> list[dict]:
        return (await self.client.get("/odfi/events", params=params)).json()["events"]


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
async def make_odfi(receiver, webhook_url):
    """Starts ODFI apps (lifespan included, so shutdown cancels their deliveries) wired to the receiver."""
    stack = []

    async def make(**settings) -> Odfi:
        app = create_app(SandboxSettings(**{"webhook_url": webhook_url, **FAST, **settings}))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")
        stack.append((lifespan, client))
        return Odfi(app, client)

    yield make
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def odfi(make_odfi) -> Odfi:
    return await make_odfi()


def nacha(amounts: list[str], *, description: str = "PAYMENT", first_trace: int = 1) -> str:
    entries = [
        EntrySpec(
            transaction_code=TransactionCode.CHECKING_DEBIT,
            rdfi_routing=RDFI_ROUTING,
            account_number=f"98765{i:03d}",
            amount=Decimal(amount),
            individual_name=f"Member {i}",
        )
        for i, amount in enumerate(amounts)
    ]
    return write(
        build_file(
            odfi_routing=ODFI_ROUTING,
            odfi_name="Sandbox Bank",
            company_id="1410012345",
            company_name="Backoffice",
            creation_date=date(2025, 3, 3),
            creation_time=None,
            first_trace_sequence=first_trace,
            batches=[
                BatchSpec(
                    sec_code=SecCode.PPD,
                    entry_description=description,
                    effective_entry_date=date(2025, 3, 4),
                    entries=entries,
                )
            ],
        )
    )


def trace(sequence: int) -> str:
    return f"{ODFI_ROUTING[:8]}{sequence:07d}"


def outcomes(payloads: list[dict]) -> dict[str, list[tuple[str, str | None]]]:
    """trace number → [(type, return code)] in arrival order."""
    result: dict[str, list[tuple[str, str | None]]] = {}
    for p in payloads:
        result.setdefault(p["trace_number"], []).append((p["type"], p.get("return_code")))
    return result


# --- scenarios ---------------------------------------------------------------------------------------

SCENARIOS = [  # (amount, what the bank sends for it on a first presentment)
    ("125.00", [("entry.settled", None)]),
    ("125.99", [("entry.settled", None)]),
    ("125.01", [("entry.returned", "R01")]),
    ("125.11", [("entry.returned", "R01")]),
    ("125.02", [("entry.returned", "R02")]),
    ("125.03", [("entry.returned", "R03")]),
    ("125.04", [("entry.returned", "R04")]),
    ("125.05", [("entry.returned", "R05")]),
    ("125.07", [("entry.returned", "R07")]),
    ("125.09", [("entry.returned", "R09")]),
    ("125.29", [("entry.returned", "R29")]),
    ("125.20", [("entry.returned", "R20")]),
    ("125.10", [("entry.settled", None), ("entry.returned", "R10")]),
    ("125.31", [("entry.settled", None), ("entry.returned", "R01")]),
    ("125.32", [("entry.settled", None), ("entry.returned", "R01")]),
]
REASONS = {
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


async def test_every_scenario_by_cents(odfi, receiver):
    r = await odfi.upload(nacha([amount for amount, _ in SCENARIOS]))
    assert r.status_code == 201, r.text
    file_id = r.json()["file_id"]
    assert r.json() == {"file_id": file_id, "entry_count": len(SCENARIOS), "status": "accepted"}
    await odfi.idle()

    payloads = receiver.accepted()
    assert outcomes(payloads) == {trace(i): expected for i, (_, expected) in enumerate(SCENARIOS, start=1)}
    amount_of = {trace(i): amount for i, (amount, _) in enumerate(SCENARIOS, start=1)}
    settlement_date = next_business_day(datetime.now(UTC).date()).isoformat()
    for p in payloads:
        uuid.UUID(p["event_id"])
        assert (p["file_id"], p["amount"]) == (file_id, amount_of[p["trace_number"]])
        assert datetime.fromisoformat(p["occurred_at"]).tzinfo is not None
        common = {"event_id", "type", "file_id", "trace_number", "amount", "occurred_at"}
        if p["type"] == "entry.settled":
            assert set(p) == common | {"settlement_date"}
            assert p["settlement_date"] == settlement_date
        else:
            assert set(p) == common | {"return_code", "return_reason"}
            assert p["return_reason"] == REASONS[p["return_code"]]
    assert len({p["event_id"] for p in payloads}) == len(payloads)
    # The log agrees with what was received, and each event went out once.
    logged = await odfi.events()
    assert [e["payload"] for e in logged] and sorted(e["event_id"] for e in logged) == sorted(
        p["event_id"] for p in payloads
    )
    assert all(e["delivered"] and e["attempts"] == 1 and e["deliveries"] == 1 for e in logged)


async def test_represented_entries(odfi, receiver):
    """.11 fails once and succeeds when re-presented; .01 fails every time; .31 settles and comes back once, then
    settles for good when re-presented; .32 settles and comes back every time."""
    amounts = ["40.11", "40.01", "40.31", "40.32"]
    assert (await odfi.upload(nacha(amounts, first_trace=1))).status_code == 201
    assert (await odfi.upload(nacha(amounts, description="RETRY PYMT", first_trace=5))).status_code == 201
    await odfi.idle()
    settled_then_r01 = [("entry.settled", None), ("entry.returned", "R01")]
    assert outcomes(receiver.accepted()) == {
        trace(1): [("entry.returned", "R01")],
        trace(2): [("entry.returned", "R01")],
        trace(3): settled_then_r01,
        trace(4): settled_then_r01,
        trace(5): [("entry.settled", None)],
        trace(6): [("entry.returned", "R01")],
        trace(7): [("entry.settled", None)],
        trace(8): settled_then_r01,
    }


async def test_settlement_and_return_delays(make_odfi, receiver):
    odfi = await make_odfi(
        settlement_delay_ms=300, return_delay_ms=50, settled_return_delay_ms=100, late_return_delay_ms=200
    )
    started = time.monotonic()
    assert (await odfi.upload(nacha(["10.00", "10.02", "10.10", "10.31"]))).status_code == 201
    await odfi.idle()
    arrived = {(d.payload["trace_number"], d.payload["type"]): d.at - started for d in receiver.deliveries}
    assert 0.05 <= arrived[trace(2), "entry.returned"] < 0.3
    assert arrived[trace(1), "entry.settled"] >= 0.3
    assert arrived[trace(3), "entry.settled"] >= 0.3
    assert arrived[trace(3), "entry.returned"] >= 0.5  # the late return counts from its settlement
    assert arrived[trace(4), "entry.settled"] >= 0.3
    assert arrived[trace(4), "entry.returned"] >= 0.4  # so does a return after settlement


async def test_late_return_follows_settlement_in_normal_order(odfi, receiver):
    await odfi.upload(nacha(["10.10"]))
    await odfi.idle()
    assert [p["type"] for p in receiver.accepted()] == ["entry.settled", "entry.returned"]


async def test_return_after_settlement_follows_its_settlement_even_when_due_at_once(make_odfi, receiver):
    odfi = await make_odfi(settlement_delay_ms=50, settled_return_delay_ms=0)
    await odfi.upload(nacha(["10.31"]))
    await odfi.idle()
    assert [p["type"] for p in receiver.accepted()] == ["entry.settled", "entry.returned"]


# --- uploads -----------------------------------------------------------------------------------------


async def test_same_key_same_file_is_processed_once(odfi, receiver):
    text = nacha(["10.00", "10.02"])
    first = await odfi.upload(text, key="file-1")
    again = await odfi.upload(text, key="file-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    await odfi.idle()
    assert len(receiver.accepted()) == 2
    files = (await odfi.client.get("/odfi/files")).json()["files"]
    assert [(f["file_id"], f["key"], f["entry_count"]) for f in files] == [(first.json()["file_id"], "file-1", 2)]
    datetime.fromisoformat(files[0]["received_at"])
    entries = (await odfi.client.get("/odfi/entries")).json()["entries"]
    assert [(e["trace_number"], e["received_count"]) for e in entries] == [(trace(1), 1), (trace(2), 1)]
    assert entries[0] == {
        "trace_number": trace(1),
        "file_id": first.json()["file_id"],
        "amount": "10.00",
        "transaction_code": 27,
        "account_number": "98765000",
        "rdfi_routing": RDFI_ROUTING,
        "sec_code": "PPD",
        "entry_description": "PAYMENT",
        "received_count": 1,
    }
    only = (await odfi.client.get("/odfi/entries", params={"trace_number": trace(2)})).json()["entries"]
    assert [e["amount"] for e in only] == ["10.02"]


async def test_same_key_different_file_is_409(odfi):
    assert (await odfi.upload(nacha(["10.00"]), key="k")).status_code == 201
    r = await odfi.upload(nacha(["10.00"], first_trace=5), key="k")
    assert (r.status_code, r.json()["error_code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert len((await odfi.client.get("/odfi/files")).json()["files"]) == 1


async def test_trace_already_received_is_409_and_counted(odfi, receiver):
    assert (await odfi.upload(nacha(["10.00", "10.00"]))).status_code == 201
    r = await odfi.upload(nacha(["20.00", "20.00"], first_trace=2))  # trace 2 again, trace 3 new
    assert (r.status_code, r.json()["error_code"]) == (409, "DUPLICATE_TRACE")
    assert r.json()["trace_numbers"] == [trace(2)]
    await odfi.idle()
    assert sorted(p["trace_number"] for p in receiver.accepted()) == [
        trace(1),
        trace(2),
    ]  # nothing from the rejected file
    entries = (await odfi.client.get("/odfi/entries")).json()["entries"]
    assert {e["trace_number"]: e["received_count"] for e in entries} == {trace(1): 1, trace(2): 2}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", API_KEY, f"Basic {API_KEY}"])
async def test_upload_needs_the_api_key(odfi, authorization):
    headers = {"Idempotency-Key": "k"} | ({"Authorization": authorization} if authorization else {})
    r = await odfi.client.post("/odfi/files", content=nacha(["1.00"]), headers=headers)
    assert (r.status_code, r.json()["error_code"]) == (401, "UNAUTHORIZED")
    assert (await odfi.client.get("/odfi/files")).json()["files"] == []


async def test_upload_needs_an_idempotency_key(odfi):
    r = await odfi.upload(nacha(["1.00"]), key="")
    assert (r.status_code, r.json()["error_code"]) == (400, "MISSING_IDEMPOTENCY_KEY")


async def test_invalid_file_is_422_with_its_line(odfi):
    lines = nacha(["1.00", "2.00"]).splitlines(keepends=True)
    assert lines[3].startswith("6")  # header, batch header, entry 1, entry 2
    lines[3] = lines[3][:29] + "00000002X0" + lines[3][39:]  # a letter in the amount field
    r = await odfi.upload("".join(lines))
    assert r.status_code == 422
    assert (r.json()["error_code"], r.json()["line"]) == ("INVALID_FILE", 4)
    assert "amount" in r.json()["error_message"]

    r = await odfi.client.post(
        "/odfi/files",
        content="1" * 94 + "\n" + "é" * 47 + "\n",
        headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k2"},
    )
    assert (r.status_code, r.json()["error_code"], r.json()["line"]) == (422, "INVALID_FILE", 2)
    assert (await odfi.client.get("/odfi/files")).json()["files"] == []


async def test_reject_next_files_refuses_that_many_valid_files_and_forgets_them(odfi, receiver):
    await odfi.client.put("/odfi/_control", json={"reject_next_files": 2})
    text = nacha(["10.00", "10.02"])
    first = await odfi.upload(text, key="f1")
    assert (first.status_code, first.json()["error_code"]) == (422, "FILE_REJECTED")
    assert (await odfi.upload(nacha(["1.00"], first_trace=9), key="f2")).status_code == 422
    assert (await odfi.client.get("/odfi/_control")).json()["reject_next_files"] == 0
    assert (await odfi.client.get("/odfi/entries")).json()["entries"] == []  # its traces never reached the bank
    assert (await odfi.upload(text, key="f3")).status_code == 201  # the same traces in a new file: accepted
    await odfi.idle()
    assert sorted(p["trace_number"] for p in receiver.accepted()) == [trace(1), trace(2)]
    uploads = (await odfi.client.get("/odfi/uploads")).json()["uploads"]
    assert uploads == [
        {"key": "f1", "statuses": [422]},
        {"key": "f2", "statuses": [422]},
        {"key": "f3", "statuses": [201]},
    ]
    assert [f["key"] for f in (await odfi.client.get("/odfi/files", params={"key": "f1"})).json()["files"]] == []
    assert [f["key"] for f in (await odfi.client.get("/odfi/files", params={"key": "f3"})).json()["files"]] == ["f3"]


async def test_reject_status_5xx_plays_an_outage(odfi):
    await odfi.client.put("/odfi/_control", json={"reject_next_files": 1, "reject_status": 503})
    text = nacha(["1.00"])
    assert (await odfi.upload(text, key="k")).status_code == 503
    assert (await odfi.upload(text, key="k")).status_code == 201  # the retry of the same file goes through
    assert (await odfi.client.get("/odfi/uploads", params={"key": "k"})).json()["uploads"] == [
        {"key": "k", "statuses": [503, 201]}
    ]
    for bad in ({"reject_next_files": -1}, {"reject_status": 200}, {"reject_status": 600}):
        assert (await odfi.client.put("/odfi/_control", json=bad)).status_code == 422, bad


async def test_faults_apply_to_uploads_not_to_instrumentation(odfi, receiver):
    await odfi.client.put("/_control/faults", json={"fail_next": 1, "error_status": 503})
    assert (await odfi.client.get("/odfi/events")).status_code == 200
    assert (await odfi.client.get("/odfi/_control")).status_code == 200
    text = nacha(["1.00"])
    r = await odfi.upload(text, key="k")
    assert (r.status_code, r.json()["error_code"]) == (503, "INJECTED_FAULT")
    assert (await odfi.upload(text, key="k")).status_code == 201  # the fault happened before the bank saw it
    await odfi.idle()
    assert len(receiver.accepted()) == 1


# --- delivery ----------------------------------------------------------------------------------------


async def test_sign_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1_700_000_000, body) == f"v1={expected}"
    assert sign("s3cret", 1_700_000_001, body) != sign("s3cret", 1_700_000_000, body)


async def test_retries_after_two_500s_with_backoff(odfi, receiver):
    receiver.fail_with = [500, 500]
    await odfi.upload(nacha(["10.00"]))
    await odfi.idle()
    assert [d.status for d in receiver.deliveries] == [500, 500, 200]
    for d in receiver.deliveries:
        assert_signed(d)  # each attempt signed for its own timestamp
    assert len({d.body for d in receiver.deliveries}) == 1  # same event_id and payload every time
    gaps = [b.at - a.at for a, b in itertools.pairwise(receiver.deliveries)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4
    [event] = await odfi.events()
    assert (event["attempts"], event["deliveries"], event["delivered"]) == (3, 1, True)


async def test_gives_up_after_max_attempts_then_redeliver_after_repointing(make_odfi, receiver, webhook_url):
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    odfi = await make_odfi(webhook_url=dead_url, delivery_max_attempts=2)
    await odfi.upload(nacha(["10.00"]))
    await odfi.idle()
    [event] = await odfi.events()
    assert (event["attempts"], event["delivered"]) == (2, False)

    await odfi.client.put("/odfi/_control", json={"webhook_url": webhook_url})
    r = await odfi.client.post(f"/odfi/events/{event['event_id']}/redeliver")
    assert r.status_code == 200
    assert (r.json()["attempts"], r.json()["delivered"]) == (3, True)
    assert [p["event_id"] for p in receiver.accepted()] == [event["event_id"]]


async def test_redeliver_sends_the_same_event_again(odfi, receiver):
    await odfi.upload(nacha(["10.02"]))
    await odfi.idle()
    [event] = await odfi.events()
    r = await odfi.client.post(f"/odfi/events/{event['event_id']}/redeliver")
    assert (r.status_code, r.json()["deliveries"]) == (200, 2)
    first, second = receiver.deliveries
    assert first.body == second.body and first.payload["event_id"] == event["event_id"]
    r = await odfi.client.post(f"/odfi/events/{uuid.uuid4()}/redeliver")
    assert (r.status_code, r.json()["error_code"]) == (404, "EVENT_NOT_FOUND")


async def test_without_webhook_url_events_are_logged_undelivered(make_odfi, receiver):
    odfi = await make_odfi(webhook_url=None)
    await odfi.upload(nacha(["10.00", "10.03"]))
    await odfi.idle()
    events = await odfi.events()
    assert [(e["type"], e["attempts"], e["delivered"]) for e in events] == [
        ("entry.settled", 0, False),
        ("entry.returned", 0, False),
    ]
    assert receiver.deliveries == []
    r = await odfi.client.post(f"/odfi/events/{events[0]['event_id']}/redeliver")
    assert (r.status_code, r.json()["error_code"]) == (409, "NO_WEBHOOK_URL")


async def test_duplicate_deliveries_mode(make_odfi, receiver):
    odfi = await make_odfi(duplicate_deliveries=True)
    await odfi.upload(nacha(["10.00", "10.04"]))
    await odfi.idle()
    payloads = receiver.accepted()
    assert len(payloads) == 4
    assert [d.body for d in receiver.deliveries[::2]] == [d.body for d in receiver.deliveries[1::2]]
    assert all(e["deliveries"] == 2 for e in await odfi.events())


async def test_out_of_order_mode_reverses_each_files_events(odfi, receiver):
    await odfi.client.put("/odfi/_control", json={"out_of_order": True})
    await odfi.upload(nacha(["10.00", "10.02", "10.10"]))
    await odfi.idle()
    logged = [e["event_id"] for e in await odfi.events()]  # the order they happened in
    received = [p["event_id"] for p in receiver.accepted()]
    assert len(logged) == 4 and received == logged[::-1]
    # The late return reaches the receiver before the settlement it reverses.
    assert outcomes(receiver.accepted())[trace(3)] == [("entry.returned", "R10"), ("entry.settled", None)]


# --- control and shutdown ----------------------------------------------------------------------------


async def test_control_changes_only_the_given_fields(odfi):
    before = (await odfi.client.get("/odfi/_control")).json()
    assert set(before) == {
        "odfi_api_key",
        "webhook_url",
        "webhook_secret",
        "settlement_delay_ms",
        "return_delay_ms",
        "settled_return_delay_ms",
        "late_return_delay_ms",
        "duplicate_deliveries",
        "out_of_order",
        "delivery_max_attempts",
        "reject_next_files",
        "reject_status",
        "prenote_return_code",
    }
    r = await odfi.client.put("/odfi/_control", json={"duplicate_deliveries": True, "webhook_url": None})
    assert r.json() == {**before, "duplicate_deliveries": True, "webhook_url": None}
    assert (await odfi.client.get("/odfi/_control")).json() == r.json()

    for bad in ({"settlement_delay_ms": -1}, {"delivery_max_attempts": 0}, {"return_delay_ms": None}, {"nope": 1}):
        assert (await odfi.client.put("/odfi/_control", json=bad)).status_code == 422, bad
    assert (await odfi.client.get("/odfi/_control")).json() == r.json()


async def test_api_key_and_secret_changed_at_runtime(odfi, receiver):
    await odfi.client.put("/odfi/_control", json={"odfi_api_key": "k2", "webhook_secret": "s2"})
    assert (await odfi.upload(nacha(["1.00"]), api_key=API_KEY)).status_code == 401
    assert (await odfi.upload(nacha(["1.00"]), api_key="k2")).status_code == 201
    await odfi.idle()
    [delivery] = receiver.deliveries
    assert_signed(delivery, secret="s2")


async def test_shutdown_cancels_pending_deliveries(receiver, webhook_url):
    app = create_app(SandboxSettings(webhook_url=webhook_url, settlement_delay_ms=10_000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client,
    ):
        r = await client.post(
            "/odfi/files",
            content=nacha(["1.00"]),
            headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k"},
        )
        assert r.status_code == 201
        assert len(app.state.odfi.tasks) == 1
    assert not app.state.odfi.tasks and app.state.odfi.http.is_closed
    assert receiver.deliveries == []


async def test_notifications_of_change_follow_settlement_with_their_addenda(odfi, receiver):
    from finance.ach_corrections import read_correction
    from finance.nacha import parse_change_addenda

    r = await odfi.upload(nacha(["10.41", "10.42", "10.45", "10.46"]))
    assert r.status_code == 201, r.text
    await odfi.idle()
    payloads = receiver.accepted()
    assert outcomes(payloads) == {trace(i): [("entry.settled", None), ("entry.corrected", None)] for i in range(1, 5)}
    corrected = {p["trace_number"]: p for p in payloads if p["type"] == "entry.corrected"}
    expected = {
        1: ("C01", {"account_number": "987650007"}),
        2: ("C02", {"routing_number": "011000015"}),
        3: ("C05", {"account_type": "savings"}),
        4: ("C06", {"account_number": "987650037", "account_type": "savings"}),
    }
    for i, (code, fields) in expected.items():
        p = corrected[trace(i)]
        addenda = parse_change_addenda(p["addenda_record"])
        assert (p["change_code"], addenda.change_code, addenda.original_trace) == (code, code, trace(i))
        assert addenda.corrected_data == p["corrected_data"]
        correction = read_correction(code, addenda.corrected_data)
        assert {k: getattr(correction, k) for k in fields} == fields


async def test_prenotes_have_no_settlement_and_are_returned_on_demand(odfi, receiver):
    def prenote_file(first_trace: int) -> str:
        return write(
            build_file(
                odfi_routing=ODFI_ROUTING,
                odfi_name="Sandbox Bank",
                company_id="1410012345",
                company_name="Backoffice",
                creation_date=date(2025, 3, 3),
                creation_time=None,
                first_trace_sequence=first_trace,
                batches=[
                    BatchSpec(
                        sec_code=SecCode.PPD,
                        entry_description="PRENOTE",
                        effective_entry_date=date(2025, 3, 4),
                        entries=[
                            EntrySpec(
                                transaction_code=TransactionCode.CHECKING_PRENOTE_DEBIT,
                                rdfi_routing=RDFI_ROUTING,
                                account_number="12345",
                                amount=Decimal("0.00"),
                                individual_name="Member",
                            )
                        ],
                    )
                ],
            )
        )

    assert (await odfi.upload(prenote_file(1))).status_code == 201
    await odfi.idle()
    assert receiver.accepted() == []
    await odfi.client.put("/odfi/_control", json={"prenote_return_code": "R03"})
    assert (await odfi.upload(prenote_file(2))).status_code == 201
    await odfi.idle()
    assert outcomes(receiver.accepted()) == {trace(2): [("entry.returned", "R03")]}
