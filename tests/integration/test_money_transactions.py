"""Members' transactions through the API: one list of ledger postings and imported lines with its filters and pages,
read and changed through the access policy (shares to read, to edit, of expenses only), manual changes with their
history that rules never overwrite, rules applied in bulk to ledger postings too, bulk re-categorisation, and odd
input answered 4xx."""

import uuid

from sqlalchemy import text

from tests.conftest import assert_error, make_org, make_user, open_account
from tests.planted import planted_import

LINES = [  # (posted_on, amount, merchant, description)
    ("2026-11-01", "-42.10", "Corner Grocer", "weekly shop"),
    ("2026-11-05", "-12.50", "Cafe Luna", "coffee with Sam"),
    ("2026-11-10", "1500.00", "ACME Corp", "salary November"),
]


async def _world(http, su, db):
    org = await make_org(http, su, roles=("org_admin",))
    (owner, headers), (_, stranger), (grantee, grantee_h) = [
        await make_user(http, su, "member", org.id) for _ in range(3)
    ]
    account = await open_account(http, su, org.id, owner["id"], deposit="250.00")  # one ledger posting: +250.00
    ids = []
    async with db.session() as session, session.begin():
        planted = await planted_import(session, org.id, owner["id"])
        for n, (day, amount, merchant, description) in enumerate(LINES):
            row = await session.execute(
                text(
                    "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, merchant, "
                    "description, dedup_key) VALUES (:org, :user, :import, :account, 'csv', CAST(:day AS date), CAST(:amount AS numeric), "
                    ":merchant, :description, :key) RETURNING id"
                ),
                {
                    **planted,
                    "org": org.id,
                    "user": owner["id"],
                    "day": day,
                    "amount": amount,
                    "merchant": merchant,
                    "description": description,
                    "key": f"k{n}",
                },
            )
            ids.append(f"I{row.scalar_one()}")
    return org, owner, headers, stranger, grantee, grantee_h, account, ids


async def _share(db, org_id, owner_id, grantee_id, access: str, scope: str = "all") -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            text("UPDATE money_shares SET revoked_at = now() WHERE grantee_id = :g"), {"g": grantee_id}
        )
        await session.execute(
            text(
                "INSERT INTO money_shares (id, org_id, owner_id, grantee_id, what, access, scope) "
                "VALUES (:id, :org, :owner, :grantee, 'transactions', :access, :scope)"
            ),
            {
                "id": uuid.uuid4(),
                "org": org_id,
                "owner": owner_id,
                "grantee": grantee_id,
                "access": access,
                "scope": scope,
            },
        )


async def test_the_list_its_filters_pages_and_who_sees_and_changes_what(http, su, db):
    org, owner, headers, stranger, grantee, grantee_h, account, (grocer, cafe, salary) = await _world(http, su, db)

    async def ids(params: dict | None = None, as_=headers) -> list[str]:
        response = await http.get("/api/v1/transactions", headers=as_, params=params or {})
        assert response.status_code == 200, response.text
        return [t["txn_id"] for t in response.json()["items"]]

    everything = await ids()
    assert len(everything) == 4 and everything[1:] == [salary, cafe, grocer]  # newest first: the deposit is today's
    ledger = everything[0]
    assert ledger.startswith("L")
    page = (await http.get("/api/v1/transactions", headers=headers, params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 4 and [t["txn_id"] for t in page["items"]] == [salary, cafe]
    assert await ids({"from": "2026-11-02", "to": "2026-11-10"}) == [salary, cafe]
    assert await ids({"min_amount": "-20", "max_amount": "300"}) == [ledger, cafe]
    assert await ids({"merchant": "GROCER"}) == [grocer]
    assert await ids({"q": "coffee"}) == [cafe]
    assert await ids({"source": "csv", "max_amount": "-0.01"}) == [cafe, grocer]
    assert await ids({"account_id": account["id"]}) == [ledger]
    assert await ids({"category": "uncategorized", "source": "csv"}) == [salary, cafe, grocer]
    assert await ids({"merchant": "100%_"}) == []  # LIKE's wildcards are text here

    # Odd input: a clear 4xx, never a 5xx.
    bad = await http.get("/api/v1/transactions", headers=headers, params={"from": "2026-11-10", "to": "2026-11-01"})
    assert_error(bad, 422, "validation_error")
    assert_error(
        await http.get("/api/v1/transactions", headers=headers, params={"min_amount": "5", "max_amount": "1"}), 422
    )
    assert_error(await http.get("/api/v1/transactions", headers=headers, params={"from": "2026-13-01"}), 422)
    assert_error(await http.get("/api/v1/transactions", headers=headers, params={"source": "cash"}), 422)
    for odd in ("X1", "I", "L99999999999999999999", "I-1", "L999999999999", "i1"):
        assert_error(await http.get(f"/api/v1/transactions/{odd}", headers=headers), 404)
    assert_error(await http.patch("/api/v1/transactions/X1", headers=headers, json={"notes": "x"}), 404)

    # Another member: nothing of the owner's.
    assert_error(await http.get(f"/api/v1/transactions/{cafe}", headers=stranger), 404)
    assert_error(await http.patch(f"/api/v1/transactions/{cafe}", headers=stranger, json={"notes": "x"}), 404)
    assert await ids({"member_id": owner["id"]}, as_=stranger) == []

    # Staff read their organization's members' money and change none.
    admin = org.headers["org_admin"]
    assert (await http.get(f"/api/v1/transactions/{cafe}", headers=admin)).status_code == 200
    assert_error(await http.patch(f"/api/v1/transactions/{cafe}", headers=admin, json={"notes": "x"}), 403)

    # A share to read: seen, not changed; of expenses only: income hidden; to edit: changed.
    await _share(db, org.id, owner["id"], grantee["id"], "read")
    assert await ids({"member_id": owner["id"]}, as_=grantee_h) == everything
    assert (await http.get(f"/api/v1/transactions/{salary}", headers=grantee_h)).status_code == 200
    assert_error(await http.patch(f"/api/v1/transactions/{cafe}", headers=grantee_h, json={"notes": "x"}), 403)
    await _share(db, org.id, owner["id"], grantee["id"], "read", "expenses")
    assert await ids({"member_id": owner["id"]}, as_=grantee_h) == [cafe, grocer]
    assert_error(await http.get(f"/api/v1/transactions/{salary}", headers=grantee_h), 404)
    await _share(db, org.id, owner["id"], grantee["id"], "edit")
    edited = await http.patch(f"/api/v1/transactions/{cafe}", headers=grantee_h, json={"notes": "split with Sam"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["notes"] == "split with Sam"
    assert [(c["field"], c["new_value"], c["changed_by"]) for c in edited.json()["changes"]] == [
        ("notes", "split with Sam", grantee["id"])
    ]


async def test_manual_changes_rules_in_bulk_and_bulk_recategorisation(http, su, db):
    org, owner, headers, _, _, _, _, (grocer, cafe, salary) = await _world(http, su, db)
    ledger = (await http.get("/api/v1/transactions", headers=headers, params={"source": "ledger"})).json()["items"][0]
    txn = f"/api/v1/transactions/{grocer}"

    # A manual change: one history row per field changed, nothing for the same values again.
    patched = await http.patch(txn, headers=headers, json={"category_key": "groceries", "notes": "veg"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["category_key"], body["category_source"], body["notes"]) == ("groceries", "manual", "veg")
    assert {(c["field"], c["old_value"], c["new_value"], c["reason"]) for c in body["changes"]} == {
        ("category", "uncategorized", "groceries", "manual"),
        ("notes", None, "veg", "manual"),
    }
    again = await http.patch(txn, headers=headers, json={"category_key": "groceries", "notes": "veg"})
    assert len(again.json()["changes"]) == 2
    assert_error(await http.patch(txn, headers=headers, json={"category_key": "nope"}), 422, "unknown_category")
    assert_error(await http.patch(txn, headers=headers, json={"category_key": None}), 422)
    assert_error(await http.patch(txn, headers=headers, json={"amount": "1"}), 422)
    tagged = await http.patch(f"/api/v1/transactions/{ledger['txn_id']}", headers=headers, json={"notes": "gift"})
    assert tagged.json()["notes"] == "gift" and tagged.json()["category_key"] == ledger["category_key"]

    # Categories: predefined and the member's own; a key once.
    made = await http.post(
        "/api/v1/categories", headers=headers, json={"key": "pets", "name": "Pets", "kind": "expense"}
    )
    assert made.status_code == 201, made.text
    for key in ("pets", "groceries"):
        dup = await http.post("/api/v1/categories", headers=headers, json={"key": key, "name": "X", "kind": "expense"})
        assert_error(dup, 409, "duplicate")
    keys = {c["key"] for c in (await http.get("/api/v1/categories", headers=headers)).json()}
    assert {"pets", "groceries", "salary"} <= keys

    # Rules: a member's own; an invalid regular expression is a 422 from Postgres's own check.
    async def rule(**fields) -> dict:
        response = await http.post("/api/v1/category-rules", headers=headers, json=fields)
        assert response.status_code == 201, response.text
        return response.json()

    bad = await http.post(
        "/api/v1/category-rules", headers=headers, json={"match": "regex", "pattern": "(", "category_key": "dining"}
    )
    assert_error(bad, 422, "invalid_pattern")
    unknown = await http.post("/api/v1/category-rules", headers=headers, json={"pattern": "x", "category_key": "nope"})
    assert_error(unknown, 422, "unknown_category")
    await rule(field="merchant", pattern="cafe", category_key="dining")
    await rule(field="any", pattern="grocer", category_key="pets")  # the manual line keeps its category
    await rule(field="description", match="regex", pattern="^cash dep", category_key="savings", priority=5)
    assert len((await http.get("/api/v1/category-rules", headers=headers)).json()) == 3

    applied = await http.post("/api/v1/category-rules/apply", headers=headers, json={})
    assert applied.status_code == 200, applied.text
    assert applied.json()["changed"] == 2  # the cafe and the ledger posting
    by_id = {t["txn_id"]: t for t in (await http.get("/api/v1/transactions", headers=headers)).json()["items"]}
    assert (by_id[cafe]["category_key"], by_id[cafe]["category_source"]) == ("dining", "rule")
    assert by_id[ledger["txn_id"]]["category_key"] == "savings" and by_id[ledger["txn_id"]]["notes"] == "gift"
    assert (by_id[grocer]["category_key"], by_id[grocer]["category_source"]) == ("groceries", "manual")
    history = (await http.get(f"/api/v1/transactions/{cafe}", headers=headers)).json()["changes"]
    assert [(c["reason"], c["changed_by"]) for c in history] == [("rules_reapplied", owner["id"])]
    assert (await http.post("/api/v1/category-rules/apply", headers=headers, json={})).json()["changed"] == 0

    # Bulk re-categorisation, by the list's filters or by ids.
    recat = "/api/v1/transactions/recategorise"
    by_filter = await http.post(
        recat, headers=headers, json={"filters": {"merchant": "acme", "source": "csv"}, "category_key": "salary"}
    )
    assert by_filter.status_code == 200, by_filter.text
    assert by_filter.json() == {"changed": 1}
    by_ids = await http.post(recat, headers=headers, json={"txn_ids": [ledger["txn_id"], cafe], "category_key": "pets"})
    assert by_ids.json() == {"changed": 2}
    assert (await http.post(recat, headers=headers, json={"txn_ids": [cafe], "category_key": "pets"})).json() == {
        "changed": 0
    }
    after = (await http.get(f"/api/v1/transactions/{ledger['txn_id']}", headers=headers)).json()
    assert (after["category_key"], after["category_source"], after["changes"][-1]["reason"]) == (
        "pets",
        "manual",
        "bulk_recategorise",
    )
    assert (await http.get(f"/api/v1/transactions/{salary}", headers=headers)).json()["category_key"] == "salary"
    assert_error(await http.post(recat, headers=headers, json={"category_key": "pets"}), 422)
    assert_error(await http.post(recat, headers=headers, json={"txn_ids": ["Z1"], "category_key": "pets"}), 422)
    bad_range = {"filters": {"from": "2026-02-01", "to": "2026-01-01"}, "category_key": "pets"}
    assert_error(await http.post(recat, headers=headers, json=bad_range), 422)
    stranger = (await make_user(http, su, "member", org.id))[1]  # nothing of the owner's to change: none changed
    assert (await http.post(recat, headers=stranger, json={"txn_ids": [cafe], "category_key": "dining"})).json() == {
        "changed": 0
    }


async def test_who_manages_which_rules(http, su, db):
    org = await make_org(http, su, roles=("org_admin", "operator", "member"))
    other_org = await make_org(http, su, roles=("org_admin",))
    member, admin = org.headers["member"], org.headers["org_admin"]
    rules = "/api/v1/category-rules"

    org_rule = await http.post(rules, headers=admin, json={"pattern": "uber", "category_key": "transport"})
    assert org_rule.status_code == 201, org_rule.text
    assert org_rule.json()["user_id"] is None and org_rule.json()["org_id"] == org.id
    own = await http.post(rules, headers=member, json={"pattern": "vet", "category_key": "health", "priority": 1})
    assert own.status_code == 201 and own.json()["user_id"] == org.users["member"]["id"]
    org_url, own_url = f"{rules}/{org_rule.json()['id']}", f"{rules}/{own.json()['id']}"

    # A member sees their organization's rules and changes only their own; its admin the reverse.
    assert [r["id"] for r in (await http.get(rules, headers=member)).json()] == [
        own.json()["id"],
        org_rule.json()["id"],
    ]
    assert_error(await http.patch(org_url, headers=member, json={"priority": 1}), 403)
    assert_error(await http.patch(own_url, headers=admin, json={"priority": 2}), 403)
    assert (await http.get(own_url, headers=org.headers["operator"])).status_code == 200
    assert_error(await http.get(own_url, headers=other_org.headers["org_admin"]), 404)
    other = await http.post(rules, headers=admin, json={"pattern": "x", "category_key": "fees", "org_id": other_org.id})
    assert_error(other, 404)
    assert_error(await http.post(rules, headers=su, json={"pattern": "x", "category_key": "fees"}), 422, "org_required")
    changed = await http.patch(own_url, headers=member, json={"match": "regex", "pattern": "^vet(erinary)? "})
    assert changed.status_code == 200 and changed.json()["updated_at"]
    assert_error(await http.patch(own_url, headers=member, json={"pattern": "[z-a]"}), 422, "invalid_pattern")
    assert_error(await http.patch(own_url, headers=member, json={"min_amount": "9", "max_amount": "1"}), 422)
    assert (await http.delete(own_url, headers=member)).status_code == 204
    assert (await http.get(own_url, headers=member)).json()["active"] is False  # kept: history names it

    # Re-applying is the member's (or a superuser's for them); staff may see the member, not do it.
    member_id = org.users["member"]["id"]
    assert_error(await http.post(f"{rules}/apply", headers=admin, json={"member_id": member_id}), 403)
    assert_error(
        await http.post(f"{rules}/apply", headers=other_org.headers["org_admin"], json={"member_id": member_id}), 403
    )
    assert (await http.post(f"{rules}/apply", headers=su, json={"member_id": member_id})).json() == {"changed": 0}
