"""Loan servicing arithmetic, pure: the servicing clock, days past due and aging buckets.

The servicing clock maps workflow time to loan days. A loan day lasts `day_seconds` from the epoch: 86400 in
production (the epoch is the start of the disbursement day, UTC), a fraction of a second in tests and the
demo, so that due dates, grace periods and aging buckets months apart pass in seconds with the same code."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

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
    epoch: datetime      # the instant loan day `epoch_date` began
    day_seconds: float

    @classmethod
    def starting(cls, now: datetime, day_seconds: float) -> "ServicingClock":
        """A calendar clock starts at midnight UTC of today; a compressed one starts now (else the hours
        already gone today would count as many compressed days)."""
        if day_seconds >= 86400:
            now = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(now, day_seconds)

    @property
    def epoch_date(self) -> date:
        return self.epoch.date()

    def today(self, now: datetime) -> date:
        elapsed = (now - self.epoch).total_seconds()
        # A microsecond of slack: a timer set for start_of(day) must land on that day despite float rounding.
        return self.epoch_date + timedelta(days=int((elapsed + 1e-6) // self.day_seconds))

    def start_of(self, day: date) -> datetime:
        return self.epoch + timedelta(seconds=(day - self.epoch_date).days * self.day_seconds)
