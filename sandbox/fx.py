"""An exchange-rate API answering as exchangerate-api.com v6 does (its "standard" endpoint).

State lives in memory; a restart goes back to the default rates.

Rates API (fault injection applies, see app.py):
  GET /v6/{api_key}/latest/{base}
      200 {"result": "success", "documentation", "terms_of_use", "time_last_update_unix", "time_last_update_utc",
           "time_next_update_unix", "time_next_update_utc", "base_code", "conversion_rates": {code: rate, ...}}
      The provider updates once a day: time_last_update is today's 00:00:01 UTC (or the control's `as_of` date),
      the next one a day later. conversion_rates has the base itself at 1.
      Errors, as the provider's: {"result": "error", "error-type": ...}
        403 "invalid-key" (not the configured api_key), 404 "unsupported-code" (a base it has no rates of),
        404 "malformed-request" (a base that is not three letters).
Instrumentation for tests (never faulted):
  GET  /fx/requests   every request that reached the rates API (injected faults never do), oldest first.
  GET/PUT /fx/_control  {"api_key", "usd_rates": {code: units per USD}, "as_of": date | null, "down_next": N (the
      next N rate requests answer 503, an outage of this service alone)}; PUT changes only the
      fields present; usd_rates are merged (a null removes a currency) unless "usd_rates_mode": "replace".

Rates are deterministic: each currency's rate against USD is fixed (USD_RATES, or the control's), and another base's
are cross rates through USD (rate(B→Q) = usd[Q] / usd[B]) to 10 significant digits, as the provider's feed reads.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal
from email.utils import format_datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandbox.settings import SandboxSettings

# Units of each currency one US dollar buys: plausible, fixed, and JPY with no minor unit.
USD_RATES: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "EUR": Decimal("0.9123"),
    "GBP": Decimal("0.7891"),
    "JPY": Decimal("151.37"),
    "NGN": Decimal("1580.25"),
    "KES": Decimal("129.45"),
    "CAD": Decimal("1.3652"),
    "CHF": Decimal("0.8814"),
    "AUD": Decimal("1.5123"),
    "INR": Decimal("83.412"),
    "KWD": Decimal("0.3075"),  # three decimal places
}
SIGNIFICANT = Context(prec=10)


class FxConfig(BaseModel):
    api_key: str
    usd_rates: dict[str, Decimal]
    as_of: date | None = None  # the provider's update date; None: today (UTC)
    down_next: int = Field(0, ge=0)  # the next N requests answer 503: the provider is down (just this service)


class FxConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None
    usd_rates: dict[str, Decimal | None] | None = Field(default=None)
    usd_rates_mode: Literal["merge", "replace"] = "merge"
    as_of: date | None = None
    down_next: int | None = Field(default=None, ge=0)


class FxState:
    def __init__(self, settings: SandboxSettings):
        self.config = FxConfig(api_key=settings.fx_api_key, usd_rates=dict(USD_RATES))
        self.log: list[dict[str, Any]] = []

    def update(self, change: FxConfigUpdate) -> FxConfig:
        fields = change.model_dump(exclude_unset=True, exclude={"usd_rates_mode"})
        if change.usd_rates is not None:
            rates: dict[str, Decimal | None] = {} if change.usd_rates_mode == "replace" else dict(self.config.usd_rates)
            rates.update(change.usd_rates)
            fields["usd_rates"] = {code: rate for code, rate in rates.items() if rate is not None}
        try:
            self.config = FxConfig.model_validate({**self.config.model_dump(), **fields})
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        if any(rate <= 0 for rate in self.config.usd_rates.values()):
            raise RequestValidationError([{"loc": ["body", "usd_rates"], "msg": "rates must be > 0", "type": "value"}])
        return self.config

    def latest(self, api_key: str, base: str) -> tuple[int, dict[str, Any]]:
        if self.config.down_next:
            self.config.down_next -= 1
            return 503, {"result": "error", "error-type": "service-unavailable"}
        if api_key != self.config.api_key:
            return 403, {"result": "error", "error-type": "invalid-key"}
        if len(base) != 3 or not base.isalpha():
            return 404, {"result": "error", "error-type": "malformed-request"}
        usd = self.config.usd_rates
        if base.upper() not in usd:
            return 404, {"result": "error", "error-type": "unsupported-code"}
        base = base.upper()
        updated = datetime.combine(self.config.as_of or datetime.now(UTC).date(), time(0, 0, 1), UTC)
        following = updated + timedelta(days=1)
        rates = {code: 1 if code == base else float(SIGNIFICANT.divide(rate, usd[base])) for code, rate in usd.items()}
        return 200, {
            "result": "success",
            "documentation": "https://www.exchangerate-api.com/docs",
            "terms_of_use": "https://www.exchangerate-api.com/terms",
            "time_last_update_unix": int(updated.timestamp()),
            "time_last_update_utc": format_datetime(updated),
            "time_next_update_unix": int(following.timestamp()),
            "time_next_update_utc": format_datetime(following),
            "base_code": base,
            "conversion_rates": rates,
        }


router = APIRouter(prefix="/v6", tags=["exchange rates"])  # the provider's API: fault injection applies
control_router = APIRouter(prefix="/fx", tags=["exchange rates control"])  # test instrumentation: never faulted


def _state(request: Request) -> FxState:
    return request.app.state.fx


@router.get("/{api_key}/latest/{base}")
async def latest(api_key: str, base: str, request: Request) -> JSONResponse:
    state = _state(request)
    status, body = state.latest(api_key, base)
    state.log.append(
        {"received_at": datetime.now(UTC).isoformat(), "base": base, "status": status, "result": body["result"]}
    )
    return JSONResponse(body, status_code=status)


@control_router.get("/requests")
async def requests_log(request: Request) -> list[dict[str, Any]]:
    return _state(request).log


@control_router.get("/_control")
async def get_control(request: Request) -> dict[str, Any]:
    return _state(request).config.model_dump(mode="json")


@control_router.put("/_control")
async def put_control(change: FxConfigUpdate, request: Request) -> dict[str, Any]:
    return _state(request).update(change).model_dump(mode="json")
