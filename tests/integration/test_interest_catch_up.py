"""Month-end posting never posts a month with a day not accrued: it accrues the days it finds missing first
(a worker down over midnight), and it refuses a month that is not over."""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from finance.daycount import DayCount
from finance.interest import accrue_day
from finance.money import round_money
from models.interest import AccrualRunInput, InterestPostingInput, MonthEndInput
from tests.conftest import make_org, open_account
from tests.integration.test_interest import attach, create_product, fund
from workflows.daily_accrual import DailyAccrualWorkflow
from workflows.interest_posting import InterestPostingWorkflow
from workflows.month_end_posting import MonthEndPostingWorkflow

D = Decimal
MARCH = [date(2025, 3, 1) + timedelta(days=i) for i in range(31)]


async def test_month_end_posting_accrues_the_days_it_missed_before_posting(
    http, su, db, worker, temporal_env, settings
):
    """10,000.00 all March 2025 and 5,000.00 more on the 31st, at 3.65 % actual/365: 1.00 a day, 1.50 on the 31st.
    The nightly accrual never ran for the 17th nor for the 31st (a worker down over those midnights): the
    posting accrues both before it posts, and posts the whole month, 31.50."""
    org = await make_org(http, su, roles=("member",))
    product = await create_product(http, su, annual_rate="0.0365", day_count="actual/365")
    account = (await open_account(http, su, org.id, org.users["member"]["id"], type_="savings"))["id"]
    await attach(http, su, account, product["id"])
    await fund(db, account, D("10000.00"), date(2025, 2, 28), f"catch-up:{account}:1")
    await fund(db, account, D("5000.00"), date(2025, 3, 31), f"catch-up:{account}:2")
    missed = {date(2025, 3, 17), date(2025, 3, 31)}

    client = temporal_env.client
    for day in MARCH:
        if day not in missed:
            await client.execute_workflow(
                DailyAccrualWorkflow.run,
                AccrualRunInput(day=day),
                id=f"test-catch-up-accrual-{day}",
                task_queue=settings.task_queue,
                execution_timeout=timedelta(seconds=60),
            )
    summary = await client.execute_workflow(
        MonthEndPostingWorkflow.run,
        MonthEndInput(period="2025-03"),
        id="test-month-end-2025-03",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(seconds=120),
    )

    async with db.session() as session:
        days = (
            await session.execute(
                text(
                    "SELECT day, balance, amount FROM interest_accruals WHERE account_id = :a AND day BETWEEN :f AND :l "
                    "ORDER BY day"
                ),
                {"a": uuid.UUID(account), "f": MARCH[0], "l": MARCH[-1]},
            )
        ).all()
        posted = (
            await session.execute(
                text("SELECT amount FROM interest_postings WHERE account_id = :a AND period = '2025-03'"),
                {"a": uuid.UUID(account)},
            )
        ).scalar_one_or_none()
    assert [d.day for d in days] == MARCH, f"days never accrued: {sorted(set(MARCH) - {d.day for d in days})}"
    reference = [
        accrue_day(D("15000.00") if day == MARCH[-1] else D("10000.00"), D("0.0365"), DayCount.ACTUAL_365, day)
        for day in MARCH
    ]
    assert [d.amount for d in days] == reference
    assert posted == round_money(sum(reference)) == D("31.50")
    assert summary.period == "2025-03" and summary.total >= posted
    for day in sorted(missed):  # accrued by the posting's own children, under the catch-up's fixed ids
        child = await client.get_workflow_handle(f"interest-accrual-{day}").describe()
        assert child.status == WorkflowExecutionStatus.COMPLETED
        assert child.parent_id == "interest-posting-2025-03"


async def test_a_month_that_is_not_over_is_not_posted(db, worker, temporal_env, settings):
    """The current month (in the schedules' time zone) has days still to come: posting it now would post part of
    its interest and never the rest. It fails with the reason, accrues nothing ahead and posts nothing."""
    today = datetime.now(ZoneInfo(settings.business_timezone)).date()
    period = f"{today:%Y-%m}"
    with pytest.raises(WorkflowFailureError) as failed:
        await temporal_env.client.execute_workflow(
            InterestPostingWorkflow.run,
            InterestPostingInput(period=period, timezone=settings.business_timezone),
            id=f"test-early-posting-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
            execution_timeout=timedelta(seconds=60),
        )
    assert f"{period} is not over" in str(failed.value.cause)
    async with db.session() as session:
        postings = (
            await session.execute(text("SELECT count(*) FROM interest_postings WHERE period = :p"), {"p": period})
        ).scalar_one()
        ahead = (
            await session.execute(text("SELECT count(*) FROM interest_accruals WHERE day >= :d"), {"d": today})
        ).scalar_one()
    assert (postings, ahead) == (0, 0)
