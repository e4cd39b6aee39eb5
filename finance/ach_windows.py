"""ACH cutoff windows: which file a payment queued now goes into, and its effective entry date.

Windows close at local cutoff times (the ODFI's, in its time zone) on Federal Reserve business days;
the earlier ones are same-day ACH. For tests and the demo a fixed interval replaces the clock times."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from finance import fedcalendar


@dataclass(frozen=True)
class CutoffWindow:
    id: str
    cutoff_at: datetime  # aware, UTC
    same_day: bool
    effective_date: date


def _parse(hhmm: str) -> time:
    hours, minutes = hhmm.split(":")
    return time(int(hours), int(minutes))


def next_window(
    now: datetime,
    *,
    tz: str,
    cutoffs: list[str],
    same_day_cutoffs: list[str],
    interval: timedelta | None = None,
    after: datetime | None = None,
) -> CutoffWindow:
    """The first window closing strictly after `now` (and after `after`, to skip a window already closed)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    floor = max(now, after) if after else now
    zone = ZoneInfo(tz)
    if interval:
        step = interval.total_seconds()
        cutoff = datetime.fromtimestamp((int(floor.timestamp() // step) + 1) * step, UTC)
        local_day = cutoff.astimezone(zone).date()
        return CutoffWindow(
            id=f"{cutoff.isoformat(timespec='milliseconds')}",
            cutoff_at=cutoff,
            same_day=True,
            effective_date=fedcalendar.effective_entry_date(local_day, True),
        )
    times = sorted(_parse(c) for c in cutoffs)
    same_day = {_parse(c) for c in same_day_cutoffs}
    day = floor.astimezone(zone).date()
    for _ in range(15):  # at most a long holiday weekend ahead
        if fedcalendar.is_business_day(day):
            for t in times:
                cutoff = datetime.combine(day, t, zone)
                if cutoff > floor:
                    is_same_day = t in same_day
                    return CutoffWindow(
                        id=cutoff.isoformat(timespec="minutes"),
                        cutoff_at=cutoff.astimezone(UTC),
                        same_day=is_same_day,
                        effective_date=fedcalendar.effective_entry_date(day, is_same_day),
                    )
        day += timedelta(days=1)
    raise RuntimeError("no ACH window in the next 15 days: check the cutoff configuration")
