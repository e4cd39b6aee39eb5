"""Month-end interest posting: one set-based statement per batch of accounts (core/interest.py) writes the
interest_postings rows, their journal entries and both legs of each in one transaction, under unique
constraints, so a retry or a replay after a crash writes nothing twice. Then the period's summary, stored once.

Rounding policy: per account and period, the sum of the unrounded daily accruals (10 decimals), rounded half up
to the cent once; zero amounts are skipped."""

import asyncio
import calendar
import contextlib
import uuid
from datetime import date

from sqlalchemy import text
from temporalio import activity
from temporalio.client import Client

from activities.notifications import NotificationActivities
from core import ledger
from core.config import Settings
from core.db import Database, execute_planned_afresh
from core.interest import (
    COUNT_ACCOUNTS,
    LOCK_PERIOD,
    ORG_SUMMARIES,
    POST_BATCH,
    SUMMARY,
    UNACCRUED_DAYS,
)
from core.recipients import bank_wide_recipients, org_operators
from domain.money_events import members_paid_interest, money_changed
from finance.money import format_usd
from models.interest import BatchResult, PostingBatch, PostingPlan, PostingSummary
from models.ledger import GL_INTEREST_EXPENSE
from models.notifications import NotificationRequest

HEARTBEAT_EVERY = 2.0  # seconds, while a statement runs; the workflow's heartbeat timeout is a few times this


def period_bounds(period: str) -> tuple[date, date]:
    year, month = map(int, period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


@contextlib.asynccontextmanager
async def heartbeating(*details):
    """Heartbeats every few seconds while the body awaits one long statement."""

    async def beat():
        while True:
            activity.heartbeat(*details)
            await asyncio.sleep(HEARTBEAT_EVERY)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class InterestPostingActivities:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        notifications: NotificationActivities | None = None,
        client: Client | None = None,
    ):
        self.db = db
        self.settings = settings
        self.notifications = notifications
        self.client = client  # to tell members paid interest (their alerts, rewards); None: nobody is told
        self._gl: uuid.UUID | None = None

    @activity.defn
    async def unaccrued_days(self, period: str) -> list[date]:
        """The days of the period whose accrual has not run to the end: they are accrued before it posts."""
        first, last = period_bounds(period)
        async with self.db.session() as session:
            return list((await session.execute(UNACCRUED_DAYS, {"first": first, "last": last})).scalars())

    @activity.defn
    async def plan_posting(self, period: str) -> PostingPlan:
        async with self.db.session() as session:
            total = (await session.execute(COUNT_ACCOUNTS)).scalar_one()
        return PostingPlan(
            accounts_total=total,
            batch_size=self.settings.interest_batch_size,
            continue_as_new_after=self.settings.interest_continue_as_new_after,
        )

    @activity.defn
    async def post_interest_batch(self, req: PostingBatch) -> BatchResult:
        first, last = period_bounds(req.period)
        async with (
            heartbeating(f"{req.period}: posting after {req.after}"),
            self.db.session() as session,
            session.begin(),
        ):
            if self._gl is None:
                # Savings products pay US dollars alone (api/routers/savings_products.attach_product).
                self._gl = await ledger.gl_account(session, GL_INTEREST_EXPENSE)
            await session.execute(LOCK_PERIOD, {"period": req.period})
            row = await execute_planned_afresh(
                session,
                POST_BATCH,
                {
                    "period": req.period,
                    "first": first,
                    "last": last,
                    "gl": self._gl,
                    "after": req.after,
                    "size": req.batch_size,
                },
            )
        if self.client is not None and row.posted:
            await self._tell_members(req.period, req.after, row.last_account_id)
        return BatchResult(
            last_account_id=row.last_account_id,
            accounts=row.accounts,
            posted=row.posted,
            amount=row.amount,
            new_postings=row.new_postings,
        )

    async def _tell_members(self, period: str, after: uuid.UUID | None, last: uuid.UUID | None) -> None:
        """Interest is money in: the batch's members with something to evaluate (an alert subscription, a budget, a
        rewards program) are signalled, as for any posting, after the batch committed; the others (most of a
        month-end run) cost one query. A retried batch signals them again: their evaluation is idempotent."""
        assert self.client is not None
        async with self.db.session() as session:
            members = await members_paid_interest(session, period, after, last)
        for n, member in enumerate(members, 1):
            await money_changed(self.client, member, "interest", period, self.settings)
            activity.heartbeat(f"{period}: told {n} of {len(members)} members")

    @activity.defn
    async def finish_posting(self, period: str) -> PostingSummary:
        """Stores the period's summary once (a rerun keeps the first) and names the operators to tell."""
        async with self.db.session() as session, session.begin():
            summary = (await session.execute(SUMMARY, {"period": period})).one()
            await session.execute(
                text(
                    "INSERT INTO interest_posting_runs (period, accounts, total) VALUES (:period, :accounts, :total) "
                    "ON CONFLICT (period) DO NOTHING"
                ),
                {"period": period, **summary._mapping},
            )
            stored = (
                await session.execute(
                    text("SELECT accounts, total FROM interest_posting_runs WHERE period = :period"), {"period": period}
                )
            ).one()
            # The bank-wide figures go to bank-wide staff only; each organization's operators get theirs
            # (notify_org_summaries).
            return PostingSummary(
                period=period,
                accounts=stored.accounts,
                total=stored.total,
                recipients=await bank_wide_recipients(session),
            )

    @activity.defn
    async def notify_org_summaries(self, period: str) -> int:
        """Emails each organization's operators the period's posting figures of that organization alone (its
        accounts posted and their total), once per operator whatever the retries; returns the organizations told.
        The postings of a period never change once written, so a retry tells the same figures."""
        async with self.db.session() as session:
            rows = (await session.execute(ORG_SUMMARIES, {"period": period})).all()
        if self.notifications is None:
            raise RuntimeError("the interest posting activities were built without notifications")
        for row in rows:
            activity.heartbeat(str(row.org_id))
            await self.notifications.notify_where(
                NotificationRequest(
                    kind="interest_posting",
                    template="interest_posting_org_summary",
                    context={
                        "period": period,
                        "organization": row.name,
                        "accounts": row.accounts,
                        "total": format_usd(row.total),
                    },
                    entity_type="interest_posting",
                    entity_id=period,
                    dedupe_key=f"interest-posting:{period}:org:{row.org_id}",
                ),
                org_operators(row.org_id),
            )
        return len(rows)

    @activity.defn
    async def stored_summary(self, period: str) -> PostingSummary | None:
        async with self.db.session() as session:
            stored = (
                await session.execute(
                    text("SELECT accounts, total FROM interest_posting_runs WHERE period = :period"), {"period": period}
                )
            ).first()
        return PostingSummary(period=period, accounts=stored.accounts, total=stored.total) if stored else None
