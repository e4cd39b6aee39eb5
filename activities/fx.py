"""The exchange-rate fetch: the provider's latest rates of one base currency (exchangerate-api.com v6's `latest`;
the sandbox's /v6 in development and tests), stored in `exchange_rates`.

Retries are Temporal's (the workflow's retry policy): connection errors, timeouts, 5xx and 429 raise plain
exceptions. The provider's own refusals are answers a retry would only repeat, non-retryable ApplicationErrors
of type "FxProviderRefused" with details [{"status", "error_type"}] (invalid-key, unsupported-code, ...).
Amounts are parsed as Decimal straight from the JSON text (never through float). The write is idempotent: one row
per (base, quote, as_of), a second fetch of the same update only refreshes its rate and fetched_at.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import httpx
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.db import Database
from models.fx import EXCHANGE_RATES, FxFetchRequest, FxFetchResult

PROVIDER_REFUSED = "FxProviderRefused"
SOURCE = "exchangerate-api.v6"


def _refused(message: str, status: int, error_type: str | None) -> ApplicationError:
    return ApplicationError(
        message, {"status": status, "error_type": error_type}, type=PROVIDER_REFUSED, non_retryable=True
    )


def parse_latest(body: str, status: int) -> tuple[str, datetime, dict[str, Decimal]]:
    """(base, the provider's update time, {quote: rate}) of a success answer; raises the refusal otherwise."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        raise _refused(f"the exchange-rate provider answered {status} with no JSON", status, None) from None
    if not isinstance(data, dict) or data.get("result") != "success":
        error_type = data.get("error-type") if isinstance(data, dict) else None
        raise _refused(f"the exchange-rate provider refused: {error_type or status}", status, error_type)
    try:
        updated = datetime.fromtimestamp(int(data["time_last_update_unix"]), UTC)
        rates = {str(code).upper(): Decimal(rate) for code, rate in data["conversion_rates"].items()}
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError):
        raise _refused("the exchange-rate provider's answer is not the documented shape", status, None) from None
    if any(not rate.is_finite() or rate <= 0 for rate in rates.values()):
        raise _refused("the exchange-rate provider sent a rate that is not positive", status, None)
    return str(data["base_code"]).upper(), updated, rates


class FxActivities:
    def __init__(self, db: Database, settings: Settings, http: httpx.AsyncClient | None = None):
        self.db = db
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=settings.http_timeout)

    @activity.defn
    async def fetch_rates(self, req: FxFetchRequest) -> FxFetchResult:
        base = (req.base or self.settings.fx_pivot_currency).upper()
        key = self.settings.fx_api_key.get_secret_value()
        response = await self.http.get(f"{self.settings.fx_base_url.rstrip('/')}/v6/{key}/latest/{base}")
        if response.status_code >= 500 or response.status_code == 429:
            raise RuntimeError(f"the exchange-rate provider answered {response.status_code}; retrying")
        answered_base, updated, rates = parse_latest(response.text, response.status_code)
        as_of = updated.date()
        rows = [
            {"base": answered_base, "quote": quote, "rate": rate, "as_of": as_of, "source": SOURCE}
            for quote, rate in rates.items()
            if quote != answered_base
        ]
        async with self.db.session() as session, session.begin():
            statement = insert(EXCHANGE_RATES).values(rows)
            await session.execute(
                statement.on_conflict_do_update(
                    constraint="exchange_rates_once_per_day",
                    set_={"rate": statement.excluded.rate, "fetched_at": func.now()},
                )
            )
            fetched_at = (await session.execute(func.now().select())).scalar_one()
        return FxFetchResult(base=answered_base, as_of=as_of, rates=len(rows), fetched_at=fetched_at)
