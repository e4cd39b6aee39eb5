"""Currencies and conversion (README: Currency).

Codes are ISO 4217, checked against the maintained list of the `iso4217` package (with each currency's minor units:
JPY 0, USD 2, KWD 3); a code without minor units (gold XAU, the test code XTS...) is no currency of money here.

Rates: the provider's latest rates of ONE pivot currency (FX_PIVOT_CURRENCY, USD) are cached in `exchange_rates`;
every other pair is a cross rate through it, rate(A→B) = rate(pivot→B) / rate(pivot→A). A cache older than
FX_CACHE_TTL (by its fetched_at) is fetched again before use, through FxRatesRefreshWorkflow (the same workflow the
daily Schedule runs; concurrent requests join one run). If that fails, the API answers 503 `fx_unavailable` (the
provider is down, after the retries) or 502 `fx_provider_refused` (it refused us: bad key, unknown currency): it
never quotes a rate past its TTL.

Money: Decimal throughout. A conversion multiplies and divides at full precision (28 digits) and rounds ONCE, at
the end, to the target currency's minor units with ROUND_HALF_EVEN (banker's rounding: 0.5 to the even neighbour,
so a large set of conversions has no upward bias). A sum of amounts in several currencies is converted currency by
currency at full precision, added up, and that total rounded once.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from iso4217 import Currency
from pydantic import AfterValidator, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

from api.errors import AppError
from core.config import Settings
from core.task_queues import queue_for
from models.fx import FxFetchResult, FxRefreshInput

REFRESH_WORKFLOW = "FxRatesRefreshWorkflow"
PROVIDER_REFUSED = "FxProviderRefused"  # activities/fx.py's error type (not imported: the API needs no httpx client)
RATE_PLACES = Decimal("1E-10")  # rates as stored: NUMERIC(24,10)


def iso_currency(value: str) -> str:
    """The ISO 4217 code, upper case; ValueError for anything else (a pydantic validation error in a model)."""
    code = value.strip().upper()
    try:
        currency = Currency(code)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code") from None
    if currency.exponent is None:
        raise ValueError(f"{code} is an ISO 4217 code without minor units (not a currency of money)")
    return code


CurrencyCode = Annotated[
    str,
    Field(pattern=r"^[A-Za-z]{3}$", examples=["EUR"], description="ISO 4217 (any case)"),
    AfterValidator(iso_currency),
]


def minor_units(code: str) -> int:
    return Currency(code).exponent or 0


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The one rounding of a converted figure: to `currency`'s minor units, half to even."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_EVEN)


@dataclass
class RateTable:
    """The cached rates of the pivot currency: {quote: units of quote per one pivot}, the pivot itself at 1."""

    pivot: str
    as_of: date | None
    fetched_at: datetime | None
    source: str
    rates: dict[str, Decimal] = field(default_factory=dict)

    def rate(self, from_: str, to: str) -> Decimal:
        """Units of `to` one `from_` buys, at full precision; AppError 422 when the provider has no rate of either."""
        if from_ == to:
            return Decimal(1)
        missing = [code for code in (from_, to) if code not in self.rates]
        if missing:
            raise AppError(
                422,
                "fx_rate_unknown",
                f"no exchange rate for {', '.join(missing)}",
                {"currencies": missing, "as_of": self.as_of},
            )
        return self.rates[to] / self.rates[from_]


@dataclass
class Conversion:
    amount: Decimal
    from_: str
    to: str
    converted: Decimal
    rate: Decimal
    as_of: date | None
    source: str


IDENTITY = RateTable(pivot="", as_of=None, fetched_at=None, source="identity")  # for figures already in the target


async def cached_rates(session: AsyncSession, pivot: str) -> RateTable | None:
    """The pivot's rates of the provider's latest update in the cache, or None."""
    rows = (
        await session.execute(
            text(
                "SELECT quote, rate, as_of, fetched_at, source FROM exchange_rates WHERE base = :pivot "
                "AND as_of = (SELECT max(as_of) FROM exchange_rates WHERE base = :pivot)"
            ),
            {"pivot": pivot},
        )
    ).all()
    if not rows:
        return None
    return RateTable(
        pivot=pivot,
        as_of=rows[0].as_of,
        fetched_at=max(row.fetched_at for row in rows),
        source=rows[0].source,
        rates={pivot: Decimal(1), **{row.quote: Decimal(row.rate) for row in rows}},
    )


async def _is_fresh(session: AsyncSession, table: RateTable, ttl: timedelta) -> bool:
    # The database's clock, the one fetched_at was written with.
    return bool(
        (await session.execute(text("SELECT :at > now() - :ttl"), {"at": table.fetched_at, "ttl": ttl})).scalar()
    )


async def refresh(client: Client, settings: Settings) -> FxFetchResult:
    """Fetches the pivot's rates now (joining a fetch already running); AppError 502/503 when it cannot."""
    pivot = settings.fx_pivot_currency
    try:
        return await asyncio.wait_for(
            client.execute_workflow(
                REFRESH_WORKFLOW,
                FxRefreshInput(
                    base=pivot,
                    attempts=settings.fx_fetch_attempts,
                    retry_seconds=settings.fx_retry_interval.total_seconds(),
                ),
                id=f"fx-refresh-{pivot}",
                task_queue=queue_for(settings, REFRESH_WORKFLOW),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # a fetch in flight: joined
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                result_type=FxFetchResult,
                static_summary=f"Exchange rates of {pivot}, fetched on demand",
            ),
            settings.fx_fetch_wait.total_seconds(),
        )
    except WorkflowFailureError as failure:
        cause: BaseException | None = failure.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = getattr(cause, "cause", None)
        if isinstance(cause, ApplicationError) and cause.type == PROVIDER_REFUSED:
            details = cause.details[0] if cause.details else {}
            raise AppError(
                502,
                "fx_provider_refused",
                f"the exchange-rate provider refused the request: {cause.message}",
                {"provider_error": details.get("error_type"), "provider_status": details.get("status")},
            ) from failure
        raise _unavailable(settings) from failure
    except TimeoutError:
        raise _unavailable(settings) from None


def _unavailable(settings: Settings) -> AppError:
    return AppError(
        503,
        "fx_unavailable",
        "exchange rates are unavailable: the provider did not answer and the cached rates are older than "
        f"{settings.fx_cache_ttl}; try again later",
        {"retry_after_seconds": 60},
        headers={"Retry-After": "60"},
    )


async def current_rates(session: AsyncSession, client: Client, settings: Settings) -> RateTable:
    """The cached rates when fresh, else fetched first (README: Currency)."""
    pivot = settings.fx_pivot_currency
    table = await cached_rates(session, pivot)
    if table is not None and await _is_fresh(session, table, settings.fx_cache_ttl):
        return table
    await refresh(client, settings)
    table = await cached_rates(session, pivot)
    if table is None:  # the fetch stored nothing (a provider answering no rates at all)
        raise _unavailable(settings)
    return table


def convert(table: RateTable, amount: Decimal, from_: str, to: str) -> Conversion:
    rate = table.rate(from_, to)
    return Conversion(
        amount=amount,
        from_=from_,
        to=to,
        converted=round_money(amount * rate, to),
        rate=rate.quantize(RATE_PLACES) if from_ != to else Decimal(1),
        as_of=table.as_of if from_ != to else None,
        source=table.source if from_ != to else "identity",
    )


class Converter:
    """Rates fetched at most once per request, and only if a figure is in another currency than the target."""

    def __init__(self, session: AsyncSession, client: Client, settings: Settings):
        self.session, self.client, self.settings = session, client, settings
        self.table: RateTable | None = None

    async def rates_for(self, currencies: set[str], target: str) -> RateTable:
        if currencies <= {target}:
            return IDENTITY
        if self.table is None:
            self.table = await current_rates(self.session, self.client, self.settings)
        return self.table
