"""Insights on a planted data set (imported lines inserted by SQL, one of them in euros): cash flow per month,
top merchants, categories with their shares, burn rate and trend, net worth over time; under the access policy
(another member: 404; a grantee of an expenses-only share: the expenses only; bank operations: 403); bad
parameters 422."""

import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.conftest import assert_error, bank_operations, make_org, make_user
from tests.integration.test_fx import provider  # noqa: F401  (the sandbox's default rates, an empty cache)
from tests.planted import planted_import

pytestmark = pytest.mark.usefixtures("provider")
V1 = "/api/v1/insights"
LINES = [  # posted_on, amount, currency, merchant, category
    (date(2025, 12, 20), "1000.00", "USD", None, "salary"),
    (date(2026, 1, 5), "3000.00", "USD", "Employer", "salary"),
    (date(2026, 1, 9), "-100.00", "USD", "FreshMart", "groceries"),
    (date(2026, 1, 12), "-50.00", "USD", "Bistro", "dining"),
    (date(2026, 1, 20), "-500.00", "USD", "Savings Co", "transfers"),
    (date(2026, 2, 5), "3000.00", "USD", "Employer", "salary"),
    (date(2026, 2, 9), "-200.00", "USD", "FreshMart", "groceries"),
    (date(2026, 2, 14), "-91.23", "EUR", "Le Café", "dining"),  # 100.00 USD at 0.9123
    (date(2026, 3, 5), "3000.00", "USD", "Employer", "salary"),
    (date(2026, 3, 9), "-300.00", "USD", "FreshMart", "groceries"),
]
Q1 = {"from": "2026-01-01", "to": "2026-03-31"}


@pytest.fixture(scope="module")
async def planted(http, su, db):
    org = await make_org(http, su, roles=("member", "operator"))
    member = org.users["member"]
    grantee, grantee_headers = await make_user(http, su, "member", org.id)
    stranger_headers = (await make_user(http, su, "member", org.id))[1]
    async with db.session() as session, session.begin():
        planted = await planted_import(session, org.id, member["id"])
        for posted_on, amount, currency, merchant, category in LINES:
            await session.execute(
                text(
                    "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, currency, "
                    "merchant, category_key, dedup_key) VALUES (:org, :user, :import, :account, 'csv', :on, :amount, :currency, "
                    ":merchant, :category, :key)"
                ),
                {
                    **planted,
                    "org": org.id,
                    "user": member["id"],
                    "on": posted_on,
                    "amount": Decimal(amount),
                    "currency": currency,
                    "merchant": merchant,
                    "category": category,
                    "key": uuid.uuid4().hex,
                },
            )
        await session.execute(
            text(
                "INSERT INTO money_shares (id, org_id, owner_id, grantee_id, what, access, scope) "
                "VALUES (:id, :org, :owner, :grantee, 'transactions', 'read', 'expenses')"
            ),
            {"id": uuid.uuid4(), "org": org.id, "owner": member["id"], "grantee": grantee["id"]},
        )
    return org, grantee_headers, stranger_headers


async def get(http, headers, path: str, **params):
    response = await http.get(f"{V1}/{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_cash_flow_per_month_leaves_transfers_out_and_converts_euros(http, planted):
    org, _, _ = planted
    me = org.headers["member"]
    flow = await get(http, me, "cash-flow", **Q1)
    assert flow["currency"] == "USD"
    assert [(m["month"], m["income"], m["expenses"], m["net"]) for m in flow["months"]] == [
        ("2026-01", "3000.00", "150.00", "2850.00"),
        ("2026-02", "3000.00", "300.00", "2700.00"),
        ("2026-03", "3000.00", "300.00", "2700.00"),
    ]
    assert (flow["income"], flow["expenses"]) == ("9000.00", "750.00")
    assert [(r["currency"], r["rate"]) for r in flow["rates"]] == [("EUR", str(1 / Decimal("0.9123")))]

    in_euros = await get(http, me, "cash-flow", currency="EUR", **Q1)
    feb = in_euros["months"][1]
    assert feb["expenses"] == str((Decimal("200") * Decimal("0.9123") + Decimal("91.23")).quantize(Decimal("0.01")))


async def test_top_merchants_categories_burn_rate_and_net_worth(http, planted):
    org, _, _ = planted
    me = org.headers["member"]
    top = await get(http, me, "top-merchants", limit=2, **Q1)
    assert [(m["merchant"], m["spent"], m["transactions"]) for m in top["merchants"]] == [
        ("FreshMart", "600.00", 3),
        ("Le Café", "100.00", 1),
    ]

    cats = {c["category"]: c for c in (await get(http, me, "categories", **Q1))["categories"]}
    assert (cats["groceries"]["expenses"], cats["groceries"]["share_of_expenses_pct"]) == ("600.00", "80.00")
    assert (cats["dining"]["expenses"], cats["dining"]["share_of_expenses_pct"]) == ("150.00", "20.00")
    assert (cats["transfers"]["expenses"], cats["transfers"]["share_of_expenses_pct"]) == ("500.00", "0.00")
    assert cats["salary"]["income"] == "9000.00" and cats["salary"]["name"] == "Salary"

    burn = await get(http, me, "burn-rate", months=3, as_of="2026-04-15")
    assert [m["expenses"] for m in burn["months"]] == ["150.00", "300.00", "300.00"]
    assert (burn["average_monthly_expenses"], burn["trend_per_month"], burn["trend"]) == ("250.00", "75.00", "rising")

    worth = await get(http, me, "net-worth", **Q1)
    assert worth["rates_as_of"] == "latest"
    assert [(p["month"], p["net_worth"]) for p in worth["points"]] == [
        ("2026-01", "3350.00"),
        ("2026-02", "6050.00"),
        ("2026-03", "8750.00"),
    ]
    assert worth["points"][-1]["by_currency"] == {"EUR": "-91.23", "USD": "8850.00"}


async def test_who_sees_what(http, su, planted):
    org, grantee, stranger = planted
    member_id = org.users["member"]["id"]
    # A grantee of an expenses-only share: the expenses, never the income.
    shared = await get(http, grantee, "cash-flow", member_id=member_id, **Q1)
    assert (shared["income"], shared["expenses"]) == ("0.00", "750.00")
    # The organization's operator reads them (support); a superuser too.
    assert (await get(http, org.headers["operator"], "cash-flow", member_id=member_id, **Q1))["income"] == "9000.00"
    assert (await get(http, su, "top-merchants", member_id=member_id, **Q1))["merchants"][0]["merchant"] == "FreshMart"
    # Another member of the organization, without a share: 404 as for no member; their own insights are empty.
    for path in ("cash-flow", "top-merchants", "categories", "burn-rate", "net-worth"):
        response = await http.get(f"{V1}/{path}", params={"member_id": member_id}, headers=stranger)
        assert_error(response, 404, "not_found")
    own = await get(http, stranger, "categories", **Q1)
    assert own["categories"] == [] and own["rates"] == []
    assert_error(await http.get(f"{V1}/cash-flow", params={"member_id": str(uuid.uuid4())}, headers=su), 404)
    # Bank operations see no member's money.
    assert_error(await http.get(f"{V1}/cash-flow", headers=await bank_operations(http, su)), 403)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("cash-flow", {"from": "2026-03-01", "to": "2026-01-01"}),
        ("cash-flow", {"from": "not-a-date"}),
        ("cash-flow", {"from": "1990-01-01", "to": "2026-01-01"}),
        ("top-merchants", {"limit": 0}),
        ("top-merchants", {"limit": 101}),
        ("burn-rate", {"months": 37}),
        ("net-worth", {"currency": "XYZ"}),
        ("categories", {"member_id": "not-a-uuid"}),
    ],
)
async def test_bad_parameters_are_422(http, planted, path, params):
    org, _, _ = planted
    assert_error(await http.get(f"{V1}/{path}", params=params, headers=org.headers["member"]), 422)
