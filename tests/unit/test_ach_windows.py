from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from finance.ach_returns import ReturnReaction, reaction
from finance.ach_windows import next_window

NY = ZoneInfo("America/New_York")
CUTOFFS: dict[str, Any] = dict(
    tz="America/New_York", cutoffs=["10:30", "14:45", "16:45"], same_day_cutoffs=["10:30", "14:45"]
)


def window_at(local: datetime):
    return next_window(local.astimezone(UTC), **CUTOFFS)


def test_same_day_windows_settle_today_and_the_last_one_tomorrow():
    morning = window_at(datetime(2026, 11, 23, 9, 0, tzinfo=NY))  # Monday
    assert morning.cutoff_at == datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 10:30 EST
    assert morning.same_day and morning.effective_date == date(2026, 11, 23)
    evening = window_at(datetime(2026, 11, 23, 15, 0, tzinfo=NY))
    assert evening.id == "2026-11-23T16:45-05:00" and not evening.same_day
    assert evening.effective_date == date(2026, 11, 24)


def test_after_the_last_cutoff_before_thanksgiving_rolls_past_the_holiday():
    window = window_at(datetime(2026, 11, 25, 17, 0, tzinfo=NY))  # Wednesday night; Thursday is Thanksgiving
    assert window.id == "2026-11-27T10:30-05:00" and window.effective_date == date(2026, 11, 27)


def test_friday_night_goes_to_monday_and_the_next_day_window_skips_the_weekend():
    window = window_at(datetime(2026, 11, 20, 16, 50, tzinfo=NY))
    assert window.id == "2026-11-23T10:30-05:00"
    friday_last = window_at(datetime(2026, 11, 20, 16, 0, tzinfo=NY))
    assert friday_last.effective_date == date(2026, 11, 23)


def test_a_closed_window_is_skipped_with_after():
    first = window_at(datetime(2026, 11, 23, 9, 0, tzinfo=NY))
    second = next_window(datetime(2026, 11, 23, 14, 0, tzinfo=UTC), **CUTOFFS, after=first.cutoff_at)
    assert second.id == "2026-11-23T14:45-05:00"


def test_interval_windows_for_tests_and_the_demo():
    now = datetime(2026, 11, 21, 12, 0, 0, 500000, tzinfo=UTC)
    window = next_window(now, **CUTOFFS, interval=timedelta(seconds=2))
    assert window.cutoff_at == datetime(2026, 11, 21, 12, 0, 2, tzinfo=UTC) and window.same_day
    assert window.effective_date == date(2026, 11, 23)  # a Saturday: the next business day


def test_return_reactions():
    assert {c: reaction(c) for c in ("R01", "R09", "R02", "R03", "R04", "R05", "R07", "R10", "R29", "R20")} == {
        "R01": ReturnReaction.represent,
        "R09": ReturnReaction.represent,
        "R02": ReturnReaction.disable_account,
        "R03": ReturnReaction.disable_account,
        "R04": ReturnReaction.disable_account,
        "R05": ReturnReaction.block_debits,
        "R07": ReturnReaction.block_debits,
        "R10": ReturnReaction.block_debits,
        "R29": ReturnReaction.block_debits,
        "R20": ReturnReaction.fail,
    }
