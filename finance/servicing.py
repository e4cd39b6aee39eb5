"""Loan servicing arithmetic, pure: the servicing clock, days past due and aging buckets.

The servicing clock maps workflow time to loan days. A loan day lasts `day_seconds` from the epoch: 86400 in
production, where loan days are the business time zone's calendar days (the epoch is the start of the
disbursement day there; a day of a daylight-saving change is still one loan day), a fraction of a second in tests
and the demo, so that due dates, grace periods and aging buckets months apart pass in seconds with the same code."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

AGING_BUCKETS = ((1, 30, "1-30"), (31, 60, "31-60"), (61, 90, "61-90"), (91, None, "90+"))
# The days past due at which the bucket changes (the first day of each bucket).
BUCKET_STARTS = tuple(low for low, _, _ in AGING_BUCKETS)


def aging_bucket(days_past_due: int) -> str | None:
    """The aging bucket of a loan this many days past due; None when it is current."""
    for low, high, name in AGING_BUCKETS:
        if days_past_due >= low and (high is None or days_past_due <= high):
            return name
    return None


def days_past_due(oldest_unpaid_due: date | None, as_of: date) -> int:
    """Days since the oldest installment still unpaid fell due (0 when none is past due)."""
    if oldest_unpaid_due is None or oldest_unpaid_due >= as_of:
        return 0
    return (as_of - oldest_unpaid_due).days


def late_fee_due(due: date, grace_days: int, as_of: date) -> bool:
    """A late fee is charged once the grace days after the due date have passed with the installment unpaid."""
    return as_of > due + timedelta(days=grace_days)


@dataclass(frozen=True)
class ServicingClock:
    epoch: datetime  # the instant loan day `epoch_date` began
    day_seconds: float
    timezone: str = "UTC"  # the business time zone (loans started before it was configured count in UTC)

    @classmethod
    def starting(cls, now: datetime, day_seconds: float, timezone: str = "UTC") -> "ServicingClock":
        """A calendar clock starts at midnight of today in the business time zone; a compressed one starts now
        (else the hours already gone today would count as many compressed days)."""
        clock = cls(now, day_seconds, timezone)
        return cls(clock.start_of(clock.epoch_date), day_seconds, timezone) if clock.calendar else clock

    @property
    def calendar(self) -> bool:
        return self.day_seconds >= 86400

    @property
    def epoch_date(self) -> date:
        return self.epoch.astimezone(ZoneInfo(self.timezone)).date()

    def today(self, now: datetime) -> date:
        if self.calendar:
            return now.astimezone(ZoneInfo(self.timezone)).date()
        elapsed = (now - self.epoch).total_seconds()
        # A microsecond of slack: a timer set for start_of(day) must land on that day despite float rounding.
        return self.epoch_date + timedelta(days=int((elapsed + 1e-6) // self.day_seconds))

    def start_of(self, day: date) -> datetime:
        if self.calendar:
            return datetime.combine(day, time(), ZoneInfo(self.timezone))
        return self.epoch + timedelta(seconds=(day - self.epoch_date).days * self.day_seconds)
