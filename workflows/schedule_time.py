"""When a scheduled run is *for*: the time the schedule meant it to start (a backfill's past time included),
in the schedules' time zone. A run started by hand, outside any schedule, is for now. And today, by the
workflow's clock, in a time zone."""

from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from zoneinfo import ZoneInfo

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


def scheduled_start() -> datetime:
    return workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()


def scheduled_local_date(timezone: str) -> date:
    """The calendar day of the scheduled start in `timezone`."""
    return scheduled_start().astimezone(ZoneInfo(timezone)).date()


def previous_day(timezone: str) -> date:
    """The day that ended before this run (a nightly job works on yesterday)."""
    return scheduled_local_date(timezone) - timedelta(days=1)


def previous_month(timezone: str) -> str:
    """'YYYY-MM' of the month that ended before this run (a month-end job on the 1st works on last month)."""
    first = scheduled_local_date(timezone).replace(day=1)
    return f"{first - timedelta(days=1):%Y-%m}"


def local_today(timezone: str) -> date:
    """Today in `timezone`, by the workflow's clock (never the worker's)."""
    return workflow.now().astimezone(ZoneInfo(timezone)).date()
