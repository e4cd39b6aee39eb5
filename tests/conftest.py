"""The real stack for integration tests, started once per session on free ports and temp dirs, apart from
anything `make run` has up: an embedded Postgres, a Temporal dev server, the sandbox, a worker and the API."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core import search_attributes
from core.cache.listener import CacheListener
from core.cache.store import Cache
from core.config import Settings
from core.db import Database
from devstack import processes
from devstack.postgres import embedded_postgres, migrate
from devstack.temporal_cli import ensure_temporal
from domain.users import ensure_superuser
from tests.mailbox import Mailbox
from tests.replay import corpus
from worker import build_worker

pytest_plugins = ["tests.time_limit"]  # no test hangs the suite

SUPERUSER = ("root@tests.example", "superuser-test-password")


def pytest_addoption(parser):
    parser.addoption(
        "--capture-histories",
        metavar="DIR",
        default=None,
        help="at the end of the session, save every workflow run's history under DIR "
        "(the replay corpus is selected from it: tests/replay/corpus.py)",
    )
    parser.addoption(
        "--write-authz-matrix",
        action="store_true",
        default=False,
        help="write the observed authorization matrix to tests/integration/authorization_matrix.csv "
        "(keeping the notes of existing rows) for review, instead of comparing with it",
    )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or embedded_postgres(
        tmp_path_factory.mktemp("postgres") / "data", delete_on_exit=True
    )
    migrate(url)
    return url


@pytest.fixture(scope="session")
async def temporal_env(request):
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=ensure_temporal(),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    yield env
    if folder := request.config.getoption("--capture-histories"):
        print(f"\ncaptured {await corpus.capture(env.client, Path(folder))} workflow histories in {folder}")
    await env.shutdown()


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory) -> Iterator[str]:
    port = processes.free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    child = processes.start(processes.python("-m", "sandbox", "--port", str(port)), log_path=log)
    processes.wait_for_port(port, child, name="sandbox")
    yield f"http://127.0.0.1:{port}"
    processes.stop(child)


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """The real SMTP server every email of the session goes to (the API's and the worker's)."""
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture(scope="session")
def settings(database_url, temporal_env, sandbox_url, mailbox, tmp_path_factory) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        task_queue=f"tests-{uuid.uuid4().hex[:8]}",
        linking_base_url=sandbox_url,
        log_json=False,
        # The session's tokens (su, each org's users) outlive the whole suite on a loaded machine (test_auth's
        # token issued two hours ago must still be expired).
        access_token_ttl=timedelta(minutes=90),
        book_transfer_wait=timedelta(seconds=15),
        smtp_host=mailbox.host,
        smtp_port=mailbox.port,
        # ACH in seconds: a window closes every second, the return window is a second, a late return
        # (the sandbox sends R10 2.5 s after settlement) still lands inside the late-return window.
        odfi_base_url=sandbox_url,
        bureau_base_url=sandbox_url,
        ach_window_interval=timedelta(seconds=1),
        ach_return_window=timedelta(seconds=1),
        ach_late_return_window=timedelta(seconds=8),
        # Bills: tiny batches, so the daily run's keyset paging is exercised by a handful of bills.
        bill_batch_size=2,
        # Interest in small batches, continuing as new every few, so tests cross both boundaries.
        accrual_batch_size=50,
        interest_batch_size=50,
        interest_continue_as_new_after=3,
        # The backup workflow's dumps in a directory of the session's; retention one row at a time (its batches).
        backup_dir=str(tmp_path_factory.mktemp("backups")),
        retention_batch_size=1,
        # KYC in seconds: the identity service is the sandbox's; a review level lasts 8 s (reminder at 3 s) before it
        # escalates; a verification is valid 3 s, and re-verification asks only once it has ended.
        identity_base_url=sandbox_url,
        kyc_review_deadline=timedelta(seconds=8),
        kyc_review_reminder=timedelta(seconds=3),
        kyc_valid_for=timedelta(seconds=3),
        kyc_reverify_ahead=timedelta(0),
        # Documents: stored in a directory of the session's, scanned by the sandbox, small enough to test the limit.
        document_storage_dir=str(tmp_path_factory.mktemp("documents")),
        scanner_base_url=sandbox_url,
        document_max_bytes=256 * 1024,
        # Standing instructions every second or two; a failed run tried twice, a second apart.
        standing_instruction_min_interval=timedelta(seconds=1),
        standing_instruction_attempts=2,
        standing_instruction_retry_after=timedelta(seconds=1),
        # Webhooks out in seconds: the outbox looked at every 0.2 s; a delivery retried after 1 s, then 2 s (Temporal
        # counts retry intervals in whole seconds), for 5 s in all before it is a dead letter: attempts at 0, 1, 3 s.
        webhook_dispatch_interval=timedelta(seconds=0.2),
        webhook_retry_initial=timedelta(seconds=1),
        webhook_retry_max_interval=timedelta(seconds=2),
        webhook_delivery_max_time=timedelta(seconds=5),
        webhook_request_timeout=timedelta(seconds=2),
        # The card gateway is the sandbox's: a payment's workflow waits 3 s for the webhook, then verifies after 1 s,
        # 2 s, 2 s... six times in all before it calls the checkout abandoned.
        gateway_base_url=sandbox_url,
        gateway_verify_after=timedelta(seconds=3),
        gateway_verify_interval=timedelta(seconds=1),
        gateway_verify_max_interval=timedelta(seconds=2),
        gateway_verify_attempts=6,
        # Maker-checker above 100,000.00: the other tests' deposits and transfers (up to 100,000.00) post at once as
        # they always did; tests/integration/test_maker_checker.py moves more than that.
        maker_checker_threshold=Decimal("100000.00"),
        # Exports: above 20 transactions a download is refused for the background path (test_transaction_exports.py).
        export_sync_max_rows=20,
        # A linked account's feed a few pages long (test_linked_imports.py): 25 of the sandbox item's 80 a page.
        import_sync_page=25,
        # Exchange rates from the sandbox's /v6; a fetch tried twice, a second apart, before the API says 503.
        fx_base_url=sandbox_url,
        fx_fetch_attempts=2,
        fx_retry_interval=timedelta(seconds=1),
    )


@pytest.fixture(scope="session")
async def db(settings):
    """The worker's database, with its reference-data cache listening, as worker.py runs it."""
    database = Database(settings.database_url, pool_size=5, cache=Cache.from_settings(settings))
    retry = settings.cache_listener_retry.total_seconds()
    async with CacheListener(database.cache, settings.database_url, "worker", retry):
        yield database
    await database.close()


@pytest.fixture(scope="session")
async def worker(temporal_env, settings, db):
    async with build_worker(temporal_env.client, settings, db) as running:
        yield running


class ApiServer:
    """The API app served by uvicorn on a real loopback port, inside the test's event loop."""

    def __init__(self, settings: Settings):
        self.port = processes.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                access_log=False,
                # Longer than httpx's 5 s keep-alive expiry: with equal timeouts a client can reuse a connection
                # in the instant the server closes it (httpx.ReadError on an idle session client).
                timeout_keep_alive=30,
                timeout_graceful_shutdown=10,  # a request still open at the session's end cannot hold its teardown
            )
        )

    async def __aenter__(self) -> "ApiServer":
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await self.task


@pytest.fixture(scope="session")
async def api_server(settings, worker):
    async with ApiServer(settings) as server:
        yield server


@pytest.fixture(scope="session")
async def http(api_server):
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def su(http, db) -> dict:
    """Headers of a superuser (created in the database: the API has no way to make the first one)."""
    await ensure_superuser(db, *SUPERUSER)
    return await login(http, *SUPERUSER)


@pytest.fixture(scope="session")
async def odfi(sandbox_url, api_server):
    """The sandbox bank, told where our webhook is."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        await client.put(
            "/odfi/_control",
            json={
                "webhook_url": f"{api_server.url}/api/v1/webhooks/bank",
                "settlement_delay_ms": 200,
                "return_delay_ms": 200,
                "late_return_delay_ms": 2500,
                "duplicate_deliveries": False,
                "out_of_order": False,
            },
        )
        yield client


# Helpers to build scenarios through the API itself.


async def login(http: httpx.AsyncClient, email: str, password: str) -> dict:
    response = await http.post("/api/v1/auth/login", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Org:
    """An organization with one user per role, each with ready auth headers."""

    account: dict  # set by the fixtures that open the organization an account
    external: dict  # ... and link it a bank account

    def __init__(self, org: dict):
        self.id = org["id"]
        self.name: str = org["name"]
        self.users: dict[str, dict] = {}
        self.headers: dict[str, dict] = {}


async def make_org(http: httpx.AsyncClient, su: dict, roles=("org_admin", "operator", "member")) -> Org:
    name = f"Org {uuid.uuid4().hex[:8]}"
    response = await http.post("/api/v1/organizations", json={"name": name}, headers=su)
    assert response.status_code == 201, response.text
    org = Org(response.json())
    for role in roles:
        org.users[role], org.headers[role] = await make_user(http, su, role, org.id)
    return org


async def make_user(http, su: dict, role: str, org_id: str | None) -> tuple[dict, dict]:
    email, password = f"{role}-{uuid.uuid4().hex[:8]}@tests.example", "a-long-test-password"
    response = await http.post(
        "/api/v1/users",
        headers=su,
        json={"email": email, "full_name": f"Test {role}", "password": password, "role": role, "org_id": org_id},
    )
    assert response.status_code == 201, response.text
    return response.json(), await login(http, email, password)


async def bank_operations(http, su: dict) -> dict:
    """Headers of a new bank_operations user: bank-wide operations, no organization."""
    return (await make_user(http, su, "bank_operations", None))[1]


async def open_account(
    http,
    su: dict,
    org_id: str,
    owner_id: str | None = None,
    type_: str = "checking",
    deposit: str | None = None,
    currency: str = "USD",
) -> dict:
    response = await http.post(
        "/api/v1/accounts",
        headers=su,
        json={
            "name": f"{type_} {uuid.uuid4().hex[:6]}",
            "type": type_,
            "org_id": org_id,
            "owner_id": owner_id,
            "currency": currency,
        },
    )
    assert response.status_code == 201, response.text
    account = response.json()
    if deposit:
        response = await http.post(
            f"/api/v1/accounts/{account['id']}/deposits",
            headers={**su, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": deposit},
        )
        assert response.status_code == 201, response.text
        account = response.json()
    return account


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    if code:
        assert error["code"] == code, error
    return error
