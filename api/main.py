"""The FastAPI app: `python -m api.serve` (uvicorn, one or more processes) or `uvicorn api.main:create_app --factory`."""

from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, FastAPI

from api.body_limit import BodyLimit
from api.deps import TemporalConnection
from api.errors import install_error_handlers
from api.rate_limit import RateLimitMiddleware
from api.routers import (
    account_security,
    accounts,
    ach_files,
    ach_settings,
    alerts,
    api_keys,
    approval_rules,
    approvals,
    audit,
    auth,
    bank_events,
    bills,
    categories,
    category_rules,
    documents,
    external_accounts,
    fx,
    gateway_payments,
    gdpr_exports,
    health,
    insights,
    interest,
    journal_entries,
    kyc,
    live,
    loan_products,
    loans,
    maker_checker,
    member_budgets,
    members,
    mfa,
    money_shares,
    notifications,
    operations,
    passwords,
    payments,
    reconciliations,
    report_runs,
    reports,
    reward_accounts,
    reward_programs,
    savings_products,
    standing_instructions,
    statements,
    transaction_exports,
    transaction_imports,
    transactions,
    transfers,
    users,
    webhook_deliveries,
    webhook_subscriptions,
    webhooks,
)
from api.routers.metrics import install_metrics, process_series
from core.cache.listener import CacheListener
from core.cache.store import Cache
from core.config import InsecureSettings, Settings, check_production_secrets, get_settings
from core.crypto import AccountNumberCipher, FileCipher
from core.db import Database
from core.linking import LinkingClient
from core.live.listener import LiveUpdates
from core.logging import configure_logging
from core.rate_limit import RateLimiter
from core.storage import storage_from_settings
from core.tracing import configure_tracing, instrument_app, instrument_engine

DESCRIPTION = """A financial back office on Temporal.

Log in at `POST /api/v1/auth/login` (or with the **Authorize** button), then call the API with
`Authorization: Bearer <access_token>`. Every error answers `{"error": {"code", "message", "details"}}`.
Writes that move money take an `Idempotency-Key` header: a retry with the same key never moves money twice.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    check_production_secrets(settings)  # in production, no development default secret: refuse to start
    configure_logging(settings.log_level, settings.log_json, service="api")
    configure_tracing(settings, service="api")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.db = Database(
            settings.database_url, settings.db_pool_size, settings.database_read_url, cache=app.state.cache
        )
        instrument_engine(app.state.db.engine)  # the primary's statements (the instrumentor takes one engine)
        app.state.linking = LinkingClient(settings)
        app.state.rate_limiter = RateLimiter(settings)
        retry = settings.cache_listener_retry.total_seconds()
        async with (
            # Several API processes: each one's memory and CPU by pid. Outermost: it ends last, when it takes this
            # process's gauges out of the shared files, after the listener's last change to them.
            process_series(),
            CacheListener(app.state.cache, settings.database_url, "api", retry) as app.state.cache_listener,
            LiveUpdates(settings, app.state.db) as app.state.live,  # the /api/v1/ws events of every process
        ):
            yield
        await app.state.rate_limiter.close()
        await app.state.linking.aclose()
        await app.state.db.close()

    app = FastAPI(title="Back office", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.cipher = AccountNumberCipher.from_settings(settings)
    app.state.file_cipher = FileCipher.from_settings(settings)
    app.state.document_storage = storage_from_settings(settings)
    app.state.temporal = TemporalConnection(settings)
    app.state.cache = Cache.from_settings(settings)  # reference data (core/cache), before the metrics that count it
    install_error_handlers(app)  # its catch-all middleware inside the correlation id's: a 500 carries X-Request-ID
    app.add_middleware(BodyLimit, settings=settings)  # outside the catch-all: a body past its limit is a 413
    app.add_middleware(RateLimitMiddleware)  # before any handler; its 429s carry X-Request-ID and are counted
    app.add_middleware(CorrelationIdMiddleware)
    install_metrics(app, settings)  # outside the correlation id: its middleware counts every answer
    instrument_app(app)  # outermost, when tracing is on

    v1 = APIRouter(prefix="/api/v1")
    for module in (
        auth,
        mfa,
        passwords,
        users,
        account_security,
        ach_settings,
        accounts,
        external_accounts,
        transfers,
        payments,
        ach_files,
        webhooks,
        bank_events,
        audit,
        notifications,
        loan_products,
        approval_rules,
        loans,
        approvals,
        bills,
        savings_products,
        interest,
        operations,
        members,
        kyc,
        documents,
        api_keys,
        journal_entries,
        maker_checker,
        standing_instructions,
        reports,
        report_runs,
        webhook_subscriptions,
        webhook_deliveries,
        reconciliations,
        gateway_payments,
        transactions,
        categories,
        category_rules,
        transaction_exports,
        gdpr_exports,
        reward_programs,
        reward_accounts,
        money_shares,
        live,
        transaction_imports,
        member_budgets,
        alerts,
        fx,
        insights,
    ):
        v1.include_router(module.router)
    v1.include_router(alerts.subscriptions)
    v1.include_router(auth.me_router)
    v1.include_router(maker_checker.policy_router)
    v1.include_router(statements.router)
    v1.include_router(statements.runs_router)
    v1.include_router(report_runs.definitions)
    app.include_router(v1)
    app.include_router(health.router)
    return app


def main() -> None:  # `python -m api.main`
    import uvicorn

    try:
        app = create_app()
    except InsecureSettings as refused:
        raise SystemExit(f"API not started: {refused}") from None
    uvicorn.run(app, host="127.0.0.1", port=8000, log_config=None, workers=1)  # more: python -m api.serve


if __name__ == "__main__":
    main()
