"""The loan portfolio (arrears buckets and provisions), budgets and budget variance, and the cash-flow forecast on the
real stack: organization A has a current loan and one aged into the 90+ bucket on a compressed servicing clock (as
tests/integration/test_loan_servicing.py does), budgets, auto-pay and manual bills and standing instructions;
organization B has a loan of its own that A never sees."""

import asyncio
import csv
import io
import uuid
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from alembic import command
from openpyxl import load_workbook
from sqlalchemy import text

from core.business_time import business_today
from core.db import libpq_url
from devstack.postgres import alembic_config
from tests.conftest import ApiServer, assert_error, make_org, make_user, open_account
from tests.integration.test_ach import link_external, pay, wait_status
from tests.integration.test_ach_files_at_rest import _scratch_database
from tests.integration.test_backups import _drop
from tests.integration.test_loan_servicing import zero_rate_product
from tests.integration.test_loans import FINAL, apply, decide, level, rule, wait_loan, waiting_on
from tests.integration.test_maker_checker import finished, open_approval
from tests.polling import poll

D = Decimal
DAY_SECONDS = 0.2  # a loan day on the compressed clock: 90+ days past due in about 25 s


@pytest.fixture(scope="module")
async def clock_api(settings, worker):
    async with ApiServer(settings.model_copy(update={"loan_day_seconds": DAY_SECONDS})) as server:
        yield server


@pytest.fixture(scope="module")
async def api(clock_api):
    async with httpx.AsyncClient(base_url=clock_api.url, timeout=30) as client:
        yield client


async def active_loan(client, su, sandbox_url, org, product, amount: str, term: int) -> dict:
    member_type = await rule(client, su, [level("loan_officer")])
    loan = await apply(client, sandbox_url, org, product, amount=amount, member_type=member_type, term=term)
    state = await waiting_on(client, su, loan["id"], 1, "loan_officer")
    assert (await decide(client, org.headers["loan_officer"], state["request_id"])).status_code == 200
    loan = await wait_loan(client, su, loan["id"], FINAL)
    assert loan["status"] == "active", loan
    return loan


async def outstanding(http, headers, loan: dict) -> Decimal:
    response = await http.get(f"/api/v1/loans/{loan['id']}/payoff-quote", headers=headers)
    assert response.status_code == 200, response.text
    return D(response.json()["outstanding_principal"])


async def schedule(http, headers, loan: dict) -> list[dict]:
    response = await http.get(f"/api/v1/loans/{loan['id']}/schedule", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def keyed(headers: dict) -> dict:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


@pytest.fixture(scope="module")
async def world(api, http, su, sandbox_url, settings):
    """A's two loans (one current, one 90+ days past due), B's loan; the products are A's and B's own."""
    a = await make_org(http, su, roles=("org_admin", "operator", "member", "loan_officer"))
    a.account = await open_account(http, su, a.id, a.users["member"]["id"], deposit="1000.00")
    a.external = await link_external(http, sandbox_url, a, owner_id=a.users["member"]["id"])
    b = await make_org(http, su, roles=("org_admin", "member", "loan_officer"))
    b.account = await open_account(http, su, b.id, b.users["member"]["id"], deposit="300.00")

    interest_product = (
        await http.post(
            "/api/v1/loan-products",
            headers=su,
            json={
                "name": f"Portfolio {uuid.uuid4().hex[:6]}",
                "annual_rate": "0.065",
                "min_term": 6,
                "max_term": 60,
                "min_amount": "1000.00",
                "max_amount": "50000.00",
                "amortization": "declining_balance",
                "frequency": "monthly",
                "day_count": "30/360",
                "grace_days": 10,
                "late_fee": "25.00",
            },
        )
    ).json()
    late_product = await zero_rate_product(api, su, grace_days=0)
    b_product = await zero_rate_product(http, su, grace_days=10)
    # The current loan first: once the other is in arrears the member's next application is declined.
    current = await active_loan(http, su, sandbox_url, a, interest_product, "5000.00", 12)
    late = await active_loan(api, su, sandbox_url, a, late_product, "900.00", 3)
    theirs = await active_loan(http, su, sandbox_url, b, b_product, "600.00", 6)
    await poll(
        lambda: http.get(f"/api/v1/loans/{late['id']}", headers=su),
        lambda r: r.json()["aging_bucket"] == "90+",
        timeout=90,
        what="the loan never aged to 90+",
    )
    return {
        "a": a,
        "b": b,
        "current": current,
        "late": late,
        "theirs": theirs,
        "products": {"current": interest_product, "late": late_product, "b": b_product},
        "today": business_today(settings),
    }


async def test_the_portfolio_groups_by_bucket_and_product_and_provisions_by_rate(http, su, world):
    a, b, admin = world["a"], world["b"], world["a"].headers["org_admin"]
    report = await http.get("/api/v1/reports/loan-portfolio", headers=admin)
    assert report.status_code == 200, report.text
    portfolio = report.json()
    assert portfolio["scope"]["org_id"] == a.id
    rows = {(r["bucket"], r["product_id"]): r for r in portfolio["rows"]}
    assert set(rows) == {("current", world["products"]["current"]["id"]), ("90+", world["products"]["late"]["id"])}
    current_left = await outstanding(http, su, world["current"])
    late_left = await outstanding(http, su, world["late"])
    assert late_left == D("900.00") and D(0) < current_left <= D("5000.00")  # another test may repay it
    current_provision = (current_left * D("0.01")).quantize(D("0.01"), ROUND_HALF_UP)
    current = rows[("current", world["products"]["current"]["id"])]
    late = rows[("90+", world["products"]["late"]["id"])]
    assert (current["loans"], D(current["outstanding_principal"])) == (1, current_left)
    assert (late["loans"], D(late["outstanding_principal"])) == (1, late_left)
    # The default rates: current 1 %, 90+ 100 %.
    assert (D(current["rate"]), D(current["provision"])) == (D("0.01"), current_provision)
    assert (D(late["rate"]), D(late["provision"])) == (D("1.00"), D("900.00"))
    assert portfolio["total_loans"] == 2
    assert D(portfolio["total_outstanding"]) == current_left + late_left
    assert D(portfolio["total_provision"]) == current_provision + D("900.00")
    buckets = {x["bucket"]: x for x in portfolio["buckets"]}
    assert list(buckets) == ["current", "1-30", "31-60", "61-90", "90+"]
    assert buckets["31-60"]["loans"] == 0 and D(buckets["31-60"]["rate"]) == D("0.20")
    # The balance sheet's loans line is the same figure.
    sheet = (await http.get("/api/v1/reports/balance-sheet", headers=admin)).json()
    assert {r["key"]: D(r["amount"]) for r in sheet["assets"]}["MEMBER-LOAN"] == current_left + late_left

    # As of the day before the disbursements: nothing was outstanding.
    before = world["today"] - timedelta(days=1)
    empty = (await http.get("/api/v1/reports/loan-portfolio", params={"as_of": str(before)}, headers=admin)).json()
    assert empty["rows"] == [] and D(empty["total_outstanding"]) == 0

    # B's loan is not in A's portfolio; B's own is B's only; the bank-wide view holds both.
    assert world["products"]["b"]["id"] not in {r["product_id"] for r in portfolio["rows"]}
    theirs = (await http.get("/api/v1/reports/loan-portfolio", headers=b.headers["org_admin"])).json()
    assert theirs["total_loans"] == 1 and D(theirs["total_outstanding"]) == D("600.00")
    assert_error(await http.get("/api/v1/reports/loan-portfolio", params={"org_id": b.id}, headers=admin), 404)
    assert_error(await http.get("/api/v1/reports/loan-portfolio", headers=a.headers["member"]), 403)
    everything = (await http.get("/api/v1/reports/loan-portfolio", headers=su)).json()
    products = {r["product_id"] for r in everything["rows"]}
    assert {world["products"]["b"]["id"], world["products"]["late"]["id"]} <= products
    assert everything["total_loans"] >= 3

    # The files: CSV and XLSX read back to the same totals, the PDF is a PDF.
    as_csv = await http.get("/api/v1/reports/loan-portfolio", params={"format": "csv"}, headers=admin)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert f'filename="loan-portfolio-org-{a.id}-' in as_csv.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert lines[2] == ["Line", "Loans", "Outstanding principal", "Provision", "Style"]
    total = [str(current_left + late_left), str(current_provision + D("900.00"))]
    assert lines[-1] == ["Portfolio", "2", *total, "total"]
    as_xlsx = await http.get("/api/v1/reports/loan-portfolio", params={"format": "xlsx"}, headers=admin)
    sheet_rows = list(load_workbook(io.BytesIO(as_xlsx.content)).active.iter_rows(values_only=True))
    assert sheet_rows[-1][0] == "Portfolio"
    assert [D(str(v)) for v in sheet_rows[-1][1:4]] == [D(2), *map(D, total)]
    as_pdf = await http.get("/api/v1/reports/loan-portfolio", headers={**admin, "Accept": "application/pdf"})
    assert as_pdf.headers["content-type"] == "application/pdf" and as_pdf.content.startswith(b"%PDF")


async def set_budget(http, url, maker, checker, amount, request: dict | None = None, **extra) -> dict:
    """The budget at `url` set to `amount` through maker-checker: asked by `maker` (or `request`, asked already),
    approved by `checker`; the budget as it then stands."""
    if request is None:
        asked = await http.put(url, headers=maker, json={"amount": amount, **extra})
        assert asked.status_code == 202, asked.text
        request = asked.json()
    approval = await open_approval(http, maker, request["id"])
    approve = await http.post(f"/api/v1/approvals/{approval}/decisions", headers=checker, json={"decision": "approve"})
    assert approve.status_code == 200, approve.text
    assert (await finished(http, maker, request["id"]))["status"] == "completed"
    current = await http.put(url, headers=maker, json={"amount": amount, **extra})  # the same amount: no change
    assert current.status_code == 200, current.text
    return current.json()


async def test_budgets_are_set_once_per_line_and_month_audited_and_compared_with_the_ledger(http, su, world, db):
    a, b, admin = world["a"], world["b"], world["a"].headers["org_admin"]
    member = a.headers["member"]
    # A's first installment of the interest-bearing loan repaid: interest income in A's books this month.
    first = (await schedule(http, member, world["current"]))[0]
    paid = await http.post(
        f"/api/v1/loans/{world['current']['id']}/repayments", headers=keyed(member), json={"amount": first["payment"]}
    )
    assert paid.status_code == 200, paid.text
    month = f"{world['today']:%Y-%m}"
    url = f"/api/v1/reports/budgets/{month}/GL-INTEREST-INCOME"

    # Each change waits on another org admin (maker-checker); the maker may not approve it, the same amount again
    # while it waits is the same request, another amount meanwhile a 409; once applied the same amount is a no-op.
    _, checker = await make_user(http, su, "org_admin", a.id)
    asked = await http.put(url, headers=admin, json={"amount": "20.00"})
    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert (request["kind"], request["budget_line"], request["amount"]) == (
        "budget_change",
        "GL-INTEREST-INCOME",
        "20.00",
    )
    assert (await http.put(url, headers=admin, json={"amount": "20.00"})).json()["id"] == request["id"]
    assert_error(await http.put(url, headers=admin, json={"amount": "25.00"}), 409, "budget_change_pending")
    approval = await open_approval(http, admin, request["id"])
    decide_url = f"/api/v1/approvals/{approval}/decisions"
    assert_error(await http.post(decide_url, headers=admin, json={"decision": "approve"}), 403, "maker_checker")
    listed = (await http.get("/api/v1/reports/budgets", headers=admin, params={"period_from": month})).json()
    assert "GL-INTEREST-INCOME" not in [x["line_key"] for x in listed["items"]]  # nothing set before it is approved
    budget = await set_budget(http, url, admin, checker, "20.00", request=request)
    assert (budget["org_id"], budget["period"], budget["amount"]) == (a.id, month, "20.00")
    again = await http.put(url, headers=admin, json={"amount": "20.00"})
    assert again.status_code == 200 and again.json()["id"] == budget["id"]
    changed = await set_budget(http, url, admin, checker, "40.00")
    assert changed["id"] == budget["id"] and changed["amount"] == "40.00"
    # A change the checker rejects changes nothing.
    rejected = (await http.put(url, headers=admin, json={"amount": "99.00"})).json()
    approval = await open_approval(http, admin, rejected["id"])
    refusal = {"decision": "reject", "reason": "Not this year"}
    assert (
        await http.post(f"/api/v1/approvals/{approval}/decisions", headers=checker, json=refusal)
    ).status_code == 200
    assert (await finished(http, admin, rejected["id"]))["status"] == "rejected"
    # The superuser sets another organization's (named); without one it is refused.
    fee_url = f"/api/v1/reports/budgets/{month}/GL-FEE-INCOME"
    by_su = await set_budget(http, fee_url, su, checker, "5.00", org_id=a.id)
    assert by_su["org_id"] == a.id
    assert_error(await http.put(url, headers=su, json={"amount": "1.00"}), 422, "org_required")
    # Refused: a member, an operator, B's admin naming A, an unknown line, a month that is no month.
    assert_error(await http.put(url, headers=member, json={"amount": "1.00"}), 403)
    assert_error(await http.put(url, headers=a.headers["operator"], json={"amount": "1.00"}), 403)
    assert_error(await http.put(url, headers=b.headers["org_admin"], json={"org_id": a.id, "amount": "1.00"}), 404)
    unknown = await http.put(f"/api/v1/reports/budgets/{month}/GL-NOTHING", headers=admin, json={"amount": "1.00"})
    assert_error(unknown, 422, "unknown_line")
    assert_error(await http.put("/api/v1/reports/budgets/2026-13/GL-CASH", headers=admin, json={"amount": "1"}), 422)
    assert_error(await http.put(url, headers=admin, json={"amount": "-1.00"}), 422)
    async with db.session() as session:
        audited = await session.execute(
            text("SELECT action, before, after FROM audit_log WHERE entity_id = :id ORDER BY at"), {"id": budget["id"]}
        )
        trail = [(row.action, row.before, row.after["amount"]) for row in audited]
    assert trail == [("budget.created", None, "20.00"), ("budget.changed", {"amount": "20.00"}, "40.00")]  # not 99.00

    listed = (await http.get("/api/v1/reports/budgets", headers=admin, params={"period_from": month})).json()
    assert {(x["line_key"], x["amount"]) for x in listed["items"]} == {
        ("GL-INTEREST-INCOME", "40.00"),
        ("GL-FEE-INCOME", "5.00"),
    }
    assert (await http.get("/api/v1/reports/budgets", headers=b.headers["org_admin"])).json()["items"] == []
    assert_error(await http.get("/api/v1/reports/budgets", headers=member), 403)

    # The variance over this month: the actual is the income statement's figure for the line.
    period = {"from": f"{month}-01", "to": str(world["today"])}
    statement = (await http.get("/api/v1/reports/income-statement", params=period, headers=admin)).json()
    earned = {r["key"]: D(r["amount"]) for r in statement["income"]}
    assert earned["GL-INTEREST-INCOME"] == D(first["interest"]) > 0
    variance = (await http.get("/api/v1/reports/budget-variance", params=period, headers=admin)).json()
    rows = {r["key"]: r for r in variance["rows"]}
    interest = rows["GL-INTEREST-INCOME"]
    assert D(interest["actual"]) == earned["GL-INTEREST-INCOME"]
    assert D(interest["budget"]) == D("40.00")
    assert D(interest["variance"]) == earned["GL-INTEREST-INCOME"] - D("40.00")
    expected_percent = ((earned["GL-INTEREST-INCOME"] - D("40.00")) * 100 / D("40.00")).quantize(
        D("0.01"), ROUND_HALF_UP
    )
    assert D(interest["variance_percent"]) == expected_percent
    assert D(rows["GL-FEE-INCOME"]["budget"]) == D("5.00")
    assert D(rows["GL-FEE-INCOME"]["actual"]) == earned.get("GL-FEE-INCOME", D(0))
    # B's budget variance knows nothing of A's budgets.
    theirs = (await http.get("/api/v1/reports/budget-variance", params=period, headers=b.headers["org_admin"])).json()
    assert all(D(r["budget"]) == 0 for r in theirs["rows"])
    as_xlsx = await http.get("/api/v1/reports/budget-variance", params={**period, "format": "xlsx"}, headers=admin)
    cells = list(load_workbook(io.BytesIO(as_xlsx.content)).active.iter_rows(values_only=True))
    assert cells[2] == ("Line", "Actual", "Budget", "Variance", "Variance %")
    by_label = {row[0]: row for row in cells[3:]}
    assert D(str(by_label["Interest income (GL-INTEREST-INCOME)"][2])) == D("40.00")


async def test_the_forecast_holds_the_installments_auto_pay_bills_and_standing_runs_in_their_weeks(
    http, su, world, settings
):
    a, admin, member = world["a"], world["a"].headers["org_admin"], world["a"].headers["member"]
    today = world["today"]
    first_day, weeks = today + timedelta(days=1), 14
    last_day = first_day + timedelta(days=7 * weeks - 1)

    def week(day: date) -> int:
        return (day - first_day).days // 7

    # Bills: an auto-pay one (an inflow: its ACH debit) and one without auto-pay (paid elsewhere: not forecast).
    bill_day = first_day + timedelta(days=9)
    for autopay, amount in ((True, "60.00"), (False, "70.00")):
        extra = {"external_account_id": a.external["id"], "account_id": a.account["id"]} if autopay else {}
        made = await http.post(
            "/api/v1/bills",
            headers=admin,
            json={
                "payee_name": "Power",
                "amount": amount,
                "due_date": str(bill_day),
                "autopay": autopay,
                "payer_id": a.users["member"]["id"],
                **extra,
            },
        )
        assert made.status_code == 201, made.text
    # Standing instructions: weekly on the weekday three days ahead, ending after two runs' worth of days; monthly
    # with a count of one, on a day of the month 15 to 27 days ahead.
    savings = await open_account(http, su, a.id, a.users["member"]["id"], type_="savings")
    zone = ZoneInfo(settings.business_timezone)
    weekly_day = first_day + timedelta(days=3)
    monthly_day = next(
        first_day + timedelta(days=n) for n in range(15, 28) if (first_day + timedelta(days=n)).day <= 28
    )
    ends = datetime.combine(weekly_day + timedelta(days=8), time(), zone)
    bodies = [
        {"amount": "25.00", "frequency": "weekly", "day": weekly_day.isoweekday() % 7, "end_at": ends.isoformat()},
        {"amount": "40.00", "frequency": "monthly", "day": monthly_day.day, "count": 1},
    ]
    for body in bodies:
        made = await http.post(
            "/api/v1/standing-instructions",
            headers=keyed(member),
            json={"from_account_id": a.account["id"], "to_account_id": savings["id"], "memo": "Save", **body},
        )
        assert made.status_code == 201, made.text
    # Standing ACH: a debit pulled in on the weekly day (an inflow), a credit sent out on the monthly day (an outflow).
    for body in (
        {"kind": "ach_debit", "to_account_id": a.account["id"], "amount": "12.00", "frequency": "weekly"},
        {"kind": "ach_credit", "from_account_id": a.account["id"], "amount": "7.00", "frequency": "monthly"},
    ):
        day = weekly_day.isoweekday() % 7 if body["frequency"] == "weekly" else monthly_day.day
        made = await http.post(
            "/api/v1/standing-instructions",
            headers=keyed(admin),
            json={**body, "external_account_id": a.external["id"], "memo": "ACH", "day": day, "count": 1},
        )
        assert made.status_code == 201, made.text

    expected_installments: dict[int, Decimal] = {}
    for loan in (world["current"], world["late"]):
        for row in await schedule(http, member, loan):
            due = date.fromisoformat(row["due_date"])
            left = D(row["payment"]) + D(row["late_fee"]) - D(row["paid"])
            if first_day <= due <= last_day and left > 0:
                expected_installments[week(due)] = expected_installments.get(week(due), D(0)) + left
    assert expected_installments, "no installment falls in the horizon"
    expected_transfers = {week(weekly_day): D("25.00")}
    expected_transfers[week(weekly_day + timedelta(days=7))] = D("25.00")
    expected_transfers[week(monthly_day)] = expected_transfers.get(week(monthly_day), D(0)) + D("40.00")

    params = {"from": str(first_day), "weeks": weeks}
    forecast = (await http.get("/api/v1/reports/cash-forecast", params=params, headers=admin)).json()
    assert (forecast["date_from"], forecast["date_to"]) == (str(first_day), str(last_day))
    assert len(forecast["weeks"]) == weeks
    for row in forecast["weeks"]:
        k = row["week"] - 1
        assert D(row["installments"]) == expected_installments.get(k, D(0)), row
        assert D(row["autopay_bills"]) == (D("60.00") if k == week(bill_day) else D(0)), row
        assert D(row["standing_transfers"]) == expected_transfers.get(k, D(0)), row
        assert D(row["standing_ach_in"]) == (D("12.00") if k == week(weekly_day) else D(0)), row
        assert D(row["standing_ach_out"]) == (D("7.00") if k == week(monthly_day) else D(0)), row
        assert D(row["outflows"]) == D(row["standing_transfers"]) + D(row["standing_ach_out"])
    # Opening cash: A's cash line at the end of today (the trial balance's); closing: opening plus every inflow net.
    trial = (await http.get("/api/v1/reports/trial-balance", headers=admin)).json()
    cash = {r["key"]: D(r["debit"]) - D(r["credit"]) for r in trial["rows"]}.get("GL-CASH", D(0))
    assert D(forecast["opening_cash"]) == cash == D("1000.00")
    net = sum(expected_installments.values(), D(0)) + D("60.00") + D("12.00") - D("7.00")
    assert D(forecast["closing_cash"]) == cash + net
    assert D(forecast["weeks"][-1]["projected_cash"]) == cash + net

    # B's forecast has none of it; A's member is refused; the files.
    theirs = (
        await http.get("/api/v1/reports/cash-forecast", params=params, headers=world["b"].headers["org_admin"])
    ).json()
    assert all(D(w["autopay_bills"]) == 0 and D(w["standing_transfers"]) == 0 for w in theirs["weeks"])
    assert_error(await http.get("/api/v1/reports/cash-forecast", headers=member), 403)
    assert_error(await http.get("/api/v1/reports/cash-forecast", params={"weeks": 53}, headers=admin), 422)
    as_csv = await http.get("/api/v1/reports/cash-forecast", params={**params, "format": "csv"}, headers=admin)
    lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert lines[-1][0] == "Total" and D(lines[-1][8]) == cash + net
    as_pdf = await http.get("/api/v1/reports/cash-forecast", params={**params, "format": "pdf"}, headers=admin)
    assert as_pdf.content.startswith(b"%PDF")


async def test_an_operator_reads_the_reports_and_a_stranger_org_admin_cannot(http, su, world):
    a = world["a"]
    _, stranger = await make_user(http, su, "org_admin", world["b"].id)
    for path in ("loan-portfolio", "budget-variance", "cash-forecast"):
        assert (await http.get(f"/api/v1/reports/{path}", headers=a.headers["operator"])).status_code == 200
        assert_error(await http.get(f"/api/v1/reports/{path}", params={"org_id": a.id}, headers=stranger), 404)


async def test_racing_changes_of_one_budget_make_one_request_and_one_change(http, su, world, db):
    """Six PUTs of one organization, line and month at once, with three amounts: one request waits (the partial unique
    index of migration 0036), the PUTs of its amount answer it, the others 409; approved, one row and one audit row."""
    a = world["a"]
    admin = a.headers["org_admin"]
    _, checker = await make_user(http, su, "org_admin", a.id)
    url = "/api/v1/reports/budgets/2003-07/GL-INTEREST-EXPENSE"
    answers = await asyncio.gather(
        *(http.put(url, headers=admin, json={"amount": amount}) for amount in ["10.00", "20.00", "30.00"] * 2)
    )
    waiting = [answer.json() for answer in answers if answer.status_code == 202]
    assert len({w["id"] for w in waiting}) == 1, [answer.text for answer in answers]
    amount = waiting[0]["amount"]
    assert all(
        (answer.status_code == 202) == (amount_asked == amount)
        for answer, amount_asked in zip(answers, ["10.00", "20.00", "30.00"] * 2, strict=True)
    ), [answer.text for answer in answers]
    assert {answer.json()["error"]["code"] for answer in answers if answer.status_code != 202} == {
        "budget_change_pending"
    }
    budget = await set_budget(http, url, admin, checker, amount, request=waiting[0])
    async with db.session() as session:
        rows = (
            await session.execute(
                text("SELECT id, amount FROM budgets WHERE org_id = :org AND line_key = 'GL-INTEREST-EXPENSE'"),
                {"org": a.id},
            )
        ).all()
        trail = (
            await session.execute(
                text("SELECT before, after FROM audit_log WHERE entity_id = :id ORDER BY at, id"), {"id": budget["id"]}
            )
        ).all()
    assert [(str(r.id), str(r.amount)) for r in rows] == [(budget["id"], amount)]
    assert [(t.before, t.after["amount"]) for t in trail] == [(None, amount)]


async def test_the_statements_balance_on_a_ledger_with_loans_late_fees_interest_and_ach(http, su, world, odfi):
    """A's ledger holds loans (one past due, its late fees paid), repayments with interest, and
    an ACH debit and an ACH credit through the bank's whole lifecycle: every statement balances, for A and
    bank-wide, by the rows' own arithmetic, not only by the report's flag."""
    a = world["a"]
    admin = a.headers["org_admin"]
    # Late fees are income once paid: the member pays part of the past-due loan (its late fees come first).
    repaid = await http.post(
        f"/api/v1/loans/{world['late']['id']}/repayments",
        headers=keyed(a.headers["member"]),
        json={"amount": "50.00"},
    )
    assert repaid.status_code == 200, repaid.text
    # And part of the interest-bearing loan (its oldest installment's interest comes first).
    interest = await http.post(
        f"/api/v1/loans/{world['current']['id']}/repayments",
        headers=keyed(a.headers["member"]),
        json={"amount": "30.00"},
    )
    assert interest.status_code == 200, interest.text
    payments = [await pay(http, a, "ach_debit", "45.00"), await pay(http, a, "ach_credit", "12.00")]
    for made in payments:
        assert (await wait_status(http, admin, made["id"], statuses={"completed"}))["status"] == "completed"
    year = {"from": f"{world['today']:%Y}-01-01", "to": str(world["today"])}
    for headers, params in ((admin, {}), (su, {}), (su, {"org_id": a.id})):
        trial = (await http.get("/api/v1/reports/trial-balance", headers=headers, params=params)).json()
        debits, credits = sum(D(r["debit"]) for r in trial["rows"]), sum(D(r["credit"]) for r in trial["rows"])
        assert debits == credits == D(trial["total_debit"]) and trial["balanced"], trial
        sheet = (await http.get("/api/v1/reports/balance-sheet", headers=headers, params=params)).json()
        assets = sum(D(r["amount"]) for r in sheet["assets"])
        other_side = sum(D(r["amount"]) for r in sheet["liabilities"] + sheet["equity"])
        assert assets == other_side and sheet["balanced"], sheet
        flow = (await http.get("/api/v1/reports/cash-flow", headers=headers, params={**params, **year})).json()
        assert D(flow["opening_cash"]) + D(flow["net_change"]) == D(flow["closing_cash"]) and flow["reconciles"]
        statement = await http.get("/api/v1/reports/income-statement", headers=headers, params={**params, **year})
        income = {r["key"]: D(r["amount"]) for r in statement.json()["income"]}
        assert income.get("GL-FEE-INCOME", D(0)) >= D("15.00")  # the past-due loan's late fees (15.00 each), paid
        assert income.get("GL-INTEREST-INCOME", D(0)) > 0
        fee_row = next(r for r in trial["rows"] if r["key"] == "GL-FEE-INCOME")
        assert D(fee_row["credit"]) >= income["GL-FEE-INCOME"] > 0


def test_migration_0033_upgrades_and_downgrades_and_the_database_keeps_one_budget_per_month(database_url):
    scratch = _scratch_database(database_url)
    config = alembic_config(scratch)
    command.upgrade(config, "0033")
    try:
        with psycopg.connect(libpq_url(scratch), autocommit=True) as conn:
            org, user = uuid.uuid4(), uuid.uuid4()
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Migration org')", (org,))
            conn.execute(
                "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                "VALUES (%s, 'm@x.example', 'M', 'x', 'org_admin', %s)",
                (user, org),
            )
            insert = (
                "INSERT INTO budgets (id, org_id, line_key, period, amount, updated_by) VALUES (%s, %s, %s, %s, %s, %s)"
            )
            conn.execute(insert, (uuid.uuid4(), org, "GL-CASH", date(2026, 12, 1), Decimal("1.00"), user))
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(insert, (uuid.uuid4(), org, "GL-CASH", date(2026, 12, 1), Decimal("2.00"), user))
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(insert, (uuid.uuid4(), org, "GL-CASH", date(2026, 12, 2), Decimal("2.00"), user))
            assert conn.execute("SELECT day FROM standing_instructions LIMIT 1").fetchone() is None
            command.downgrade(config, "-1")  # the revision before 0033
            tables = conn.execute("SELECT to_regclass('budgets') IS NULL").fetchone()
            columns = conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'standing_instructions' "
                "AND column_name = 'day'"
            ).fetchone()
            assert tables == (True,) and columns == (0,)
            command.upgrade(config, "0033")
    finally:
        _drop(database_url, scratch)
