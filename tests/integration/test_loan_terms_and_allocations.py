"""Issue 9, A3, A4 and the loan parts of A10, on the real stack: a loan keeps the terms it was written on; every
repayment's split is stored per installment and component (a late fee after a partial payment, a late return
of an auto-debit after the loan closed); a bureau refusing our credentials, and terms no schedule fits."""

import asyncio
import io
import uuid
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import text

from finance.amortization import (
    AmortizationMethod,
    Frequency,
    LoanTerms,
    build_schedule,
    payoff_amount,
    remaining_schedule,
)
from finance.daycount import DayCount
from models.loans import LoanInput
from tests.conftest import ApiServer, assert_error, make_org, open_account
from tests.integration.test_ach import link_external, wait_status
from tests.integration.test_loan_servicing import api, clock_api  # noqa: F401  (fixtures: a loan day is 0.2 s)
from tests.integration.test_loans import FINAL, apply, decide, level, rule, wait_loan, waiting_on
from tests.polling import poll
from workflows.loan import LoanWorkflow

D = Decimal


@pytest.fixture(scope="module")
async def slow_api(settings, worker):
    """A loan day of 0.5 s: a due date 15 s after activation, and 15 s between two due dates, so a test can act
    between servicing steps without racing them."""
    async with (
        ApiServer(settings.model_copy(update={"loan_day_seconds": 0.5, "loan_rounds_per_run": 3})) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        yield client


async def make_product(http, su, **terms) -> dict:
    response = await http.post(
        "/api/v1/loan-products",
        headers=su,
        json={
            "name": f"Terms {uuid.uuid4().hex[:8]}",
            "min_term": 1,
            "max_term": 360,
            "min_amount": "0.01",
            "max_amount": "100000.00",
            "frequency": "monthly",
            **terms,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def member_org(http, su, sandbox_url, external: bool = False):
    org = await make_org(http, su, roles=("org_admin", "operator", "member", "loan_officer"))
    org.account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="1000.00")
    if external:
        org.external = await link_external(http, sandbox_url, org, owner_id=org.users["member"]["id"])
    return org


async def approved(http, su, sandbox_url, org, product, amount: str, term: int, **extra) -> dict:
    """An active loan, approved by the officer of a one-level rule."""
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, org, product, amount=amount, member_type=member_type, term=term, **extra)
    state = await waiting_on(http, su, loan["id"], 1, "loan_officer")
    assert (await decide(http, org.headers["loan_officer"], state["request_id"])).status_code == 200
    loan = await wait_loan(http, su, loan["id"], FINAL)
    assert loan["status"] == "active", loan
    # The row says active once the activation activity has written it; the workflow, which answers repayments,
    # is active once it has processed that activity's result, which its published status says.
    return await _workflow_active(http, su, loan)


async def _workflow_active(http, su, loan: dict) -> dict:
    async def fetch() -> dict:
        return (await http.get(f"/api/v1/loans/{loan['id']}", headers=su)).json()

    return await poll(
        fetch,
        lambda row: row["workflow_status"] == "active",
        20,
        what=lambda row: f"loan {loan['id']}'s workflow still {row['workflow_status']}",
    )


async def schedule_of(http, org, loan) -> list[dict]:
    response = await http.get(f"/api/v1/loans/{loan['id']}/schedule", headers=org.headers["member"])
    assert response.status_code == 200, response.text
    return response.json()


async def repay(http, org, loan, amount, mode="installment") -> httpx.Response:
    return await http.post(
        f"/api/v1/loans/{loan['id']}/repayments",
        json={"amount": str(amount), "mode": mode},
        headers={**org.headers["member"], "Idempotency-Key": uuid.uuid4().hex},
    )


async def balance(http, su, account_id) -> Decimal:
    return D((await http.get(f"/api/v1/accounts/{account_id}", headers=su)).json()["ledger_balance"])


def pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)


async def fee_income_of(db, loan_id) -> Decimal:
    """What this loan's entries credited to fee income."""
    async with db.session() as session:
        return -(
            await session.execute(
                text(
                    "SELECT coalesce(sum(p.amount), 0) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
                    "JOIN ledger_accounts a ON a.id = p.account_id WHERE a.code = 'GL-FEE-INCOME' "
                    "AND e.idempotency_key LIKE :k"
                ),
                {"k": f"loan:{loan_id}:%"},
            )
        ).scalar_one()


async def assert_books_agree(http, su, db, org, loan) -> list[dict]:
    """The invariants: the receivable is the principal still owed per the allocations, fee income is the fees
    allocated, and each installment's paid parts add up."""
    rows = await schedule_of(http, org, loan)
    owed_principal = sum(D(r["principal"]) - D(r["principal_paid"]) for r in rows)
    assert await balance(http, su, loan["loan_account_id"]) == owed_principal, rows
    assert await fee_income_of(db, loan["id"]) == sum(D(r["fee_paid"]) for r in rows), rows
    for r in rows:
        assert D(r["paid"]) == D(r["fee_paid"]) + D(r["interest_paid"]) + D(r["principal_paid"])
        assert D(r["owed"]) == D(r["payment"]) + D(r["late_fee"]) - D(r["paid"])
    return rows


# --- A3: a loan keeps the terms it was written on ------------------------------------------------------------


async def test_a_written_loan_keeps_its_terms_when_its_product_changes(slow_api, su, sandbox_url, db):
    http = slow_api
    product = await make_product(
        http,
        su,
        annual_rate="0.12",
        amortization="declining_balance",
        day_count="30/360",
        grace_days=2,
        late_fee="15.00",
    )
    org = await member_org(http, su, sandbox_url)
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, org, product, amount="1200.00", member_type=member_type, term=3)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    # While the loan waits for approval, the product changes every term it has.
    changed = await http.patch(
        f"/api/v1/loan-products/{product['id']}",
        headers=su,
        json={
            "annual_rate": "0.24",
            "amortization": "flat",
            "day_count": "actual/365",
            "grace_days": 20,
            "late_fee": "99.00",
        },
    )
    assert changed.status_code == 200, changed.text
    assert (await decide(http, org.headers["loan_officer"], request_id)).status_code == 200
    loan = await wait_loan(http, su, loan["id"], FINAL)
    assert loan["status"] == "active", loan

    rows = await schedule_of(http, org, loan)
    first_due = date.fromisoformat(rows[0]["due_date"])
    written = LoanTerms(
        D("1200.00"),
        D("0.12"),
        3,
        AmortizationMethod.DECLINING_BALANCE,
        Frequency.MONTHLY,
        first_due,
        DayCount.THIRTY_360,
    )
    expected = build_schedule(written).installments
    assert [(D(r["payment"]), D(r["interest"]), D(r["principal"])) for r in rows] == [
        (i.payment, i.interest, i.principal) for i in expected
    ]

    # The agreement, written after the change, states the original terms and schedule.
    agreement = pdf_text(
        (await http.get(f"/api/v1/loans/{loan['id']}/agreement.pdf", headers=org.headers["member"])).content
    )
    assert "12.000% a year" in agreement and "24.000%" not in agreement
    assert "Equal installments, interest on the declining balance" in agreement
    assert "Late fee $15.00" in agreement and "within 2 days after its due date" in agreement
    assert f"${expected[0].payment:,}" in agreement and "$99.00" not in agreement
    assert (loan["annual_rate"], loan["amortization"], loan["day_count"], loan["grace_days"], loan["late_fee"]) == (
        "0.120000",
        "declining_balance",
        "30/360",
        2,
        "15.00",
    )

    # A prepayment re-amortizes on the original terms (nothing is due or paid yet: all three installments).
    prepaid = await repay(http, org, loan, "300.00", mode="prepayment")
    assert prepaid.status_code == 200, prepaid.text
    rest = remaining_schedule(written, D("900.00"), 0).installments
    rows = await schedule_of(http, org, loan)
    assert [(D(r["payment"]), D(r["interest"]), D(r["principal"])) for r in rows] == [
        (i.payment, i.interest, i.principal) for i in rest
    ]

    # The payoff quote accrues interest at the loan's rate and day count (as if disbursed ten days ago; before
    # any installment falls due on the loan's clock).
    async with db.session() as session, session.begin():
        await session.execute(
            text("UPDATE loans SET disbursed_at = disbursed_at - interval '10 days' WHERE id = :l"), {"l": loan["id"]}
        )
        disbursed = (
            await session.execute(text("SELECT disbursed_at FROM loans WHERE id = :l"), {"l": loan["id"]})
        ).scalar_one()
    quote = (await http.get(f"/api/v1/loans/{loan['id']}/payoff-quote", headers=org.headers["member"])).json()
    as_of = date.fromisoformat(quote["as_of"])
    at_loan_terms = payoff_amount(D("900.00"), D("0.12"), DayCount.THIRTY_360, disbursed.date(), as_of)
    at_product_terms = payoff_amount(D("900.00"), D("0.24"), DayCount.ACTUAL_365, disbursed.date(), as_of)
    assert D(quote["amount"]) == at_loan_terms != at_product_terms

    # The late fee is the loan's, charged once its own grace days have passed.
    rows = await poll(
        lambda: schedule_of(http, org, loan),
        lambda rows: rows[0]["late_fee_assessed_at"],
        timeout=40,
        what="no late fee on installment 1",
    )
    assert rows[0]["late_fee"] == "15.00"
    log = await http.get("/api/v1/audit", headers=su, params={"entity_id": loan["id"], "action": "loan.late_fee"})
    [charged] = [item for item in log.json()["items"] if item["after"]["installment"] == 1]
    late_by = date.fromisoformat(charged["after"]["as_of"]) - date.fromisoformat(charged["after"]["due_date"])
    assert timedelta(days=3) <= late_by < timedelta(days=21)  # the loan's 2 grace days, not the product's 20


# --- A4: every repayment's allocation is stored --------------------------------------------------------------


async def test_a_late_fee_after_a_partial_payment_is_paid_as_a_fee_and_the_loan_closes_when_everything_is_paid(
    slow_api, su, sandbox_url, db, temporal_env
):
    http = slow_api
    # 12 % equal principal over 2 months: installment 1 is 100.00 + 2.00 interest, installment 2 100.00 + 1.00.
    product = await make_product(
        http, su, annual_rate="0.12", amortization="equal_principal", day_count="30/360", grace_days=1, late_fee="15.00"
    )
    org = await member_org(http, su, sandbox_url)
    loan = await approved(http, su, sandbox_url, org, product, amount="200.00", term=2)

    partial = await repay(http, org, loan, "50.00")
    assert partial.status_code == 200, partial.text
    assert (partial.json()["interest"], partial.json()["principal"], partial.json()["fees"]) == (
        "2.00",
        "48.00",
        "0.00",
    )

    # Past its grace day, installment 1 carries the late fee: owed now 15.00 fee + 52.00 principal.
    await poll(
        lambda: schedule_of(http, org, loan),
        lambda rows: rows[0]["late_fee"] == "15.00",
        timeout=40,
        what="no late fee",
    )
    rest = await repay(http, org, loan, "67.00")
    assert rest.status_code == 200, rest.text
    assert (rest.json()["fees"], rest.json()["interest"], rest.json()["principal"]) == ("15.00", "0.00", "52.00")
    assert rest.json()["outstanding_principal"] == "100.00" and rest.json()["status"] == "active"
    assert await fee_income_of(db, loan["id"]) == D("15.00")
    rows = await assert_books_agree(http, su, db, org, loan)
    assert (rows[0]["fee_paid"], rows[0]["interest_paid"], rows[0]["principal_paid"]) == ("15.00", "2.00", "100.00")
    assert rows[0]["owed"] == "0.00" and rows[0]["paid_at"]

    # Installment 2: a cent short leaves the loan open; the last cent closes it.
    owed = D(rows[1]["owed"])
    short = await repay(http, org, loan, owed - D("0.01"))
    assert short.status_code == 200 and short.json()["status"] == "active", short.text
    await assert_books_agree(http, su, db, org, loan)
    last = await repay(http, org, loan, "0.01")
    assert last.status_code == 200 and last.json()["status"] == "closed", last.text
    rows = await assert_books_agree(http, su, db, org, loan)
    assert all(r["owed"] == "0.00" and r["paid_at"] for r in rows)
    assert await balance(http, su, loan["loan_account_id"]) == 0
    assert await fee_income_of(db, loan["id"]) == sum(D(r["late_fee"]) for r in rows)
    assert await temporal_env.client.get_workflow_handle(loan["workflow_id"]).result() == "closed"


async def test_a_late_return_after_completion_undoes_the_auto_debit_repayment_and_reopens_the_loan(
    api,  # noqa: F811  (api: the 0.2 s loan day of test_loan_servicing)
    su,
    sandbox_url,
    odfi,
    db,
):
    # 0 % equal principal: 100.11 (returned R01 once, then settles) and 100.10 (settles, completes, then the
    # bank returns it R10 after completion: the sandbox's late return).
    product = await make_product(
        api, su, annual_rate="0", amortization="equal_principal", day_count="30/360", grace_days=25, late_fee="15.00"
    )
    org = await member_org(api, su, sandbox_url, external=True)
    loan = await approved(
        api,
        su,
        sandbox_url,
        org,
        product,
        amount="200.21",
        term=2,
        external_account_id=org.external["id"],
        auto_debit=True,
    )
    rows = await poll(
        lambda: schedule_of(api, org, loan),
        lambda rows: rows[1]["auto_debit_payment_id"],
        timeout=40,
        what="installment 2 not debited",
    )
    debit = await wait_status(api, su, rows[1]["auto_debit_payment_id"], {"reversed"})
    assert debit["return_code"] == "R10"

    # The repayment it became is undone: the loan, closed by it, is active again and installment 2 owes again.
    async def audit(action: str) -> list[dict]:
        log = await api.get("/api/v1/audit", headers=su, params={"entity_id": loan["id"], "action": action})
        return log.json()["items"]

    await poll(lambda: audit("loan.repayment_reversed"), bool, timeout=20, what="the repayment is not reversed")
    assert any(row["after"]["closed"] for row in await audit("loan.installment"))  # the auto-debit had closed it
    await poll(
        lambda: api.get(f"/api/v1/loans/{loan['id']}", headers=su),
        lambda r: (r.json()["status"], r.json()["workflow_status"]) == ("active", "active"),
        timeout=10,
        what=lambda r: f"the loan is not reopened: {r.json()}",
    )
    rows = await assert_books_agree(api, su, db, org, loan)
    assert rows[0]["owed"] == "0.00" and rows[1]["paid"] == "0.00" and rows[1]["paid_at"] is None
    # The deposit account nets out: the debit came in, went to the loan, the bank took it back, the loan gave it back.
    assert await balance(api, su, org.account["id"]) == D("1000.00")
    assert await balance(api, su, loan["loan_account_id"]) == D("100.10")
    async with db.session() as session:
        repayments = (
            await session.execute(
                text(
                    "SELECT r.mode, r.amount, r.entry_id, r.reverses_entry_id, e.idempotency_key FROM loan_repayments r "
                    "JOIN journal_entries e ON e.id = r.entry_id WHERE r.loan_id = :l ORDER BY r.created_at"
                ),
                {"l": loan["id"]},
            )
        ).all()
    [original] = [
        r for r in repayments if r.mode == "installment" and str(rows[1]["auto_debit_payment_id"]) in r.idempotency_key
    ]
    [reversal] = [r for r in repayments if r.mode == "reversal"]
    assert reversal.reverses_entry_id == original.entry_id and reversal.amount == -original.amount == D("-100.10")
    assert len(await audit("loan.repayment_reversed")) == 1

    # Arrears and the late fee run from the original due date; paid by hand, the loan closes again.
    late = await poll(
        lambda: api.get(f"/api/v1/loans/{loan['id']}", headers=su),
        lambda r: r.json()["days_past_due"] > 25,
        timeout=20,
        what="no arrears after the reversal",
    )
    rows = await poll(
        lambda: schedule_of(api, org, loan),
        lambda rows: rows[1]["late_fee"] == "15.00",
        timeout=10,
        what="no late fee after the reversal",
    )
    assert late.json()["aging_bucket"] is not None
    paid = await repay(api, org, loan, rows[1]["owed"])
    assert paid.status_code == 200 and paid.json()["status"] == "closed", paid.text
    await assert_books_agree(api, su, db, org, loan)
    assert await balance(api, su, org.account["id"]) == D("1000.00") - D(rows[1]["owed"])


# --- A10: the bureau refusing our credentials; terms no schedule fits ----------------------------------------


@pytest.mark.parametrize(
    "refusal", [{"bureau_api_key": "rotated-at-the-bureau"}, {"forbidden": True}], ids=["401", "403"]
)
async def test_a_bureau_refusing_our_credentials_keeps_the_loan_waiting_and_it_proceeds_once_fixed(
    http, su, sandbox_url, db, refusal
):
    product = await make_product(
        http,
        su,
        annual_rate="0.065",
        amortization="declining_balance",
        day_count="30/360",
        grace_days=10,
        late_fee="25.00",
    )
    org = await member_org(http, su, sandbox_url)
    async with httpx.AsyncClient(base_url=sandbox_url) as bureau:
        restore = {key: value for key, value in (await bureau.get("/bureau/_control")).json().items() if key in refusal}
        await bureau.put("/bureau/_control", json=refusal)
        try:
            loan = await apply(http, sandbox_url, org, product, amount="5000.00", income="20000.00")
            attempts = await poll(
                lambda: bureau.get("/bureau/reports"),
                lambda r: len([e for e in r.json()["requests"] if e["idempotency_key"] == f"credit-{loan['id']}"]) >= 3,
                timeout=20,
                what="the credit check is not tried again",
            )
            waiting = (await http.get(f"/api/v1/loans/{loan['id']}", headers=su)).json()
            assert waiting["status"] == "credit_check", waiting
            assert "refused our credentials" in waiting["status_detail"]
            assert {
                e["status"] for e in attempts.json()["requests"] if e["idempotency_key"] == f"credit-{loan['id']}"
            } == {401 if "bureau_api_key" in refusal else 403}
        finally:
            await bureau.put("/bureau/_control", json=restore)
    # The operators were told once, however many attempts failed.
    notes = (await http.get("/api/v1/notifications", headers=org.headers["operator"])).json()["items"]
    assert [n["kind"] for n in notes if n["entity_id"] == loan["id"]] == ["credit_check_blocked"]
    proceeded = await wait_loan(http, su, loan["id"], {"pending_approval", *FINAL}, timeout=30)
    assert proceeded["status"] == "pending_approval" and proceeded["status_detail"] is None, proceeded
    assert proceeded["credit_score"] == 720


async def test_a_loan_waiting_on_a_misconfigured_bureau_can_be_withdrawn(http, su, sandbox_url):
    product = await make_product(http, su, annual_rate="0.065", amortization="declining_balance", day_count="30/360")
    org = await member_org(http, su, sandbox_url)
    async with httpx.AsyncClient(base_url=sandbox_url) as bureau:
        await bureau.put("/bureau/_control", json={"forbidden": True})
        try:
            loan = await apply(http, sandbox_url, org, product, amount="5000.00", income="20000.00")
            await poll(
                lambda: http.get(f"/api/v1/loans/{loan['id']}", headers=su),
                lambda r: r.json()["status_detail"] is not None,
                timeout=20,
                what="not waiting on the bureau",
            )
            withdrawn = await http.post(f"/api/v1/loans/{loan['id']}/withdraw", headers=org.headers["member"])
        finally:
            await bureau.put("/bureau/_control", json={"forbidden": False})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text
    assert withdrawn.json()["credit_score"] is None


async def test_terms_no_schedule_fits_are_refused_before_anything_is_written(http, su, sandbox_url):
    cents = await make_product(http, su, annual_rate="0.065", amortization="declining_balance", day_count="30/360")
    usurious = await make_product(http, su, annual_rate="0.36", amortization="declining_balance", day_count="30/360")
    org = await member_org(http, su, sandbox_url)
    for product, amount, term, code in (
        (cents, "0.50", 60, "amount_too_small_for_term"),
        (usurious, "1000.00", 360, "no_schedule_fits"),
    ):
        response = await http.post(
            "/api/v1/loans",
            headers={**org.headers["member"], "Idempotency-Key": uuid.uuid4().hex},
            json={
                "product_id": product["id"],
                "amount": amount,
                "term": term,
                "monthly_income": "9000.00",
                "deposit_account_id": org.account["id"],
            },
        )
        assert_error(response, 422, code)
        listed = (await http.get("/api/v1/loans", headers=su, params={"product_id": product["id"]})).json()
        assert listed["total"] == 0


async def test_a_loan_no_schedule_fits_fails_with_its_reason_instead_of_retrying_for_ever(
    http, su, sandbox_url, settings, temporal_env, db
):
    """A row the API would refuse today (written before the check, or by other means): the workflow fails it."""
    product = await make_product(http, su, annual_rate="0.065", amortization="declining_balance", day_count="30/360")
    org = await member_org(http, su, sandbox_url)
    template = await apply(http, sandbox_url, org, product, amount="1000.00", term=12)
    loan_id = uuid.uuid4()
    async with db.session() as session, session.begin():
        await session.execute(
            text("CREATE TEMP TABLE tiny ON COMMIT DROP AS SELECT * FROM loans WHERE id = :t"), {"t": template["id"]}
        )
        await session.execute(
            text(
                "UPDATE tiny SET id = :id, amount = 0.50, term = 60, status = 'submitted', workflow_id = :wf, "
                "idempotency_key = :key, credit_score = NULL, approval_request_id = NULL, first_due_date = NULL"
            ),
            {"id": loan_id, "wf": f"loan-{loan_id}", "key": str(loan_id)},
        )
        await session.execute(text("INSERT INTO loans SELECT * FROM tiny"))
    handle = await temporal_env.client.start_workflow(
        LoanWorkflow.run,
        LoanInput(
            loan_id=loan_id,
            min_credit_score=settings.loan_min_credit_score,
            max_debt_to_income=settings.loan_max_debt_to_income,
        ),
        id=f"loan-{loan_id}",
        task_queue=settings.task_queue,
    )
    assert await asyncio.wait_for(handle.result(), timeout=30) == "failed"
    failed = (await http.get(f"/api/v1/loans/{loan_id}", headers=su)).json()
    assert failed["status"] == "failed" and "less than one cent per installment" in failed["decline_reason"]
