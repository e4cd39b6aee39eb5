"""The evaluation behind a member's money events (workflows/money_events.py): their budgets' thresholds and their
alert subscriptions, read from the state of their money now (so one evaluation covers a whole batch of events).

Every alert is raised once: a budget's crossing by its row in `member_budget_alerts` (unique budget, period,
threshold), every alert by its dedupe key in `member_alerts` (unique per member). The in-app notification and the
email's outbox row are written in the same transaction as the alert, only when the alert row was new; emails still
pending (a retry after a crash between commit and sending) are sent afterwards, each once (NotificationActivities
.send_once)."""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.notifications import NotificationActivities, email_key, render_or_fail
from core.business_time import business_today
from core.config import Settings
from core.db import Database
from domain import rewards
from domain.budget_periods import progress
from models.ach import EmailOutbox, Notification
from models.member_budgets import (
    AlertSubscription,
    AlertType,
    Channel,
    MemberAlert,
    MemberBudget,
    MemberBudgetAlert,
    Threshold,
)
from models.money_events import EvaluateMoneyEvents, EvaluationOutcome
from models.notifications import NotificationRequest
from models.users import User

DEFAULT_BUDGET_CHANNELS: list[str] = [
    Channel.in_app,
    Channel.email,
]  # budget alerts without a budget_threshold subscription
KEY_PREFIX = "malert:"  # notifications' and emails' dedupe keys of member alerts
LARGE_LOOKBACK = timedelta(days=7)  # how far back a large transaction is still news


@dataclass
class Raise:
    type: AlertType
    title: str
    body: str
    dedupe_key: str
    channels: list[str]
    entity_type: str | None = None
    entity_id: str | None = None
    subscription_id: uuid.UUID | None = None


def usd(amount: Decimal, currency: str = "USD") -> str:
    return f"{amount:,.2f} {currency}"


class MoneyEventActivities:
    def __init__(self, db: Database, settings: Settings, notifications: NotificationActivities):
        self.db, self.settings, self.notifications = db, settings, notifications

    @activity.defn
    async def evaluate_money_events(self, req: EvaluateMoneyEvents) -> EvaluationOutcome:
        today = business_today(self.settings)
        raised = 0
        async with self.db.session() as session, session.begin():
            member = await session.get(User, req.user_id)
            if member is None or not member.is_active:
                return EvaluationOutcome(alerts_raised=0)
            subs = (
                await session.exec(
                    select(AlertSubscription).where(
                        col(AlertSubscription.user_id) == req.user_id, col(AlertSubscription.active)
                    )
                )
            ).all()
            alerts = await self.budget_alerts(session, req.user_id, today, list(subs))
            for sub in subs:
                alerts += await self.subscription_alerts(session, req, sub, today)
            for alert in alerts:
                raised += await self.raise_alert(session, member, alert)
            # Points by the member's rewards programs' rules, for their new transactions: once each (its txn_id).
            await rewards.earn_for_member(session, req.user_id)
        await self.send_pending_emails(req.user_id)
        return EvaluationOutcome(alerts_raised=raised)

    # --- budgets --------------------------------------------------------------------------------------------

    async def budget_alerts(
        self, session: AsyncSession, user_id: uuid.UUID, today: date, subs: list[AlertSubscription]
    ) -> list[Raise]:
        """80 % and 100 % of each live budget's current period, once each: the crossing's row decides."""
        chosen = [s for s in subs if s.type == AlertType.budget_threshold]
        channels: list[str] = chosen[0].channels if chosen else list(DEFAULT_BUDGET_CHANNELS)
        budgets = (
            await session.exec(
                select(MemberBudget).where(
                    col(MemberBudget.user_id) == user_id,
                    col(MemberBudget.ended_at).is_(None),
                    col(MemberBudget.starts_on) <= today,
                )
            )
        ).all()
        out = []
        for budget in budgets:
            current = await progress(session, budget, today)
            for threshold in Threshold:
                if current.percentage < threshold:
                    continue
                inserted = (
                    await session.execute(
                        insert(MemberBudgetAlert)
                        .values(
                            budget_id=budget.id,
                            period_start=current.period_start,
                            threshold=int(threshold),
                            spent=current.spent,
                            limit_amount=current.limit,
                        )
                        .on_conflict_do_nothing(constraint="member_budget_alerts_once")
                        .returning(col(MemberBudgetAlert.id))
                    )
                ).first()
                if inserted is None:
                    continue  # raised by an earlier evaluation of this period
                verb = "reached" if threshold == Threshold.reached else f"reached {int(threshold)} % of"
                out.append(
                    Raise(
                        type=AlertType.budget_threshold,
                        title=f"You have {verb} your {budget.category_key} budget",
                        body=f"{usd(current.spent, budget.currency)} spent of {usd(current.limit, budget.currency)} "
                        f"({current.percentage} %) in the {budget.period} period from {current.period_start}.",
                        dedupe_key=f"budget:{budget.id}:{current.period_start}:{int(threshold)}",
                        channels=channels,
                        entity_type="member_budget",
                        entity_id=str(budget.id),
                        subscription_id=chosen[0].id if chosen else None,
                    )
                )
        return out

    # --- subscriptions --------------------------------------------------------------------------------------

    async def subscription_alerts(
        self, session: AsyncSession, req: EvaluateMoneyEvents, sub: AlertSubscription, today: date
    ) -> list[Raise]:
        if sub.type == AlertType.low_balance:
            return await self.low_balance(session, sub, today)
        if sub.type == AlertType.large_transaction:
            return await self.large_transactions(session, sub)
        if sub.type == AlertType.bill_due:
            # A bill run signals its day (a backfilled run evaluates the day it stands for); any other event, today.
            days = {date.fromisoformat(e.ref) for e in req.events if e.cause == "bill_due"} or {today}
            raised = {a.dedupe_key: a for day in sorted(days) for a in await self.bills_due(session, sub, day)}
            return list(raised.values())
        if sub.type == AlertType.payment_returned:
            return [
                self.alert(
                    sub,
                    "Payment returned",
                    f"A payment of yours was returned by the other bank ({event.ref.split(':')[-1]}).",
                    f"returned:{event.ref}",
                    "payment",
                    event.ref.split(":")[0],
                )
                for event in req.events
                if event.cause == "payment_returned"
            ]
        return []

    def alert(self, sub: AlertSubscription, title: str, body: str, key: str, entity_type: str, entity_id: str) -> Raise:
        return Raise(AlertType(sub.type), title, body, key, sub.channels, entity_type, entity_id, sub.id)

    async def low_balance(self, session: AsyncSession, sub: AlertSubscription, today: date) -> list[Raise]:
        """Each open deposit account of the member below the amount, or below the percentage of its 90-day average
        daily balance: once a day per account."""
        rows = (
            await session.execute(
                text(
                    """SELECT a.id, a.name, a.currency, b.ledger_balance AS balance,
                              CASE WHEN CAST(:percent AS integer) IS NULL THEN NULL ELSE (
                                SELECT avg(day_balance) FROM generate_series(CAST(:today AS date) - 89, CAST(:today AS date), interval '1 day') d,
                                LATERAL (SELECT COALESCE(sum(p.amount), 0)
                                                * CASE a.normal_balance WHEN 'debit' THEN 1 ELSE -1 END AS day_balance
                                           FROM postings p JOIN journal_entries e ON e.id = p.entry_id
                                          WHERE p.account_id = a.id AND e.effective_date <= d::date) x
                              ) END AS average
                         FROM ledger_accounts a JOIN account_balances b ON b.account_id = a.id
                        WHERE a.owner_id = :user AND a.kind = 'internal' AND a.type IN ('checking', 'savings')
                          AND a.status = 'active'"""
                ),
                {
                    "user": sub.user_id,
                    "today": today,
                    "percent": sub.params.get("below_average_percent"),
                },
            )
        ).all()
        out = []
        for account_id, name, currency, balance, average in rows:
            if "below" in sub.params:
                floor = Decimal(sub.params["below"])
                why = f"below {usd(floor, currency)}"
            else:
                floor = (Decimal(average or 0) * Decimal(sub.params["below_average_percent"]) / 100).quantize(
                    Decimal("0.01")
                )
                why = f"below {sub.params['below_average_percent']} % of its 90-day average ({usd(floor, currency)})"
            if balance < floor:
                out.append(
                    self.alert(
                        sub,
                        f"Low balance on {name}"[:200],
                        f"The balance of {name} is {usd(balance, currency)}, {why}.",
                        f"low_balance:{sub.id}:{account_id}:{today}",
                        "account",
                        str(account_id),
                    )
                )
        return out

    async def large_transactions(self, session: AsyncSession, sub: AlertSubscription) -> list[Raise]:
        """The member's transactions (ledger or imported) at or above the amount, in or out, since the subscription
        began and within the last week: once each."""
        rows = (
            await session.execute(
                text(
                    """SELECT txn_id, amount, currency, description FROM member_transactions
                        WHERE user_id = :user AND abs(amount) >= :above AND created_at >= :since
                          AND created_at >= now() - :lookback"""
                ),
                {
                    "user": sub.user_id,
                    "above": Decimal(sub.params["above"]),
                    "since": sub.created_at,
                    "lookback": LARGE_LOOKBACK,
                },
            )
        ).all()
        return [
            self.alert(
                sub,
                f"Large transaction: {usd(amount, currency)}",
                f"{'Money in' if amount > 0 else 'Money out'}: {usd(abs(amount), currency)} ({description or txn_id}).",
                f"large:{sub.id}:{txn_id}",
                "transaction",
                txn_id,
            )
            for txn_id, amount, currency, description in rows
        ]

    async def bills_due(self, session: AsyncSession, sub: AlertSubscription, today: date) -> list[Raise]:
        within = int(sub.params.get("within_days", 3))
        rows = (
            await session.execute(
                text(
                    """SELECT id, payee_name, amount, due_date FROM bills
                        WHERE payer_id = :user AND status = 'upcoming' AND due_date BETWEEN :today AND :until"""
                ),
                {"user": sub.user_id, "today": today, "until": today + timedelta(days=within)},
            )
        ).all()
        return [
            self.alert(
                sub,
                f"Bill due {due_date}: {usd(amount)}",
                f"Your bill to {payee} of {usd(amount)} is due on {due_date}.",
                f"bill_due:{bill_id}:{due_date}",
                "bill",
                str(bill_id),
            )
            for bill_id, payee, amount, due_date in rows
        ]

    # --- raising --------------------------------------------------------------------------------------------

    async def raise_alert(self, session: AsyncSession, member: User, alert: Raise) -> int:
        """The alert row, and with it (only when new) its in-app notification and email outbox row."""
        alert_id = (
            await session.execute(
                insert(MemberAlert)
                .values(
                    id=uuid.uuid4(),
                    user_id=member.id,
                    type=alert.type,
                    title=alert.title[:200],
                    body=alert.body,
                    entity_type=alert.entity_type,
                    entity_id=alert.entity_id,
                    subscription_id=alert.subscription_id,
                    dedupe_key=alert.dedupe_key,
                )
                .on_conflict_do_nothing(constraint="member_alerts_once_per_user")
                .returning(col(MemberAlert.id))
            )
        ).scalar_one_or_none()
        if alert_id is None:
            return 0
        key = KEY_PREFIX + alert.dedupe_key
        kind = "budget_alert" if alert.type == AlertType.budget_threshold else f"{alert.type}_alert"
        request = NotificationRequest(
            kind=kind,
            template="member_alert",
            context={"title": alert.title, "body": alert.body, "link": f"/api/v1/alerts?type={alert.type}"},
            entity_type="alert",
            entity_id=str(alert_id),
            dedupe_key=key,
        )
        subject, text_body, html_body = render_or_fail(request)
        # The in-app row always: it is the alert's notification (pushed over WebSocket, listed in the app).
        await session.execute(
            insert(Notification)
            .values(
                id=uuid.uuid4(),
                user_id=member.id,
                kind=kind,
                title=subject[:200],
                body=text_body,
                entity_type="alert",
                entity_id=str(alert_id),
                dedupe_key=key,
            )
            .on_conflict_do_nothing(constraint="notifications_once_per_user")
        )
        if Channel.email in alert.channels:
            await session.execute(
                insert(EmailOutbox)
                .values(
                    id=uuid.uuid4(),
                    dedupe_key=email_key(key, member.id),
                    to_address=member.email,
                    subject=subject[:300],
                    text_body=text_body,
                    html_body=html_body,
                    status="pending",
                )
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
            )
        return 1

    async def send_pending_emails(self, user_id: uuid.UUID) -> None:
        """The member's alert emails still pending: today's alerts' keys, found by the outbox's unique index."""
        async with self.db.session() as session:
            pending = (
                (
                    await session.execute(
                        text(
                            """SELECT o.id FROM member_alerts m
                             JOIN email_outbox o ON o.dedupe_key = :prefix || m.dedupe_key || ':' || m.user_id::text
                            WHERE m.user_id = :user AND m.created_at > now() - interval '1 day'
                              AND o.status = 'pending'"""
                        ),
                        {"prefix": KEY_PREFIX, "user": user_id},
                    )
                )
                .scalars()
                .all()
            )
        for outbox_id in pending:
            await self.notifications.send_once(outbox_id)
