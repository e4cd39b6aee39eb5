"""Exchange rates (migration 0041) and the arguments of the rate fetch (activities/fx.py, workflows/fx_refresh.py)."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Column, Date, DateTime, Identity, MetaData, Numeric, String, Table

EXCHANGE_RATES = Table(
    "exchange_rates",
    MetaData(),
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("base", String(3)),
    Column("quote", String(3)),
    Column("rate", Numeric(24, 10)),
    Column("as_of", Date),
    Column("source", String(40)),
    Column("fetched_at", DateTime(timezone=True)),
)


@dataclass
class FxRefreshInput:
    """A refresh of the rates of `base` (empty: the configured pivot currency). `timezone` is what every Schedule
    passes (core/schedules.py); unused here. `attempts` and `retry_seconds`: the fetch's retry policy."""

    timezone: str = ""
    base: str = ""
    attempts: int = 5
    retry_seconds: float = 10.0


@dataclass
class FxFetchRequest:
    base: str = ""


@dataclass
class FxFetchResult:
    base: str
    as_of: date
    rates: int  # how many quotes were stored
    fetched_at: datetime


@dataclass
class Rate:
    """How many units of `quote` one unit of `base` buys, per the provider's update of `as_of`."""

    base: str
    quote: str
    rate: Decimal
    as_of: date
