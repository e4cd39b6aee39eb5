"""The pure parts of the loan portfolio (finance/portfolio.py), budget variance (finance/budget_variance.py) and
cash-flow forecast (finance/forecast.py): provisions by rate, variance and its percent, standing-instruction runs
computed from their cadence as their Temporal Schedules fire, and the weekly sums; their tables render."""

import io
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from pydantic import ValidationError

from core.config import Settings
from documents.reports import render
from domain.reports import ReportParams
from finance import budget_variance as bv
from finance import forecast as fc
from finance import portfolio as pf
from finance import reports as fin

D = Decimal
ORG = fin.Scope(org_id=uuid.UUID(int=7), name="Acme Credit Union")
NY = ZoneInfo("America/New_York")
P1, P2 = uuid.UUID(int=1), uuid.UUID(int=2)


def group(bucket: str | None, product: uuid.UUID, loans: int, amount: str) -> pf.Group:
    return pf.Group(
        bucket=bucket, product_id=product, product=f"Product {product.int}", loans=loans, outstanding=D(amount)
    )


# --- portfolio --------------------------------------------------------------------------------------------------


def test_provision_is_outstanding_times_the_bucket_rate_and_totals_add_up():
    groups = [
        group("90+", P1, 1, "900.00"),
        group("current", P2, 3, "12345.67"),
        group("1-30", P1, 2, "1000.01"),
        group("31-60", P2, 1, "100.00"),
    ]
    report = pf.portfolio(ORG, date(2026, 12, 1), groups, pf.rates_or_default(None))
    assert [(r.bucket, r.product_id) for r in report.rows] == [
        ("current", P2),
        ("1-30", P1),
        ("31-60", P2),
        ("90+", P1),
    ]
    provisions = {r.bucket: r.provision for r in report.rows}
    # 12345.67 × 1 % = 123.4567 -> 123.46; 1000.01 × 5 % = 50.0005 -> 50.00 (half up at the cent)
    assert provisions == {"current": D("123.46"), "1-30": D("50.00"), "31-60": D("20.00"), "90+": D("900.00")}
    assert report.total_loans == 7
    assert report.total_outstanding == D("14345.68")
    assert report.total_provision == sum(provisions.values())
    assert [b.bucket for b in report.buckets] == list(pf.BUCKETS)
    assert {b.bucket: b.loans for b in report.buckets}["61-90"] == 0


def test_configured_rates_override_the_defaults_and_bad_ones_are_refused():
    rates = pf.rates_or_default({"31-60": D("0.25")})
    assert rates["31-60"] == D("0.25") and rates["current"] == D("0.01") and rates["90+"] == D("1.00")
    with pytest.raises(ValueError, match="unknown aging buckets"):
        pf.rates_or_default({"120+": D("1")})
    with pytest.raises(ValueError, match="between 0 and 1"):
        pf.rates_or_default({"current": D("1.5")})
    with pytest.raises(ValidationError):
        Settings(provisioning_rates={"121+": "0.5"})  # type: ignore[dict-item]
    assert Settings(provisioning_rates={"1-30": "0.07"}).provisioning_rates == {"1-30": D("0.07")}  # type: ignore[dict-item]


def test_a_loan_without_a_bucket_is_current():
    report = pf.portfolio(ORG, date(2026, 12, 1), [group(None, P1, 1, "100.00")], pf.DEFAULT_RATES)
    assert report.rows[0].bucket == "current" and report.rows[0].provision == D("1.00")


def test_the_portfolio_table_renders_to_xlsx_with_its_totals():
    report = pf.portfolio(ORG, date(2026, 12, 1), [group("61-90", P1, 2, "400.00")], pf.DEFAULT_RATES)
    table = pf.portfolio_table(report)
    assert all(len(row.values) == 3 for row in table.rows)
    book = openpyxl.load_workbook(io.BytesIO(render(table, "xlsx")))
    last = list(book.active.iter_rows(values_only=True))[-1]  # type: ignore[union-attr]
    assert last[0] == "Portfolio" and [D(str(v)) for v in last[1:]] == [D(2), D("400.00"), D("200.00")]
    assert render(table, "pdf").startswith(b"%PDF")


# --- budget variance --------------------------------------------------------------------------------------------


def line(key: str, category: str, amount: str) -> fin.Line:
    return fin.classify("gl", key, category, key.title(), D(amount))


def test_variance_is_actual_less_budget_on_the_lines_normal_side():
    actuals = [
        line("GL-INTEREST-INCOME", "income", "-120.00"),  # a credit: 120.00 earned
        line("GL-INTEREST-EXPENSE", "expense", "30.00"),
        line("GL-FEE-INCOME", "income", "-15.00"),  # no budget: still shown, budget zero
        line("GL-CASH", "asset", "500.00"),  # no budget and not income or expense: not shown
    ]
    budgets = {"GL-INTEREST-INCOME": D("100.00"), "GL-INTEREST-EXPENSE": D("40.00"), "MEMBER-LOAN": D("10.00")}
    report = bv.budget_variance(ORG, date(2026, 12, 1), date(2026, 12, 31), ["2026-12"], actuals, budgets)
    rows = {r.key: r for r in report.rows}
    assert set(rows) == {"GL-INTEREST-INCOME", "GL-INTEREST-EXPENSE", "GL-FEE-INCOME", "MEMBER-LOAN"}
    assert (rows["GL-INTEREST-INCOME"].actual, rows["GL-INTEREST-INCOME"].variance) == (D("120.00"), D("20.00"))
    assert rows["GL-INTEREST-INCOME"].variance_percent == D("20.00")
    assert rows["GL-INTEREST-EXPENSE"].variance_percent == D("-25.00")
    assert rows["GL-FEE-INCOME"].budget == 0 and rows["GL-FEE-INCOME"].variance_percent is None
    assert rows["MEMBER-LOAN"].actual == 0 and rows["MEMBER-LOAN"].category is None
    assert report.rows[-1].key == "MEMBER-LOAN"  # a line with no postings comes last
    assert bv.variance_percent(D("1"), D("3")) == D("-66.67")  # -66.666… half up
    table = bv.budget_variance_table(report)
    assert table.columns == ["Actual", "Budget", "Variance", "Variance %"]


def test_months_between_includes_both_ends_across_a_year():
    assert bv.months_between(date(2026, 11, 15), date(2027, 2, 1)) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]
    assert bv.months_between(date(2026, 5, 3), date(2026, 5, 30)) == [date(2026, 5, 1)]


# --- forecast ---------------------------------------------------------------------------------------------------

FIRST = date(2026, 12, 7)  # a Monday
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def cadence(**fields) -> fc.Cadence:
    base = {"frequency": None, "every_seconds": None, "day": None, "start": NOW, "end": None, "remaining": None}
    return fc.Cadence(**{**base, **fields})


def runs(c: fc.Cadence, weeks: int = 4, now: datetime = NOW) -> list[int]:
    return fc.runs_per_week(c, FIRST, weeks, now, NY, 7)


def test_calendar_cadences_run_on_their_days():
    assert runs(cadence(frequency="daily")) == [7, 7, 7, 7]
    assert runs(cadence(frequency="weekly", day=3)) == [1, 1, 1, 1]  # Wednesdays
    assert runs(cadence(frequency="monthly", day=20)) == [0, 1, 0, 0]  # the 20th falls in the second week
    assert runs(cadence(frequency="monthly", day=20), weeks=7) == [0, 1, 0, 0, 0, 0, 1]  # and 20 January in the 7th
    # No day given: the start's (weekly: its weekday, Sunday 0; monthly: its day of the month).
    start = datetime(2026, 11, 10, 12, tzinfo=UTC)  # a Tuesday, the 10th
    assert runs(cadence(frequency="weekly", start=start)) == [1, 1, 1, 1]
    assert runs(cadence(frequency="monthly", start=start), weeks=6) == [1, 0, 0, 0, 1, 0]  # 10 December, 10 January


def test_runs_stop_at_the_end_the_count_and_never_before_now_or_the_start():
    end = datetime.combine(FIRST + timedelta(days=9), datetime.min.time(), NY)  # Wednesday of week 2, midnight
    assert runs(cadence(frequency="daily", end=end)) == [7, 2, 0, 0]
    assert runs(cadence(frequency="daily", remaining=10)) == [7, 3, 0, 0]
    assert runs(cadence(frequency="daily", remaining=0)) == [0, 0, 0, 0]
    later = datetime.combine(FIRST + timedelta(days=15), datetime.min.time(), NY)
    assert runs(cadence(frequency="daily", start=later)) == [0, 0, 6, 7]
    # Today's 07:00 run is over at noon: the first day's run is not forecast.
    noon = datetime.combine(FIRST, datetime.min.time(), NY) + timedelta(hours=12)
    assert runs(cadence(frequency="daily"), now=noon) == [6, 7, 7, 7]


def test_interval_runs_are_multiples_of_every_since_the_epoch():
    # Every 3 days: the epoch is a Thursday 00:00 UTC, so runs fall at 00:00 UTC every third day from it.
    every = 3 * 86400
    counts = runs(cadence(every_seconds=every), weeks=4)
    boundaries = [datetime.combine(FIRST + timedelta(days=7 * k), datetime.min.time(), NY) for k in range(5)]
    expected = []
    for lower, upper in itertools.pairwise(boundaries):
        seconds = range(int(lower.timestamp()), int(upper.timestamp()))
        expected.append(sum(1 for _ in range(-(-seconds.start // every) * every, seconds.stop, every)))
    assert counts == expected and sum(counts) in (9, 10)
    # A one-second interval over a year counts without listing the runs; the count caps it.
    midnight = datetime.combine(FIRST, datetime.min.time(), NY)
    assert sum(runs(cadence(every_seconds=1, remaining=5), weeks=52, now=midnight)) == 5
    assert sum(runs(cadence(every_seconds=1, remaining=5), weeks=52)) == 0  # all five between now and the first day
    assert runs(cadence(every_seconds=1), weeks=1) == [7 * 86400]


def test_the_forecast_sums_by_week_and_projects_the_cash():
    report = fc.cash_forecast(
        ORG,
        FIRST,
        3,
        D("1000.00"),
        installments={0: D("300.00"), 2: D("150.50")},
        autopay_bills={1: D("60.00")},
        standing=[(D("25.00"), [1, 1, 0]), (D("40.00"), [0, 0, 1])],
    )
    assert [w.installments for w in report.weeks] == [D("300.00"), D("0.00"), D("150.50")]
    assert [w.standing_transfers for w in report.weeks] == [D("25.00"), D("25.00"), D("40.00")]
    assert [w.net for w in report.weeks] == [D("300.00"), D("60.00"), D("150.50")]  # transfers net out
    assert [w.projected_cash for w in report.weeks] == [D("1300.00"), D("1360.00"), D("1510.50")]
    assert (report.date_from, report.date_to) == (FIRST, FIRST + timedelta(days=20))
    assert report.weeks[1].date_from == FIRST + timedelta(days=7) and report.weeks[1].date_to == FIRST + timedelta(
        days=13
    )
    assert report.closing_cash == D("1510.50")
    table = fc.cash_forecast_table(report)
    assert len(table.columns) == 8 and all(len(row.values) == 8 for row in table.rows)
    assert render(table, "pdf").startswith(b"%PDF")


def test_standing_ach_debits_come_in_and_credits_go_out_of_the_projected_cash():
    report = fc.cash_forecast(
        ORG,
        FIRST,
        2,
        D("100.00"),
        installments={},
        autopay_bills={},
        standing=[(D("10.00"), [1, 0])],
        ach_in=[(D("75.00"), [2, 1])],
        ach_out=[(D("30.00"), [0, 1]), (D("5.00"), [1, 1])],
    )
    assert [(w.standing_ach_in, w.standing_ach_out) for w in report.weeks] == [
        (D("150.00"), D("5.00")),
        (D("75.00"), D("35.00")),
    ]
    assert [(w.inflows, w.outflows) for w in report.weeks] == [(D("160.00"), D("15.00")), (D("75.00"), D("35.00"))]
    assert [w.projected_cash for w in report.weeks] == [D("245.00"), D("285.00")]
    assert report.closing_cash == report.opening_cash + report.total_inflows - report.total_outflows


def test_report_params_take_only_their_whitelisted_fields():
    assert ReportParams(weeks=12).weeks == 12
    for bad in ({"weeks": 0}, {"weeks": 53}, {"sql": "1; DROP TABLE loans"}):
        with pytest.raises(ValidationError):
            ReportParams(**bad)  # type: ignore[arg-type]


def test_runs_before_the_first_day_use_up_the_count():
    # A daily instruction with 10 runs left, forecast from a week after now: the first week's 7 runs come before.
    later = FIRST + timedelta(days=7)
    assert fc.runs_per_week(cadence(frequency="daily", remaining=10), later, 2, NOW, NY, 7) == [3, 0]
    # Daily at 00:00 UTC (19:00 the day before in New York): 7 to 14 December UTC come first, 8 of them.
    assert fc.runs_per_week(cadence(every_seconds=86400, remaining=10), later, 2, NOW, NY, 7) == [2, 0]
    # A horizon that starts before now forecasts nothing before now.
    earlier = FIRST - timedelta(days=14)
    assert fc.runs_per_week(cadence(frequency="daily"), earlier, 3, NOW, NY, 7) == [0, 0, 7]
