"""One business time zone decides every business date. The test runs the API and a worker in a zone whose date
differs from UTC's right now (UTC+14 or UTC-12: at any moment one of them is on another day), so an effective date
taken from the worker's local date or from UTC's would show."""

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from core.business_time import business_date
from tests.conftest import ApiServer, make_org, open_account
from worker import build_worker

ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")


def zone_on_another_day() -> str:
    now = datetime.now(UTC)
    return next(zone for zone in ZONES if business_date(now, zone) != now.date())


async def test_deposits_and_transfers_are_booked_on_the_business_date_not_utcs(http, su, temporal_env, settings, db):
    zone = zone_on_another_day()  # its date is not UTC's (nor this machine's, which runs in UTC)
    zoned = settings.model_copy(update={"business_timezone": zone, "task_queue": f"zoned-{uuid.uuid4().hex[:8]}"})
    org = await make_org(http, su)
    src = await open_account(http, su, org.id, org.users["member"]["id"])
    dst = await open_account(http, su, org.id, org.users["member"]["id"])
    async with (
        build_worker(temporal_env.client, zoned, db),
        ApiServer(zoned) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        before = business_date(datetime.now(UTC), zone)
        key = uuid.uuid4().hex
        deposit = await api.post(
            f"/api/v1/accounts/{src['id']}/deposits", headers={**su, "Idempotency-Key": key}, json={"amount": "100.00"}
        )
        assert deposit.status_code == 201, deposit.text
        transfer = await api.post(
            "/api/v1/transfers/book",
            headers={**org.headers["member"], "Idempotency-Key": uuid.uuid4().hex},
            json={"from_account_id": src["id"], "to_account_id": dst["id"], "amount": "40.00"},
        )
        assert transfer.status_code == 201 and transfer.json()["status"] == "completed", transfer.text
        after = business_date(datetime.now(UTC), zone)
    async with db.session() as session:
        booked = list(
            (
                await session.execute(
                    text(
                        "SELECT DISTINCT e.id, e.effective_date FROM journal_entries e JOIN postings p ON p.entry_id = e.id "
                        "WHERE p.account_id = :a"
                    ),
                    {"a": src["id"]},
                )
            ).all()
        )
    assert len(booked) == 2  # the deposit (booked by the API) and the transfer (booked by the worker)
    assert all(day in (before, after) for _, day in booked), (zone, booked, before, after)
