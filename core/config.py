"""One Settings object for every process (API, worker, sandbox, dev stack), read from env vars and `.env`."""

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# "N/period" of a rate limit (core/rate_limit.py parses it).
LIMIT_PATTERN = r"^[1-9][0-9]{0,8}/(second|minute|hour|day)$"

# Fixed development keys, so `make run` works out of the box. Production sets ACCOUNT_NUMBER_KEYS and
# FILE_ENCRYPTION_KEYS (with ENVIRONMENT=production the API and the worker refuse to start on these: see
# development_secrets below).
DEV_FERNET_KEY = "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="
DEV_FILE_KEY = "ZGV2LW9ubHktZmlsZS1rZXktZG8tbm90LXVzZSEhISE="  # base64 of 32 bytes: AES-256


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # development, test or production. In production the API and the worker refuse to start while any secret
    # still has its development default (check_production_secrets).
    environment: str = "development"

    # One business time zone decides every business date: ledger entries' effective dates, accrual days,
    # statement months, loan and bill due dates, ACH cutoff windows and the Schedules' crons (core/business_time.py).
    business_timezone: str = "America/New_York"

    # Postgres: when unset, the dev stack starts an embedded PostgreSQL and sets it.
    database_url: str = ""
    db_pool_size: int = 10
    # A streaming read replica for the list endpoints (reports, lists); unset, they read the primary.
    database_read_url: str = ""

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # Task queues by urgency (core/task_queues.py): TASK_QUEUE carries money movement (its name is the one every
    # workflow started before the split runs on); ROUTINE_TASK_QUEUE the routine work, TASK_QUEUE + "-routine" unset;
    # INTERACTIVE_TASK_QUEUE the approvals people wait on, TASK_QUEUE + "-interactive" unset.
    task_queue: str = "backoffice"
    routine_task_queue: str = ""
    interactive_task_queue: str = ""

    # Auth
    jwt_secret: SecretStr = SecretStr("dev-only-jwt-secret-change-me-in-production-0123456789")
    jwt_algorithm: str = "HS256"
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=7)

    # Identity (README "Identity"). Passwords: at least this long, this zxcvbn score (0-4) or better, and none of
    # the user's last `password_history` passwords.
    password_min_length: int = Field(default=12, ge=12)
    password_min_score: int = Field(default=3, ge=0, le=4)
    password_history: int = Field(default=5, ge=1)
    # Lockout: `lockout_threshold` failed logins within `lockout_window` lock the account for `lockout_duration`,
    # doubled at each further lock (up to `lockout_max_duration`) until a login succeeds; an admin may unlock earlier.
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_window: timedelta = timedelta(minutes=15)
    lockout_duration: timedelta = timedelta(minutes=15)
    lockout_max_duration: timedelta = timedelta(hours=24)
    # Password reset: the emailed token's life, and the page the emailed link opens (the token is appended).
    password_reset_ttl: timedelta = timedelta(minutes=30)
    password_reset_url: str = "http://127.0.0.1:8000/reset-password"
    # MFA: the issuer shown by authenticator apps; how long the login's MFA challenge (and the enrolment token of staff
    # who must enrol) lasts; how many 30 s steps either side of now a TOTP code may be from.
    mfa_issuer: str = "Back office"
    mfa_challenge_ttl: timedelta = timedelta(minutes=5)
    mfa_valid_window: int = Field(default=1, ge=0, le=4)

    # Account numbers are encrypted at rest with Fernet. The first key encrypts; all keys decrypt,
    # so a key can be rotated by prepending a new one.
    account_number_keys: list[SecretStr] = Field(default_factory=lambda: [SecretStr(DEV_FERNET_KEY)])
    # Keys the fingerprints that find an account linked twice (core/crypto.py); unset, the oldest (last) account-
    # number key does, so a rotation keeps them. Set it to that key before retiring it.
    fingerprint_key: SecretStr | None = None
    # Files stored in the database are encrypted at rest with AES-256-GCM (core/crypto.py FileCipher): today the
    # NACHA files, which hold account numbers and names. Each key is 32 random bytes, base64
    # (`python -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())'`); its key id (a hash of
    # it) is stored beside each ciphertext. As for account numbers: the first key encrypts, every key decrypts,
    # so a key is rotated by prepending a new one, and retired once no stored file names its id.
    file_encryption_keys: list[SecretStr] = Field(default_factory=lambda: [SecretStr(DEV_FILE_KEY)])

    # Documents (README "Documents"): uploads up to document_max_bytes, scanned before they are stored, sealed with
    # FILE_ENCRYPTION_KEYS in a storage backend: "local" (a directory) or "s3" (any S3-compatible store: MinIO in
    # docker-compose; credentials from S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY or boto3's usual chain when unset).
    document_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Any other request's body (api/body_limit.py): past it a 413 before the body is read, let alone spooled.
    request_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Transaction imports (README "Importing transactions"): a CSV up to import_max_bytes, loaded
    # import_chunk_lines lines per activity (each chunk one transaction: a retry resumes at the next one).
    import_max_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024)
    import_chunk_lines: int = Field(default=50_000, ge=1)
    # A linked account's feed (the provider's /transactions/sync) is read import_sync_page transactions a page.
    import_sync_page: int = Field(default=500, ge=1, le=500)
    document_storage: Literal["local", "s3"] = "local"
    document_storage_dir: str = ".data/documents"
    s3_endpoint_url: str = ""  # unset: AWS itself
    s3_region: str = "us-east-1"
    s3_bucket: str = "backoffice-documents"
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr | None = None
    # The virus scanner: "sandbox" (HTTP, the sandbox's stand-in flags the EICAR test file) or "clamd" (ClamAV's
    # daemon, INSTREAM over CLAMD_ADDRESS: unix:///path/to/clamd.sock or tcp://host:3310).
    document_scanner: Literal["sandbox", "clamd"] = "sandbox"
    scanner_base_url: str = "http://127.0.0.1:8100"
    clamd_address: str = "unix:///var/run/clamav/clamd.ctl"
    # How long a signed download link works (a client may ask for less).
    document_link_ttl: timedelta = timedelta(minutes=5)

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
    ach_return_window: timedelta = timedelta(days=2)  # settled -> completed
    ach_late_return_window: timedelta = timedelta(days=60)  # completed -> a return reverses it
    ach_max_representments: int = 2
    ach_max_amount: Decimal = Decimal("25000.00")
    # A file the ODFI rejects (a 4xx), or that it leaves unanswered past the upload deadline (and then says it
    # does not have), never goes again: its payments are queued for the next window (requeue) or failed (fail).
    ach_rejected_file_policy: Literal["requeue", "fail"] = "requeue"
    ach_upload_deadline: timedelta = timedelta(minutes=30)
    # The bank's limits per NACHA file: a window's entries fill as many files as they need (finance/ach_file_plan.py).
    ach_file_max_records: int = Field(default=10_000, ge=2)
    ach_file_max_amount: Decimal | None = Field(default=None, gt=0)
    # An organization requiring prenotes: the first live debit to a new external account waits this long after the
    # cutoff of its prenote's window, for a return that would disable the account.
    ach_prenote_wait: timedelta = timedelta(days=3)
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

    # Webhooks out (domain/webhooks.py): each event is POSTed to its subscription's URL, retried with exponential
    # backoff (webhook_retry_initial, doubling up to webhook_retry_max_interval) for at most webhook_delivery_max_time,
    # then parked as a dead letter. The dispatcher looks for new outbox rows every webhook_dispatch_interval and
    # wakes again a subscription whose events still wait after webhook_rewake_after (its workflow was terminated).
    webhook_dispatch_interval: timedelta = timedelta(seconds=1)
    webhook_rewake_after: timedelta = timedelta(minutes=10)
    webhook_retry_initial: timedelta = timedelta(seconds=5)
    webhook_retry_max_interval: timedelta = timedelta(minutes=10)
    webhook_delivery_max_time: timedelta = timedelta(days=3)
    webhook_request_timeout: timedelta = timedelta(seconds=10)

    # The card/payment gateway IN (domain/gateway.py, the sandbox's /gateway in development): its API and secret key
    # (which also signs its webhooks, HMAC-SHA512 of the raw body), where the customer's browser returns after the
    # checkout. A payment's workflow waits gateway_verify_after for the webhook, then asks the gateway (verify) up to
    # gateway_verify_attempts times, gateway_verify_interval apart doubling to gateway_verify_max_interval; still
    # unpaid after that, the payment is abandoned. The API waits at most gateway_checkout_wait for the checkout URL.
    gateway_base_url: str = "http://127.0.0.1:8100"
    gateway_secret_key: SecretStr = SecretStr("sk_test_sandbox_gateway")
    gateway_callback_url: str = "http://127.0.0.1:8000/api/v1/gateway-payments"
    gateway_currency: str = "USD"
    gateway_verify_after: timedelta = timedelta(minutes=30)
    gateway_verify_interval: timedelta = timedelta(minutes=1)
    gateway_verify_max_interval: timedelta = timedelta(minutes=30)
    gateway_verify_attempts: int = Field(default=8, ge=1, le=50)
    gateway_checkout_wait: timedelta = timedelta(seconds=15)

    # Currency (README: Currency): exchange rates from an exchangerate-api.com v6 compatible provider (the sandbox's
    # /v6 in development), for one pivot currency: every other pair is a cross rate through it. Cached in
    # `exchange_rates`; older than fx_cache_ttl they are fetched again before use (and by the fx-rates-refresh
    # Schedule). A fetch is tried fx_fetch_attempts times, fx_retry_interval apart (doubling), then the API says 503.
    fx_base_url: str = "http://127.0.0.1:8100"
    fx_api_key: SecretStr = SecretStr("sandbox-fx-key")
    fx_pivot_currency: str = "USD"
    fx_cache_ttl: timedelta = timedelta(hours=12)
    fx_fetch_attempts: int = Field(default=3, ge=1, le=20)
    fx_retry_interval: timedelta = timedelta(seconds=1)
    fx_fetch_wait: timedelta = timedelta(seconds=20)  # how long a request waits for a fetch on demand

    # Loans
    bureau_base_url: str = "http://127.0.0.1:8100"
    bureau_api_key: SecretStr = SecretStr("sandbox-bureau-key")
    loan_min_credit_score: int = 580
    loan_max_debt_to_income: Decimal = Decimal("0.43")
    # The servicing clock: how long a loan day lasts. A day in production; the demo and tests compress it so
    # due dates, grace days and aging buckets pass in seconds (finance/servicing.py).
    loan_day_seconds: float = Field(default=86400.0, gt=0)
    loan_rounds_per_run: int = Field(default=200, ge=1)  # servicing wake-ups before the loan continues as new

    # Exports of members' data (README: Exports): up to export_sync_max_rows a transactions export is streamed by
    # the download endpoint; above it the caller asks for a background export, whose file is handed out by a link
    # signed (HMAC-SHA256) with export_link_secret and valid for export_link_ttl, without signing in.
    export_sync_max_rows: int = Field(default=10_000, ge=1)
    export_link_secret: SecretStr | None = None  # unset: derived from JWT_SECRET (apart from it, like documents')
    export_link_ttl: timedelta = timedelta(days=7)

    # Members (README: Members and KYC). Links in emails start with public_base_url; a sign-up's verification link
    # and an invitation are single use and expire after these.
    public_base_url: str = "http://127.0.0.1:8000"
    signup_token_ttl: timedelta = timedelta(hours=24)
    invitation_ttl: timedelta = timedelta(days=7)
    # KYC: the identity-verification service (the sandbox's /identity in development), how long a verification is
    # valid, how long before its end the re-verification schedule asks the member again, and the human review of a
    # screening that refers (a level of ApprovalWorkflow: the reviewer role, its deadline, a reminder offset from the
    # level opening, the escalation role; after the escalation's deadline the review declines).
    identity_base_url: str = "http://127.0.0.1:8100"
    identity_api_key: SecretStr = SecretStr("sandbox-identity-key")
    kyc_valid_for: timedelta = timedelta(days=365)
    kyc_reverify_ahead: timedelta = timedelta(days=30)
    kyc_reverification_cron: str = "15 4 * * *"
    kyc_review_deadline: timedelta = timedelta(days=2)
    kyc_review_reminder: timedelta = timedelta(days=1)
    kyc_reviewer_role: str = "operator"
    kyc_escalation_role: str = "org_admin"
    # Reversals of posted entries (maker-checker, workflows/reversal.py): the checker's role in the entry's
    # organization and how long the request waits on them before it lapses (declined).
    reversal_checker_role: str = "org_admin"
    reversal_decision_deadline: timedelta = timedelta(days=2)
    # Maker-checker (domain/maker_checker.py): a deposit, withdrawal or book transfer of more than this amount waits
    # for a checker of the organization (checker role) before it posts, as every manual journal entry and every close
    # of an organization's accounting period does; the request lapses (declined) after the deadline.
    maker_checker_threshold: Decimal = Decimal("10000.00")
    maker_checker_role: str = "org_admin"
    maker_checker_decision_deadline: timedelta = timedelta(days=2)
    # Standing instructions (recurring book transfers, each a Temporal Schedule): the shortest cadence a client may
    # ask for as `every`, the hour of day (business time zone) of the daily/weekly/monthly ones, how far back a
    # schedule that could not run (a Temporal outage) still catches up, and a failed run's retries.
    standing_instruction_min_interval: timedelta = timedelta(hours=1)
    standing_instruction_hour: int = Field(default=7, ge=0, le=23)
    standing_instruction_catchup_window: timedelta = timedelta(days=3)
    standing_instruction_attempts: int = Field(default=3, ge=1, le=10)
    standing_instruction_retry_after: timedelta = timedelta(hours=4)

    # Loan-loss provisioning of the loan portfolio report: a rate (0 to 1) per aging bucket, bank-wide, overriding
    # finance/portfolio.py DEFAULT_RATES (current 0.01, 1-30 0.05, 31-60 0.20, 61-90 0.50, 90+ 1.00), e.g.
    # PROVISIONING_RATES='{"31-60": "0.25"}'.
    provisioning_rates: dict[str, Annotated[Decimal, Field(ge=0, le=1)]] = Field(default_factory=dict)
    # Bank reconciliation (workflows/reconciliation.py): how many days a statement line's date may be from its
    # posting's effective date in the automatic passes, the least score (0 to 1) of the second pass (amount, date,
    # description/counterparty words), and the most lines one statement may have (the workflow keeps their states).
    reconciliation_date_window_days: int = Field(default=3, ge=0, le=60)
    reconciliation_min_score: Decimal = Field(default=Decimal("0.35"), ge=0, le=1)
    reconciliation_max_lines: int = Field(default=5000, ge=1, le=20000)

    # Bills: reminders this many days before the due date (0 is the due day), the daily run's batch size, and
    # the least time between two manual reminders of one bill.
    bill_reminder_offsets: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [7, 3, 0])
    bill_batch_size: int = Field(default=500, ge=1)
    bill_manual_reminder_interval: timedelta = timedelta(hours=1)

    # Temporal Schedules of the back office (cron expressions read in business_timezone). Each scheduled
    # workflow works out its day or month from the time the schedule meant it to start (workflows/schedule_time.py),
    # so a backfill of a past period works on that period.
    schedule_overlap: str = "skip"  # a ScheduleOverlapPolicy name: skip, buffer_one, allow_all, ...
    schedule_catchup_window: timedelta = timedelta(days=1)
    bill_run_cron: str = "0 6 * * *"  # daily bill run: reminders, overdue, auto-pay
    accrual_cron: str = "30 0 * * *"  # daily interest accrual, for the day just ended
    interest_posting_cron: str = "0 2 1 * *"  # month-end interest posting, for the month just ended
    statements_cron: str = "0 5 1 * *"  # monthly statements, for the month just ended
    backup_cron: str = "0 3 * * *"  # daily dump of the application database (core/backups.py)
    retention_cron: str = "30 3 * * *"  # daily retention purge (core/retention.py)
    fx_refresh_cron: str = "15 0 * * *"  # exchange rates fetched again, after the provider's daily update

    # Backups: pg_dump custom-format files in backup_dir, verified, recorded in `backups`, and pruned after
    # backup_retention. pg_bin_dir holds pg_dump/pg_restore; unset: the embedded PostgreSQL's, else the PATH's.
    backup_dir: str = ".data/backups"
    backup_retention: timedelta = timedelta(days=30)
    pg_bin_dir: str = ""

    # Retention (core/retention.py): what is purged or anonymized past its age, in batches; the ledger never is.
    audit_retention: timedelta = timedelta(days=7 * 365 + 2)  # seven years, leap days included
    read_notification_retention: timedelta = timedelta(days=90)  # after the notification was read
    email_body_retention: timedelta = timedelta(days=90)  # after the email was sent: bodies blanked, row kept
    bank_event_payload_retention: timedelta = timedelta(days=400)  # applied/resolved events: payload dropped
    expired_token_retention: timedelta = timedelta(days=30)  # refresh tokens, after they expired
    retention_batch_size: int = Field(default=1000, ge=1)
    # An upload's sealed copy waiting for its scan (staging/) is removed by the upload itself; one left behind by a
    # crash in between is removed by the retention run once it is this old (an upload takes seconds).
    staged_upload_retention: timedelta = timedelta(hours=1)

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
    # Each queue's worker pool: money movement, and routine work (reports, statements, reminders, interest runs).
    worker_max_concurrent_activities: int = Field(default=50, ge=1)  # the money queue's
    # Workflow tasks one pool runs at once (the SDK's default, 100). Python runs them on one CPU at a time: on a
    # small, busy machine a backlog of new workflows (after a restart) can make each of 100 concurrent tasks outlast
    # the 10 s workflow task timeout, so that every one is timed out and retried and none completes. Lower it there.
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=2)  # the money queue's
    routine_max_concurrent_activities: int = Field(default=20, ge=1)
    routine_max_concurrent_workflow_tasks: int = Field(default=20, ge=2)
    interactive_max_concurrent_activities: int = Field(default=50, ge=1)
    interactive_max_concurrent_workflow_tasks: int = Field(default=50, ge=2)
    # Running workflows kept in memory by each pool (the SDK's default, 1,000): one evicted from the cache replays
    # its whole history on its next task, so a worker with more running than this spends its CPU replaying. Raise it
    # (memory allowing) or add workers when more run at once.
    worker_max_cached_workflows: int = Field(default=1000, ge=0)

    # The operator API: an activity at this attempt or later is "retrying" (listed), and makes its running workflow
    # "stuck" (resettable).
    operations_retry_threshold: int = Field(default=5, ge=2)

    # Rate limits (core/rate_limit.py): a token bucket per endpoint group and identity (user, API key, or client IP),
    # shared by every API process through Postgres. Each group's limit is "N/second|minute|hour|day" (a burst of N,
    # refilled at N per period), multiplied by the tier of the caller's role. Generous by default, so that the
    # benchmarks and the test suite (every client on one loopback address) pass; tighten them in production (README).
    rate_limits_enabled: bool = True
    rate_limit_auth: Annotated[str, Field(pattern=LIMIT_PATTERN)] = (
        "300/minute"  # sign-in, refresh, reset, MFA, sign-up
    )
    rate_limit_reads: Annotated[str, Field(pattern=LIMIT_PATTERN)] = "6000/minute"
    rate_limit_writes: Annotated[str, Field(pattern=LIMIT_PATTERN)] = "3000/minute"
    rate_limit_decisions: Annotated[str, Field(pattern=LIMIT_PATTERN)] = "1200/minute"
    rate_limit_tiers: dict[str, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=lambda: {
            "anonymous": 1.0,
            "member": 1.0,
            "api_key": 2.0,
            "org_admin": 2.0,
            "operator": 2.0,
            "loan_officer": 2.0,
            "branch_manager": 2.0,
            "credit_committee": 2.0,
            "bank_operations": 5.0,
            "superuser": 5.0,
        }
    )
    rate_limit_pool_size: int = Field(default=5, ge=1)  # each API process's connections for the bucket statement

    log_level: str = "INFO"
    log_json: bool = True

    # The reference-data cache (core/cache): the signed-in user, products and approval rules are kept in each API and
    # worker process this long (0: no cache, every read goes to the database), dropped at once when their row changes
    # (Postgres LISTEN/NOTIFY). While the listener is down the cache is bypassed; it reconnects every
    # cache_listener_retry.
    cache_ttl_seconds: float = Field(default=30.0, ge=0)
    cache_max_entries: int = Field(default=10_000, ge=1)
    cache_listener_retry: timedelta = timedelta(seconds=1)

    # Live updates (the /api/v1/ws WebSocket, core/live): each API process LISTENs for events and refreshes its
    # presence rows every live_heartbeat; a process not heard of for live_session_expiry is dead, its users offline.
    # A socket that falls live_queue_size events behind is closed (1013: reconnect and reload).
    live_heartbeat: timedelta = timedelta(seconds=10)
    live_session_expiry: timedelta = timedelta(seconds=45)
    live_queue_size: int = Field(default=1000, ge=1)

    # Observability. The API's /metrics wants `Authorization: Bearer <METRICS_TOKEN>` when it is set (production
    # requires it); its business series are recomputed by SQL at most once per metrics_cache_ttl.
    metrics_token: SecretStr | None = None
    metrics_cache_ttl: timedelta = timedelta(seconds=5)
    # A payment not yet final whose last change is older than this is stuck (backoffice_payments_stuck): longer
    # than a cutoff wait, settlement and the return window over a long weekend.
    payment_stuck_after: timedelta = timedelta(days=5)
    # Traces are exported by OTLP/HTTP to this collector (e.g. http://jaeger:4318); unset, tracing is off.
    otel_exporter_otlp_endpoint: str = ""

    @field_validator("provisioning_rates")
    @classmethod
    def _known_buckets(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        from finance.portfolio import rates_or_default

        rates_or_default(value)  # a ValueError names an unknown bucket
        return value

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


PRODUCTION = "production"

# Every secret-like setting (the env var that sets it): in production none may keep its development default.
SECRET_SETTINGS = (
    "jwt_secret",
    "account_number_keys",
    "fingerprint_key",
    "file_encryption_keys",
    "linking_secret",
    "odfi_api_key",
    "bank_webhook_secret",
    "bureau_api_key",
    "identity_api_key",
    "fx_api_key",
    "gateway_secret_key",  # signs the gateway's webhooks: a known one would let anyone post a card payment
    "smtp_password",
    "metrics_token",  # no default: unset is refused in production (anyone could read the business metrics)
)

# Secrets that have no development default: in production each must be set.
REQUIRED_SECRETS = ("metrics_token",)


class InsecureSettings(RuntimeError):
    """ENVIRONMENT=production with secrets still at their development defaults."""

    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(
            "ENVIRONMENT=production, but these secrets still have their development defaults: "
            + ", ".join(names)
            + ". Set each to a secret of its own (env var or .env) before starting."
        )


def _secret_values(value) -> set[str]:
    values = value if isinstance(value, list) else [value]
    return {v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in values if v is not None}


def development_secrets(settings: Settings) -> list[str]:
    """The env var names of the secrets that still hold a development default value: a default key anywhere in a
    key list counts (it would still decrypt, or encrypt), and so does a fingerprint key left unset while the
    account-number keys it falls back to are the defaults."""
    known = set()
    for name in SECRET_SETTINGS:
        known |= _secret_values(Settings.model_fields[name].get_default(call_default_factory=True))
    found = []
    for name in SECRET_SETTINGS:
        value = getattr(settings, name)
        if _secret_values(value) & known:
            found.append(name.upper())
    found += [name.upper() for name in REQUIRED_SECRETS if getattr(settings, name) is None]
    if settings.fingerprint_key is None and "ACCOUNT_NUMBER_KEYS" in found:
        found.append("FINGERPRINT_KEY")  # unset, it is keyed by the oldest account-number key
    return sorted(found, key=[n.upper() for n in SECRET_SETTINGS].index)


def check_production_secrets(settings: Settings) -> None:
    """What the API and the worker call before they start: in production, raises InsecureSettings naming every
    secret still at its development default. Development and tests start with the defaults."""
    if settings.environment.strip().lower() != PRODUCTION:
        return
    if names := development_secrets(settings):
        raise InsecureSettings(names)
