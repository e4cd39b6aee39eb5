"""Members' budgets (migration 0039): progress over planted transactions, the 80 % and 100 % alerts raised once each
however often the budget is evaluated, rollover, analytics month by month, and access through the one money policy
(a read share sees, an edit share changes, another member gets a 404, staff read only)."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.business_time import business_today
from domain.budget_periods import add_months, month_start
from domain.money_events import money_changed
from tests.conftest import assert_error, make_org, make_user
from tests.planted import planted_import
from tests.polling import poll

URL = "/api/v1/member-budgets"


@pytest.fixture(scope="module")
async def org(http, su):
    org = await make_org(http, su, roles=("org_admin", "operator", "member"))
    org.users["other"], org.headers["other"] = await make_user(http, su, "member", org.id)
    org.users["grantee"], org.headers["grantee"] = await make_user(http, su, "member", org.id)
    return org


async def plant(db, org, user: dict, amount: str, category: str, posted_on: date) -> None:
    """An imported line, as an import would load it."""
    async with db.session() as session, session.begin():
        planted = await planted_import(session, org.id, user["id"])
        await session.execute(
            text(
                "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, description, "
                "category_key, dedup_key) VALUES (:org, :user, :import, :account, 'csv', :on, :amount, 'planted', :cat, :key)"
            ),
            {
                **planted,
                "org": org.id,
                "user": user["id"],
                "on": posted_on,
                "amount": Decimal(amount),
                "cat": category,
                "key": uuid.uuid4().hex,
            },
        )


async def budget_alerts(db, budget_id: str) -> list[tuple[date, int]]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT period_start, threshold FROM member_budget_alerts WHERE budget_id = :b ORDER BY threshold"),
            {"b": budget_id},
        )
        return [tuple(r) for r in rows.all()]


async def create(http, headers: dict, **body) -> dict:
    response = await http.post(URL, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_progress_and_the_80_and_100_percent_alerts_once_each(http, db, settings, temporal_env, org):
    client, member = temporal_env.client, org.users["member"]
    headers = org.headers["member"]
    today = business_today(settings)
    budget = await create(http, headers, category_key="groceries", amount="100.00")
    assert budget["progress"]["spent"] == "0.00" and budget["starts_on"] == str(month_start(today))

    await plant(db, org, member, "-50.00", "groceries", today)
    await plant(db, org, member, "-40.00", "dining", today)  # another category
    await plant(db, org, member, "30.00", "groceries", today)  # money in: not spending
    await plant(db, org, member, "-99.00", "groceries", month_start(today) - timedelta(days=1))  # last period
    got = (await http.get(f"{URL}/{budget['id']}", headers=headers)).json()["progress"]
    assert (got["spent"], got["remaining"], got["percentage"], got["limit"]) == ("50.00", "50.00", "50.00", "100.00")

    await plant(db, org, member, "-35.00", "groceries", today)  # 85 %
    for _ in range(2):  # evaluated twice (two events): one alert
        await money_changed(client, member["id"], "import", f"test-{uuid.uuid4().hex[:6]}", settings)
    await poll(lambda: budget_alerts(db, budget["id"]), lambda rows: len(rows) >= 1, 15, "the 80 % alert")

    await plant(db, org, member, "-20.00", "groceries", today)  # 105 %
    await money_changed(client, member["id"], "import", "over", settings)
    rows = await poll(lambda: budget_alerts(db, budget["id"]), lambda rows: len(rows) >= 2, 15, "the 100 % alert")
    assert rows == [(month_start(today), 80), (month_start(today), 100)]

    # Evaluated again (a marker budget proves the evaluation ran): still one alert per threshold.
    marker = await create(http, headers, category_key="fuel", amount="10.00")
    await plant(db, org, member, "-10.00", "fuel", today)
    await money_changed(client, member["id"], "import", "again", settings)
    await money_changed(client, member["id"], "import", "again-2", settings)
    await poll(lambda: budget_alerts(db, marker["id"]), lambda rows: len(rows) == 2, 15, "the marker's alerts")
    assert await budget_alerts(db, budget["id"]) == rows
    async with db.session() as session:
        kinds = (
            await session.execute(
                text(
                    "SELECT count(*) FROM notifications WHERE user_id = :u AND kind = 'budget_alert' "
                    "AND entity_type = 'alert'"
                ),
                {"u": member["id"]},
            )
        ).scalar_one()
    assert kinds == 4  # groceries 80 and 100, fuel 80 and 100
    alerts = (await http.get("/api/v1/alerts", headers=headers, params={"type": "budget_threshold"})).json()
    assert alerts["total"] == 4 and {a["entity_id"] for a in alerts["items"]} == {budget["id"], marker["id"]}
    got = (await http.get(f"{URL}/{budget['id']}", headers=headers)).json()["progress"]
    assert (got["spent"], got["remaining"], got["percentage"]) == ("105.00", "-5.00", "105.00")


async def test_rollover_adds_last_periods_unused_amount(http, db, settings, org):
    member, headers = org.users["other"], org.headers["other"]
    today = business_today(settings)
    last_month = add_months(month_start(today), -1)
    rolling = await create(
        http, headers, category_key="transport", amount="100.00", rollover=True, starts_on=str(last_month)
    )
    plain = await create(http, headers, category_key="health", amount="100.00", starts_on=str(last_month))
    fresh = await create(http, headers, category_key="travel", amount="100.00", rollover=True)  # started this month
    for category in ("transport", "health", "travel"):
        await plant(db, org, member, "-30.00", category, last_month)
        await plant(db, org, member, "-17.00", category, today)
    got = (await http.get(f"{URL}/{rolling['id']}", headers=headers)).json()["progress"]
    assert (got["carried_over"], got["limit"], got["spent"], got["remaining"], got["percentage"]) == (
        "70.00",
        "170.00",
        "17.00",
        "153.00",
        "10.00",
    )
    for other in (plain, fresh):
        got = (await http.get(f"{URL}/{other['id']}", headers=headers)).json()["progress"]
        assert (got["carried_over"], got["limit"], got["spent"]) == ("0.00", "100.00", "17.00")


async def test_analytics_budget_against_actual_per_month_and_trend(http, db, settings, org):
    member, headers = org.users["grantee"], org.headers["grantee"]
    today = business_today(settings)
    this_month = month_start(today)
    start = add_months(this_month, -2)
    budget = await create(http, headers, category_key="shopping", amount="100.00", starts_on=str(start))
    for months_ago, amount in ((2, "-50.00"), (1, "-100.00"), (0, "-150.00"), (3, "-500.00")):
        await plant(db, org, member, amount, "shopping", add_months(this_month, -months_ago))
    response = await http.get(f"{URL}/{budget['id']}/analytics", headers=headers, params={"months": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(m["month"], m["budgeted"], m["actual"], m["difference"]) for m in body["months"]] == [
        (str(add_months(this_month, -3)), None, "500.00", None),  # before the budget started
        (str(start), "100.00", "50.00", "50.00"),
        (str(add_months(this_month, -1)), "100.00", "100.00", "0.00"),
        (str(this_month), "100.00", "150.00", "-50.00"),
    ]
    three = (await http.get(f"{URL}/{budget['id']}/analytics", headers=headers, params={"months": 3})).json()
    assert three["trend"] == {"average": "100.00", "slope_per_month": "50.00", "direction": "up"}
    assert_error(await http.get(f"{URL}/{budget['id']}/analytics", headers=headers, params={"months": 0}), 422)


async def test_access_shares_staff_and_other_members(http, db, su, org):
    owner = org.users["member"]
    budget = await create(http, org.headers["member"], category_key="dining", amount="80.00")
    url = f"{URL}/{budget['id']}"

    # Another member, no share: as if it did not exist.
    assert_error(await http.get(url, headers=org.headers["other"]), 404, "not_found")
    assert_error(await http.put(url, headers=org.headers["other"], json={"amount": "1.00"}), 404, "not_found")
    listed = (await http.get(URL, headers=org.headers["other"])).json()["items"]
    assert budget["id"] not in {b["id"] for b in listed}

    # A read share: seen and listed, not changed.
    async with db.session() as session, session.begin():
        share_id = uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO money_shares (id, org_id, owner_id, grantee_id, what, access) "
                "VALUES (:id, :org, :owner, :grantee, 'budgets', 'read')"
            ),
            {"id": share_id, "org": org.id, "owner": owner["id"], "grantee": org.users["grantee"]["id"]},
        )
    grantee = org.headers["grantee"]
    assert (await http.get(url, headers=grantee)).status_code == 200
    assert budget["id"] in {b["id"] for b in (await http.get(URL, headers=grantee)).json()["items"]}
    assert_error(await http.put(url, headers=grantee, json={"amount": "1.00"}), 403, "forbidden")
    assert_error(await http.delete(url, headers=grantee), 403, "forbidden")

    # An edit share: changed.
    async with db.session() as session, session.begin():
        await session.execute(text("UPDATE money_shares SET access = 'edit' WHERE id = :id"), {"id": share_id})
    response = await http.put(url, headers=grantee, json={"amount": "90.00"})
    assert response.status_code == 200, response.text
    assert response.json()["amount"] == "90.00" and response.json()["progress"]["limit"] == "90.00"

    # Staff of the organization read, change nothing; another organization's admin sees nothing.
    assert (await http.get(url, headers=org.headers["operator"])).status_code == 200
    assert_error(await http.put(url, headers=org.headers["org_admin"], json={"amount": "1.00"}), 403)
    assert_error(
        await http.post(URL, headers=org.headers["org_admin"], json={"category_key": "dining", "amount": "5.00"}), 403
    )
    stranger = await make_org(http, su, roles=("org_admin",))
    assert_error(await http.get(url, headers=stranger.headers["org_admin"]), 404)


async def test_update_end_and_bad_input(http, su, org):
    headers = org.headers["member"]
    budget = await create(http, headers, category_key="education", amount="40.00", period="yearly")
    assert budget["starts_on"].endswith("-01-01") and budget["progress"]["period_end"].endswith("-12-31")
    assert_error(await http.post(URL, headers=headers, json={"category_key": "nope", "amount": "5"}), 422)
    assert_error(await http.post(URL, headers=headers, json={"category_key": "fuel", "amount": "-5"}), 422)
    assert_error(
        await http.post(
            URL, headers=headers, json={"category_key": "fuel", "amount": "5", "user_id": org.users["other"]["id"]}
        ),
        403,
    )
    made = await http.post(
        URL, headers=su, json={"category_key": "fuel", "amount": "5.00", "user_id": org.users["other"]["id"]}
    )
    assert made.status_code == 201 and made.json()["user_id"] == org.users["other"]["id"]
    assert_error(await http.post(URL, headers=su, json={"category_key": "fuel", "amount": "5.00"}), 422)

    url = f"{URL}/{budget['id']}"
    changed = (await http.put(url, headers=headers, json={"amount": "50.00", "rollover": True})).json()
    assert (changed["amount"], changed["rollover"]) == ("50.00", True) and changed["updated_at"]
    ended = await http.delete(url, headers=headers)
    assert ended.status_code == 200 and ended.json()["ended_at"]
    assert_error(await http.delete(url, headers=headers), 409, "budget_ended")
    assert_error(await http.put(url, headers=headers, json={"amount": "1.00"}), 409, "budget_ended")
    live = {b["id"] for b in (await http.get(URL, headers=headers, params={"limit": 500})).json()["items"]}
    every = (await http.get(URL, headers=headers, params={"limit": 500, "include_ended": "true"})).json()["items"]
    assert budget["id"] not in live and budget["id"] in {b["id"] for b in every}
    assert_error(await http.get(f"{URL}/{uuid.uuid4()}", headers=headers), 404, "not_found")
