"""Payment side effects on Postgres. Each activity is idempotent: it locks the payment row and does
nothing when the payment already reached the state it would write."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import audit, ledger
from core.business_time import business_today
from core.config import Settings
from core.db import Database
from domain import webhooks
from domain.money_events import money_changed_for_accounts
from models.payments import FINAL_STATUSES, BookTransferInput, Payment, PaymentOutcome, PaymentStatus


async def add_event(
    session: AsyncSession, payment_id: uuid.UUID, status: str, detail: dict | None = None, event_key: str | None = None
) -> None:
    """The payment's history event, once per event_key; a new one is also told to the organization's webhook
    subscribers (the outbox row is written in this same transaction)."""
    await webhooks.add_payment_event(session, payment_id, status, event_key or status, detail)


def outcome(payment: Payment) -> PaymentOutcome:
    return PaymentOutcome(
        payment_id=payment.id,
        status=payment.status,
        journal_entry_id=payment.journal_entry_id,
        failure_code=payment.failure_code,
        failure_reason=payment.failure_reason,
    )


async def transition(
    session: AsyncSession,
    payment: Payment,
    status: str,
    event_key: str | None = None,
    note: dict | None = None,
    **changes,
) -> None:
    """Moves a payment to `status`: the row, one history event (once per event_key) and an audit row. `note` adds
    to the event what is not a column (e.g. why)."""
    before = {"status": payment.status}
    payment.status = status
    payment.updated_at = datetime.now(UTC)
    for field, value in changes.items():
        setattr(payment, field, value)
    session.add(payment)
    info = activity.info()
    activity.logger.info("payment %s: %s -> %s", payment.id, before["status"], status)
    detail = {**{k: str(v) for k, v in changes.items()}, **(note or {})} or None
    await add_event(session, payment.id, status, detail, event_key)
    await audit.record(
        session,
        actor=f"system:{info.workflow_id}",
        actor_id=None,
        action=f"payment.{status}",
        entity_type="payment",
        entity_id=payment.id,
        before=before,
        after={"status": status, **(detail or {})},
    )


async def lock_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment:
    payment = (await session.exec(select(Payment).where(Payment.id == payment_id).with_for_update())).first()
    if payment is None:
        raise ApplicationError(f"payment {payment_id} does not exist", non_retryable=True)
    return payment


class PaymentActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    @activity.defn
    async def post_book_transfer(self, req: BookTransferInput) -> PaymentOutcome:
        """Checks and posts in one transaction, under locks on the payment and both accounts; then tells the
        accounts' members' money-events workflows (again on a retry: their evaluation is idempotent)."""
        done = await self.book_transfer(req)
        if done.status == PaymentStatus.completed:
            await money_changed_for_accounts(
                activity.client(),
                self.db,
                [req.from_account_id, req.to_account_id],
                "transfer",
                str(req.payment_id),
                self.settings,
            )
        return done

    async def book_transfer(self, req: BookTransferInput) -> PaymentOutcome:
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, req.payment_id)
            if payment.status in FINAL_STATUSES:
                return outcome(payment)

            await ledger.lock_accounts(session, [req.from_account_id, req.to_account_id])
            states = dict(
                (
                    await session.execute(
                        text("SELECT id, status FROM ledger_accounts WHERE id = ANY(:ids)"),
                        {"ids": [req.from_account_id, req.to_account_id]},
                    )
                ).all()
            )
            closed = [str(a) for a in (req.from_account_id, req.to_account_id) if states.get(a) != "active"]
            if closed:
                await transition(
                    session,
                    payment,
                    PaymentStatus.failed,
                    failure_code="account_closed",
                    failure_reason=f"account(s) not active: {', '.join(closed)}",
                )
                return outcome(payment)
            available = (await ledger.balances(session, [req.from_account_id]))[req.from_account_id].available
            if available < req.amount:
                await transition(
                    session,
                    payment,
                    PaymentStatus.failed,
                    failure_code="insufficient_funds",
                    failure_reason=f"available balance {available} is less than {req.amount}",
                )
                return outcome(payment)

            await transition(session, payment, PaymentStatus.validated)
            entry_id, _ = await ledger.post_entry(
                session,
                idempotency_key=f"payment:{payment.id}",
                entry_type="book_transfer",
                description=payment.memo or "Book transfer",
                effective_date=business_today(self.settings),
                payment_id=payment.id,
                legs=[ledger.Leg(req.from_account_id, req.amount), ledger.Leg(req.to_account_id, -req.amount)],
            )
            await transition(session, payment, PaymentStatus.completed, journal_entry_id=entry_id)
            return outcome(payment)
