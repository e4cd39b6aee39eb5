"""Dead letters: what the back office gave up on and waits for an operator. Bank events no workflow could take (the
exception list: GET /bank-events?status=exception), files the ODFI rejected (GET /ach/files?status=rejected),
webhook events we gave up sending (GET /webhook-deliveries?status=dead) and emails the mail server refused for good
(listed here). An email is sent again once its address is fixed."""

import uuid

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.errors import AppError
from api.pagination import Page, PageParams, paginate
from core import access, audit
from core.access import Entity
from core.config import Settings
from core.task_queues import queue_for
from models.ach import AchFile, BankEvent, BankEventStatus, EmailOutbox
from models.notifications import ResendEmail
from models.operations import DeadLetterCount, DeadLetters, EmailOut
from models.users import User
from models.webhooks import DeliveryStatus, WebhookEvent
from workflows.email_resend import EmailResendWorkflow

_EMAIL_FIELDS = ["status", "to_address", "error"]


async def dead_letters(session: AsyncSession, user: User) -> DeadLetters:
    """How many of each kind wait, as the caller may see them, and the list that shows them."""

    async def count(entity: Entity, statement) -> int:
        scoped = access.scope(user, entity, statement)
        return (await session.exec(select(func.count()).select_from(scoped.subquery()))).one()

    kinds = [
        (
            "bank_event_exceptions",
            Entity.bank_event,
            select(BankEvent.id).where(BankEvent.status == BankEventStatus.exception),
            "/api/v1/bank-events?status=exception",
        ),
        (
            "rejected_emails",
            Entity.email,
            select(EmailOutbox.id).where(EmailOutbox.status == "rejected"),
            "/api/v1/operations/emails?status=rejected",
        ),
        (
            "dead_webhook_deliveries",
            Entity.webhook_delivery,
            select(WebhookEvent.id).where(WebhookEvent.status == DeliveryStatus.dead),
            "/api/v1/webhook-deliveries?status=dead",
        ),
        (
            "rejected_ach_files",
            Entity.ach_file,
            select(AchFile.id).where(AchFile.status == "rejected"),
            "/api/v1/ach/files?status=rejected",
        ),
    ]
    return DeadLetters(
        items=[DeadLetterCount(kind=kind, count=await count(entity, q), list=href) for kind, entity, q, href in kinds]
    )


async def list_emails(session: AsyncSession, user: User, status: str | None, page: PageParams) -> Page[EmailOut]:
    statement = access.scope(user, Entity.email, select(EmailOutbox))
    if status:
        statement = statement.where(EmailOutbox.status == status)
    items, total = await paginate(session, statement, page, [col(EmailOutbox.created_at).desc(), EmailOutbox.id])
    return Page(
        items=[EmailOut.model_validate(i, from_attributes=True) for i in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def resend_email(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    user: User,
    outbox_id: uuid.UUID,
    to_address: str | None,
) -> EmailOut:
    """A rejected email goes back to pending (to the corrected address, when given) and is sent by a workflow; a
    pending one (a resend whose workflow never started) is handed to the workflow again. A sent one is a 409: an
    email is sent once."""
    row: EmailOutbox = await access.visible(session, user, Entity.email, outbox_id, for_update=True)
    if row.status == "sent":
        raise AppError(409, "already_sent", "the email was sent: it is not sent twice", {"status": row.status})
    before = audit.snapshot(row, _EMAIL_FIELDS)
    row.status, row.error = "pending", None
    if to_address:
        row.to_address = str(to_address)
    session.add(row)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="email.resend",
        entity_type="email",
        entity_id=row.id,
        before=before,
        after=audit.snapshot(row, _EMAIL_FIELDS),
    )
    await session.commit()
    await session.refresh(row)
    out = EmailOut.model_validate(row, from_attributes=True)
    await session.commit()  # no pooled connection held across the call to Temporal
    await client.start_workflow(
        EmailResendWorkflow.run,
        ResendEmail(outbox_id=row.id),
        id=f"email-resend-{row.id}",
        task_queue=queue_for(settings, EmailResendWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"Email {row.id} sent again by {user.email}",
    )
    return out
