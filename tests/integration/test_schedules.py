"""The back office's Temporal Schedules on the real dev server: created with their spec, updated (not failed)
by a second ensure, paused and unpaused, the statements schedule triggered and backfilled for a past month, and
the interest schedules backfilled over a past month: each day accrued once, the month posted once."""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

from core.schedules import ensure_schedules, jobs, overlap_policy
from core.task_queues import queue_for
from models.interest import PostingSummary
from models.statements import StatementRunResult
from tests.conftest import assert_error, make_org, open_account
from tests.integration.test_interest import attach, create_product, fund
from tests.polling import poll

EXPECTED = {  # schedule id -> workflow type and cron, with the default settings
    "bill-run": ("BillRunWorkflow", "0 6 * * *"),
    "daily-interest-accrual": ("DailyAccrualWorkflow", "30 0 * * *"),
    "month-end-interest-posting": ("MonthEndPostingWorkflow", "0 2 1 * *"),
    "monthly-statements": ("MonthlyStatementsWorkflow", "0 5 1 * *"),
    "database-backup": ("BackupWorkflow", "0 3 * * *"),
    "data-retention": ("RetentionWorkflow", "30 3 * * *"),
    "kyc-reverification": ("KycReverificationWorkflow", "15 4 * * *"),
    "fx-rates-refresh": ("FxRatesRefreshWorkflow", "15 0 * * *"),
}


@pytest.fixture
async def prefixed(temporal_env):
    """A fresh id prefix per test, so these schedules never meet anyone else's; deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:6]}-"
    yield prefix
    for schedule_id in EXPECTED:
        try:
            await temporal_env.client.get_schedule_handle(prefix + schedule_id).delete()
        except Exception:
            pass


def local_times(desc, tz: str) -> list[datetime]:
    return [t.astimezone(ZoneInfo(tz)) for t in desc.info.next_action_times]


async def test_ensure_creates_every_schedule_with_its_spec(temporal_env, settings, prefixed):
    client = temporal_env.client
    assert await ensure_schedules(client, settings, prefixed) == {prefixed + s: "created" for s in EXPECTED}

    for schedule_id, (workflow, cron) in EXPECTED.items():
        desc = await client.get_schedule_handle(prefixed + schedule_id).describe()
        schedule = desc.schedule
        assert schedule.action.workflow == workflow
        assert schedule.action.id == prefixed + schedule_id  # the workflow id prefix
        # Every back-office job is routine work: its runs never take the payments' worker slots.
        assert schedule.action.task_queue == settings.task_queue + "-routine" == queue_for(settings, workflow)
        arg = await client.data_converter.decode(schedule.action.args)
        assert arg == [{"timezone": "America/New_York"}]
        assert schedule.spec.time_zone_name == "America/New_York"
        assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert schedule.policy.catchup_window == timedelta(days=1)
        assert schedule.state.note and not schedule.state.paused
        memo = await desc.memo()
        assert memo["description"] == schedule.state.note
        # The server keeps the cron as a calendar: the next times say what it means, in New York time.
        minute, hour, day = (int(f) if f != "*" else None for f in cron.split()[:3])
        times = local_times(desc, "America/New_York")
        assert times and all(t.minute == minute and t.hour == hour for t in times)
        if day is not None:
            assert all(t.day == day for t in times)
        else:
            assert len({t.date() for t in times}) == len(times)  # one a day


async def test_second_ensure_updates_the_spec_and_keeps_a_pause(temporal_env, settings, prefixed):
    client = temporal_env.client
    await ensure_schedules(client, settings, prefixed)
    statements = client.get_schedule_handle(prefixed + "monthly-statements")
    await statements.pause(note="paused by the test")
    assert (await statements.describe()).schedule.state.paused

    changed = settings.model_copy(
        update={
            "statements_cron": "15 7 2 * *",
            "business_timezone": "Europe/Paris",
            "schedule_overlap": "buffer_one",
            "schedule_catchup_window": timedelta(hours=3),
        }
    )
    assert await ensure_schedules(client, changed, prefixed) == {prefixed + s: "updated" for s in EXPECTED}

    desc = await statements.describe()
    assert desc.schedule.spec.time_zone_name == "Europe/Paris"
    assert all((t.day, t.hour, t.minute) == (2, 7, 15) for t in local_times(desc, "Europe/Paris"))
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
    assert desc.schedule.policy.catchup_window == timedelta(hours=3)
    assert await client.data_converter.decode(desc.schedule.action.args) == [{"timezone": "Europe/Paris"}]
    # An operator's pause survives an ensure (a worker restart must not resume a paused job).
    assert desc.schedule.state.paused and desc.schedule.state.note == "paused by the test"

    await statements.unpause(note="resumed by the test")
    desc = await statements.describe()
    assert not desc.schedule.state.paused and desc.schedule.state.note == "resumed by the test"
    await statements.pause()
    assert (await statements.describe()).schedule.state.paused


async def wait_for_actions(handle, count: int) -> list:
    for _ in range(200):
        actions = (await handle.describe()).info.recent_actions
        if len(actions) >= count:
            return actions
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: fewer than {count} actions")


async def test_statements_schedule_triggers_and_backfills_a_past_month(temporal_env, settings, worker, prefixed):
    client = temporal_env.client
    await ensure_schedules(client, settings, prefixed)
    handle = client.get_schedule_handle(prefixed + "monthly-statements")

    # A trigger runs now: the month just ended.
    await handle.trigger()
    [now_action] = await wait_for_actions(handle, 1)
    assert now_action.action.workflow_id.startswith(prefixed + "monthly-statements-")
    result = await client.get_workflow_handle(now_action.action.workflow_id, result_type=StatementRunResult).result()
    this_month = datetime.now(ZoneInfo("America/New_York")).date().replace(day=1)
    assert result.period == f"{this_month - timedelta(days=1):%Y-%m}"

    # A backfill over March 1, 2025 (05:00 in New York = 10:00 UTC) runs for February 2025.
    await handle.backfill(
        ScheduleBackfill(
            start_at=datetime(2025, 3, 1, 9, tzinfo=UTC),
            end_at=datetime(2025, 3, 1, 11, tzinfo=UTC),
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
        )
    )
    actions = await wait_for_actions(handle, 2)
    backfilled = [a for a in actions if a.scheduled_at == datetime(2025, 3, 1, 10, tzinfo=UTC)]
    assert len(backfilled) == 1
    result = await client.get_workflow_handle(backfilled[0].action.workflow_id, result_type=StatementRunResult).result()
    assert result.period == "2025-02"


def test_every_job_and_overlap_name():
    from core.config import Settings

    assert [(j.schedule_id, j.workflow, j.cron) for j in jobs(Settings())] == [
        (s, w, c) for s, (w, c) in EXPECTED.items()
    ]
    assert overlap_policy("allow_all") == ScheduleOverlapPolicy.ALLOW_ALL
    with pytest.raises(ValueError, match="skip, buffer_one"):
        overlap_policy("sometimes")


async def test_interest_schedules_backfilled_over_a_past_month_accrue_each_day_and_post_it_once(
    http, su, db, temporal_env, settings, worker, prefixed
):
    """June 2024 replayed through the schedules: the nightly accrual backfilled for each of its 30 days, then the
    month-end posting backfilled over July 1, twice. Every day accrues once and the month posts once."""
    org = await make_org(http, su, roles=("member",))
    product = await create_product(http, su, annual_rate="0.0365", day_count="actual/365")  # 1.00 a day on 10,000
    account = (await open_account(http, su, org.id, org.users["member"]["id"], type_="savings"))["id"]
    await attach(http, su, account, product["id"])
    await fund(db, account, Decimal("10000.00"), date(2024, 5, 31), f"backfill:{account}")
    client = temporal_env.client
    await ensure_schedules(client, settings, prefixed)

    # The accrual runs at 00:30 in New York for the day before: July 1 00:30 accrues June 30.
    accrual = client.get_schedule_handle(prefixed + "daily-interest-accrual")
    await accrual.backfill(
        ScheduleBackfill(
            start_at=datetime(2024, 6, 2, 4, tzinfo=UTC),
            end_at=datetime(2024, 7, 1, 5, tzinfo=UTC),
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
        )
    )
    days = await poll_rows(
        db, "SELECT day, amount FROM interest_accruals WHERE account_id = :a ORDER BY day", account, 30
    )
    assert [d for d, _ in days] == [date(2024, 6, 1) + timedelta(days=i) for i in range(30)]
    assert {amount for _, amount in days} == {Decimal("1")}

    # Month-end posting at 02:00 on July 1 (06:00 UTC) posts June; a second backfill of the same day finds it done.
    posting = client.get_schedule_handle(prefixed + "month-end-interest-posting")
    for attempt in (1, 2):
        await posting.backfill(
            ScheduleBackfill(
                start_at=datetime(2024, 7, 1, 5, tzinfo=UTC),
                end_at=datetime(2024, 7, 1, 7, tzinfo=UTC),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            )
        )
        actions = await wait_for_actions(posting, attempt)
        for action in actions:
            await client.get_workflow_handle(action.action.workflow_id).result()
    summary = await client.get_workflow_handle("interest-posting-2024-06", result_type=PostingSummary).result()
    assert summary.period == "2024-06" and summary.total >= Decimal("30.00")
    postings = await poll_rows(db, "SELECT period, amount FROM interest_postings WHERE account_id = :a", account, 1)
    assert postings == [("2024-06", Decimal("30.00"))]
    balance = (await http.get(f"/api/v1/accounts/{account}", headers=su)).json()["ledger_balance"]
    assert balance == "10030.00"

    # Through the API: the month's stored summary for operators, the account's accruals for its holder.
    posted = (await http.get("/api/v1/interest-postings/2024-06", headers=su)).json()
    assert posted["status"] == "completed" and posted["workflow_id"] == "interest-posting-2024-06"
    assert (posted["accounts"], Decimal(posted["total"])) == (summary.accounts, summary.total)
    accruals = (
        await http.get(
            f"/api/v1/accounts/{account}/accruals",
            headers=org.headers["member"],
            params={"day_from": "2024-06-10", "day_to": "2024-06-30"},
        )
    ).json()
    assert accruals["total"] == 21 and accruals["items"][0]["day"] == "2024-06-30"
    assert Decimal(accruals["items"][0]["amount"]) == 1
    assert_error(await http.get("/api/v1/interest-postings/2024-06", headers=org.headers["member"]), 403)
    assert_error(await http.get("/api/v1/interest-postings/1999-01", headers=su), 404, "not_found")
    assert_error(await http.get("/api/v1/interest-postings/2024-13", headers=su), 422)


async def poll_rows(db, sql: str, account: str, count: int, timeout: float = 60) -> list[tuple]:
    async def fetch() -> list[tuple]:
        async with db.session() as session:
            return [tuple(r) for r in (await session.execute(text(sql), {"a": uuid.UUID(account)})).all()]

    return await poll(fetch, lambda rows: len(rows) >= count, timeout, f"fewer than {count} rows")
