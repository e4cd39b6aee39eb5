"""A scheduled report's dates relative to its day, and the one run id of a definition's scheduled time."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from api.errors import AppError
from domain.report_runs import Period, period_params, resolved, scheduled_params, scheduled_run_id
from domain.reports import ReportKind, ReportParams


@pytest.mark.parametrize(
    ("period", "day", "start", "end"),
    [
        (Period.previous_day, date(2026, 3, 1), date(2026, 2, 28), date(2026, 2, 28)),
        (Period.previous_month, date(2026, 1, 3), date(2025, 12, 1), date(2025, 12, 31)),
        (Period.previous_month, date(2024, 3, 1), date(2024, 2, 1), date(2024, 2, 29)),
        (Period.month_to_date, date(2026, 11, 17), date(2026, 11, 1), date(2026, 11, 17)),
        (Period.year_to_date, date(2026, 11, 17), date(2026, 1, 1), date(2026, 11, 17)),
    ],
)
def test_period_params_cover_the_period_and_a_position_is_at_its_end(period, day, start, end):
    assert period_params(period, day) == ReportParams(as_of=end, date_from=start, date_to=end)


def test_resolved_keeps_only_the_dates_a_kind_uses_and_refuses_a_backwards_range():
    today = date(2026, 12, 2)
    assert resolved(ReportKind.balance_sheet, ReportParams(date_from=today), today) == ReportParams(as_of=today)
    assert resolved(ReportKind.income_statement, ReportParams(), today) == ReportParams(
        date_from=date(2026, 1, 1), date_to=today
    )
    with pytest.raises(AppError) as refused:
        resolved(ReportKind.cash_flow, ReportParams(date_from=today, date_to=today - timedelta(days=1)), today)
    assert refused.value.code == "invalid_date_range"


def test_a_scheduled_time_names_one_run_whatever_its_time_zone():
    definition = uuid.uuid4()
    moment = datetime(2026, 11, 3, 11, tzinfo=UTC)
    same = moment.astimezone(timezone(timedelta(hours=-5)))
    assert scheduled_run_id(definition, moment) == scheduled_run_id(definition, same)
    assert scheduled_run_id(definition, moment) != scheduled_run_id(definition, moment + timedelta(days=1))
    assert scheduled_run_id(definition, moment) != scheduled_run_id(uuid.uuid4(), moment)


def test_a_scheduled_forecast_looks_ahead_from_its_day_and_a_portfolio_is_a_position():
    day = date(2026, 12, 1)
    assert scheduled_params(ReportKind.cash_forecast, Period.previous_month, day) == ReportParams(
        date_from=day, weeks=8
    )
    assert scheduled_params(ReportKind.loan_portfolio, Period.previous_month, day) == ReportParams(
        as_of=date(2026, 11, 30)
    )
    assert scheduled_params(ReportKind.budget_variance, Period.month_to_date, day) == ReportParams(
        date_from=day, date_to=day
    )
