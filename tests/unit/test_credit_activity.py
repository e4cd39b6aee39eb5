"""The credit check activity against the sandbox bureau served by uvicorn on a loopback port (real HTTP),
run through Temporal's ActivityEnvironment."""

import asyncio
import socket
import uuid
from decimal import Decimal

import httpx
import pytest
import uvicorn
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.credit import CreditActivities
from models.credit import CreditCheckInput, CreditReport
from sandbox.app import create_app
from sandbox.settings import SandboxSettings

API_KEY = "sandbox-bureau-key"


@pytest.fixture(scope="module")
async def sandbox_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(SandboxSettings()), log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
async def control(sandbox_url):
    """A client for the sandbox's instrumentation; every test starts without pending faults or overrides."""
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        await client.put("/_control/faults", json={"fail_next": 0, "error_rate": 0})
        await client.put("/bureau/_control", json={"fixed_scores": {}, "fixed_scores_mode": "replace"})
        yield client


@pytest.fixture
async def credit(sandbox_url):
    activities = CreditActivities(sandbox_url + "/", API_KEY, timeout=5)  # the trailing slash is tolerated
    yield activities
    await activities.aclose()


def check(applicant_first_digit: str = "a", **overrides) -> CreditCheckInput:
    fields = {
        "loan_id": uuid.uuid4(),
        "applicant_id": uuid.UUID(applicant_first_digit + uuid.uuid4().hex[1:]),
        "full_name": "Alice Example",
        "amount": Decimal("12500.00"),
    }
    return CreditCheckInput(**(fields | overrides))


async def run(activities: CreditActivities, req: CreditCheckInput) -> CreditReport:
    return await ActivityEnvironment().run(activities.check_credit, req)


async def requests_for(control: httpx.AsyncClient, req: CreditCheckInput) -> list[dict]:
    log = (await control.get("/bureau/reports")).json()["requests"]
    return [e for e in log if e["idempotency_key"] == f"credit-{req.loan_id}"]


async def test_success_returns_the_report(credit, control):
    req = check()
    await control.put("/bureau/_control", json={"fixed_scores": {str(req.applicant_id): 712}})
    got = await run(credit, req)
    assert isinstance(got, CreditReport)
    assert (got.score, got.band) == (712, "good")
    assert got.report_id.startswith("rpt_") and got.delinquencies >= 0 and isinstance(got.bankruptcy, bool)
    [logged] = await requests_for(control, req)
    assert (logged["applicant_id"], logged["status"], logged["report_id"]) == (
        str(req.applicant_id),
        200,
        got.report_id,
    )


async def test_a_retried_check_is_the_same_report(credit, control):
    """The Idempotency-Key is derived from the loan, so an attempt after a lost answer gets the first report."""
    req = check()
    first, again = await run(credit, req), await run(credit, req)
    assert again == first
    assert [e["replayed"] for e in await requests_for(control, req)] == [False, True]


async def test_amount_goes_as_plain_decimal_text(credit, control):
    # Decimal("1.25E+4") would print in exponent notation with str(); the bureau gets "12500".
    assert (await run(credit, check(amount=Decimal("1.25E+4")))).score >= 300


async def test_no_file_is_non_retryable(credit, control):
    with pytest.raises(ApplicationError) as caught:
        await run(credit, check("f"))
    assert (caught.value.type, caught.value.non_retryable) == ("NoCreditFile", True)
    assert caught.value.details == ({"status": 404, "error_code": "NO_FILE"},)


@pytest.mark.parametrize(
    "overrides, api_key, status, error_code",
    [
        ({"amount": Decimal("-5.00")}, API_KEY, 400, "INVALID_REQUEST"),
        ({"full_name": " "}, API_KEY, 400, "INVALID_REQUEST"),
    ],
)
async def test_rejected_check_is_non_retryable(sandbox_url, control, overrides, api_key, status, error_code):
    activities = CreditActivities(sandbox_url, api_key)
    try:
        with pytest.raises(ApplicationError) as caught:
            await run(activities, check(**overrides))
    finally:
        await activities.aclose()
    assert (caught.value.type, caught.value.non_retryable) == ("CreditCheckRejected", True)
    assert caught.value.details == ({"status": status, "error_code": error_code},)


@pytest.mark.parametrize(
    "api_key, forbidden, status, error_code",
    [
        ("wrong-key", False, 401, "UNAUTHORIZED"),
        (API_KEY, True, 403, "FORBIDDEN"),
    ],
)
async def test_a_bureau_refusing_our_credentials_is_our_configuration_not_a_rejection(
    sandbox_url, control, api_key, forbidden, status, error_code
):
    await control.put("/bureau/_control", json={"forbidden": forbidden})
    activities = CreditActivities(sandbox_url, api_key)
    try:
        with pytest.raises(ApplicationError) as caught:
            await run(activities, check())
    finally:
        await activities.aclose()
        await control.put("/bureau/_control", json={"forbidden": False})
    assert caught.value.type == "CreditBureauAccessDenied" and str(status) in caught.value.message
    assert caught.value.details == ({"status": status, "error_code": error_code},)


async def test_injected_503_raises_a_retryable_error_and_the_retry_succeeds(credit, control):
    await control.put("/_control/faults", json={"fail_next": 1, "error_status": 503})
    req = check()
    with pytest.raises(Exception) as caught:
        await run(credit, req)
    assert not (isinstance(caught.value, ApplicationError) and caught.value.non_retryable)
    assert "503" in str(caught.value)
    assert await requests_for(control, req) == []  # the fault answered before the bureau saw it
    assert (await run(credit, req)).score >= 300  # what Temporal's retry would do


async def test_connection_refused_raises_a_retryable_error():
    with socket.socket() as unused:  # bound and never listening: connections are refused at once
        unused.bind(("127.0.0.1", 0))
        activities = CreditActivities(f"http://127.0.0.1:{unused.getsockname()[1]}", API_KEY, timeout=2)
        with pytest.raises(httpx.ConnectError):
            await run(activities, check())
        await activities.aclose()


async def test_a_shared_client_is_used_and_left_open(sandbox_url, control):
    async with httpx.AsyncClient() as shared:
        activities = CreditActivities(sandbox_url, API_KEY, http=shared)
        assert (await run(activities, check())).score >= 300
        await activities.aclose()
        assert not shared.is_closed
