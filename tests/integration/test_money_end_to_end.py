"""Members' money management end to end on the real stack: a CSV import categorised by a member's rule crosses their
budget's 80 % and then 100 % (once each, pushed over a WebSocket connected to ANOTHER API process than the one that
took the imports) and earns points by their rewards program's rule; a budget shared read-only is visible to the
grantee and refused for edit."""

from datetime import date

from core.business_time import business_today
from tests.conftest import assert_error, make_org, make_user
from tests.integration.test_live_updates import next_event, second_api, socket  # noqa: F401 (fixture)
from tests.integration.test_rewards import new_program
from tests.integration.test_transaction_imports import finished, member_external_account, upload

HEADER = "date,amount,description,merchant\n"


async def next_alert(ws) -> dict:
    """The next budget alert notification pushed (the imports' own notifications skipped)."""
    while (event := await next_event(ws, "notification"))["kind"] != "budget_alert":
        pass
    return event


def lines(day: date, *amounts: str) -> str:
    return HEADER + "".join(f"{day},{a},Weekly shop {n},Fresh Market\n" for n, a in enumerate(amounts))


async def test_an_import_raises_the_budget_alerts_once_each_over_a_socket_elsewhere_and_earns_points(
    http,
    su,
    settings,
    second_api,  # noqa: F811 (fixture)
):
    org = await make_org(http, su)
    headers = org.headers["member"]
    external = await member_external_account(http, org)
    rule = await http.post(
        "/api/v1/category-rules",
        headers=headers,
        json={"field": "merchant", "match": "keyword", "pattern": "fresh market", "category_key": "groceries"},
    )
    assert rule.status_code == 201, rule.text
    budget = await http.post(
        "/api/v1/member-budgets", headers=headers, json={"category_key": "groceries", "amount": "100.00"}
    )
    assert budget.status_code == 201, budget.text
    program = await new_program(http, org.headers["org_admin"])  # groceries: 2 points per 1.00 from 5.00
    enrolled = await http.post(f"/api/v1/reward-programs/{program['id']}/enroll", headers=headers)
    assert enrolled.status_code == 201, enrolled.text
    today = business_today(settings)

    async with socket(second_api, headers) as ws:
        first = await upload(http, headers, external["id"], lines(today, "-50.00", "-35.00"))
        assert first.status_code == 202, first.text
        assert (await finished(http, headers, first.json()["id"]))["rows_loaded"] == 2
        eighty = await next_alert(ws)
        assert "80 %" in eighty["title"], eighty

        again = await upload(http, headers, external["id"], lines(today, "-50.00", "-35.00"))  # the same file
        assert (await finished(http, headers, again.json()["id"]))["rows_duplicate"] == 2
        second = await upload(http, headers, external["id"], lines(today, "-20.00"))  # 105 %
        assert (await finished(http, headers, second.json()["id"]))["rows_loaded"] == 1
        hundred = await next_alert(ws)
        assert "reached your groceries" in hundred["title"], hundred

    alerts = (await http.get("/api/v1/alerts", headers=headers, params={"type": "budget_threshold"})).json()
    assert alerts["total"] == 2, alerts
    progress = (await http.get(f"/api/v1/member-budgets/{budget.json()['id']}", headers=headers)).json()["progress"]
    assert (progress["spent"], progress["percentage"]) == ("105.00", "105.00")
    account = (await http.get(f"/api/v1/reward-accounts/{enrolled.json()['id']}", headers=headers)).json()
    assert account["balance"] in ("210.00", "210.0000", "210"), account  # 2 points per 1.00 of 105.00, once


async def test_a_budget_shared_read_only_is_visible_and_refused_for_edit(http, su):
    org = await make_org(http, su)
    owner = org.headers["member"]
    grantee, grantee_headers = await make_user(http, su, "member", org.id)
    budget = (
        await http.post("/api/v1/member-budgets", headers=owner, json={"category_key": "dining", "amount": "80.00"})
    ).json()
    url = f"/api/v1/member-budgets/{budget['id']}"
    assert (await http.get(url, headers=grantee_headers)).status_code == 404  # not shared yet
    shared = await http.post(
        "/api/v1/money-shares", headers=owner, json={"grantee": grantee["id"], "what": "budgets", "access": "read"}
    )
    assert shared.status_code == 201, shared.text
    seen = await http.get(url, headers=grantee_headers)
    assert seen.status_code == 200 and seen.json()["id"] == budget["id"]
    listed = (await http.get("/api/v1/member-budgets", headers=grantee_headers)).json()
    assert budget["id"] in {b["id"] for b in listed["items"]}
    assert_error(await http.put(url, headers=grantee_headers, json={"amount": "1.00"}), 403)
    assert_error(await http.delete(url, headers=grantee_headers), 403)
    unchanged = (await http.get(url, headers=owner)).json()
    assert unchanged["amount"] == "80.00" and unchanged.get("ended_at") is None
    revoked = await http.delete(f"/api/v1/money-shares/{shared.json()['id']}", headers=owner)
    assert revoked.status_code in (200, 204), revoked.text
    assert (await http.get(url, headers=grantee_headers)).status_code == 404
