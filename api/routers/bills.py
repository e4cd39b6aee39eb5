"""Bills a member pays: CRUD (DELETE cancels, softly), marking one paid by hand, a reminder sent by hand.
Reminders at the configured offsets, overdue marking and auto-pay are the daily run's (workflows/bill_run.py).

Who: a member their own bills; an org admin any bill of its organization; a superuser every bill. Other staff
of the organization read them."""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_
from sqlmodel import col, select

from activities.ach import PaymentRejected, check_ach_payment
from activities.bills import due_status, reminder_context
from api.crud import required
from api.deps import CurrentUser, ReadSessionDep, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError
from api.fields import BusinessDate, DueDate, Money, line_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core.access import Entity
from core.business_time import business_today
from core.config import Settings
from core.task_queues import queue_for
from models.ach import Notification
from models.base import utcnow
from models.bills import DUE_STATUSES, Bill, BillStatus
from models.external_accounts import ExternalAccount
from models.ledger import LedgerAccount
from models.notifications import NotifyUsers
from models.payments import PaymentKind
from models.users import Role, User
from workflows.bill_reminder import BillReminderWorkflow

router = APIRouter(prefix="/bills", tags=["bills"])

PayeeName = Annotated[str, *line_rules(200, 1, strip=True)]
_AUDITED = [
    "payer_id",
    "payee_name",
    "amount",
    "due_date",
    "memo",
    "status",
    "autopay",
    "external_account_id",
    "account_id",
    "paid_at",
]


class BillFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payee_name: PayeeName = Field(examples=["City Power & Light"])
    amount: Money
    due_date: DueDate = Field(
        examples=["2026-12-15"], description="today or later (in the schedules' time zone), at most 50 years ahead"
    )
    memo: Annotated[str, *line_rules(500)] = Field(default="", examples=["Account 00-1234, November"])
    autopay: bool = Field(default=False, description="debit external_account_id by ACH on the due date")
    external_account_id: uuid.UUID | None = Field(default=None, description="auto-pay: the bank account debited")
    account_id: uuid.UUID | None = Field(default=None, description="auto-pay: the internal account credited")


class BillIn(BillFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "payee_name": "City Power & Light",
                    "amount": "84.20",
                    "due_date": "2026-12-15",
                    "memo": "November",
                    "autopay": True,
                    "external_account_id": "…",
                    "account_id": "…",
                }
            ]
        },
    )

    payer_id: uuid.UUID | None = Field(default=None, description="the member who pays (default: you)")


class BillOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    payer_id: uuid.UUID
    payee_name: str
    amount: Decimal
    due_date: date
    memo: str
    status: str
    autopay: bool
    external_account_id: uuid.UUID | None
    account_id: uuid.UUID | None
    payment_id: uuid.UUID | None = Field(description="the latest auto-pay ACH debit (GET /payments/{id})")
    paid_at: datetime | None
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime | None


class ReminderOut(BaseModel):
    bill_id: uuid.UUID
    sent_to: int
    workflow_id: str


def today(settings: Settings) -> date:
    return business_today(settings)


async def visible_bill(session, user: User, bill_id: uuid.UUID, for_update: bool = False) -> Bill:
    bill: Bill = await access.visible(session, user, Entity.bill, bill_id, for_update=for_update)  # else a 404
    return bill


async def check_fields(
    session, settings: Settings, user: User, payer: User, body: BillFields, due_changed: bool, debit_changed: bool
) -> None:
    """422 for a due date in the past or an auto-pay that could not run; 404 for accounts out of reach; 403 for
    a member setting up (or changing) a debit from a bank account that is not theirs."""
    if due_changed and body.due_date < today(settings):
        raise AppError(
            422,
            "due_date_in_past",
            "the due date must be today or later",
            {"due_date": body.due_date, "today": today(settings)},
        )
    if body.autopay and (body.external_account_id is None or body.account_id is None):
        raise AppError(
            422,
            "autopay_accounts_required",
            "auto-pay needs the bank account to debit (external_account_id) and the account to credit (account_id)",
        )
    if body.external_account_id is None and body.account_id is None:
        return
    account = await session.get(LedgerAccount, body.account_id) if body.account_id else None
    if body.account_id and (account is None or account.org_id != payer.org_id):
        raise access.not_visible(user, Entity.account, body.account_id, exists=account is not None)
    external = await session.get(ExternalAccount, body.external_account_id) if body.external_account_id else None
    if body.external_account_id and (external is None or external.org_id != payer.org_id):
        raise access.not_visible(user, Entity.external_account, body.external_account_id, exists=external is not None)
    if external and debit_changed:
        access.check_autopay_source(user, external)
    if account and external:
        try:
            await check_ach_payment(session, settings, PaymentKind.ach_debit, body.amount, account, external)
        except PaymentRejected as rejected:
            raise AppError(
                422,
                rejected.code,
                f"auto-pay could not run: {rejected.reason}",
                {"account_id": account.id, "external_account_id": external.id},
            ) from rejected


@router.post(
    "",
    response_model=BillOut,
    status_code=201,
    summary="Add a bill (for yourself, or as an org admin for a member of your organization)",
)
async def create_bill(body: BillIn, session: SessionDep, user: CurrentUser, settings: SettingsDep):
    payer = access.check_acts_for(user, await session.get(User, body.payer_id or user.id), body.payer_id)
    access.check_write_bill(user, None, payer.id, payer.org_id)
    if payer.role != Role.member or payer.org_id is None or not payer.is_active:
        raise AppError(
            422,
            "invalid_payer",
            "the payer must be an active member of an organization",
            {"payer_id": payer.id, "role": payer.role},
        )
    await check_fields(session, settings, user, payer, body, due_changed=True, debit_changed=True)
    bill = Bill(
        org_id=payer.org_id,
        payer_id=payer.id,
        created_by=user.id,
        status=BillStatus.upcoming,
        **body.model_dump(exclude={"payer_id"}),
    )
    session.add(bill)
    await session.flush()
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="bill.created",
        entity_type="bill",
        entity_id=bill.id,
        after=audit.snapshot(bill, _AUDITED),
    )
    await session.commit()
    return bill


@router.get("", response_model=Page[BillOut], summary="Bills you can see, by due date")
async def list_bills(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    status: Annotated[BillStatus | None, Query(description="default: all but canceled")] = None,
    due_from: Annotated[BusinessDate | None, Query(description="inclusive")] = None,
    due_to: Annotated[BusinessDate | None, Query(description="inclusive")] = None,
    account_id: Annotated[uuid.UUID | None, Query(description="internal or external")] = None,
    payer_id: uuid.UUID | None = None,
    autopay: bool | None = None,
):
    if due_from and due_to and due_from > due_to:
        raise AppError(422, "invalid_range", "due_from is after due_to", {"due_from": due_from, "due_to": due_to})
    statement = access.scope(user, Entity.bill, select(Bill))
    statement = statement.where(Bill.status == status if status else Bill.status != BillStatus.canceled)
    if due_from:
        statement = statement.where(Bill.due_date >= due_from)
    if due_to:
        statement = statement.where(Bill.due_date <= due_to)
    if account_id:
        statement = statement.where(
            or_(col(Bill.account_id) == account_id, col(Bill.external_account_id) == account_id)
        )
    if payer_id:
        statement = statement.where(Bill.payer_id == payer_id)
    if autopay is not None:
        statement = statement.where(Bill.autopay == autopay)
    items, total = await paginate(session, statement, page, [Bill.due_date, Bill.id])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{bill_id}", response_model=BillOut, summary="One bill")
async def get_bill(bill_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    return await visible_bill(session, user, bill_id)


@router.put(
    "/{bill_id}",
    response_model=BillOut,
    responses={409: {"description": "paid, canceled or being paid"}},
    summary="Replace a bill's details while it is still to be paid",
)
async def replace_bill(
    bill_id: uuid.UUID, body: BillFields, session: SessionDep, user: CurrentUser, settings: SettingsDep
):
    bill = await visible_bill(session, user, bill_id, for_update=True)
    access.check_write_bill(user, bill.id, bill.payer_id, bill.org_id)
    if bill.status not in DUE_STATUSES:
        raise AppError(409, "bill_not_editable", f"the bill is {bill.status}", {"status": bill.status})
    payer = required(await session.get(User, bill.payer_id), "the bill's payer")
    debit = ("autopay", "external_account_id", "amount")
    await check_fields(
        session,
        settings,
        user,
        payer,
        body,
        due_changed=body.due_date != bill.due_date,
        debit_changed=any(getattr(body, f) != getattr(bill, f) for f in debit),
    )
    before = audit.snapshot(bill, _AUDITED)
    for field, value in body.model_dump().items():
        setattr(bill, field, value)
    bill.status, bill.updated_at = due_status(bill.due_date, today(settings)), utcnow()
    session.add(bill)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="bill.updated",
        entity_type="bill",
        entity_id=bill.id,
        before=before,
        after=audit.snapshot(bill, _AUDITED),
    )
    await session.commit()
    return bill


@router.delete(
    "/{bill_id}",
    status_code=204,
    response_class=Response,
    responses={409: {"description": "paid or being paid"}},
    summary="Cancel a bill (soft: it stays, with status canceled; again is a no-op)",
)
async def cancel_bill(bill_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    bill = await visible_bill(session, user, bill_id, for_update=True)
    access.check_write_bill(user, bill.id, bill.payer_id, bill.org_id)
    if bill.status in (BillStatus.paid, BillStatus.processing):
        raise AppError(409, "bill_not_cancelable", f"the bill is {bill.status}", {"status": bill.status})
    if bill.status != BillStatus.canceled:
        await _transition(session, user, bill, BillStatus.canceled, "bill.canceled")
    return Response(status_code=204)


@router.put(
    "/{bill_id}/pay",
    response_model=BillOut,
    responses={409: {"description": "canceled or being paid"}},
    summary="Mark a bill paid (paid outside auto-pay; again is a no-op)",
)
async def pay_bill(bill_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    bill = await visible_bill(session, user, bill_id, for_update=True)
    access.check_write_bill(user, bill.id, bill.payer_id, bill.org_id)
    if bill.status == BillStatus.paid:
        return bill
    if bill.status not in DUE_STATUSES:
        message = (
            "an auto-pay debit is in flight" if bill.status == BillStatus.processing else f"the bill is {bill.status}"
        )
        raise AppError(409, "bill_not_payable", message, {"status": bill.status, "payment_id": bill.payment_id})
    await _transition(session, user, bill, BillStatus.paid, "bill.paid", paid_at=utcnow())
    return bill


async def _transition(session, user: User, bill: Bill, status: BillStatus, action: str, **changes) -> None:
    before = audit.snapshot(bill, _AUDITED)
    bill.status, bill.updated_at = status, utcnow()
    for field, value in changes.items():
        setattr(bill, field, value)
    session.add(bill)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action=action,
        entity_type="bill",
        entity_id=bill.id,
        before=before,
        after=audit.snapshot(bill, _AUDITED),
    )
    await session.commit()


@router.post(
    "/{bill_id}/send-reminder",
    response_model=ReminderOut,
    responses={409: {"description": "not due"}, 429: {"description": "reminded too recently"}},
    summary="Remind the payer now, in-app and by email (at most once per configured interval)",
)
async def send_reminder(
    bill_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep, settings: SettingsDep
):
    bill = await visible_bill(session, user, bill_id)
    access.check_remind_bill(user, bill)
    if bill.status not in DUE_STATUSES:
        raise AppError(409, "bill_not_due", f"the bill is {bill.status}: nothing to remind", {"status": bill.status})
    last = (
        await session.exec(
            select(func.max(Notification.created_at)).where(
                Notification.kind == "bill_reminder_manual", Notification.entity_id == str(bill.id)
            )
        )
    ).one()
    interval = settings.bill_manual_reminder_interval
    if last is not None and utcnow() - last < interval:
        retry = int((last + interval - utcnow()).total_seconds()) + 1
        raise AppError(
            429,
            "reminded_recently",
            f"the payer was reminded at {last.isoformat()}",
            {"retry_after_seconds": retry},
            headers={"Retry-After": str(retry)},
        )
    request = uuid.uuid4().hex
    notice = NotifyUsers(
        user_ids=[bill.payer_id],
        kind="bill_reminder_manual",
        template="bill_reminder",
        context=reminder_context(bill, (bill.due_date - today(settings)).days),
        entity_type="bill",
        entity_id=str(bill.id),
        dedupe_key=f"bill-reminder-manual:{request}",
    )
    await session.commit()  # no pooled connection held across the call to Temporal
    workflow_id = f"bill-reminder-{bill.id}-{request}"
    sent = await client.execute_workflow(
        BillReminderWorkflow.run,
        notice,
        id=workflow_id,
        task_queue=queue_for(settings, BillReminderWorkflow),
        static_summary=f"Reminder of bill {bill.id} ({bill.payee_name}), sent by {user.email}",
        execution_timeout=timedelta(minutes=5),
    )
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="bill.reminder_sent",
        entity_type="bill",
        entity_id=bill.id,
        after={"workflow_id": workflow_id, "payer_id": str(bill.payer_id), "sent_to": sent},
    )
    await session.commit()
    return ReminderOut(bill_id=bill.id, sent_to=sent, workflow_id=workflow_id)
