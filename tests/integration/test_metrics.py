"""Prometheus metrics on the real stack: the API's request series labelled by route template, the business series
computed from real rows, the dependency probes, METRICS_TOKEN, two API processes summed in one scrape, and the worker's
Temporal SDK metrics endpoint."""

import asyncio
import json
import os
import signal
import uuid
from datetime import timedelta

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import text

from core.business_metrics import posting_period
from core.business_time import business_today
from devstack import processes
from tests.conftest import SUPERUSER, ApiServer, assert_error, make_org
from tests.polling import poll
from tests.unit.test_observability import TEMPORAL_SDK_SERIES
from worker import build_worker, metrics_runtime

TOKEN = "a-test-metrics-token"


def samples(body: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels) -> float | None:
    return scrape.get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
async def metrics_api(settings, worker):
    """An API of its own with a metrics token and no cache, so each scrape sees the rows as they are."""
    tuned = settings.model_copy(update={"metrics_token": SecretStr(TOKEN), "metrics_cache_ttl": timedelta(0)})
    async with ApiServer(tuned) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def scrape(client: httpx.AsyncClient) -> dict:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_need_the_token_when_one_is_set_and_stay_out_of_the_openapi(metrics_api):
    assert_error(await metrics_api.get("/metrics"), 401, "unauthorized")
    assert_error(await metrics_api.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error(await metrics_api.get("/metrics", headers={"Authorization": TOKEN}), 401, "unauthorized")
    assert "/metrics" not in (await metrics_api.get("/openapi.json")).json()["paths"]


async def test_request_series_are_labelled_by_route_template_never_the_raw_path(metrics_api, su):
    login = await metrics_api.post(
        "/api/v1/auth/login", data={"username": SUPERUSER[0], "password": SUPERUSER[1]}
    )  # su exists
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    missing = uuid.uuid4()
    for _ in range(3):
        assert (await metrics_api.get(f"/api/v1/payments/{missing}", headers=headers)).status_code == 404
    assert (await metrics_api.get(f"/no-such-page-{missing}")).status_code == 404
    assert (await metrics_api.get("/healthz")).status_code == 200

    response = await metrics_api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert str(missing) not in response.text  # no raw path anywhere: bounded series
    got = samples(response.text)
    route = "/api/v1/payments/{payment_id}"
    assert value(got, "backoffice_http_requests_total", method="GET", route=route, status="404") == 3
    assert value(got, "backoffice_http_requests_total", method="POST", route="/api/v1/auth/login", status="200") == 1
    assert value(got, "backoffice_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert value(got, "backoffice_http_requests_total", method="GET", route="/metrics", status="401") == 3
    assert value(got, "backoffice_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert value(got, "backoffice_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf") == 3
    assert any(name == "process_resident_memory_bytes" for name, _ in got)


async def test_business_series_count_real_rows(metrics_api, http, su, db, settings):
    org = await make_org(http, su, roles=("member",))
    member = org.users["member"]["id"]
    tag = uuid.uuid4().hex[:12]
    stuck, returned, approval = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    before = await scrape(metrics_api)
    async with db.session() as session, session.begin():
        payment = (
            "INSERT INTO payments (id, kind, status, amount, currency, memo, org_id, created_by, idempotency_key,"
            " request_hash, workflow_id, return_code, presentments, same_day, created_at, updated_at)"
            " VALUES (:id, 'ach_debit', :status, 10, 'USD', '', :org, :by, :key, 'h', :wf, :code, 1, false,"
            " now() - interval '30 days', :updated)"
        )
        await session.execute(
            text(payment.replace(":updated", "now() - interval '30 days'")),
            dict(id=stuck, status="queued", org=org.id, by=member, key=f"s{tag}", wf=f"metrics-s{tag}", code=None),
        )
        await session.execute(
            text(payment.replace(":updated", "now()")),
            dict(
                id=returned, status="returned", org=org.id, by=member, key=f"r{tag}", wf=f"metrics-r{tag}", code="R33"
            ),
        )
        await session.execute(
            text(
                "INSERT INTO approval_requests (id, subject_type, subject_id, title, org_id, amount, submitted_by,"
                " levels, final_outcome, status, current_level, current_round, deadline_at, workflow_id)"
                " VALUES (:id, 'loan', :id, 'metrics test', :org, 10, :by, '[]', 'decline', 'open', 1, 1,"
                " now() - interval '1 minute', :wf)"
            ),
            dict(id=approval, org=org.id, by=member, wf=f"metrics-a{tag}"),
        )
        await session.execute(
            text("INSERT INTO bank_events (event_id, type, status) VALUES (:e, 'return', 'exception')"),
            dict(e=f"metrics-{tag}"),
        )
        await session.execute(
            text(
                "INSERT INTO email_outbox (id, dedupe_key, to_address, subject, text_body, status)"
                " VALUES (:id, :k, 'x@tests.example', 's', 'b', 'rejected')"
            ),
            dict(id=uuid.uuid4(), k=f"metrics-{tag}"),
        )
    try:
        after = await scrape(metrics_api)
    finally:
        async with db.session() as session, session.begin():
            await session.execute(text("DELETE FROM payments WHERE id IN (:a, :b)"), dict(a=stuck, b=returned))
            await session.execute(text("DELETE FROM approval_requests WHERE id = :a"), dict(a=approval))
            await session.execute(text("DELETE FROM bank_events WHERE event_id = :e"), dict(e=f"metrics-{tag}"))
            await session.execute(text("DELETE FROM email_outbox WHERE dedupe_key = :k"), dict(k=f"metrics-{tag}"))

    def grew(name: str, by: float = 1, **labels) -> None:
        assert (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0) == by, (name, labels)

    grew("backoffice_payments", status="queued")
    grew("backoffice_payments", status="returned")
    grew("backoffice_payment_returns", code="R33")
    grew("backoffice_payments_stuck")  # the queued one, untouched for 30 days; the fresh returned one is final
    grew("backoffice_approvals_past_deadline")
    grew("backoffice_dead_letters", kind="bank_event_exception")
    grew("backoffice_dead_letters", kind="email_rejected")
    grew("backoffice_dead_letters", by=0, kind="ach_file_rejected")  # present, at whatever it was
    assert value(after, "backoffice_dead_letters", kind="ach_file_failed") is not None
    period = posting_period(business_today(settings))
    assert value(after, "backoffice_interest_posting_accounts", state="posted", period=period) is not None
    assert value(after, "backoffice_interest_posting_accounts", state="total", period=period) is not None
    assert value(after, "backoffice_dependency_up", dependency="database") == 1
    assert value(after, "backoffice_dependency_up", dependency="temporal") == 1


async def test_an_unreachable_database_or_temporal_is_a_zero_never_a_failed_scrape(settings):
    down = settings.model_copy(
        update={
            "database_url": f"postgresql://nobody@127.0.0.1:{processes.free_port()}/none",
            "temporal_address": f"127.0.0.1:{processes.free_port()}",
        }
    )
    async with ApiServer(down) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.get("/metrics")
        assert response.status_code == 200, response.text
    got = samples(response.text)
    assert value(got, "backoffice_dependency_up", dependency="database") == 0
    assert value(got, "backoffice_dependency_up", dependency="temporal") == 0
    assert not any(name == "backoffice_payments" for name, _ in got)  # no stale or made-up business figures


async def test_the_worker_serves_the_temporal_sdk_metrics(temporal_env, settings, db):
    from core.temporal import connect

    address = f"127.0.0.1:{processes.free_port()}"
    tuned = settings.model_copy(update={"worker_metrics_address": address, "task_queue": f"metrics-{uuid.uuid4().hex}"})
    client = await connect(tuned, runtime=metrics_runtime(tuned))
    async with build_worker(client, tuned, db), httpx.AsyncClient(timeout=10) as scraper:

        async def series_names() -> set[str]:
            # As Prometheus stores them: the exposed names (the Python parser would add _total to counters).
            response = await scraper.get(f"http://{address}/metrics")
            return {
                line.split("{")[0].split(" ")[0] for line in response.text.splitlines() if line[:1] not in ("", "#")
            }

        names = await poll(
            series_names,
            lambda names: any(n.startswith("temporal_worker_task_slots_available") for n in names),
            timeout=20,
            what="the worker's temporal_* series",
        )
    assert {"temporal_request", "temporal_worker_start", "temporal_request_latency_bucket"} <= names
    # The alert rules and dashboards are checked against this list: it must name the series as the SDK exports them.
    assert {n for n in names if n.startswith("temporal_")} <= TEMPORAL_SDK_SERIES


def healthz_counts_by_process(directory) -> dict[str, float]:
    """Each process's own count of GET /healthz answered 200, read from its multiprocess file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)
            if sample == "backoffice_http_requests_total" and labels == {
                "method": "GET",
                "route": "/healthz",
                "status": "200",
            }:
                counts[path.stem.removeprefix("counter_")] = count
    return counts


async def test_two_api_processes_answer_a_scrape_for_both(settings, tmp_path):
    """`python -m api.serve --workers 2`: whichever process a scrape reaches counts the requests of both."""
    port, directory = processes.free_port(), tmp_path / "metrics"
    env = {
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "LOG_JSON": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left by an earlier run")  # emptied at start, never summed
    api = processes.start(
        processes.python("-m", "api.serve", "--workers", "2", "--port", str(port), "--no-access-log"),
        env,
        tmp_path / "api.log",
    )
    try:
        await asyncio.to_thread(processes.wait_for_port, port, api, 90, "api")
        sent = 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as scraper:
            for _ in range(20):  # until both processes have answered some (the kernel picks who accepts)
                async with httpx.AsyncClient(base_url=scraper.base_url, timeout=30) as fresh:
                    answers = await asyncio.gather(*(fresh.get("/healthz") for _ in range(10)))
                assert [a.status_code for a in answers] == [200] * 10
                sent += 10
                by_process = healthz_counts_by_process(directory)
                if len(by_process) == 2 and all(by_process.values()):
                    break
            assert len(by_process) == 2 and all(by_process.values()), by_process
            assert sum(by_process.values()) == sent
            scrapes = [samples((await scraper.get("/metrics")).text) for _ in range(4)]
            # One process killed outright: uvicorn starts another; the survivors take the dead one's gauges out
            # of the files at their next sample, and its counts stay in the sums.
            killed = next(iter(by_process))
            os.kill(int(killed), signal.SIGKILL)

            async def after_the_kill() -> dict:
                # A connection of its own each time: the kept-alive one may have been to the killed process.
                async with httpx.AsyncClient(base_url=scraper.base_url, timeout=30) as fresh:
                    return samples((await fresh.get("/metrics")).text)

            def resident_pids(got: dict) -> set[str]:
                return {dict(labels)["pid"] for name, labels in got if name == "process_resident_memory_bytes"}

            healed = await poll(
                after_the_kill,
                lambda got: killed not in resident_pids(got) and len(resident_pids(got)) == 2,
                timeout=60,
                what="the killed process's series gone and its successor's shown",
            )
    finally:
        processes.stop(api)
    assert value(healed, "backoffice_http_requests_total", method="GET", route="/healthz", status="200") == sent
    assert value(healed, "backoffice_cache_listening") == 1
    # Stopped gracefully, each process took its gauges out of the files, the cache's last change included.
    assert sorted(p.name for p in directory.glob("gauge_live*")) == []
    for got in scrapes:
        assert value(got, "backoffice_http_requests_total", method="GET", route="/healthz", status="200") == sent
        assert value(got, "backoffice_cache_listening") == 1  # the lowest of the two: both listen
        assert value(got, "backoffice_cache_requests_total", cache="users", result="hit") == 0
        assert value(got, "backoffice_dependency_up", dependency="database") == 1
        # Each process's memory by its pid (one process's alone would pass for the API's).
        resident = {
            dict(labels)["pid"]: v for (name, labels), v in got.items() if name == "process_resident_memory_bytes"
        }
        assert len(resident) == 2 and all(v > 50 * 2**20 for v in resident.values()), resident
        assert set(resident) == set(by_process)
