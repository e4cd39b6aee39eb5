"""Bills: the daily run's set-based steps (overdue marking, reminders, auto-pay starts) and auto-pay bookkeeping.

Reminders are exactly-once per bill, due date and offset: a batch claims its bill_reminders rows and writes the
in-app notifications and the pending email_outbox rows in one transaction, then sends whatever is still pending
for the batch's bills. A crash before the commit leaves nothing claimed; after it, the retry (or the next run)
finds the rows claimed and only sends what is pending, so nothing is written or mailed twice.
"""

import uuid
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.notifications import NotificationActivities, email_key
from core import audit
from core.business_time import business_today
from core.config import Settings
from core.db import Database
from core.email import EmailSender, render
from core.task_queues import queue_for
from domain import money_events
from finance.money import format_usd
from models.ach import EmailOutbox, Notification
from models.base import utcnow
from models.bills import (
    DUE_STATUSES,
    AutopayInput,
    AutopayOutcome,
    AutopayStart,
    BatchResult,
    Bill,
    BillBatch,
    BillReminder,
    BillStatus,
)
from models.notifications import NotifyUsers
from models.payments import PaymentProgress

_AUTOPAY_NS = uuid.UUID("6b1f3c2e-8d4a-4f7b-9e0c-5a2d7c9e1f34")


def autopay_workflow_id(bill_id: uuid.UUID, due: date) -> str:
    return f"bill-autopay-{bill_id}-{due.isoformat()}"


def autopay_payment_id(bill_id: uuid.UUID, due: date) -> uuid.UUID:
    """One ACH debit per bill and due date, whatever retries or repeated runs happen."""
    return uuid.uuid5(_AUTOPAY_NS, f"{bill_id}:{due.isoformat()}")


def reminder_key(bill_id: uuid.UUID, due: date, offset_days: int) -> str:
    return f"bill-reminder:{bill_id}:{due.isoformat()}:{offset_days}"


def reminder_context(bill, days_left: int) -> dict:
    """The bill_reminder template's variables (bill: a Bill or a row with the same fields)."""
    return {
        "payee": bill.payee_name,
        "amount": format_usd(bill.amount),
        "due_date": bill.due_date.isoformat(),
        "days_left": days_left,
        "memo": bill.memo,
        "autopay": bool(bill.autopay),
        "link": f"/api/v1/bills/{bill.id}",
    }


def due_status(due: date, today: date) -> BillStatus:
    return BillStatus.overdue if due < today else BillStatus.upcoming


class BillActivities:
    def __init__(self, db: Database, settings: Settings, client: Client, email: EmailSender):
        self.db = db
        self.settings = settings
        self.client = client
        self.notifications = NotificationActivities(db, email)  # sends our outbox rows, exactly as its own

    def today(self) -> date:
        return business_today(self.settings)

    @activity.defn
    async def mark_overdue(self, req: BillBatch) -> BatchResult:
        """Up to a batch of upcoming bills due before the run's day become overdue, with their audit rows, in
        one statement. Marked rows leave the filter, so the next batch needs no cursor and a rerun finds none."""
        async with self.db.session() as session, session.begin():
            marked = (
                await session.execute(
                    text("""
                WITH batch AS (
                    SELECT id FROM bills WHERE status = 'upcoming' AND due_date < :day ORDER BY id LIMIT :n
                    FOR UPDATE),
                marked AS (
                    UPDATE bills b SET status = 'overdue', updated_at = now() FROM batch WHERE b.id = batch.id
                    RETURNING b.id, b.due_date),
                audited AS (
                    INSERT INTO audit_log (actor, action, entity_type, entity_id, before, after)
                    SELECT :actor, 'bill.overdue', 'bill', id::text, '{"status": "upcoming"}'::jsonb,
                           jsonb_build_object('status', 'overdue', 'due_date', due_date, 'run_day', CAST(:day AS date))
                    FROM marked)
                SELECT count(*) FROM marked"""),
                    {
                        "day": req.day,
                        "n": self.settings.bill_batch_size,
                        "actor": f"system:{activity.info().workflow_id}",
                    },
                )
            ).scalar_one()
        return BatchResult(processed=marked, done=marked, last_id=None)

    @activity.defn
    async def send_reminders(self, req: BillBatch) -> BatchResult:
        """One keyset batch of the upcoming bills that have a reminder due on the run's day."""
        offsets = sorted(set(self.settings.bill_reminder_offsets))
        offset_of = {req.day + timedelta(days=o): o for o in offsets}
        statement = text(f"""
            SELECT b.id, b.due_date, b.amount, b.payee_name, b.memo, b.autopay, b.payer_id, u.email
            FROM bills b JOIN users u ON u.id = b.payer_id
            WHERE b.status = 'upcoming' AND b.due_date = ANY(:dues) AND u.is_active
            {"AND b.id > :after" if req.after_id else ""}
            ORDER BY b.id LIMIT :n""")
        async with self.db.session() as session, session.begin():
            params = {"dues": list(offset_of), "n": self.settings.bill_batch_size}
            if req.after_id:
                params["after"] = req.after_id
            bills = (await session.execute(statement, params)).all()
            if not bills:
                return BatchResult(processed=0, done=0, last_id=None)
            claimed = set(
                (
                    await session.execute(
                        insert(BillReminder)
                        .values(
                            [
                                dict(
                                    id=uuid.uuid4(),
                                    bill_id=b.id,
                                    due_date=b.due_date,
                                    offset_days=offset_of[b.due_date],
                                    run_day=req.day,
                                )
                                for b in bills
                            ]
                        )
                        .on_conflict_do_nothing(constraint="bill_reminders_once")
                        .returning(col(BillReminder.bill_id))
                    )
                ).scalars()
            )
            notifications, emails = [], []
            for bill in (b for b in bills if b.id in claimed):
                days_left = offset_of[bill.due_date]
                key = reminder_key(bill.id, bill.due_date, days_left)
                subject, text_body, html_body = render("bill_reminder", reminder_context(bill, days_left))
                notifications.append(
                    dict(
                        id=uuid.uuid4(),
                        user_id=bill.payer_id,
                        kind="bill_reminder",
                        title=subject[:200],
                        body=text_body,
                        entity_type="bill",
                        entity_id=str(bill.id),
                        dedupe_key=key,
                    )
                )
                emails.append(
                    dict(
                        id=uuid.uuid4(),
                        dedupe_key=email_key(key, bill.payer_id),
                        to_address=bill.email,
                        subject=subject[:300],
                        text_body=text_body,
                        html_body=html_body,
                        status="pending",
                    )
                )
            if notifications:
                await session.execute(
                    insert(Notification)
                    .values(notifications)
                    .on_conflict_do_nothing(constraint="notifications_once_per_user")
                )
                await session.execute(
                    insert(EmailOutbox).values(emails).on_conflict_do_nothing(index_elements=["dedupe_key"])
                )
        activity.heartbeat(f"claimed {len(claimed)} of {len(bills)}")

        # Send what is pending for this batch: claimed now, or claimed by an attempt that died before sending.
        keys = [email_key(reminder_key(b.id, b.due_date, offset_of[b.due_date]), b.payer_id) for b in bills]
        async with self.db.session() as session:
            pending = (
                await session.exec(
                    select(EmailOutbox.id).where(col(EmailOutbox.dedupe_key).in_(keys), EmailOutbox.status == "pending")
                )
            ).all()
        for sent, outbox_id in enumerate(pending, 1):
            await self.notifications.send_once(outbox_id)
            activity.heartbeat(f"sent {sent} of {len(pending)}")
        activity.logger.info(
            "bill reminders for %s: %d bills, %d claimed, %d emails sent",
            req.day,
            len(bills),
            len(claimed),
            len(pending),
        )
        return BatchResult(processed=len(bills), done=len(pending), last_id=bills[-1].id)

    @activity.defn
    async def start_autopays(self, req: BillBatch) -> BatchResult:
        """Starts (or finds) the auto-pay workflow of each auto-pay bill due on the run's day, one keyset batch.
        The workflow id is the bill and due date: a second run of the day starts nothing new, and an auto-pay
        that ended (paid or returned) is not started again."""
        statement = select(Bill).where(
            col(Bill.autopay), col(Bill.status).in_(list(DUE_STATUSES)), Bill.due_date == req.day
        )
        if req.after_id:
            statement = statement.where(Bill.id > req.after_id)
        async with self.db.session() as session:
            bills = (await session.exec(statement.order_by(col(Bill.id)).limit(self.settings.bill_batch_size))).all()
        started = 0
        for bill in bills:
            try:
                await self.client.start_workflow(
                    "BillAutopayWorkflow",
                    AutopayInput(
                        bill_id=bill.id,
                        due_date=bill.due_date,
                        late_return_window_seconds=self.settings.ach_late_return_window.total_seconds(),
                    ),
                    id=autopay_workflow_id(bill.id, bill.due_date),
                    task_queue=queue_for(self.settings, "BillAutopayWorkflow"),
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    static_summary=f"Auto-pay {format_usd(bill.amount)} to {bill.payee_name}, due {bill.due_date}",
                    static_details=f"bill {bill.id}",
                )
                started += 1
            except WorkflowAlreadyStartedError:
                pass  # this bill's auto-pay for this due date ran already
            activity.heartbeat(bill.id)
        return BatchResult(processed=len(bills), done=started, last_id=bills[-1].id if bills else None)

    @activity.defn
    async def signal_due_alerts(self, req: BillBatch) -> BatchResult:
        """One keyset batch (by member id) of the members with an active bill_due alert subscription and an upcoming
        bill due within its `within_days` of the run's day: their money-events workflow is signalled, and evaluates
        the subscription (each alert raised once by its bill and due date, so a second run raises nothing new)."""
        statement = text(f"""
            SELECT DISTINCT s.user_id FROM alert_subscriptions s
             WHERE s.active AND s.type = 'bill_due' {"AND s.user_id > :after" if req.after_id else ""}
               AND EXISTS (SELECT 1 FROM bills b
                            WHERE b.payer_id = s.user_id AND b.status = 'upcoming'
                              AND b.due_date BETWEEN CAST(:day AS date)
                                  AND CAST(:day AS date) + coalesce((s.params->>'within_days')::int, 3))
             ORDER BY s.user_id LIMIT :n""")
        params: dict = {"day": req.day, "n": self.settings.bill_batch_size}
        if req.after_id:
            params["after"] = req.after_id
        async with self.db.session() as session:
            members = list((await session.execute(statement, params)).scalars())
        for member_id in members:
            await money_events.money_changed(self.client, member_id, "bill_due", req.day.isoformat(), self.settings)
            activity.heartbeat(member_id)
        return BatchResult(processed=len(members), done=len(members), last_id=members[-1] if members else None)

    @activity.defn
    async def begin_autopay(self, req: AutopayInput) -> AutopayStart:
        """Marks the bill processing under its lock (so a manual pay or an edit cannot race the debit) and says
        what to debit; no payment when the bill is no longer one to auto-pay for this due date."""
        payment_id = autopay_payment_id(req.bill_id, req.due_date)
        async with self.db.session() as session, session.begin():
            bill = await session.get(Bill, req.bill_id, with_for_update=True)
            if bill is None:
                return AutopayStart(bill_id=req.bill_id, reason="the bill does not exist")
            resumed = bill.status == BillStatus.processing and bill.payment_id == payment_id
            if not resumed:
                reason = (
                    f"the bill is {bill.status}"
                    if bill.status not in DUE_STATUSES
                    else "auto-pay is off"
                    if not bill.autopay
                    else f"the bill is now due {bill.due_date}"
                    if bill.due_date != req.due_date
                    else None
                )
                if reason:
                    return AutopayStart(bill_id=req.bill_id, reason=reason)
                before = audit.snapshot(bill, ["status", "payment_id"])
                bill.status, bill.payment_id, bill.updated_at = BillStatus.processing, payment_id, utcnow()
                session.add(bill)
                await audit.record(
                    session,
                    actor=f"system:{activity.info().workflow_id}",
                    actor_id=None,
                    action="bill.autopay_started",
                    entity_type="bill",
                    entity_id=bill.id,
                    before=before,
                    after=audit.snapshot(bill, ["status", "payment_id", "amount"]),
                )
            return AutopayStart(
                bill_id=bill.id,
                payment_id=payment_id,
                amount=bill.amount,
                account_id=bill.account_id,
                external_account_id=bill.external_account_id,
                org_id=bill.org_id,
                payer_id=bill.payer_id,
                payee_name=bill.payee_name,
            )

    @activity.defn
    async def finish_autopay(self, req: AutopayOutcome) -> NotifyUsers | None:
        """Settled: the bill is paid. Returned to be re-presented: a paid bill is processing again until the next
        presentment settles. Returned, failed, canceled or reversed: it is due again (upcoming or overdue by
        today's date) and the payer is to be told (the notification returned). Idempotent under the lock."""
        settled = req.status in ("settled", "completed")
        represented = req.represent and req.status == "returned"
        async with self.db.session() as session, session.begin():
            bill = await session.get(Bill, req.bill_id, with_for_update=True)
            if bill is None or bill.payment_id != req.payment_id:
                return None  # the bill moved on (another due date's auto-pay): not ours to change
            before = audit.snapshot(bill, ["status", "paid_at"])
            if settled and bill.status == BillStatus.processing:
                bill.status, bill.paid_at = BillStatus.paid, utcnow()
                action = "bill.paid"
            elif represented and bill.status == BillStatus.paid:
                bill.status, bill.paid_at = BillStatus.processing, None
                action = "bill.autopay_represented"
            elif not (settled or represented) and bill.status in (BillStatus.processing, BillStatus.paid):
                bill.status, bill.paid_at = due_status(bill.due_date, self.today()), None
                action = "bill.autopay_failed"
            else:
                action = None  # done by an earlier attempt
            if action:
                bill.updated_at = utcnow()
                session.add(bill)
                await audit.record(
                    session,
                    actor=f"system:{activity.info().workflow_id}",
                    actor_id=None,
                    action=action,
                    entity_type="bill",
                    entity_id=bill.id,
                    before=before,
                    after={
                        **audit.snapshot(bill, ["status", "paid_at", "payment_id"]),
                        "payment_status": req.status,
                        "return_code": req.return_code,
                        "presentment": req.presentment,
                    },
                )
        if settled or represented:
            return None
        reason = " ".join(filter(None, [req.return_code, req.failure_reason])) or req.status
        return NotifyUsers(
            user_ids=[bill.payer_id],
            kind="bill_autopay_failed",
            template="bill_autopay_failed",
            entity_type="bill",
            entity_id=str(bill.id),
            dedupe_key=f"bill-autopay-failed:{bill.id}:{req.due_date.isoformat()}:{req.payment_id}:{req.status}",
            context={
                "payee": bill.payee_name,
                "amount": format_usd(bill.amount),
                "due_date": bill.due_date.isoformat(),
                "status": bill.status,
                "payment_status": req.status,
                "reason": reason,
                "link": f"/api/v1/bills/{bill.id}",
            },
        )

    @activity.defn
    async def autopay_reversed(self, progress: PaymentProgress) -> NotifyUsers | None:
        """A late return reversed an auto-pay debit after its auto-pay workflow had ended: the bill it paid is due
        again and the payer is to be told, as the workflow would have done."""
        async with self.db.session() as session:
            bill = (await session.exec(select(Bill).where(Bill.payment_id == progress.payment_id))).first()
        if bill is None:
            return None
        return await self.finish_autopay(
            AutopayOutcome(
                bill_id=bill.id,
                due_date=bill.due_date,
                payment_id=progress.payment_id,
                status=progress.status,
                return_code=progress.return_code,
                failure_reason=progress.failure_reason,
                presentment=progress.presentment,
            )
        )
