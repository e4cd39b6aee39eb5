import uuid

import pytest

from tests.conftest import assert_error, make_org

PRODUCTS, RULES = "/api/v1/loan-products", "/api/v1/approval-rules"
DEFAULT_RULE_IDS = [
    str(uuid.uuid5(uuid.NAMESPACE_URL, f"backoffice:approval-rule:{name}"))
    for name in (
        "Up to 10,000: a loan officer",
        "Up to 100,000: officer, then branch manager",
        "Above 100,000: officer, manager, then 2 of 3 of the credit committee",
    )
]


def product_body(**changes) -> dict:
    return {
        "name": f"Personal {uuid.uuid4().hex[:8]}",
        "annual_rate": "0.065",
        "min_term": 6,
        "max_term": 36,
        "min_amount": "1000",
        "max_amount": "25000.00",
        "amortization": "declining_balance",
        "frequency": "monthly",
        "day_count": "30/360",
        "grace_days": 10,
        "late_fee": "25.00",
        **changes,
    }


def level(role: str = "loan_officer", **changes) -> dict:
    return {
        "role": role,
        "quorum": 1,
        "deadline_seconds": 3600,
        "reminder_seconds": 600,
        "escalation_role": None,
        **changes,
    }


def rule_body(**changes) -> dict:
    # A member type of its own, so that the rule never routes another test's loans.
    return {
        "name": f"Rule {uuid.uuid4().hex[:8]}",
        "priority": 1,
        "min_amount": "0.01",
        "max_amount": None,
        "member_type": f"test-{uuid.uuid4().hex[:8]}",
        "levels": [level()],
        "final_outcome": "hold",
        **changes,
    }


def assert_invalid(response, *loc) -> None:
    """A 422 whose details name the field at `loc` (under the body)."""
    error = assert_error(response, 422, "validation_error")
    assert ["body", *loc] in [detail["loc"] for detail in error["details"]], error


async def audit_actions(http, su, entity_id: str) -> list[dict]:
    rows = (await http.get("/api/v1/audit", headers=su, params={"entity_id": entity_id})).json()["items"]
    return list(reversed(rows))


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"annual_rate": "1"}, "annual_rate"),
        ({"annual_rate": "-0.01"}, "annual_rate"),
        ({"annual_rate": "0.0650001"}, "annual_rate"),
        ({"min_term": 0}, "min_term"),
        ({"min_term": 40}, "max_term"),
        ({"min_amount": "0"}, "min_amount"),
        ({"max_amount": "999.99"}, "max_amount"),
        ({"max_amount": "1000.001"}, "max_amount"),
        ({"amortization": "balloon"}, "amortization"),
        ({"frequency": "daily"}, "frequency"),
        ({"day_count": "actual/364"}, "day_count"),
        ({"grace_days": -1}, "grace_days"),
        ({"late_fee": "-1.00"}, "late_fee"),
        ({"name": "  "}, "name"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_a_loan_product_is_validated_field_by_field(http, su, changes, field):
    assert_invalid(await http.post(PRODUCTS, headers=su, json=product_body(**changes)), field)


async def test_loan_products_are_written_by_superusers_read_by_everyone_and_deactivated_softly(http, su):
    org = await make_org(http, su)
    member = org.headers["member"]
    created = await http.post(PRODUCTS, headers=su, json=product_body())
    assert created.status_code == 201, created.text
    product = created.json()
    assert (product["annual_rate"], product["min_amount"], product["active"]) == ("0.065000", "1000.00", True)
    url = f"{PRODUCTS}/{product['id']}"
    assert (await http.get(url, headers=member)).json() == product
    assert_error(await http.post(PRODUCTS, headers=su, json=product_body(name=product["name"])), 409, "duplicate")
    for write in (
        http.post(PRODUCTS, headers=member, json=product_body()),
        http.patch(url, headers=org.headers["org_admin"], json={"grace_days": 1}),
        http.put(url, headers=member, json=product_body()),
        http.delete(url, headers=member),
    ):
        assert_error(await write, 403, "forbidden")

    patched = await http.patch(url, headers=su, json={"annual_rate": "0.07", "max_term": 48})
    assert (
        patched.status_code == 200 and patched.json()["annual_rate"] == "0.070000" and patched.json()["max_term"] == 48
    )
    assert_invalid(
        await http.patch(url, headers=su, json={"min_term": 60}), "max_term"
    )  # checked against the stored 48
    assert_invalid(await http.patch(url, headers=su, json={"amortization": None}), "amortization")
    replaced = await http.put(url, headers=su, json=product_body(name=product["name"], amortization="flat"))
    assert replaced.status_code == 200 and replaced.json()["amortization"] == "flat"
    assert replaced.json()["annual_rate"] == "0.065000" and replaced.json()["updated_at"]

    listed = (
        await http.get(PRODUCTS, headers=member, params={"name": product["name"].upper(), "amortization": "flat"})
    ).json()
    assert [p["id"] for p in listed["items"]] == [product["id"]] and listed["total"] == 1

    assert (await http.delete(url, headers=su)).status_code == 204
    assert (await http.delete(url, headers=su)).status_code == 204  # deactivating twice is deactivating once
    assert_error(await http.get(url, headers=member), 404)
    assert (await http.get(PRODUCTS, headers=member, params={"name": product["name"]})).json()["total"] == 0
    assert_error(await http.get(PRODUCTS, headers=member, params={"active": "false"}), 403)
    inactive = (await http.get(PRODUCTS, headers=su, params={"active": "false", "name": product["name"]})).json()
    assert [p["active"] for p in inactive["items"]] == [False]
    assert (await http.get(url, headers=su)).json()["active"] is False
    assert (await http.patch(url, headers=su, json={"active": True})).json()["active"] is True

    log = await audit_actions(http, su, product["id"])
    assert [row["action"] for row in log] == [
        "loan_product.created",
        "loan_product.updated",
        "loan_product.updated",
        "loan_product.deactivated",
        "loan_product.updated",
    ]
    assert log[0]["before"] is None and log[0]["after"]["annual_rate"] == "0.065000"
    assert (log[1]["before"]["annual_rate"], log[1]["after"]["annual_rate"]) == ("0.065000", "0.070000")
    assert (log[3]["before"]["active"], log[3]["after"]["active"]) == (True, False)
    assert {row["actor"] for row in log} == {"root@tests.example"}


async def test_the_three_default_approval_rules_are_listed_in_routing_order(http, su):
    listed = (await http.get(RULES, headers=su, params={"limit": 500})).json()
    defaults = [rule for rule in listed["items"] if rule["id"] in DEFAULT_RULE_IDS]
    assert [rule["id"] for rule in defaults] == DEFAULT_RULE_IDS
    assert [[lvl["role"] for lvl in rule["levels"]] for rule in defaults] == [
        ["loan_officer"],
        ["loan_officer", "branch_manager"],
        ["loan_officer", "branch_manager", "credit_committee"],
    ]
    assert [(r["min_amount"], r["max_amount"]) for r in defaults] == [
        ("0.01", "10000.00"),
        ("10000.01", "100000.00"),
        ("100000.01", None),
    ]
    assert defaults[2]["levels"][2]["quorum"] == 2 and [r["final_outcome"] for r in defaults] == [
        "decline",
        "hold",
        "hold",
    ]


@pytest.mark.parametrize(
    "changes, loc",
    [
        ({"levels": []}, ("levels",)),
        ({"levels": [level(role="teller")]}, ("levels", 0, "role")),
        ({"levels": [level(), level(quorum=0)]}, ("levels", 1, "quorum")),
        ({"levels": [level(deadline_seconds=0)]}, ("levels", 0, "deadline_seconds")),
        ({"levels": [level(reminder_seconds=3600)]}, ("levels", 0, "reminder_seconds")),
        ({"levels": [level(reminder_seconds=-1)]}, ("levels", 0, "reminder_seconds")),
        ({"levels": [level(escalation_role="member")]}, ("levels", 0, "escalation_role")),
        ({"levels": [{"role": "org_admin"}]}, ("levels", 0, "deadline_seconds")),
        ({"min_amount": "500.00", "max_amount": "499.99"}, ("max_amount",)),
        ({"min_amount": "-1"}, ("min_amount",)),
        ({"final_outcome": "approve"}, ("final_outcome",)),
        ({"member_type": "Business!"}, ("member_type",)),
        ({"priority": "first"}, ("priority",)),
    ],
)
async def test_an_approval_rule_is_validated_field_by_field(http, su, changes, loc):
    assert_invalid(await http.post(RULES, headers=su, json=rule_body(**changes)), *loc)


async def test_approval_rules_are_superuser_only_audited_and_deactivated_softly(http, su):
    org = await make_org(http, su, roles=("org_admin",))
    admin = org.headers["org_admin"]
    created = await http.post(
        RULES,
        headers=su,
        json=rule_body(levels=[level(escalation_role="branch_manager"), level("credit_committee", quorum=2)]),
    )
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["active"] and rule["max_amount"] is None and rule["levels"][1]["quorum"] == 2
    url = f"{RULES}/{rule['id']}"
    for request in (
        http.get(RULES, headers=admin),
        http.get(url, headers=admin),
        http.post(RULES, headers=admin, json=rule_body()),
        http.patch(url, headers=admin, json={"priority": 2}),
        http.delete(url, headers=admin),
    ):
        assert_error(await request, 403, "forbidden")
    assert_error(await http.post(RULES, headers=su, json=rule_body(name=rule["name"])), 409, "duplicate")

    patched = await http.patch(url, headers=su, json={"priority": 5, "max_amount": "5000"})
    assert patched.status_code == 200 and (patched.json()["priority"], patched.json()["max_amount"]) == (5, "5000.00")
    assert_invalid(await http.patch(url, headers=su, json={"min_amount": "6000.00"}), "max_amount")
    assert_invalid(await http.patch(url, headers=su, json={"levels": [level(quorum=0)]}), "levels", 0, "quorum")
    assert_invalid(await http.patch(url, headers=su, json={"levels": None}), "levels")
    listed = (await http.get(RULES, headers=su, params={"member_type": rule["member_type"]})).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]

    assert (await http.delete(url, headers=su)).status_code == 204
    assert (await http.get(url, headers=su)).json()["active"] is False
    inactive = (
        await http.get(RULES, headers=su, params={"active": "false", "member_type": rule["member_type"]})
    ).json()
    assert inactive["total"] == 1
    assert_error(await http.get(f"{RULES}/{uuid.uuid4()}", headers=su), 404, "not_found")

    log = await audit_actions(http, su, rule["id"])
    assert [row["action"] for row in log] == [
        "approval_rule.created",
        "approval_rule.updated",
        "approval_rule.deactivated",
    ]
    assert log[0]["after"]["levels"][1]["role"] == "credit_committee"
    assert (log[1]["before"]["priority"], log[1]["after"]["priority"]) == (1, 5)
    assert (log[1]["before"]["max_amount"], log[1]["after"]["max_amount"]) == (None, "5000.00")
    assert (log[2]["before"]["active"], log[2]["after"]["active"]) == (True, False)
