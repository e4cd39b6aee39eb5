"""Notifications to users: an in-app row and an email each, exactly once per user and dedupe key.

Both rows are written first (ON CONFLICT DO NOTHING), then each pending email is sent under a lock on its
outbox row and marked sent in the same transaction: neither a retry nor an attempt overlapping a timed-out
one sends what is marked sent. The one gap left: the SMTP server accepts the message and the worker dies
before the commit; the retry then sends it again (at-least-once there; the Message-ID stays the same).
"""

import uuid

from aiosmtplib import SMTPRecipientsRefused, SMTPResponseException
from jinja2 import UndefinedError
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.db import Database
from core.email import EmailSender, UnknownTemplate, render
from models.ach import EmailOutbox, Notification
from models.base import utcnow
from models.notifications import NotificationRequest, NotifyOrgAdmins, NotifyUsers, ResendEmail
from models.users import Role, User


def permanent_refusal(error: Exception) -> bool:
    """A 5xx reply: the server will not take this message, however often it is sent."""
    if isinstance(error, SMTPRecipientsRefused):
        return all(500 <= refusal.code < 600 for refusal in error.recipients)
    return 500 <= getattr(error, "code", 0) < 600


def email_key(dedupe_key: str, user_id: uuid.UUID) -> str:
    return f"{dedupe_key}:{user_id}"


def render_or_fail(req: NotificationRequest) -> tuple[str, str, str]:
    # Retrying cannot fix a missing template or variable: the request is fixed in the workflow's history.
    try:
        return render(req.template, req.context)
    except UnknownTemplate as exc:
        raise ApplicationError(str(exc), type="UnknownTemplate", non_retryable=True) from exc
    except UndefinedError as exc:
        raise ApplicationError(
            f"template {req.template!r}: {exc.message}", type="TemplateContextError", non_retryable=True
        ) from exc


class NotificationActivities:
    def __init__(self, db: Database, email: EmailSender):
        self.db = db
        self.email = email

    @activity.defn
    async def notify_org_admins(self, req: NotifyOrgAdmins) -> int:
        """Tells every active org admin of the organization; returns how many."""
        return await self._notify(req, User.org_id == req.org_id, User.role == Role.org_admin)

    @activity.defn
    async def notify_users(self, req: NotifyUsers) -> int:
        """Tells the given users (the active ones); returns how many."""
        return await self._notify(req, col(User.id).in_(req.user_ids))

    async def notify_where(self, req: NotificationRequest, *who) -> int:
        """Tells the active users matching every `who` clause (for activities that pick recipients by their own
        rules, e.g. each organization's operators); returns how many."""
        return await self._notify(req, *who)

    async def _notify(self, req: NotificationRequest, *who) -> int:
        subject, text_body, html_body = render_or_fail(req)
        async with self.db.session() as session, session.begin():
            recipients = (await session.exec(select(User.id, User.email).where(*who, col(User.is_active)))).all()
            if not recipients:
                return 0
            await session.execute(
                insert(Notification)
                .values(
                    [
                        dict(
                            id=uuid.uuid4(),
                            user_id=user_id,
                            kind=req.kind,
                            title=subject[:200],
                            body=text_body,
                            entity_type=req.entity_type,
                            entity_id=req.entity_id,
                            dedupe_key=req.dedupe_key,
                        )
                        for user_id, _ in recipients
                    ]
                )
                .on_conflict_do_nothing(constraint="notifications_once_per_user")
            )
            await session.execute(
                insert(EmailOutbox)
                .values(
                    [
                        dict(
                            id=uuid.uuid4(),
                            dedupe_key=email_key(req.dedupe_key, user_id),
                            to_address=address,
                            subject=subject[:300],
                            text_body=text_body,
                            html_body=html_body,
                            status="pending",
                        )
                        for user_id, address in recipients
                    ]
                )
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
            )

        async with self.db.session() as session:
            pending = (
                await session.exec(
                    select(EmailOutbox.id).where(
                        col(EmailOutbox.dedupe_key).in_(
                            [email_key(req.dedupe_key, user_id) for user_id, _ in recipients]
                        ),
                        EmailOutbox.status == "pending",
                    )
                )
            ).all()
        for outbox_id in pending:
            await self.send_once(outbox_id)
        activity.logger.info("%s: %d recipients, %d emails sent", req.dedupe_key, len(recipients), len(pending))
        return len(recipients)

    @activity.defn
    async def send_outbox_email(self, req: ResendEmail) -> str:
        """Sends one outbox row if it is still pending (an operator's resend); returns its status after."""
        await self.send_once(req.outbox_id)
        async with self.db.session() as session:
            return (await session.exec(select(EmailOutbox.status).where(EmailOutbox.id == req.outbox_id))).one()

    async def send_once(self, outbox_id: uuid.UUID) -> None:
        """Temporary SMTP errors propagate (the row stays pending) so that Temporal retries the activity; a
        permanent refusal (5xx) marks the row rejected, as retrying would only hold up the others."""
        async with self.db.session() as session, session.begin():
            row = (await session.exec(select(EmailOutbox).where(EmailOutbox.id == outbox_id).with_for_update())).one()
            if row.status != "pending":
                return  # an overlapping attempt sent it while we waited for the lock
            try:
                await self.email.send(
                    self.email.build(row.to_address, row.subject, row.text_body, row.html_body, message_id=str(row.id))
                )
                row.status, row.sent_at = "sent", utcnow()
            except (SMTPRecipientsRefused, SMTPResponseException) as error:
                if not permanent_refusal(error):
                    raise
                activity.logger.warning("email %s to %s refused for good: %s", row.id, row.to_address, error)
                row.status, row.error = "rejected", str(error)[:500]
            session.add(row)
