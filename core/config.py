"""One Settings object for every process (API, worker, sandbox, dev stack), read from env vars and `.env`."""

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A fixed development key, so `make run` works out of the box. Production sets ACCOUNT_NUMBER_KEYS.
DEV_FERNET_KEY = "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: str = "development"

    # One business time zone decides every business date: ledger entries' effective dates, accrual days,
    # statement months, loan and bill due dates, ACH cutoff windows and the Schedules' crons (core/business_time.py).
    business_timezone: str = "America/New_York"

    # Postgres: when unset, the dev stack starts an embedded PostgreSQL and sets it.
    database_url: str = ""
    db_pool_size: int = 10

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "backoffice"

    # Auth
    jwt_secret: SecretStr = SecretStr("dev-only-jwt-secret-change-me-in-production-0123456789")
    jwt_algorithm: str = "HS256"
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=7)

    # Account numbers are encrypted at rest with Fernet. The first key encrypts; all keys decrypt,
    # so a key can be rotated by prepending a new one.
    account_number_keys: list[SecretStr] = Field(default_factory=lambda: [SecretStr(DEV_FERNET_KEY)])
    # Keys the fingerprints that find an account linked twice (core/crypto.py); unset, the oldest (last) account-
    # number key does, so a rotation keeps them. Set it to that key before retiring it.
    fingerprint_key: SecretStr | None = None

    # External services (the sandbox in development)
    linking_base_url: str = "http://127.0.0.1:8100"
    linking_client_id: str = "backoffice"
    linking_secret: SecretStr = SecretStr("sandbox-secret")
    http_timeout: float = 10.0

    # The API waits this long for a book transfer to finish before answering 202 instead of 201.
    book_transfer_wait: timedelta = timedelta(seconds=10)

    # ACH origination. Cutoff windows are local times in business_timezone; in demo/test mode
    # (ach_window_interval set) a window closes every interval instead, same-day.
    ach_cutoffs: list[str] = Field(default_factory=lambda: ["10:30", "14:45", "16:45"])
    ach_same_day_cutoffs: list[str] = Field(default_factory=lambda: ["10:30", "14:45"])
    ach_window_interval: timedelta | None = None
    ach_return_window: timedelta = timedelta(days=2)        # settled -> completed
    ach_late_return_window: timedelta = timedelta(days=60)  # completed -> a return reverses it
    ach_max_representments: int = 2
    ach_max_amount: Decimal = Decimal("25000.00")
    # A file the ODFI rejects (a 4xx), or that it leaves unanswered past the upload deadline (and then says it
    # does not have), never goes again: its payments are queued for the next window (requeue) or failed (fail).
    ach_rejected_file_policy: Literal["requeue", "fail"] = "requeue"
    ach_upload_deadline: timedelta = timedelta(minutes=30)
    odfi_base_url: str = "http://127.0.0.1:8100"
    odfi_api_key: SecretStr = SecretStr("sandbox-odfi-key")
    odfi_routing_number: str = "091000019"
    odfi_name: str = "SANDBOX ODFI"
    originator_company_id: str = "1234567890"
    originator_company_name: str = "BACKOFFICE CU"
    bank_webhook_secret: SecretStr = SecretStr("sandbox-webhook-secret")
    bank_webhook_tolerance: timedelta = timedelta(minutes=5)
    # The bank-event outbox: the webhook records each event, then hands it over (signals the payment's workflow,
    # or starts a delivery workflow), waiting at most bank_event_handover_timeout for Temporal each time; a sweep
    # every bank_event_sweep_interval delivers the events still pending after bank_event_sweep_grace (Temporal
    # was down, or the API died in between).
    bank_event_handover_timeout: timedelta = timedelta(seconds=2)
    bank_event_sweep_interval: timedelta = timedelta(minutes=1)
    bank_event_sweep_grace: timedelta = timedelta(seconds=30)
    bank_event_sweep_batch: int = Field(default=500, ge=1)

    # Loans
    bureau_base_url: str = "http://127.0.0.1:8100"
    bureau_api_key: SecretStr = SecretStr("sandbox-bureau-key")
    loan_min_credit_score: int = 580
    loan_max_debt_to_income: Decimal = Decimal("0.43")
    # The servicing clock: how long a loan day lasts. A day in production; the demo and tests compress it so
    # due dates, grace days and aging buckets pass in seconds (finance/servicing.py).
    loan_day_seconds: float = Field(default=86400.0, gt=0)
    loan_rounds_per_run: int = Field(default=200, ge=1)  # servicing wake-ups before the loan continues as new

    # Bills: reminders this many days before the due date (0 is the due day), the daily run's batch size, and
    # the least time between two manual reminders of one bill.
    bill_reminder_offsets: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [7, 3, 0])
    bill_batch_size: int = Field(default=500, ge=1)
    bill_manual_reminder_interval: timedelta = timedelta(hours=1)

    # Temporal Schedules of the back office (cron expressions read in business_timezone). Each scheduled
    # workflow works out its day or month from the time the schedule meant it to start (workflows/schedule_time.py),
    # so a backfill of a past period works on that period.
    schedule_overlap: str = "skip"             # a ScheduleOverlapPolicy name: skip, buffer_one, allow_all, ...
    schedule_catchup_window: timedelta = timedelta(days=1)
    bill_run_cron: str = "0 6 * * *"           # daily bill run: reminders, overdue, auto-pay
    accrual_cron: str = "30 0 * * *"           # daily interest accrual, for the day just ended
    interest_posting_cron: str = "0 2 1 * *"   # month-end interest posting, for the month just ended
    statements_cron: str = "0 5 1 * *"         # monthly statements, for the month just ended

    # Interest: accounts per set-based SQL statement, and posting batches per workflow run before it
    # continues as new (keeps each run's history small at millions of accounts).
    accrual_batch_size: int = 5000
    interest_batch_size: int = 5000
    interest_continue_as_new_after: int = 50

    # Email (a local sink in development, aiosmtpd in tests)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    mail_from: str = "Back office <no-reply@backoffice.example>"

    # Worker
    worker_metrics_address: str = "127.0.0.1:9464"
    worker_max_concurrent_activities: int = 50

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("business_timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/New_York)") from None
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
