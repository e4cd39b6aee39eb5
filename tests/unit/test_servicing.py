"""The servicing clock, days past due and aging buckets (pure)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from finance.servicing import ServicingClock, aging_bucket, days_past_due, late_fee_due


@pytest.mark.parametrize(
    "days, bucket",
    [
        (0, None),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
        (400, "90+"),
    ],
)
def test_aging_buckets_edges(days, bucket):
    assert aging_bucket(days) == bucket


def test_days_past_due_counts_from_the_oldest_unpaid_due_date():
    assert days_past_due(None, date(2026, 3, 1)) == 0
    assert days_past_due(date(2026, 3, 1), date(2026, 3, 1)) == 0  # due today is not late yet
    assert days_past_due(date(2026, 1, 31), date(2026, 3, 2)) == 30


def test_late_fee_only_after_the_grace_days():
    due = date(2026, 5, 10)
    assert not late_fee_due(due, 10, date(2026, 5, 20))
    assert late_fee_due(due, 10, date(2026, 5, 21))
    assert late_fee_due(due, 0, date(2026, 5, 11))


def test_calendar_clock_starts_at_midnight_and_counts_real_days():
    now = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
    clock = ServicingClock.starting(now, 86400)
    assert clock.epoch == datetime(2026, 11, 21, tzinfo=UTC)
    assert clock.today(now) == date(2026, 11, 21)
    assert clock.today(now + timedelta(hours=9)) == date(2026, 11, 22)
    assert clock.start_of(date(2026, 12, 21)) == datetime(2026, 12, 21, tzinfo=UTC)


def test_compressed_clock_runs_months_in_seconds_from_now():
    now = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
    clock = ServicingClock.starting(now, 0.1)
    assert clock.today(now) == date(2026, 11, 21)
    assert clock.today(now + timedelta(seconds=3.05)) == date(2026, 12, 21)  # 30 loan days later
    assert clock.start_of(date(2026, 12, 21)) == now + timedelta(seconds=3)
    assert clock.today(clock.start_of(date(2027, 2, 1))) == date(2027, 2, 1)


def test_calendar_clock_counts_the_business_time_zones_days():
    # 22:30 in New York on Nov 20 is already Nov 21 in UTC: the loan's day is New York's.
    now = datetime(2026, 11, 21, 3, 30, tzinfo=UTC)
    clock = ServicingClock.starting(now, 86400, "America/New_York")
    assert clock.epoch == datetime(2026, 11, 20, 5, 0, tzinfo=UTC)  # midnight EST
    assert clock.today(now) == date(2026, 11, 20)
    assert clock.today(datetime(2026, 11, 21, 4, 59, tzinfo=UTC)) == date(2026, 11, 20)
    assert clock.today(datetime(2026, 11, 21, 5, 0, tzinfo=UTC)) == date(2026, 11, 21)


def test_a_daylight_saving_day_is_one_loan_day():
    clock = ServicingClock.starting(datetime(2027, 3, 1, 17, 0, tzinfo=UTC), 86400, "America/New_York")
    # Clocks go forward on March 14, 2027: that day lasts 23 hours, and March 15 still starts at midnight there.
    assert clock.start_of(date(2027, 3, 14)) == datetime(2027, 3, 14, 5, 0, tzinfo=UTC)
    assert clock.start_of(date(2027, 3, 15)) == datetime(2027, 3, 15, 4, 0, tzinfo=UTC)
    assert clock.today(datetime(2027, 3, 15, 4, 0, tzinfo=UTC)) == date(2027, 3, 15)
    assert clock.today(datetime(2027, 3, 15, 3, 59, tzinfo=UTC)) == date(2027, 3, 14)
