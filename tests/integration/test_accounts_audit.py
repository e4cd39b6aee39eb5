import uuid
from datetime import UTC, datetime, timedelta

from tests.conftest import assert_error, make_org, make_user, open_account


async def test_accounts_lifecycle_is_superuser_only_and_audited(http, su):
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, org.users["member"]["id"])
    assert account["status"] == "active" and account["ledger_balance"] == "0.00"
    changed = await http.patch(f"/api/v1/accounts/{account['id']}", headers=su, json={"type": "savings"})
    assert changed.status_code == 200 and changed.json()["type"] == "savings"
    assert_error(await http.patch(f"/api/v1/accounts/{account['id']}", headers=su, json={"type": "loan"}), 422)
    assert_error(
        await http.patch(
            f"/api/v1/accounts/{account['id']}", headers=org.headers["org_admin"], json={"type": "checking"}
        ),
        403,
    )

    closed = await http.post(f"/api/v1/accounts/{account['id']}/close", headers=su)
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["closed_at"]
    # Soft: still there, still visible, no longer usable.
    assert (await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()["status"] == "closed"
    assert_error(
        await http.post(
            f"/api/v1/accounts/{account['id']}/deposits", headers={**su, "Idempotency-Key": "d"}, json={"amount": "5"}
        ),
        409,
        "account_closed",
    )

    log = (await http.get("/api/v1/audit", headers=su, params={"entity_id": account["id"]})).json()
    actions = [row["action"] for row in reversed(log["items"])]
    assert actions == ["account.created", "account.updated", "account.closed"]
    update = log["items"][1]
    assert update["before"]["type"] == "checking" and update["after"]["type"] == "savings"
    assert update["actor"] == "root@tests.example" and update["request_id"]


async def test_an_account_with_money_cannot_be_closed(http, su):
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, deposit="10.00")
    error = assert_error(
        await http.post(f"/api/v1/accounts/{account['id']}/close", headers=su), 409, "balance_not_zero"
    )
    assert error["details"]["ledger_balance"] == "10.00"


async def test_deposit_with_the_same_key_is_posted_once(http, su):
    org = await make_org(http, su)
    account = await open_account(http, su, org.id)
    headers = {**su, "Idempotency-Key": f"dep-{uuid.uuid4()}"}
    for _ in range(2):
        response = await http.post(
            f"/api/v1/accounts/{account['id']}/deposits", headers=headers, json={"amount": "42.10"}
        )
        assert response.status_code == 201 and response.json()["ledger_balance"] == "42.10"
    assert_error(
        await http.post(f"/api/v1/accounts/{account['id']}/deposits", headers=headers, json={"amount": "42.11"}),
        409,
        "idempotency_key_reused",
    )
    entries = (await http.get(f"/api/v1/accounts/{account['id']}/entries", headers=su)).json()
    assert entries["total"] == 1 and entries["items"][0]["amount"] == "-42.10"


async def test_who_sees_which_accounts(http, su):
    a, b = await make_org(http, su), await make_org(http, su)
    other_member, _other_headers = await make_user(http, su, "member", a.id)
    mine = await open_account(http, su, a.id, a.users["member"]["id"])
    theirs = await open_account(http, su, a.id, other_member["id"])
    elsewhere = await open_account(http, su, b.id)

    member_view = (await http.get("/api/v1/accounts", headers=a.headers["member"])).json()
    assert [x["id"] for x in member_view["items"]] == [mine["id"]]
    assert_error(await http.get(f"/api/v1/accounts/{theirs['id']}", headers=a.headers["member"]), 404)

    for role in ("org_admin", "operator"):
        ids = {x["id"] for x in (await http.get("/api/v1/accounts", headers=a.headers[role])).json()["items"]}
        assert ids == {mine["id"], theirs["id"]}
        assert_error(await http.get(f"/api/v1/accounts/{elsewhere['id']}", headers=a.headers[role]), 404)

    everything = (await http.get("/api/v1/accounts", headers=su, params={"limit": 500})).json()
    assert {mine["id"], theirs["id"], elsewhere["id"]} <= {x["id"] for x in everything["items"]}
    assert (await http.get("/api/v1/accounts", headers=su, params={"kind": "gl"})).json()["total"] >= 6
    page = (await http.get("/api/v1/accounts", headers=su, params={"org_id": a.id, "limit": 1, "offset": 1})).json()
    assert page["total"] == 2 and len(page["items"]) == 1


async def test_audit_query_by_date_range_actor_and_entity(http, su):
    before = datetime.now(UTC)
    org = await make_org(http, su, roles=())
    me = (await http.get("/api/v1/me", headers=su)).json()
    rows = (
        await http.get(
            "/api/v1/audit",
            headers=su,
            params={"since": before.isoformat(), "actor_id": me["id"], "entity_type": "organization"},
        )
    ).json()
    assert [r["entity_id"] for r in rows["items"]] == [org.id]
    later = (
        await http.get(
            "/api/v1/audit", headers=su, params={"since": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
        )
    ).json()
    assert later["total"] == 0
