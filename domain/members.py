"""Members joining an organization, as the members and KYC routers share it: single-use tokens (only their keyed
hashes stored), the emails the API sends through the outbox (never SMTP inline), and the member as staff see it."""

import hashlib
import hmac
import secrets
import uuid
from datetime import date, datetime

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from core.config import Settings
from core.email import render
from core.task_queues import queue_for
from models.ach import EmailOutbox
from models.notifications import ResendEmail
from workflows.email_resend import EmailResendWorkflow


class MemberOut(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    org_id: uuid.UUID | None
    is_active: bool
    member_type: str
    kyc_status: str
    kyc_waiting_on: str | None
    kyc_reason: str | None
    kyc_verified_at: datetime | None
    kyc_expires_at: datetime | None
    phone: str | None
    address: str | None
    date_of_birth: date | None
    email_verified_at: datetime | None
    created_at: datetime


def new_token() -> str:
    """A single-use token for a link: 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(settings: Settings, purpose: str, token: str) -> str:
    """What is stored of a token: an HMAC under the server's secret, so the table alone neither yields a usable
    link nor lets anyone make one; `purpose` keeps a sign-up token from working as an invitation."""
    key = settings.jwt_secret.get_secret_value().encode()
    return hmac.new(key, f"{purpose}:{token}".encode(), hashlib.sha256).hexdigest()


def outbox_email(to: str, template: str, context: dict, dedupe_key: str) -> EmailOutbox:
    """An outbox row for the caller's transaction; `send_outbox` sends it once committed."""
    subject, text_body, html_body = render(template, context)
    return EmailOutbox(
        dedupe_key=dedupe_key,
        to_address=to,
        subject=subject[:300],
        text_body=text_body,
        html_body=html_body,
        status="pending",
    )


async def send_outbox(client: Client, settings: Settings, outbox_id: uuid.UUID, summary: str) -> None:
    """Sends a committed outbox row from the worker (EmailResendWorkflow sends a row only while it is pending): the
    API never waits on SMTP. Should Temporal be down, the row stays pending for an operator to send again."""
    await client.start_workflow(
        EmailResendWorkflow.run,
        ResendEmail(outbox_id=outbox_id),
        id=f"email-{outbox_id}",
        task_queue=queue_for(settings, EmailResendWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=summary,
    )


def link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}{path}?token={token}"
