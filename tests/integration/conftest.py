"""Fixtures several integration modules share: a loan product, an organization with every approver role (loans),
and an organization with a funded account and a linked bank account (ACH)."""

import uuid

import pytest

from tests.conftest import make_org, make_user, open_account
from tests.integration.test_ach import link_external


@pytest.fixture(scope="module")
async def product(http, su):
    response = await http.post(
        "/api/v1/loan-products",
        headers=su,
        json={
            "name": f"Personal {uuid.uuid4().hex[:6]}",
            "annual_rate": "0.065",
            "min_term": 6,
            "max_term": 360,
            "min_amount": "1000.00",
            "max_amount": "500000.00",
            "amortization": "declining_balance",
            "frequency": "monthly",
            "day_count": "30/360",
            "grace_days": 10,
            "late_fee": "25.00",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def bank(http, su):
    """An organization with a member applicant and every approver role (three committee members)."""
    org = await make_org(http, su, roles=("org_admin", "member", "loan_officer", "branch_manager"))
    for n in range(3):
        org.users[f"committee{n}"], org.headers[f"committee{n}"] = await make_user(http, su, "credit_committee", org.id)
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    return org


@pytest.fixture
async def ach_org(http, su, sandbox_url, odfi):
    org = await make_org(http, su)
    org.account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="10000.00")
    org.external = await link_external(http, sandbox_url, org)
    return org
