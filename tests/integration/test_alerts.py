"""Members' alerts (migration 0039): subscriptions and their validation, a low balance (below an amount, and below a
percentage of the 90-day average) and a large transaction raised once from real withdrawals through the API (the
money-events workflow evaluates after each), a bill due raised once by the daily bill run's signal, and marking an
alert read, dismissing and deleting it; another member never sees one."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.interest_posting import InterestPostingActivities
from core.business_time import business_today
from domain.money_events import money_changed
from models.bills import BillRunInput
from models.interest import PostingBatch
from tests.conftest import assert_error, make_org, make_user, open_account
from tests.polling import poll
from workflows.bill_run import BillRunWorkflow

SUBS, ALERTS = "/api/v1/alert-subscriptions", "/api/v1/alerts"


@pytest.fixture(scope="module")
async def org(http, su):
    org = await make_org(http, su, roles=("operator", "member"))
    org.users["other"], org.headers["other"] = await make_user(http, su, "member", org.id)
    return org


async def subscribe(http, headers: dict, **body) -> dict:
    response = await http.post(SUBS, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def alerts_of(http, headers: dict, **params) -> list[dict]:
    response = await http.get(ALERTS, headers=headers, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_subscriptions_crud_and_validation(http, org):
    headers = org.headers["member"]
    made = await subscribe(http, headers, type="bill_due", params={"within_days": 5}, channels=["email", "in_app"])
    assert made["params"] == {"within_days": 5} and made["channels"] == ["email", "in_app"]
    for bad in (
        {"type": "low_balance"},  # needs below or below_average_percent
        {"type": "low_balance", "params": {"below": "10.00", "below_average_percent": 20}},  # not both
        {"type": "large_transaction", "params": {"above": "10.00", "within_days": 2}},
        {"type": "large_transaction", "params": {"above": "-1"}},
        {"type": "payment_returned", "channels": ["sms"]},
        {"type": "payment_returned", "channels": []},
        {"type": "nope"},
    ):
        assert_error(await http.post(SUBS, headers=headers, json=bad), 422)
    assert_error(await http.post(SUBS, headers=org.headers["operator"], json={"type": "payment_returned"}), 403)

    url = f"{SUBS}/{made['id']}"
    assert (await http.get(url, headers=headers)).json()["id"] == made["id"]
    assert made["id"] in {s["id"] for s in (await http.get(SUBS, headers=headers)).json()["items"]}
    changed = await http.put(url, headers=headers, json={"params": {"within_days": 2}, "active": False})
    assert changed.status_code == 200 and changed.json()["params"] == {"within_days": 2}
    assert changed.json()["active"] is False
    assert_error(await http.put(url, headers=headers, json={"params": {"above": "5.00"}}), 422, "invalid_params")
    for call in (http.get(url, headers=org.headers["other"]), http.delete(url, headers=org.headers["other"])):
        assert_error(await call, 404, "not_found")
    assert (await http.delete(url, headers=headers)).status_code == 204
    assert_error(await http.get(url, headers=headers), 404)


async def test_low_balance_and_large_transaction_raised_once_from_real_withdrawals(http, su, db, org):
    member, headers = org.users["member"], org.headers["member"]
    account = await open_account(http, su, org.id, owner_id=member["id"], deposit="1000.00")
    await subscribe(http, headers, type="low_balance", params={"below": "500.00"}, channels=["in_app", "email"])
    await subscribe(http, headers, type="large_transaction", params={"above": "200.00"})

    async def withdraw(amount: str) -> None:
        response = await http.post(
            f"/api/v1/accounts/{account['id']}/withdrawals",
            headers={**su, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": amount},
        )
        assert response.status_code == 201, response.text

    await withdraw("600.00")  # balance 400.00: low, and a large transaction
    await poll(
        lambda: alerts_of(http, headers),
        lambda items: {a["type"] for a in items} == {"low_balance", "large_transaction"},
        15,
        "the low balance and large transaction alerts",
    )
    await withdraw("250.00")  # balance 150.00: still low (not raised again today); another large one
    items = await poll(
        lambda: alerts_of(http, headers, type="large_transaction"), lambda items: len(items) == 2, 15, "2 large"
    )
    assert {a["body"].split(":")[0] for a in items} == {"Money out"}
    low = await alerts_of(http, headers, type="low_balance")
    assert len(low) == 1 and low[0]["entity_id"] == account["id"] and "400.00" in low[0]["body"]
    async with db.session() as session:
        notified = (
            await session.execute(
                text("SELECT kind, count(*) FROM notifications WHERE user_id = :u AND kind LIKE '%_alert' GROUP BY 1"),
                {"u": member["id"]},
            )
        ).all()
        emails = (
            await session.execute(
                text(
                    "SELECT count(*) FROM email_outbox WHERE dedupe_key LIKE 'malert:low_balance:%' AND to_address = :a"
                ),
                {"a": member["email"]},
            )
        ).scalar_one()
    assert dict(notified) == {"low_balance_alert": 1, "large_transaction_alert": 2}
    assert emails == 1  # the low balance subscription emails; the large transaction one is in-app only
    assert await alerts_of(http, org.headers["other"]) == []


async def test_low_balance_below_a_percentage_of_the_90_day_average(http, su, db, settings, org):
    member, headers = await make_user(http, su, "member", org.id)
    account = await open_account(http, su, org.id, owner_id=member["id"], deposit="1000.00")
    # The deposit back-dated 60 days: the 90-day average of day-end balances is about 61/90 of 1000.00.
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "UPDATE journal_entries SET effective_date = CAST(:day AS date) WHERE id IN "
                "(SELECT entry_id FROM postings WHERE account_id = :account)"
            ),
            {"day": business_today(settings) - timedelta(days=60), "account": account["id"]},
        )
    await subscribe(http, headers, type="low_balance", params={"below_average_percent": 20})
    # Every withdrawal raises a large transaction alert: the sign that its evaluation has run.
    await subscribe(http, headers, type="large_transaction", params={"above": "5.00"}, channels=["in_app"])

    async def withdraw(amount: str, evaluated: int) -> list[dict]:
        response = await http.post(
            f"/api/v1/accounts/{account['id']}/withdrawals",
            headers={**su, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": amount},
        )
        assert response.status_code == 201, response.text
        await poll(
            lambda: alerts_of(http, headers, type="large_transaction"),
            lambda items: len(items) == evaluated,
            15,
            f"the evaluation after withdrawing {amount}",
        )
        return await alerts_of(http, headers, type="low_balance")

    assert await withdraw("800.00", 1) == []  # 200.00: above 20 % of (60 x 1000.00 + 200.00) / 90 = 133.78
    low = await withdraw("90.00", 2)  # 110.00: below 20 % of (60 x 1000.00 + 110.00) / 90 = 133.58
    assert len(low) == 1 and low[0]["entity_id"] == account["id"]
    assert "110.00" in low[0]["body"] and "below 20 % of its 90-day average (133.58 USD)" in low[0]["body"]
    assert await withdraw("10.00", 3) == low  # still low today: not raised again


async def test_a_bill_due_alert_is_raised_by_the_daily_bill_run_once(http, su, settings, temporal_env, org):
    _member, headers = await make_user(http, su, "member", org.id)
    _other, other_headers = await make_user(http, su, "member", org.id)
    await subscribe(http, headers, type="bill_due", params={"within_days": 5}, channels=["in_app"])
    day = date(2041, 3, 2)  # far from every other test's bills

    async def bill(payer_headers: dict, due: date) -> str:
        response = await http.post(
            "/api/v1/bills",
            headers=payer_headers,
            json={"payee_name": "City Water", "amount": "42.00", "due_date": due.isoformat()},
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    soon, later = await bill(headers, day + timedelta(days=2)), await bill(headers, day + timedelta(days=9))
    await bill(other_headers, day + timedelta(days=1))  # no subscription: no alert

    async def run(on: date) -> int:
        result = await temporal_env.client.execute_workflow(
            BillRunWorkflow.run,
            BillRunInput(day=on, stage="due_alerts"),  # this stage alone: no other test's bill marked or paid
            id=f"bill-run-{uuid.uuid4()}",
            task_queue=settings.task_queue,
        )
        return result.due_alerts_signalled

    assert await run(day) == 1  # the member, once: the other has no subscription
    items = await poll(
        lambda: alerts_of(http, headers, type="bill_due"), lambda items: len(items) >= 1, 15, "the bill due alert"
    )
    assert [a["entity_id"] for a in items] == [soon] and "42.00" in items[0]["title"]
    assert await run(day + timedelta(days=1)) == 1  # evaluated again: the same bill raises nothing new
    assert await run(day + timedelta(days=4)) == 1  # the later bill is within 5 days now
    items = await poll(
        lambda: alerts_of(http, headers, type="bill_due"), lambda items: len(items) >= 2, 15, "the later bill's"
    )
    assert sorted(a["entity_id"] for a in items) == sorted([soon, later])
    assert await alerts_of(http, other_headers) == []


async def test_read_dismiss_delete(http, db, org):
    member, headers = org.users["other"], org.headers["other"]
    ids = [uuid.uuid4() for _ in range(2)]
    async with db.session() as session, session.begin():
        for alert_id in ids:
            await session.execute(
                text(
                    "INSERT INTO member_alerts (id, user_id, type, title, body, dedupe_key) "
                    "VALUES (:id, :u, 'bill_due', 'Bill due', 'Pay it', :k)"
                ),
                {"id": alert_id, "u": member["id"], "k": f"t:{alert_id}"},
            )
    first, second = (str(i) for i in ids)
    assert {a["id"] for a in await alerts_of(http, headers, unread="true")} == {first, second}
    read = await http.post(f"{ALERTS}/{first}/read", headers=headers)
    assert read.status_code == 200 and read.json()["read_at"]
    again = await http.post(f"{ALERTS}/{first}/read", headers=headers)
    assert again.json()["read_at"] == read.json()["read_at"]  # marked once
    assert [a["id"] for a in await alerts_of(http, headers, unread="true")] == [second]
    assert [a["id"] for a in await alerts_of(http, headers, unread="false")] == [first]

    assert (await http.post(f"{ALERTS}/{second}/dismiss", headers=headers)).json()["dismissed_at"]
    assert [a["id"] for a in await alerts_of(http, headers)] == [first]
    assert {a["id"] for a in await alerts_of(http, headers, include_dismissed="true")} == {first, second}

    assert_error(await http.post(f"{ALERTS}/{first}/read", headers=org.headers["member"]), 404, "not_found")
    assert_error(await http.delete(f"{ALERTS}/{first}", headers=org.headers["member"]), 404, "not_found")
    assert (await http.delete(f"{ALERTS}/{first}", headers=headers)).status_code == 204
    assert_error(await http.post(f"{ALERTS}/{first}/read", headers=headers), 404, "not_found")
    assert [a["id"] for a in await alerts_of(http, headers, include_dismissed="true")] == [second]
    assert_error(await http.get(ALERTS, headers=headers, params={"type": "nope"}), 422)


async def test_payment_returned_alert_once_per_return(http, settings, temporal_env, org):
    member, headers = org.users["member"], org.headers["member"]
    await subscribe(http, headers, type="payment_returned")
    ref = f"{uuid.uuid4()}:1:R01"
    for _ in range(2):  # the ACH return's activity retried: signalled twice
        await money_changed(temporal_env.client, member["id"], "payment_returned", ref, settings)
    items = await poll(
        lambda: alerts_of(http, headers, type="payment_returned"), lambda items: len(items) >= 1, 15, "the alert"
    )
    marker = f"{uuid.uuid4()}:1:R03"
    await money_changed(temporal_env.client, member["id"], "payment_returned", marker, settings)
    items = await poll(
        lambda: alerts_of(http, headers, type="payment_returned"), lambda items: len(items) >= 2, 15, "the second"
    )
    assert sorted(a["entity_id"] for a in items) == sorted(r.split(":")[0] for r in (ref, marker))
    assert "R01" in next(a["body"] for a in items if a["entity_id"] == ref.split(":")[0])


async def test_a_book_transfer_raises_large_transaction_alerts_on_both_sides(http, su, db, org):
    member, headers = await make_user(http, su, "member", org.id)
    source = await open_account(http, su, org.id, owner_id=member["id"], deposit="900.00")
    savings = await open_account(http, su, org.id, owner_id=member["id"], type_="savings")
    await subscribe(http, headers, type="large_transaction", params={"above": "300.00"})
    response = await http.post(
        "/api/v1/transfers/book",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"from_account_id": source["id"], "to_account_id": savings["id"], "amount": "400.00"},
    )
    assert response.status_code == 201, response.text
    items = await poll(
        lambda: alerts_of(http, headers, type="large_transaction"), lambda items: len(items) >= 2, 15, "both sides"
    )
    assert sorted(a["title"] for a in items) == ["Large transaction: -400.00 USD", "Large transaction: 400.00 USD"]


async def test_interest_posted_at_month_end_raises_the_members_large_transaction_alert(
    http, su, db, settings, temporal_env
):
    """Interest is money in: the month-end batch that posts it signals the members with something to evaluate."""
    org = await make_org(http, su, roles=("member",))
    headers = org.headers["member"]
    await subscribe(http, headers, type="large_transaction", params={"above": "2.00"})
    account = await open_account(http, su, org.id, org.users["member"]["id"], type_="savings")
    product = await http.post(
        "/api/v1/savings-products", headers=su, json={"name": f"Saver {uuid.uuid4().hex[:6]}", "annual_rate": "0.02"}
    )
    attached = await http.put(
        f"/api/v1/accounts/{account['id']}/savings-product", headers=su, json={"product_id": product.json()["id"]}
    )
    assert attached.status_code == 200, attached.text
    account_id = uuid.UUID(account["id"])
    period = "2026-11"
    async with db.session() as session, session.begin():  # a month accrued (the daily runs' rows, written here)
        await session.execute(
            text(
                "INSERT INTO interest_accruals (account_id, day, product_id, balance, amount) "
                "SELECT :a, d::date, :p, 1000.00, 0.1250000000 FROM generate_series('2026-11-01'::date, "
                "'2026-11-30'::date, '1 day') d"
            ),
            {"a": account_id, "p": uuid.UUID(product.json()["id"])},
        )
    posting = InterestPostingActivities(db, settings, client=temporal_env.client)
    batch = PostingBatch(period=period, after=uuid.UUID(int=account_id.int - 1), batch_size=1)  # this account alone
    done = await ActivityEnvironment(temporal_env.client).run(posting.post_interest_batch, batch)
    assert (done.last_account_id, done.posted, done.amount) == (account_id, 1, Decimal("3.75"))

    raised = await poll(
        lambda: alerts_of(http, headers, type="large_transaction"), lambda items: len(items) >= 1, 20, "the alert"
    )
    assert len(raised) == 1 and "Money in" in raised[0]["body"] and "3.75" in raised[0]["body"]
    # A retried batch (its result lost) finds the same posting and signals again: still one alert. A marker event
    # signalled after it raises its own alert once everything before it was evaluated.
    await subscribe(http, headers, type="payment_returned")
    await ActivityEnvironment(temporal_env.client).run(posting.post_interest_batch, batch)
    marker = f"{uuid.uuid4()}:1:R01"
    await money_changed(temporal_env.client, org.users["member"]["id"], "payment_returned", marker, settings)
    await poll(lambda: alerts_of(http, headers, type="payment_returned"), lambda items: len(items) == 1, 20, "marker")
    assert len(await alerts_of(http, headers, type="large_transaction")) == 1
