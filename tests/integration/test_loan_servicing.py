"""Loan servicing on a compressed clock (a loan day lasts 0.2 s): the disbursement as an ACH credit child payment,
an auto-debit on each due date through an ACH debit child (on time, and an R01 return re-presented), a late fee
after the grace days with arrears and aging buckets, cleared by a repayment."""

import uuid
from decimal import Decimal

import pytest

from tests.conftest import ApiServer, make_org, open_account
from tests.integration.test_ach import link_external, odfi_entries, wait_status
from tests.integration.test_loans import FINAL, apply, decide, level, rule, wait_loan, waiting_on
from tests.polling import poll

DAY_SECONDS = 0.2


@pytest.fixture(scope="module")
async def clock_api(settings, worker):
    """The API with a compressed servicing clock (the worker takes the clock from each loan's input), and loans
    that continue as new after 3 servicing wake-ups, so servicing is proved to carry over from run to run."""
    async with ApiServer(
        settings.model_copy(update={"loan_day_seconds": DAY_SECONDS, "loan_rounds_per_run": 3})
    ) as server:
        yield server


@pytest.fixture(scope="module")
async def api(clock_api):
    import httpx

    async with httpx.AsyncClient(base_url=clock_api.url, timeout=30) as client:
        yield client


async def zero_rate_product(http, su, grace_days: int) -> dict:
    """0 % and equal principal: every installment is the amount over the term, so its cents pick the sandbox
    bank's scenario (.11 is returned R01 once, then settles when re-presented)."""
    response = await http.post(
        "/api/v1/loan-products",
        headers=su,
        json={
            "name": f"Servicing {uuid.uuid4().hex[:6]}",
            "annual_rate": "0",
            "min_term": 1,
            "max_term": 12,
            "min_amount": "100.00",
            "max_amount": "10000.00",
            "amortization": "equal_principal",
            "frequency": "monthly",
            "day_count": "30/360",
            "grace_days": grace_days,
            "late_fee": "15.00",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def active_loan(api, su, sandbox_url, odfi, product, amount: str, term: int, auto_debit: bool):
    """An approved, disbursed loan of a fresh member, approved by the officer of a one-level rule."""
    org = await make_org(api, su, roles=("org_admin", "member", "loan_officer"))
    org.account = await open_account(api, su, org.id, org.users["member"]["id"], deposit="1000.00")
    org.external = await link_external(api, sandbox_url, org, owner_id=org.users["member"]["id"])
    member_type = await rule(api, su, [level("loan_officer")])
    extra = {"external_account_id": org.external["id"], "auto_debit": True} if auto_debit else {}
    loan = await apply(api, sandbox_url, org, product, amount=amount, member_type=member_type, term=term, **extra)
    state = await waiting_on(api, su, loan["id"], 1, "loan_officer")
    assert (await decide(api, org.headers["loan_officer"], state["request_id"])).status_code == 200
    loan = await wait_loan(api, su, loan["id"], FINAL)
    assert loan["status"] == "active", loan
    return org, loan


async def test_disbursed_by_ach_credit_then_each_installment_auto_debited_on_its_due_date(
    api, su, sandbox_url, odfi, db, temporal_env
):
    product = await zero_rate_product(api, su, grace_days=25)
    org, loan = await active_loan(api, su, sandbox_url, odfi, product, amount="300.75", term=2, auto_debit=True)
    # The disbursement is an ACH credit child payment: settled at the bank before the loan went active.
    credit = (await api.get(f"/api/v1/payments/{loan['disbursement_payment_id']}", headers=su)).json()
    assert credit["kind"] == "ach_credit" and Decimal(credit["amount"]) == Decimal("300.75")
    assert credit["status"] in ("settled", "completed")
    assert len(await odfi_entries(odfi, credit["trace_number"])) == 1
    # Installments of 150.37 and 150.38, each pulled by an ACH debit on its due date and applied once completed.
    schedule = await poll(
        lambda: _schedule(api, org, loan),
        lambda rows: all(r["paid_at"] for r in rows),
        timeout=40,
        what="installments not all paid",
    )
    for row in schedule:
        debit = (await api.get(f"/api/v1/payments/{row['auto_debit_payment_id']}", headers=su)).json()
        assert debit["kind"] == "ach_debit" and debit["status"] == "completed" and debit["presentments"] == 1
        assert Decimal(debit["amount"]) == Decimal(row["payment"]) and row["late_fee"] == "0.00"
        assert row["paid"] == row["payment"]
    closed = await wait_loan(api, su, loan["id"], {"closed"})
    assert closed["days_past_due"] == 0 and closed["aging_bucket"] is None
    # Servicing went on across runs: the loan continued as new, the debits' progress reaching the latest run.
    runs = [run async for run in temporal_env.client.list_workflows(f"WorkflowId = '{loan['workflow_id']}'")]
    assert len(runs) >= 2
    # The member's deposit account is where it started: the loan came in and went out, each debit came in and
    # went to the loan; the loan account is back to zero.
    account = (await api.get(f"/api/v1/accounts/{org.account['id']}", headers=su)).json()
    assert account["ledger_balance"] == "1000.00"
    loan_account = (await api.get(f"/api/v1/accounts/{loan['loan_account_id']}", headers=su)).json()
    assert loan_account["ledger_balance"] == "0.00"


async def test_an_auto_debit_returned_r01_is_re_presented_and_then_repays(api, su, sandbox_url, odfi):
    product = await zero_rate_product(api, su, grace_days=25)
    org, loan = await active_loan(api, su, sandbox_url, odfi, product, amount="100.11", term=1, auto_debit=True)
    schedule = await poll(
        lambda: _schedule(api, org, loan), lambda rows: rows[0]["paid_at"], timeout=40, what="installment not paid"
    )
    debit = await wait_status(api, su, schedule[0]["auto_debit_payment_id"], {"completed"})
    assert debit["presentments"] == 2 and debit["return_code"] == "R01"
    statuses = [event["status"] for event in debit["events"]]
    assert statuses.index("returned") < statuses.index("settled") and statuses[-1] == "completed"
    assert schedule[0]["paid"] == "100.11" and schedule[0]["late_fee"] == "0.00"
    assert (await wait_loan(api, su, loan["id"], {"closed"}))["status"] == "closed"


async def test_no_late_fee_while_the_installments_own_auto_debit_is_still_clearing(api, su, sandbox_url, odfi):
    """A 1-day grace period (0.2 s here) ends long before the debit taken on the due date settles (found by the
    chaos run, where loan days are short): the member paid on time, so no fee; before, the fee was charged, the
    debit paid it first, and the principal left over was never collected: the loan stayed active for ever."""
    product = await zero_rate_product(api, su, grace_days=1)
    org, loan = await active_loan(api, su, sandbox_url, odfi, product, amount="300.00", term=2, auto_debit=True)
    closed = await wait_loan(api, su, loan["id"], {"closed"}, timeout=60)
    assert closed["status"] == "closed" and closed["days_past_due"] == 0
    schedule = await _schedule(api, org, loan)
    assert [(r["late_fee"], r["paid"]) for r in schedule] == [("0.00", "150.00"), ("0.00", "150.00")]
    for row in schedule:
        debit = (await api.get(f"/api/v1/payments/{row['auto_debit_payment_id']}", headers=su)).json()
        assert debit["status"] == "completed" and Decimal(debit["amount"]) == Decimal("150.00")


async def test_unpaid_installment_gets_its_late_fee_ages_through_buckets_and_a_repayment_clears_it(
    api, su, sandbox_url, odfi, db
):
    product = await zero_rate_product(api, su, grace_days=2)
    org, loan = await active_loan(api, su, sandbox_url, odfi, product, amount="900.00", term=3, auto_debit=False)
    member = org.headers["member"]
    # Installment 1 (due on loan day 30) goes unpaid: past the 2 grace days it carries the product's late fee,
    # and the loan shows in the 1-30 bucket (the list filter finds it).
    await poll(
        lambda: _schedule(api, org, loan), lambda rows: rows[0]["late_fee"] == "15.00", timeout=15, what="no late fee"
    )
    late = (await api.get(f"/api/v1/loans/{loan['id']}", headers=member)).json()
    assert late["aging_bucket"] == "1-30" and late["days_past_due"] >= 3
    listed = (await api.get("/api/v1/loans", headers=su, params={"aging_bucket": "1-30", "in_arrears": True})).json()
    assert loan["id"] in {item["id"] for item in listed["items"]}
    # While in arrears, the member's next application is declined at eligibility.
    another = await apply(api, sandbox_url, org, product, amount="200.00", term=2)
    declined = await wait_loan(api, su, another["id"], FINAL)
    assert declined["status"] == "declined" and "arrears" in declined["decline_reason"]
    # A month later it is 31-60 days past due, installment 2 late too.
    await poll(
        lambda: api.get(f"/api/v1/loans/{loan['id']}", headers=member),
        lambda r: r.json()["aging_bucket"] == "31-60",
        timeout=15,
        what="not aged to 31-60",
    )
    rows = await poll(
        lambda: _schedule(api, org, loan),
        lambda rows: rows[1]["late_fee"] == "15.00",
        timeout=5,
        what="no second late fee",
    )
    owed = sum(Decimal(r["payment"]) + Decimal(r["late_fee"]) - Decimal(r["paid"]) for r in rows[:2])
    assert owed == Decimal("630.00")
    repaid = await api.post(
        f"/api/v1/loans/{loan['id']}/repayments",
        headers={**member, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": str(owed)},
    )
    assert repaid.status_code == 200, repaid.text
    assert repaid.json()["fees"] == "30.00" and repaid.json()["principal"] == "600.00"
    current = await poll(
        lambda: api.get(f"/api/v1/loans/{loan['id']}", headers=member),
        lambda r: r.json()["aging_bucket"] is None,
        timeout=5,
        what="still in arrears",
    )
    assert current.json()["days_past_due"] == 0
    fees = (await api.get(f"/api/v1/loans/{loan['id']}/schedule", headers=member)).json()
    assert [r["late_fee"] for r in fees] == ["15.00", "15.00", "0.00"]


async def _schedule(api, org, loan) -> list[dict]:
    response = await api.get(f"/api/v1/loans/{loan['id']}/schedule", headers=org.headers["member"])
    assert response.status_code == 200, response.text
    return response.json()
