"""Card payments in through the gateway (domain/gateway.py, workflows/gateway_payment.py) against the sandbox's
gateway over real HTTP: the checkout paid and its webhook posting once; the webhook lost (verify reconciles), delivered
twice and racing the verify, or replayed after the end (one posting); a forged signature (401, nothing written);
another member's loan or bill (404); a declined card (failed, nothing posted); an amount the gateway disagrees on
(flagged, nothing posted)."""

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import assert_error, make_org, make_user, open_account
from tests.integration.test_loans import apply, decide, level, rule, wait_loan, waiting_on
from tests.polling import poll

CLOSED = ("succeeded", "failed", "abandoned", "flagged")


def keyed(headers: dict) -> dict:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


@pytest.fixture
async def gateway(sandbox_url, api_server):
    """The sandbox gateway, sending its webhooks to our API; its faults reset after each test."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        normal = {"drop_webhooks": 0, "duplicate_webhooks": False, "webhook_delay_ms": 0, "charge_amount_delta": 0}
        await client.put(
            "/gateway/_control", json={"webhook_url": f"{api_server.url}/api/v1/webhooks/gateway", **normal}
        )
        yield client
        await client.put("/gateway/_control", json=normal)


@pytest.fixture(scope="module")
async def borrower(http, su, sandbox_url, product):
    """An organization whose member has an active loan, paid out to their deposit account."""
    org = await make_org(http, su, roles=("org_admin", "operator", "member", "loan_officer"))
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, org, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    assert (await decide(http, org.headers["loan_officer"], request_id)).status_code == 200
    org.loan = await wait_loan(http, su, loan["id"], ("active", "declined", "failed", "rejected"), timeout=60)
    assert org.loan["status"] == "active", org.loan
    return org


async def new_bill(http, org, amount="42.00") -> dict:
    response = await http.post(
        "/api/v1/bills",
        headers=org.headers["member"],
        json={
            "payer_id": org.users["member"]["id"],
            "payee_name": "City Power",
            "amount": amount,
            "due_date": str(datetime.now(UTC).date() + timedelta(days=20)),
            "account_id": org.account["id"],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def pay_by_card(http, headers, **body) -> dict:
    response = await http.post("/api/v1/gateway-payments", headers=keyed(headers), json=body)
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "pending" and payment["authorization_url"], payment
    return payment


async def checkout(payment: dict, outcome: str = "success") -> None:
    """The member at the gateway's hosted page: it shows the amount, and the form posts the card's outcome."""
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(payment["authorization_url"])
        assert page.status_code == 200 and payment["reference"] in page.text
        paid = await browser.post(payment["authorization_url"], data={"outcome": outcome})
        assert paid.status_code == 200 and paid.json()["status"] == outcome, paid.text


async def closed(http, headers, payment_id: str, timeout: float = 40, statuses=CLOSED) -> dict:
    async def fetch() -> dict:
        return (await http.get(f"/api/v1/gateway-payments/{payment_id}", headers=headers)).json()

    def done(payment: dict) -> bool:  # a loan's is closed once its repayment is applied (or refused) too
        applied = payment["purpose"] != "loan_repayment" or payment["repayment_entry_id"] or payment["failure"]
        return payment["status"] in statuses and (payment["status"] != "succeeded" or bool(applied))

    return await poll(fetch, done, timeout, what=lambda p: f"gateway payment still {p['status']}: {p}")


async def postings_of(db, payment_id: str) -> dict:
    """How often the payment was posted and applied, and the clearing account's side of it."""
    async with db.session() as session:
        row = (
            await session.execute(
                text(
                    """SELECT (SELECT count(*) FROM journal_entries WHERE idempotency_key = :key) AS posted,
                              (SELECT count(*) FROM journal_entries WHERE idempotency_key LIKE :repayment) AS applied,
                              (SELECT coalesce(sum(p.amount), 0) FROM postings p
                                 JOIN journal_entries e ON e.id = p.entry_id
                                 JOIN ledger_accounts a ON a.id = p.account_id
                                WHERE e.idempotency_key = :key AND a.code = 'GL-GATEWAY-CLEARING') AS clearing,
                              (SELECT count(*) FROM gateway_events WHERE payment_id = :id) AS events"""
                ),
                {
                    "key": f"gateway:{payment_id}",
                    "repayment": f"loan:%:repayment:%:gateway:{payment_id}",
                    "id": payment_id,
                },
            )
        ).one()
    return dict(row._mapping)


async def loan_principal(http, su, loan_id: str) -> Decimal:
    quote = (await http.get(f"/api/v1/loans/{loan_id}/payoff-quote", headers=su)).json()
    return Decimal(quote["outstanding_principal"])


def signed(settings, event: dict) -> tuple[bytes, dict]:
    body = json.dumps(event, separators=(",", ":")).encode()
    digest = hmac.new(settings.gateway_secret_key.get_secret_value().encode(), body, hashlib.sha512).hexdigest()
    return body, {"Content-Type": "application/json", "X-Gateway-Signature": digest}


async def test_a_loan_repaid_by_card_posts_once_when_the_webhook_arrives(http, su, db, borrower, gateway):
    member = borrower.headers["member"]
    deposit_before = await balance(http, su, borrower.account)
    principal_before = await loan_principal(http, su, borrower.loan["id"])
    payment = await pay_by_card(http, member, purpose="loan_repayment", loan_id=borrower.loan["id"], amount="100.00")
    assert payment["reference"].startswith("gw_") and payment["amount"] == "100.00"
    await checkout(payment)
    done = await closed(http, member, payment["id"])
    assert done["status"] == "succeeded" and done["failure"] is None, done
    assert done["gateway_amount"] == "100.00" and done["gateway_currency"] == "USD"
    assert await postings_of(db, payment["id"]) == {
        "posted": 1,
        "applied": 1,
        "clearing": Decimal("100.00"),
        "events": 1,
    }
    # In on the deposit account from the gateway, out again to the loan: the loan owes less, the deposit is as it was.
    assert await balance(http, su, borrower.account) == deposit_before
    assert await loan_principal(http, su, borrower.loan["id"]) < principal_before
    # The gateway's record agrees, and staff of the organization read the payment; the same key answers it again.
    verify = await gateway.get(
        f"/gateway/transaction/verify/{payment['reference']}",
        headers={"Authorization": "Bearer sk_test_sandbox_gateway"},
    )
    assert verify.json()["data"]["status"] == "success" and verify.json()["data"]["amount"] == 10000
    staff = await http.get(f"/api/v1/gateway-payments/{payment['id']}", headers=borrower.headers["operator"])
    assert staff.status_code == 200 and staff.json()["status"] == "succeeded"


async def test_a_bill_paid_by_card_is_marked_paid_and_held_while_its_checkout_is_open(http, su, db, borrower, gateway):
    member = borrower.headers["member"]
    bill = await new_bill(http, borrower)
    before = await balance(http, su, borrower.account)
    payment = await pay_by_card(http, member, purpose="bill", bill_id=bill["id"])
    assert payment["amount"] == "42.00"
    held = (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()
    assert held["status"] == "processing"
    second = await http.post(
        "/api/v1/gateway-payments", headers=keyed(member), json={"purpose": "bill", "bill_id": bill["id"]}
    )
    assert_error(second, 409, "bill_not_payable")
    await checkout(payment)
    assert (await closed(http, member, payment["id"]))["status"] == "succeeded"
    paid = (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()
    assert paid["status"] == "paid" and paid["paid_at"]
    assert await balance(http, su, borrower.account) == before + Decimal("42.00")
    assert (await postings_of(db, payment["id"]))["posted"] == 1


async def test_a_lost_webhook_is_reconciled_by_verify_and_posted_once(http, su, db, borrower, gateway):
    member = borrower.headers["member"]
    await gateway.put("/gateway/_control", json={"drop_webhooks": 1})
    bill = await new_bill(http, borrower, amount="17.50")
    payment = await pay_by_card(http, member, purpose="bill", bill_id=bill["id"])
    await checkout(payment)
    done = await closed(http, member, payment["id"])
    assert done["status"] == "succeeded" and done["confirmed_by"] == "verify", done
    lost = (await gateway.get("/gateway/_control/webhooks", params={"reference": payment["reference"]})).json()
    assert [event.get("dropped") for event in lost["items"]] == [True]  # the gateway never sent it
    assert await postings_of(db, payment["id"]) == {
        "posted": 1,
        "applied": 0,
        "clearing": Decimal("17.50"),
        "events": 0,
    }
    assert (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()["status"] == "paid"


async def test_a_webhook_delivered_twice_racing_the_verify_and_replayed_late_posts_once(
    http, su, db, settings, borrower, gateway
):
    member = borrower.headers["member"]
    # Each event sent twice, held back until about the time the workflow gives up waiting and verifies.
    delay_ms = int(settings.gateway_verify_after.total_seconds() * 1000)
    await gateway.put("/gateway/_control", json={"duplicate_webhooks": True, "webhook_delay_ms": delay_ms})
    deposit_before = await balance(http, su, borrower.account)
    payment = await pay_by_card(http, member, purpose="loan_repayment", loan_id=borrower.loan["id"], amount="25.00")
    await checkout(payment)
    assert (await closed(http, member, payment["id"]))["status"] == "succeeded"

    async def deliveries() -> list:
        events = (await gateway.get("/gateway/_control/webhooks", params={"reference": payment["reference"]})).json()
        return [a["status"] for e in events["items"] for a in e["attempts"]]

    assert await poll(deliveries, lambda statuses: statuses == [200, 200], 20, "the webhook was not sent twice")
    # The same event once more, byte for byte, then a new event of the same charge after the workflow has ended
    # (signal-with-start runs it again): answered, and nothing more is posted.
    sent = (await gateway.get("/gateway/_control/webhooks", params={"reference": payment["reference"]})).json()
    body = sent["items"][0]["body"].encode()
    again = await http.post("/api/v1/webhooks/gateway", content=body, headers=signed(settings, json.loads(body))[1])
    assert again.status_code == 200 and again.json()["status"] == "duplicate", again.text
    late = {**json.loads(body), "id": f"evt_late_{uuid.uuid4().hex}"}
    late_body, late_headers = signed(settings, late)
    answer = await http.post("/api/v1/webhooks/gateway", content=late_body, headers=late_headers)
    assert answer.status_code == 200 and answer.json() == {"status": "accepted", "delivery": "delivered"}

    async def after_late() -> dict:
        return await postings_of(db, payment["id"])

    state = await poll(after_late, lambda s: s["events"] == 2, 10, "the late event was not recorded")
    assert state == {"posted": 1, "applied": 1, "clearing": Decimal("25.00"), "events": 2}
    assert await balance(http, su, borrower.account) == deposit_before
    done = (await http.get(f"/api/v1/gateway-payments/{payment['id']}", headers=member)).json()
    assert done["status"] == "succeeded" and done["failure"] is None


async def test_a_bad_signature_is_401_and_writes_nothing(http, db, settings, borrower, gateway):
    member = borrower.headers["member"]
    payment = await pay_by_card(http, member, purpose="loan_repayment", loan_id=borrower.loan["id"], amount="5.00")
    event = {
        "id": f"evt_forged_{uuid.uuid4().hex}",
        "event": "charge.success",
        "data": {"reference": payment["reference"], "amount": 500, "currency": "USD", "status": "success"},
    }
    body, headers = signed(settings, event)
    real = headers["X-Gateway-Signature"]
    for forged in (
        {**headers, "X-Gateway-Signature": hmac.new(b"not-our-secret", body, hashlib.sha512).hexdigest()},
        {**headers, "X-Gateway-Signature": real[:-1] + ("1" if real.endswith("0") else "0")},  # one digit off
        {"Content-Type": "application/json"},
    ):
        assert_error(
            await http.post("/api/v1/webhooks/gateway", content=body, headers=forged), 401, "invalid_signature"
        )
    # Signed, but not the body that was signed.
    tampered = body.replace(b'"amount":500', b'"amount":5')
    assert_error(await http.post("/api/v1/webhooks/gateway", content=tampered, headers=headers), 401)
    async with db.session() as session:
        recorded = (
            await session.execute(text("SELECT count(*) FROM gateway_events WHERE event_id = :id"), {"id": event["id"]})
        ).scalar_one()
    assert recorded == 0
    current = (await http.get(f"/api/v1/gateway-payments/{payment['id']}", headers=member)).json()
    assert current["status"] == "pending" and current["journal_entry_id"] is None


async def test_a_member_cannot_pay_another_members_loan_or_bill(http, su, borrower, gateway):
    _, other_headers = await make_user(http, su, "member", borrower.id)
    bill = await new_bill(http, borrower)
    for body in (
        {"purpose": "loan_repayment", "loan_id": borrower.loan["id"], "amount": "10.00"},
        {"purpose": "bill", "bill_id": bill["id"]},
    ):
        assert_error(await http.post("/api/v1/gateway-payments", headers=keyed(other_headers), json=body), 404)
    assert (await http.get(f"/api/v1/bills/{bill['id']}", headers=su)).json()["status"] == "upcoming"
    # Nor read one; staff of another organization neither; and staff do not pay for the member.
    payment = await pay_by_card(http, borrower.headers["member"], purpose="bill", bill_id=bill["id"])
    assert_error(await http.get(f"/api/v1/gateway-payments/{payment['id']}", headers=other_headers), 404)
    stranger = await make_org(http, su, roles=("org_admin",))
    assert_error(
        await http.get(f"/api/v1/gateway-payments/{payment['id']}", headers=stranger.headers["org_admin"]), 404
    )
    listed = (await http.get("/api/v1/gateway-payments", headers=other_headers)).json()
    assert listed["total"] == 0
    staff_pays = await http.post(
        "/api/v1/gateway-payments",
        headers=keyed(borrower.headers["org_admin"]),
        json={"purpose": "loan_repayment", "loan_id": borrower.loan["id"], "amount": "10.00"},
    )
    assert_error(staff_pays, 403)


async def test_a_card_declined_at_checkout_fails_posts_nothing_and_tells_the_member(http, su, db, borrower, gateway):
    member = borrower.headers["member"]
    bill = await new_bill(http, borrower, amount="30.00")
    payment = await pay_by_card(http, member, purpose="bill", bill_id=bill["id"])
    await checkout(payment, outcome="failed")
    done = await closed(http, member, payment["id"])
    assert done["status"] == "failed" and done["journal_entry_id"] is None and done["confirmed_by"] == "webhook"
    assert await postings_of(db, payment["id"]) == {"posted": 0, "applied": 0, "clearing": Decimal(0), "events": 1}
    assert (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()["status"] == "upcoming"

    async def told() -> list:
        items = (await http.get("/api/v1/notifications", headers=member)).json()["items"]
        return [n for n in items if n["kind"] == "gateway_payment_failed" and n["entity_id"] == payment["id"]]

    assert len(await poll(told, bool, 20, "the member was not told")) == 1
    # The bill is due again: a new card payment of it may be made.
    await pay_by_card(http, member, purpose="bill", bill_id=bill["id"])


async def test_an_amount_the_gateway_disagrees_on_is_flagged_and_not_posted(http, su, db, borrower, gateway):
    member = borrower.headers["member"]
    await gateway.put("/gateway/_control", json={"charge_amount_delta": -100})  # a dollar less than asked
    payment = await pay_by_card(http, member, purpose="loan_repayment", loan_id=borrower.loan["id"], amount="12.00")
    await checkout(payment)
    done = await closed(http, member, payment["id"])
    assert done["status"] == "flagged" and done["gateway_amount"] == "11.00", done
    assert "1100" in done["failure"] and "1200" in done["failure"]
    assert (await postings_of(db, payment["id"]))["posted"] == 0


async def test_bad_requests_are_refused_before_anything_is_written(http, su, borrower, gateway):
    member = borrower.headers["member"]
    bill = await new_bill(http, borrower)
    for body, status in (
        ({"purpose": "loan_repayment", "loan_id": borrower.loan["id"]}, 422),  # no amount
        ({"purpose": "bill", "bill_id": bill["id"], "loan_id": borrower.loan["id"]}, 422),
        ({"purpose": "bill", "bill_id": bill["id"], "amount": "41.99"}, 422),  # not the bill's amount
        ({"purpose": "loan_repayment", "loan_id": str(uuid.uuid4()), "amount": "1.00"}, 404),
        ({"purpose": "loan_repayment", "loan_id": borrower.loan["id"], "amount": "999999.00"}, 422),  # overpayment
        ({"purpose": "loan_repayment", "loan_id": borrower.loan["id"], "amount": "1.00", "mode": "payoff"}, 409),
    ):
        assert_error(await http.post("/api/v1/gateway-payments", headers=keyed(member), json=body), status)
    assert (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()["status"] == "upcoming"
    # One Idempotency-Key, one payment: the same body answers it again; another body is a 409.
    headers = keyed(member)
    body = {"purpose": "loan_repayment", "loan_id": borrower.loan["id"], "amount": "3.00"}
    first = await http.post("/api/v1/gateway-payments", headers=headers, json=body)
    again = await http.post("/api/v1/gateway-payments", headers=headers, json=body)
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    assert_error(await http.post("/api/v1/gateway-payments", headers=headers, json={**body, "amount": "4.00"}), 409)


async def balance(http, su, account: dict) -> Decimal:
    return Decimal((await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()["ledger_balance"])


async def test_a_checkout_left_unpaid_is_verified_with_backoff_then_abandoned_and_its_bill_due_again(
    http, su, db, borrower, gateway
):
    member = borrower.headers["member"]
    bill = await new_bill(http, borrower, amount="9.00")
    payment = await pay_by_card(http, member, purpose="bill", bill_id=bill["id"])
    done = await closed(http, member, payment["id"], timeout=60)  # the member never pays
    assert done["status"] == "abandoned" and done["confirmed_by"] == "verify" and done["journal_entry_id"] is None
    assert (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()["status"] == "upcoming"
    assert await postings_of(db, payment["id"]) == {"posted": 0, "applied": 0, "clearing": Decimal(0), "events": 0}
    # Paid at the gateway after all (the member came back to the page): the late webhook still posts it, once.
    await checkout(payment)
    done = await closed(http, member, payment["id"], statuses=("succeeded", "flagged"))
    assert done["status"] == "succeeded" and done["confirmed_by"] == "webhook"
    assert (await postings_of(db, payment["id"]))["posted"] == 1
    assert (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()["status"] == "paid"


async def test_a_verify_reporting_another_amount_is_flagged_and_not_posted(http, su, db, borrower, gateway):
    member = borrower.headers["member"]
    await gateway.put("/gateway/_control", json={"drop_webhooks": 1, "charge_amount_delta": 1})
    payment = await pay_by_card(http, member, purpose="loan_repayment", loan_id=borrower.loan["id"], amount="8.00")
    await checkout(payment)
    done = await closed(http, member, payment["id"])
    assert done["status"] == "flagged" and done["confirmed_by"] == "verify" and done["gateway_amount"] == "8.01"
    assert (await postings_of(db, payment["id"]))["posted"] == 0


async def test_a_gateway_that_will_not_open_the_checkout_fails_the_payment_and_frees_the_bill(
    http, su, sandbox_url, borrower, gateway
):
    member = borrower.headers["member"]
    bill = await new_bill(http, borrower, amount="11.00")
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as sandbox:
        # Every initialize attempt the workflow makes (five) meets an outage.
        await sandbox.put("/_control/faults", json={"fail_next": 5, "error_status": 503})
        try:
            response = await http.post(
                "/api/v1/gateway-payments", headers=keyed(member), json={"purpose": "bill", "bill_id": bill["id"]}
            )
        finally:
            await sandbox.put("/_control/faults", json={"fail_next": 0, "error_status": 500})
    assert response.status_code == 201, response.text
    done = await closed(http, member, response.json()["id"])
    assert done["status"] == "failed" and done["authorization_url"] is None
    assert "did not open the checkout" in done["failure"] and "503" in done["failure"]
    assert (await http.get(f"/api/v1/bills/{bill['id']}", headers=member)).json()["status"] == "upcoming"


async def test_an_event_recorded_but_not_handed_over_is_handed_over_when_the_gateway_delivers_it_again(
    http, db, settings, borrower, gateway
):
    """A delivery that recorded its event while Temporal did not answer was told 503 (so the gateway retries); the
    retry finds the event pending and hands it over."""
    member = borrower.headers["member"]
    await gateway.put("/gateway/_control", json={"drop_webhooks": 1})
    bill = await new_bill(http, borrower, amount="6.00")
    payment = await pay_by_card(http, member, purpose="bill", bill_id=bill["id"])
    await checkout(payment)
    sent = (await gateway.get("/gateway/_control/webhooks", params={"reference": payment["reference"]})).json()
    body = sent["items"][0]["body"].encode()
    event = json.loads(body)
    async with db.session() as session, session.begin():  # what the first, unlucky delivery left behind
        await session.execute(
            text(
                "INSERT INTO gateway_events (event_id, event_type, reference, payment_id, payload, status) "
                "VALUES (:id, :type, :reference, :payment, CAST(:payload AS jsonb), 'pending')"
            ),
            {
                "id": event["id"],
                "type": event["event"],
                "reference": payment["reference"],
                "payment": payment["id"],
                "payload": body.decode(),
            },
        )
    again = await http.post("/api/v1/webhooks/gateway", content=body, headers=signed(settings, event)[1])
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "delivery": "delivered"}, again.text
    assert (await closed(http, member, payment["id"]))["status"] == "succeeded"
    assert await postings_of(db, payment["id"]) == {"posted": 1, "applied": 0, "clearing": Decimal("6.00"), "events": 1}
