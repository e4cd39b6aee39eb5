"""The custom ledger summary (domain/ledger_summary.py): groupings and filters chosen from a whitelist, over the
API and as a scheduled definition's runs; anything off the whitelist is a 422, never SQL."""

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from temporalio.client import ScheduleBackfill

from core.business_time import business_today
from tests.conftest import assert_error, make_org, open_account
from tests.integration.test_report_runs import finished as wait_run
from tests.polling import poll

D = Decimal
SUMMARY = "/api/v1/reports/ledger-summary"


def by_group(report: dict) -> dict[tuple[str, ...], tuple[Decimal, Decimal]]:
    return {tuple(r["group"].values()): (D(r["debit"]), D(r["credit"])) for r in report["rows"]}


async def saver(http, su, org) -> tuple[dict, str]:
    """A savings account on a savings product of its own, with 250.00 deposited; and the product's name."""
    name = f"Saver {uuid.uuid4().hex[:6]}"
    made = await http.post("/api/v1/savings-products", headers=su, json={"name": name, "annual_rate": "0.01"})
    assert made.status_code == 201, made.text
    account = await open_account(http, su, org.id, org.users["member"]["id"], type_="savings")
    attached = await http.put(
        f"/api/v1/accounts/{account['id']}/savings-product", headers=su, json={"product_id": made.json()["id"]}
    )
    assert attached.status_code == 200, attached.text
    deposited = await http.post(
        f"/api/v1/accounts/{account['id']}/deposits",
        headers={**su, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": "250.00"},
    )
    assert deposited.status_code == 201, deposited.text
    return made.json(), name


async def test_the_ledger_summary_groups_and_filters_from_the_whitelist(http, su, settings):
    org = await make_org(http, su)
    await open_account(http, su, org.id, org.users["member"]["id"], deposit="750.00")
    product, product_name = await saver(http, su, org)
    admin, month = org.headers["org_admin"], business_today(settings).strftime("%Y-%m")

    by_type = (await http.get(SUMMARY, headers=admin, params={"group_by": "account_type"})).json()
    assert by_group(by_type) == {
        ("checking",): (D(0), D("750.00")),
        ("gl",): (D("1000.00"), D(0)),
        ("savings",): (D(0), D("250.00")),
    }
    assert by_type["balanced"] and by_type["scope"]["org_id"] == org.id

    by_line_and_month = await http.get(SUMMARY, headers=admin, params={"group_by": ["line", "month"]})
    assert by_group(by_line_and_month.json()) == {
        ("GL-CASH", month): (D("1000.00"), D(0)),
        ("MEMBER-CHECKING", month): (D(0), D("750.00")),
        ("MEMBER-SAVINGS", month): (D(0), D("250.00")),
    }
    by_product = (await http.get(SUMMARY, headers=admin, params={"group_by": "product"})).json()
    assert by_group(by_product) == {("(none)",): (D("1000.00"), D("750.00")), (product_name,): (D(0), D("250.00"))}

    only_savings = (await http.get(SUMMARY, headers=admin, params={"lines": "MEMBER-SAVINGS"})).json()
    assert by_group(only_savings) == {("MEMBER-SAVINGS",): (D(0), D("250.00"))} and not only_savings["balanced"]
    gl_only = (await http.get(SUMMARY, headers=admin, params={"account_types": "gl"})).json()
    assert by_group(gl_only) == {("GL-CASH",): (D("1000.00"), D(0))}
    of_product = (await http.get(SUMMARY, headers=admin, params={"product_ids": product["id"]})).json()
    assert by_group(of_product) == {("MEMBER-SAVINGS",): (D(0), D("250.00"))}
    csv_file = await http.get(SUMMARY, headers=admin, params={"group_by": "account_type", "format": "csv"})
    assert csv_file.status_code == 200 and "checking" in csv_file.text and "1000.00" in csv_file.text

    bank_wide = (await http.get(SUMMARY, headers=su, params={"group_by": ["organization", "line"]})).json()
    assert bank_wide["balanced"] and bank_wide["scope"]["org_id"] is None
    assert by_group(bank_wide)[(org.name, "MEMBER-SAVINGS")] == (D(0), D("250.00"))

    off_list = [
        {"group_by": "a.code; DROP TABLE postings"},
        {"group_by": ["line", "line"]},
        {"group_by": ["line", "month", "year", "product"]},
        {"lines": "gl-cash' OR 1=1"},
        {"account_types": "loan_officer"},
        {"product_ids": "not-a-uuid"},
    ]
    for params in off_list:
        assert (await http.get(SUMMARY, headers=admin, params=params)).status_code == 422, params
    assert (await http.get(SUMMARY, headers=org.headers["member"])).status_code == 403


async def test_a_run_and_a_scheduled_definition_carry_their_groupings_and_only_the_summary_takes_them(
    http, su, settings, temporal_env
):
    org = await make_org(http, su)
    await open_account(http, su, org.id, org.users["member"]["id"], deposit="40.00")
    admin = org.headers["org_admin"]
    run = await http.post(
        "/api/v1/report-runs",
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "kind": "ledger-summary",
            "format": "json",
            "group_by": ["account_type"],
            "filters": {"account_types": ["checking"]},
        },
    )
    assert run.status_code == 202, run.text
    assert run.json()["params"]["group_by"] == ["account_type"]
    ready = await wait_run(http, admin, run.json()["id"])
    assert ready["status"] == "ready", ready
    body = (await http.get(f"/api/v1/report-runs/{ready['id']}/file", headers=admin)).json()
    assert by_group(body) == {("checking",): (D(0), D("40.00"))}

    wrong_kind = await http.post(
        "/api/v1/report-runs",
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
        json={"kind": "trial-balance", "group_by": ["month"]},
    )
    assert_error(wrong_kind, 422)
    definition = {
        "name": "Monthly by type",
        "kind": "ledger-summary",
        "period": "month-to-date",
        "format": "json",
        "frequency": "monthly",
        "group_by": ["account_type", "month"],
        "filters": {"lines": ["MEMBER-CHECKING"]},
    }
    made = await http.post(
        "/api/v1/report-definitions", headers={**admin, "Idempotency-Key": uuid.uuid4().hex}, json=definition
    )
    assert made.status_code == 201, made.text
    assert made.json()["options"] == {"group_by": ["account_type", "month"], "filters": {"lines": ["MEMBER-CHECKING"]}}
    bad = await http.post(
        "/api/v1/report-definitions",
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
        json={**definition, "kind": "balance-sheet"},
    )
    assert_error(bad, 422)
    # A scheduled run (a backfill of the 1st of this month, 06:00) carries the definition's groupings and filters.
    first = business_today(settings).replace(day=1)
    due = datetime(first.year, first.month, 1, 6, tzinfo=ZoneInfo(settings.business_timezone))
    schedule = temporal_env.client.get_schedule_handle(made.json()["schedule_id"])
    await schedule.backfill(ScheduleBackfill(start_at=due - timedelta(minutes=1), end_at=due + timedelta(minutes=1)))

    async def runs() -> list[dict]:
        response = await http.get("/api/v1/report-runs", headers=admin, params={"definition_id": made.json()["id"]})
        return response.json()["items"]

    scheduled = await poll(runs, lambda r: len(r) == 1 and r[0]["status"] == "ready", 90, "no scheduled run")
    assert scheduled[0]["params"] == {
        "date_from": str(first),
        "date_to": str(first),
        "group_by": ["account_type", "month"],
        "filters": {"lines": ["MEMBER-CHECKING"]},
    }
    report = (await http.get(f"/api/v1/report-runs/{scheduled[0]['id']}/file", headers=admin)).json()
    assert report["group_by"] == ["account_type", "month"] and report["filters"]["lines"] == ["MEMBER-CHECKING"]
    await http.delete(f"/api/v1/report-definitions/{made.json()['id']}", headers=admin)
