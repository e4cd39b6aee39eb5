"""ACH payments end to end: the API, the payment and batch workflows, real NACHA files uploaded to the sandbox
ODFI over HTTP, and its signed webhooks coming back. Windows, return windows and bank delays are seconds."""

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from finance import nacha
from tests.conftest import ApiServer, assert_error, bank_operations, make_org, open_account
from tests.polling import poll
from worker import build_worker

FINAL = {"completed", "canceled", "failed", "returned", "reversed"}


async def link_external(
    http, sandbox_url, org, institution="ins_1", subtype="checking", owner_id: str | None = None
) -> dict:
    """Links the sandbox institution's accounts as the org admin: the organization's own, or `owner_id`'s (a
    member's, which their loans may name)."""
    admin = org.headers["org_admin"]
    link_token = (await http.post("/api/v1/external-accounts/link-token", headers=admin, json={})).json()["link_token"]
    async with httpx.AsyncClient(base_url=sandbox_url) as sandbox:
        public = (
            await sandbox.post(
                "/linking/sandbox/public_token/create",
                json={
                    "client_id": "backoffice",
                    "secret": "sandbox-secret",
                    "institution_id": institution,
                    "link_token": link_token,
                },
            )
        ).json()["public_token"]
    linked = await http.post(
        "/api/v1/external-accounts/link", headers=admin, json={"public_token": public, "owner_id": owner_id}
    )
    assert linked.status_code == 201, linked.text
    return next(a for a in linked.json() if a["account_type"] == subtype)


async def pay(http, org, kind: str, amount: str, key: str | None = None, **extra) -> dict:
    response = await http.post(
        "/api/v1/payments",
        headers={**org.headers["org_admin"], "Idempotency-Key": key or uuid.uuid4().hex},
        json={
            "kind": kind,
            "amount": amount,
            "account_id": org.account["id"],
            "external_account_id": org.external["id"],
            **extra,
        },
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def wait_status(http, headers, payment_id: str, statuses=FINAL, timeout: float = 60) -> dict:
    async def fetch() -> dict:
        # A parent (a loan's auto-debit) names its child payment's id before the child has written the row: until
        # then the payment is a 404, not yet a status.
        return (await http.get(f"/api/v1/payments/{payment_id}", headers=headers)).json()

    return await poll(
        fetch,
        lambda p: p.get("status") in statuses,
        timeout,
        interval=0.25,
        what=lambda p: f"payment {payment_id} stuck in {p.get('status')}: {p.get('events', p)}",
    )


async def balances(http, su, account_id) -> tuple[str, str, str]:
    a = (await http.get(f"/api/v1/accounts/{account_id}", headers=su)).json()
    return a["ledger_balance"], a["held"], a["available_balance"]


async def odfi_entries(odfi, trace: str) -> list:
    return (await odfi.get("/odfi/entries", params={"trace_number": trace})).json()["entries"]


async def test_ach_debit_goes_through_the_whole_lifecycle(http, su, ach_org, odfi, temporal_env, db):
    created = await pay(http, ach_org, "ach_debit", "125.00")
    assert created["kind"] == "ach_debit" and created["workflow_id"] == f"payment-{created['id']}"
    done = await wait_status(http, ach_org.headers["org_admin"], created["id"])
    assert done["status"] == "completed", done
    assert [e["status"] for e in done["events"]] == [
        "created",
        "validated",
        "queued",
        "submitted",
        "pending_settlement",
        "settled",
        "completed",
    ]
    assert done["trace_number"].startswith("09100001") and done["presentments"] == 1 and done["settlement_date"]
    assert await balances(http, su, ach_org.account["id"]) == ("10125.00", "0.00", "10125.00")
    received = await odfi_entries(odfi, done["trace_number"])
    assert len(received) == 1 and received[0]["amount"] == "125.00" and received[0]["transaction_code"] == 27

    # The file is stored, downloadable by bank operations (never by one organization's staff), and parses back to
    # the same entry.
    files = (await http.get("/api/v1/ach/files", headers=su)).json()["items"]
    async with db.session() as session:
        file_id = (
            await session.execute(
                text("SELECT file_id FROM ach_entries WHERE trace_number = :t"), {"t": done["trace_number"]}
            )
        ).scalar_one()
    assert str(file_id) in {f["id"] for f in files}
    download = await http.get(f"/api/v1/ach/files/{file_id}", headers=await bank_operations(http, su))
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    parsed = nacha.parse(download.text)
    entry = next(e for _, e in parsed.iter_entries() if e.trace_number == done["trace_number"])
    assert entry.amount == Decimal("125.00") and entry.rdfi_routing == ach_org.external["routing_number"]
    for role in ("org_admin", "operator"):
        assert_error(await http.get(f"/api/v1/ach/files/{file_id}", headers=ach_org.headers[role]), 403)

    query = f"WorkflowId = '{done['workflow_id']}' AND PaymentKind = 'ach_debit' AND PaymentStatus = 'completed'"
    for _ in range(50):
        if [w async for w in temporal_env.client.list_workflows(query)]:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("not found by its search attributes")
    description = await temporal_env.client.get_workflow_handle(done["workflow_id"]).describe()
    assert (await description.static_summary()) == "ACH debit $125.00 from First Platypus Bank …" + ach_org.external[
        "account_number_masked"
    ][-4:]


async def test_ach_credit_holds_then_sends_the_money(http, su, ach_org, odfi):
    created = await pay(http, ach_org, "ach_credit", "300.00")
    held = await wait_status(
        http,
        ach_org.headers["org_admin"],
        created["id"],
        statuses={"funds_held", "queued", "submitted", "pending_settlement", *FINAL},
        timeout=20,
    )
    assert held["status"] != "failed"
    done = await wait_status(http, ach_org.headers["org_admin"], created["id"])
    assert done["status"] == "completed"
    assert await balances(http, su, ach_org.account["id"]) == ("9700.00", "0.00", "9700.00")
    assert (await odfi_entries(odfi, done["trace_number"]))[0]["transaction_code"] == 22


# cents -> (final status, presentments, what happens to the external account)
SCENARIOS = {
    "01": ("returned", 3, None),  # R01 every time: re-presented twice, then returned
    "11": ("completed", 2, None),  # R01, then settles when re-presented
    "09": ("returned", 3, None),  # R09 like R01
    "02": ("returned", 1, "disabled"),
    "03": ("returned", 1, "disabled"),
    "04": ("returned", 1, "disabled"),
    "05": ("returned", 1, "debits_blocked"),
    "07": ("returned", 1, "debits_blocked"),
    "29": ("returned", 1, "debits_blocked"),
    "10": ("reversed", 1, "debits_blocked"),  # settles, completes, then a late R10 reverses it
    "20": ("failed", 1, None),  # other codes fail the payment with the reason
}


@pytest.mark.parametrize("cents", sorted(SCENARIOS))
async def test_every_sandbox_return_scenario(http, su, ach_org, odfi, mailbox, cents, db):
    expected_status, presentments, account_effect = SCENARIOS[cents]
    created = await pay(http, ach_org, "ach_debit", f"40.{cents}")
    terminal = {"completed"} if expected_status == "reversed" else FINAL
    done = await wait_status(http, ach_org.headers["org_admin"], created["id"], statuses=terminal)
    if expected_status == "reversed":
        done = await wait_status(http, ach_org.headers["org_admin"], created["id"], statuses={"reversed"})
    assert (done["status"], done["presentments"]) == (expected_status, presentments), done["events"]
    if expected_status != "completed":
        assert done["return_code"] == "R" + cents
        # The money came back exactly once: the member account is where it started.
        assert await balances(http, su, ach_org.account["id"]) == ("10000.00", "0.00", "10000.00")
        email = await mailbox.wait_for(lambda m: created["id"] in m.get_body(("plain",)).get_content(), timeout=15)
        assert email["To"] == ach_org.users["org_admin"]["email"]
        notes = (await http.get("/api/v1/notifications", headers=ach_org.headers["org_admin"])).json()
        assert any(n["entity_id"] == created["id"] for n in notes["items"])
    else:
        assert await balances(http, su, ach_org.account["id"]) == ("10040.11", "0.00", "10040.11")
    external = (await http.get(f"/api/v1/external-accounts/{ach_org.external['id']}", headers=su)).json()
    assert external["status"] == ("disabled" if account_effect == "disabled" else "verified")
    assert external["debits_blocked"] == (account_effect == "debits_blocked")
    async with db.session() as session:
        traces = (
            (
                await session.execute(
                    text("SELECT trace_number FROM ach_entries WHERE payment_id = :p"), {"p": uuid.UUID(created["id"])}
                )
            )
            .scalars()
            .all()
        )
        returns = (
            await session.execute(
                text("SELECT count(*) FROM journal_entries WHERE payment_id = :p AND entry_type = 'ach_return'"),
                {"p": uuid.UUID(created["id"])},
            )
        ).scalar_one()
    assert len(traces) == presentments
    # One reversal per presentment that came back: all of them, but the last when it settled, one when reversed.
    assert returns == {"completed": presentments - 1, "reversed": 1}.get(expected_status, presentments)
    for trace in traces:
        assert len(await odfi_entries(odfi, trace)) == 1


async def test_blocked_and_disabled_accounts_refuse_new_debits(http, su, ach_org):
    done = await wait_status(http, ach_org.headers["org_admin"], (await pay(http, ach_org, "ach_debit", "5.29"))["id"])
    assert done["status"] == "returned"
    response = await http.post(
        "/api/v1/payments",
        headers={**ach_org.headers["org_admin"], "Idempotency-Key": "b1"},
        json={
            "kind": "ach_debit",
            "amount": "5.00",
            "account_id": ach_org.account["id"],
            "external_account_id": ach_org.external["id"],
        },
    )
    assert_error(response, 422, "debits_blocked")
    credit = await pay(http, ach_org, "ach_credit", "5.00")  # credits to it are still fine
    assert credit["status"] != "failed"


async def test_idempotent_create_and_validation(http, su, ach_org, odfi, db):
    key = uuid.uuid4().hex
    first = await pay(http, ach_org, "ach_debit", "61.00", key=key)
    again = await http.post(
        "/api/v1/payments",
        headers={**ach_org.headers["org_admin"], "Idempotency-Key": key},
        json={
            "kind": "ach_debit",
            "amount": "61.00",
            "account_id": ach_org.account["id"],
            "external_account_id": ach_org.external["id"],
        },
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert_error(
        await http.post(
            "/api/v1/payments",
            headers={**ach_org.headers["org_admin"], "Idempotency-Key": key},
            json={
                "kind": "ach_debit",
                "amount": "62.00",
                "account_id": ach_org.account["id"],
                "external_account_id": ach_org.external["id"],
            },
        ),
        409,
        "idempotency_key_reused",
    )
    done = await wait_status(http, ach_org.headers["org_admin"], first["id"])
    assert done["status"] == "completed" and len(await odfi_entries(odfi, done["trace_number"])) == 1

    headers = {**ach_org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex}
    body = {
        "kind": "ach_credit",
        "amount": "999999.00",
        "account_id": ach_org.account["id"],
        "external_account_id": ach_org.external["id"],
    }
    assert_error(await http.post("/api/v1/payments", headers=headers, json=body), 422, "limit_exceeded")
    assert_error(
        await http.post("/api/v1/payments", headers=headers, json={**body, "amount": "20000.00"}),
        422,
        "insufficient_funds",
    )
    assert_error(
        await http.post("/api/v1/payments", headers=headers, json={**body, "external_account_id": None}),
        422,
        "external_account_required",
    )
    assert_error(
        await http.post(
            "/api/v1/payments",
            headers={**ach_org.headers["member"], "Idempotency-Key": "m"},
            json={**body, "amount": "1.00"},
        ),
        403,
    )
    async with db.session() as session:
        count = (
            await session.execute(
                text("SELECT count(*) FROM payments WHERE idempotency_key = :k"), {"k": headers["Idempotency-Key"]}
            )
        ).scalar_one()
    assert count == 0


async def test_the_same_key_at_once_is_one_payment(http, ach_org, odfi, db):
    """Requests racing with one key: one inserts, the others wait on its row (ON CONFLICT) and, in the same
    transaction, read it committed; a body that differs is a 409 whichever request came first."""
    key = uuid.uuid4().hex
    headers = {**ach_org.headers["org_admin"], "Idempotency-Key": key}
    body = {
        "kind": "ach_debit",
        "amount": "63.00",
        "account_id": ach_org.account["id"],
        "external_account_id": ach_org.external["id"],
    }
    answers = await asyncio.gather(
        *(http.post("/api/v1/payments", headers=headers, json=body) for _ in range(6)),
        *(http.post("/api/v1/payments", headers=headers, json={**body, "amount": "64.00"}) for _ in range(2)),
    )
    same, other = answers[:6], answers[6:]
    assert sorted(a.status_code for a in same + other if a.status_code != 409) in (
        [200] * 5 + [201],  # a request with the 63.00 body inserted
        [200, 201],  # one with 64.00 did: then every 63.00 request is the 409
    ), [a.text for a in answers]
    payments = {a.json()["id"] for a in answers if a.status_code != 409}
    assert len(payments) == 1
    payment_id = payments.pop()
    async with db.session() as session:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM payments WHERE idempotency_key = :k), "
                    "(SELECT count(*) FROM payment_events WHERE payment_id = :id AND status = 'created'), "
                    "(SELECT count(*) FROM audit_log WHERE entity_id = :entity AND action = 'payment.created')"
                ),
                {"k": key, "id": uuid.UUID(payment_id), "entity": payment_id},
            )
        ).one()
    assert tuple(counts) == (1, 1, 1)
    done = await wait_status(http, ach_org.headers["org_admin"], payment_id)
    assert done["status"] == "completed" and len(await odfi_entries(odfi, done["trace_number"])) == 1


async def test_list_filters(http, ach_org):
    ids = [(await pay(http, ach_org, "ach_debit", amount))["id"] for amount in ("7.00", "8.00")]
    for payment_id in ids:
        await wait_status(http, ach_org.headers["org_admin"], payment_id)
    page = (
        await http.get(
            "/api/v1/payments",
            headers=ach_org.headers["org_admin"],
            params={
                "kind": "ach_debit",
                "status": "completed",
                "min_amount": "7.50",
                "account_id": ach_org.external["id"],
            },
        )
    ).json()
    assert [p["id"] for p in page["items"]] == [ids[1]]


async def test_cancel_after_submission_is_409(http, ach_org):
    created = await pay(http, ach_org, "ach_debit", "12.00")
    submitted = await wait_status(
        http,
        ach_org.headers["org_admin"],
        created["id"],
        statuses={"submitted", "pending_settlement", "settled", "completed"},
    )
    error = assert_error(
        await http.post(f"/api/v1/payments/{created['id']}/cancel", headers=ach_org.headers["org_admin"]),
        409,
        "not_cancelable",
    )
    assert error["details"]["status"] in {"submitted", "pending_settlement", "settled", "completed"}
    assert (await wait_status(http, ach_org.headers["org_admin"], submitted["id"]))["status"] == "completed"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Bank-Timestamp": str(timestamp), "X-Bank-Signature": f"v1={digest}", "Content-Type": "application/json"}


async def test_forged_stale_duplicate_and_out_of_order_webhooks(http, ach_org, odfi, settings, db, su):
    done = await wait_status(http, ach_org.headers["org_admin"], (await pay(http, ach_org, "ach_debit", "33.00"))["id"])
    assert done["status"] == "completed"
    secret = settings.bank_webhook_secret.get_secret_value()
    late_return = json.dumps(
        {
            "event_id": f"evt-{uuid.uuid4()}",
            "type": "entry.returned",
            "trace_number": done["trace_number"],
            "return_code": "R10",
            "return_reason": "Customer advises not authorized",
        }
    ).encode()
    async with db.session() as session:
        before = (await session.execute(text("SELECT count(*) FROM bank_events"))).scalar_one()

    forged = sign("not-the-secret", late_return)
    assert_error(await http.post("/api/v1/webhooks/bank", content=late_return, headers=forged), 401)
    stale = sign(secret, late_return, timestamp=int(time.time()) - 3600)
    assert_error(await http.post("/api/v1/webhooks/bank", content=late_return, headers=stale), 401)
    tampered = sign(secret, late_return)
    assert_error(
        await http.post("/api/v1/webhooks/bank", content=late_return.replace(b"R10", b"R01"), headers=tampered), 401
    )
    async with db.session() as session:
        assert (await session.execute(text("SELECT count(*) FROM bank_events"))).scalar_one() == before

    # A settlement notice delivered again after completion (out of order, duplicate): no second effect.
    events = (await odfi.get("/odfi/events", params={"trace_number": done["trace_number"]})).json()["events"]
    settled = next(e for e in events if e["trace_number"] == done["trace_number"] and e["type"] == "entry.settled")
    assert (await odfi.post(f"/odfi/events/{settled['event_id']}/redeliver")).status_code in (200, 202)
    await asyncio.sleep(1)
    assert await balances(http, su, ach_org.account["id"]) == ("10033.00", "0.00", "10033.00")

    # The genuine late return, delivered twice: reversed once.
    for _ in range(2):
        response = await http.post("/api/v1/webhooks/bank", content=late_return, headers=sign(secret, late_return))
        assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    reversed_ = await wait_status(http, ach_org.headers["org_admin"], done["id"], statuses={"reversed"}, timeout=20)
    assert reversed_["return_code"] == "R10"
    assert await balances(http, su, ach_org.account["id"]) == ("10000.00", "0.00", "10000.00")


async def test_duplicate_deliveries_mode_has_one_effect(http, su, ach_org, odfi):
    await odfi.put("/odfi/_control", json={"duplicate_deliveries": True, "out_of_order": True})
    try:
        ids = [(await pay(http, ach_org, "ach_debit", amount))["id"] for amount in ("21.00", "22.00", "23.02")]
        results = [await wait_status(http, ach_org.headers["org_admin"], p) for p in ids]
    finally:
        await odfi.put("/odfi/_control", json={"duplicate_deliveries": False, "out_of_order": False})
    assert [r["status"] for r in results] == ["completed", "completed", "returned"]
    assert await balances(http, su, ach_org.account["id"]) == ("10043.00", "0.00", "10043.00")


async def test_creating_a_payment_answers_while_no_worker_polls_its_task_queue(
    http, su, settings, db, sandbox_url, odfi, temporal_env
):
    """Creating a payment answers from the database once the workflow start is durable: it never asks the worker
    (a status query waits for a worker to answer it: with the worker busy or restarting a create took 30 s)."""
    # An API on a task queue no worker polls yet: its workflows start, and wait for a worker. A query to one of them
    # would wait far longer than this client's timeout (Temporal gives up on it after about 30 s).
    idle = settings.model_copy(
        update={"task_queue": f"idle-{uuid.uuid4().hex[:8]}", "book_transfer_wait": timedelta(seconds=1)}
    )
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="500.00")
    savings = await open_account(http, su, org.id, org.users["member"]["id"], type_="savings")
    external = await link_external(http, sandbox_url, org)
    admin = org.headers["org_admin"]
    async with ApiServer(idle) as server, httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        key = uuid.uuid4().hex
        body = {
            "kind": "ach_debit",
            "amount": "45.00",
            "account_id": account["id"],
            "external_account_id": external["id"],
        }
        debit = await api.post("/api/v1/payments", headers={**admin, "Idempotency-Key": key}, json=body)
        assert debit.status_code == 201, debit.text
        assert (debit.json()["status"], debit.json()["workflow_status"]) == ("created", None)
        again = await api.post("/api/v1/payments", headers={**admin, "Idempotency-Key": key}, json=body)
        assert (again.status_code, again.json()["id"]) == (200, debit.json()["id"])
        # A book transfer still waits a moment for its result (book_transfer_wait), then answers 202 from the row.
        book = await api.post(
            "/api/v1/payments",
            headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
            json={"kind": "book", "amount": "20.00", "account_id": account["id"], "to_account_id": savings["id"]},
        )
        assert book.status_code == 202, book.text
        assert (book.json()["status"], book.json()["workflow_status"]) == ("created", None)
        # Reading one asks the Temporal server what the workflow published, not the absent worker.
        fetched = await api.get(f"/api/v1/payments/{debit.json()['id']}", headers=admin)
        assert fetched.status_code == 200, fetched.text
        assert (fetched.json()["status"], fetched.json()["workflow_status"]) == ("created", "created")

        # A worker comes: both go ahead.
        async with build_worker(temporal_env.client, idle, db):
            done = await wait_status(api, admin, debit.json()["id"], timeout=60)
            moved = await wait_status(api, admin, book.json()["id"], timeout=60)
    assert done["status"] == "completed", done["events"]
    assert moved["status"] == "completed", moved["events"]
