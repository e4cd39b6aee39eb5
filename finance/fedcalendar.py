"""Federal Reserve Bank business days, for ACH effective entry and settlement dates.

Pure code: dates in, dates out; no clock reads, safe to call from Temporal workflows.

The Federal Reserve Banks close on the eleven US federal holidays, but their observance rule is not the
federal one (https://www.federalreserve.gov/aboutthefed/k8.htm):
  - a holiday on a Sunday closes the Fed on the following Monday (same as federal offices);
  - a holiday on a Saturday is NOT observed on the preceding Friday: the Reserve Banks are open
    (federal offices and the Board of Governors close), e.g. 2021-12-31, 2026-07-03, 2027-12-24.
So we take the unobserved federal list from `holidays` and apply that rule ourselves.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from temporalio import workflow

# Workflows may call this module directly. `holidays` loads country classes lazily and reads its gettext
# translation files (via `locale`) whenever a calendar is built, which the Temporal sandbox forbids: so
# the concrete class is imported passed through, and built unrestricted in `_closures`. Both are no-ops
# outside a workflow. The result is deterministic: US names come from the package's fixed en_US catalog.
with workflow.unsafe.imports_passed_through():
    from holidays.countries.united_states import UnitedStates

# Names as `holidays` (0.108) spells them in the US "public" category. Anything else the package may
# list (e.g. a national day of mourning) is not a Reserve Bank closure.
FED_HOLIDAY_NAMES = frozenset(
    {
        "New Year's Day",
        "Martin Luther King Jr. Day",
        "Washington's Birthday",
        "Memorial Day",
        "Juneteenth National Independence Day",  # from 2021
        "Independence Day",
        "Labor Day",
        "Columbus Day",
        "Veterans Day",
        "Thanksgiving Day",
        "Christmas Day",
    }
)
_SATURDAY, _SUNDAY = 5, 6
_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=256)
def _closures(year: int) -> dict[date, str]:
    with workflow.unsafe.sandbox_unrestricted():
        federal = UnitedStates(years=year, observed=False)
    nominal = {day: name for day, name in federal.items() if name in FED_HOLIDAY_NAMES}
    # Fail loudly if a `holidays` upgrade renames a holiday, rather than silently opening the Fed on it.
    if year >= 2021 and set(nominal.values()) != FED_HOLIDAY_NAMES:
        missing = sorted(FED_HOLIDAY_NAMES - set(nominal.values()))
        raise RuntimeError(f"holidays package no longer lists {missing} for {year}")
    closures = dict(nominal)
    for day, name in nominal.items():
        if day.weekday() == _SUNDAY:
            closures[day + _ONE_DAY] = f"{name} (observed)"
        # Saturday: no Friday observance at the Reserve Banks.
    return dict(sorted(closures.items()))


def _check_date(d: date) -> None:
    # A datetime is a date subclass but never equals one, so holiday lookups would silently miss; and
    # its calendar day depends on the time zone, which the caller must settle first.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a datetime.date, got {type(d).__name__}")


def fed_holidays(year: int) -> dict[date, str]:
    """Federal Reserve holidays of `year`, sorted: each holiday on its own date (whatever the weekday)
    plus "<name> (observed)" on the Monday after a Sunday holiday. Saturday holidays get no observance."""
    return dict(_closures(year))


def is_fed_holiday(d: date) -> bool:
    """True on a Fed holiday itself or on its Monday observance (see `fed_holidays`)."""
    _check_date(d)
    return d in _closures(d.year)


def is_business_day(d: date) -> bool:
    """Monday to Friday and not a Federal Reserve holiday."""
    _check_date(d)
    return d.weekday() < _SATURDAY and d not in _closures(d.year)


def next_business_day(d: date) -> date:
    """The first business day strictly after `d`."""
    _check_date(d)
    d += _ONE_DAY
    while not is_business_day(d):
        d += _ONE_DAY
    return d


def previous_business_day(d: date) -> date:
    """The last business day strictly before `d`."""
    _check_date(d)
    d -= _ONE_DAY
    while not is_business_day(d):
        d -= _ONE_DAY
    return d


def business_day_on_or_after(d: date) -> date:
    """`d` if it is a business day, else the next one."""
    return d if is_business_day(d) else next_business_day(d)


def add_business_days(d: date, n: int) -> date:
    """`n` business days after `d`, counting from `d` rolled forward to a business day first
    (so n=0 gives that rolled date, and Saturday + 1 is Tuesday when Monday is open)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    d = business_day_on_or_after(d)
    for _ in range(n):
        d = next_business_day(d)
    return d


def settlement_date(submitted_on: date, same_day: bool) -> date:
    """When an ACH entry submitted on `submitted_on` (already judged against the cutoff by the caller)
    settles: same-day ACH on that business day, next-day ACH on the following business day. A
    submission on a weekend or holiday counts as made on the next business day."""
    start = business_day_on_or_after(submitted_on)
    return start if same_day else next_business_day(start)


def effective_entry_date(submitted_on: date, same_day: bool, requested: date | None = None) -> date:
    """The effective entry date to put in a batch header for a file submitted on `submitted_on`: the
    earliest settlement date possible (`settlement_date`), or `requested` rolled forward to a business
    day when that is later (a future-dated entry)."""
    earliest = settlement_date(submitted_on, same_day)
    if requested is None:
        return earliest
    return max(earliest, business_day_on_or_after(requested))
