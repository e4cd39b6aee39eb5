from datetime import date

import pytest
from pydantic import ValidationError

from activities.interest_posting import period_bounds
from core.email import render
from models.interest import AccrualRunInput, InterestPostingInput, MonthEndInput


def test_scheduled_inputs_accept_a_timezone_alone():
    # The Schedules send {"timezone": ...} only: the day or month comes from the scheduled start time.
    assert AccrualRunInput.model_validate({"timezone": "Europe/Paris"}).day is None
    month_end = MonthEndInput.model_validate({"timezone": "Europe/Paris"})
    assert (month_end.period, month_end.batch_size, month_end.continue_as_new_after) == (None, None, None)


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "26-10", "2026-00", "2026-10-01"])
def test_a_period_is_a_month(period):
    with pytest.raises(ValidationError):
        MonthEndInput(period=period)
    with pytest.raises(ValidationError):
        InterestPostingInput(period=period)


@pytest.mark.parametrize(
    "period, first, last",
    [
        ("2026-10", date(2026, 10, 1), date(2026, 10, 31)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
    ],
)
def test_period_bounds(period, first, last):
    assert period_bounds(period) == (first, last)


def test_the_summary_email_renders_every_part():
    subject, text, html = render(
        "interest_posting_summary",
        {"period": "2026-10", "accounts": 1234, "total": "$5,678.90", "accounts_seen": 1300, "batches": 3},
    )
    assert subject == "Interest posted for 2026-10: 1234 accounts, $5,678.90"
    for part in (text, html):
        for value in ("2026-10", "1234", "$5,678.90", "1300", "interest-posting-2026-10", "half up"):
            assert value in part
