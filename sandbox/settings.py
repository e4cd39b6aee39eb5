"""Settings of the sandbox process, read from `SANDBOX_*` env vars (kept apart from the main app's Settings)."""

import uuid
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8100

    # The credentials every linking call carries in its body; they match the main app's
    # LINKING_CLIENT_ID / LINKING_SECRET defaults so `make run` works without configuration.
    client_id: str = "backoffice"
    secret: str = "sandbox-secret"

    # Fault injection on every service route (changeable at runtime through /_control/faults).
    latency_ms: int = Field(0, ge=0)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)  # probability of an injected error
    error_status: int = Field(500, ge=400, le=599)
    seed: int | None = None  # seeds the error_rate dice, so a faulty run can be replayed

    # The bank / ODFI (sandbox/odfi.py); every field below is also changeable at runtime via /odfi/_control.
    odfi_api_key: str = "sandbox-odfi-key"
    webhook_url: str | None = None  # the back office's POST /api/v1/webhooks/bank; None: events are only logged
    webhook_secret: str = "sandbox-webhook-secret"
    settlement_delay_ms: int = Field(500, ge=0)
    return_delay_ms: int = Field(500, ge=0)
    settled_return_delay_ms: int = Field(1000, ge=0)  # .31/.32: settled, then returned R01 this long after
    late_return_delay_ms: int = Field(3000, ge=0)
    duplicate_deliveries: bool = False  # deliver every event twice
    out_of_order: bool = False  # deliver each file's events in reverse order
    delivery_max_attempts: int = Field(20, ge=1)
    reject_next_files: int = Field(0, ge=0)  # refuse the next N uploaded files (FILE_REJECTED)
    reject_status: int = Field(422, ge=400, le=599)  # with this status (a 5xx plays an outage instead)
    prenote_return_code: str | None = None  # every prenote returned with this R-code (e.g. R03)

    # The card/payment gateway (sandbox/gateway.py): its secret key signs webhooks and authorizes the API (the main
    # app's GATEWAY_SECRET_KEY default); where webhooks go and when an unpaid checkout counts as abandoned are also
    # changeable at runtime via /gateway/_control.
    gateway_secret_key: str = "sk_test_sandbox_gateway"
    gateway_webhook_url: str | None = None  # the back office's POST /api/v1/webhooks/gateway
    gateway_abandon_after_ms: int = Field(30 * 60 * 1000, ge=0)

    # The identity-verification service (sandbox/identity.py): matches the main app's IDENTITY_API_KEY default.
    identity_api_key: str = "sandbox-identity-key"

    # The credit bureau (sandbox/bureau.py); both are also changeable at runtime via /bureau/_control.
    bureau_api_key: str = "sandbox-bureau-key"
    # applicant_id -> forced score, e.g. SANDBOX_BUREAU_FIXED_SCORES='{"<uuid>": 720}'
    bureau_fixed_scores: dict[uuid.UUID, Annotated[int, Field(ge=300, le=850)]] = {}

    # The exchange-rate API (sandbox/fx.py): matches the main app's FX_API_KEY default; changeable via /fx/_control.
    fx_api_key: str = "sandbox-fx-key"
