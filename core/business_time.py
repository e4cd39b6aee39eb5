"""Business dates. Every date the back office books or decides on (a ledger entry's effective date, an accrual
day, a statement month, a loan's due dates, a bill's due day, an ACH window's effective date) is a day in the one
configured business time zone, BUSINESS_TIMEZONE: never the worker's local date, never UTC's. Workflows take it
from `workflow.now()` or their input (workflows/schedule_time.py); activities and the API from the wall clock
here."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from core.config import Settings


def business_date(at: datetime, tz: str) -> date:
    """The calendar day that the instant `at` falls on in the business time zone `tz`."""
    return at.astimezone(ZoneInfo(tz)).date()


def business_today(settings: Settings) -> date:
    return business_date(datetime.now(UTC), settings.business_timezone)
