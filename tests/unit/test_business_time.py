from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.business_time import business_date
from core.config import Settings


def test_a_business_date_is_the_days_of_the_zone():
    late_evening_in_new_york = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)  # 22:30 EST on Nov 30
    assert business_date(late_evening_in_new_york, "America/New_York") == date(2026, 11, 30)
    assert business_date(late_evening_in_new_york, "UTC") == date(2026, 12, 1)
    assert business_date(late_evening_in_new_york.astimezone(ZoneInfo("Asia/Tokyo")), "America/New_York") == date(
        2026, 11, 30
    )
    assert business_date(late_evening_in_new_york + timedelta(hours=1), "America/New_York") == date(2026, 11, 30)
    assert business_date(late_evening_in_new_york + timedelta(hours=2), "America/New_York") == date(2026, 12, 1)


def test_an_unknown_business_time_zone_is_refused_at_start():
    with pytest.raises(ValueError, match="not an IANA time zone"):
        Settings(business_timezone="America/Atlantis")
    assert Settings(business_timezone="Europe/Paris").business_timezone == "Europe/Paris"
