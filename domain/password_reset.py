"""Password reset by email: a request always answers the same (202) whether the address is known or not; a known,
active user gets an email with a signed token (a JWT of type "reset") that expires, stored only as its SHA-256, and
good once. Confirming sets the new password (the usual rules), ends every session and lifts a lockout.

The API never talks SMTP: the email is written to the outbox and sent by a short workflow on the worker
(EmailResendWorkflow, which sends an outbox row once). Its dedupe key does not end with the user's id, so that no
organization's operator sees it in the operator API's emails (core/access.py recipient_id): only the bank-wide roles."""

import logging
from typing import Any
from urllib.parse import urlencode

import jwt
from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.common import WorkflowIDConflictPolicy

from api.errors import AppError
from core.config import Settings
from core.email import render
from core.security import create_token, decode_token, token_digest
from core.task_queues import queue_for
from domain import lockout, security_events
from domain.passwords import change_password
from models.ach import EmailOutbox
from models.notifications import ResendEmail
from models.users import User
from workflows.email_resend import EmailResendWorkflow

log = logging.getLogger(__name__)


async def request_reset(
    session: AsyncSession, settings: Settings, temporal: Any, email: str, client_ip: str | None
) -> None:
    """`temporal`: the API's TemporalConnection (its client is fetched here, so that Temporal being down still
    answers 202: the email then waits in the outbox, pending, for an operator's resend)."""
    user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
    if user is None or not user.is_active:
        await security_events.record(session, "password_reset_unknown", email=email, client_ip=client_ip)
        await session.commit()
        return
    token, _, expires_at = create_token(settings, subject=str(user.id), token_type="reset")
    digest = token_digest(token)
    await session.execute(
        text("INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES (:hash, :user, :expires)"),
        {"hash": digest, "user": user.id, "expires": expires_at},
    )
    subject, text_body, html_body = render(
        "password_reset",
        {
            "name": user.full_name,
            "token": token,
            "link": f"{settings.password_reset_url}?{urlencode({'token': token})}",
            "minutes": int(settings.password_reset_ttl.total_seconds() // 60),
        },
    )
    outbox = EmailOutbox(
        dedupe_key=f"password-reset:{digest}",
        to_address=user.email,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
    )
    session.add(outbox)
    await security_events.record(
        session, "password_reset_requested", user_id=user.id, email=user.email, client_ip=client_ip
    )
    await session.commit()
    try:
        client = await temporal.get()
        await client.start_workflow(
            EmailResendWorkflow.run,
            ResendEmail(outbox_id=outbox.id),
            id=f"email-resend-{outbox.id}",
            task_queue=queue_for(settings, EmailResendWorkflow),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="Password reset email",
        )
    except Exception:
        log.exception("password reset email %s left pending in the outbox: the workflow did not start", outbox.id)


async def confirm_reset(
    session: AsyncSession, settings: Settings, token: str, password: str, client_ip: str | None
) -> None:
    """Sets the new password; 400 invalid_reset_token for a token that is forged, expired or used."""
    refused = AppError(400, "invalid_reset_token", "this reset link is not valid, has expired or was already used")
    try:
        payload = decode_token(settings, token, "reset")
    except jwt.InvalidTokenError:
        raise refused from None
    # Single use, atomically: of two confirmations with one token, one gets the row. A refusal below (a weak
    # password) rolls this back with the rest, so the token stays good for a better password.
    claimed = (
        await session.execute(
            text(
                "UPDATE password_resets SET used_at = now() WHERE token_hash = :hash AND used_at IS NULL "
                "AND expires_at > now() RETURNING user_id"
            ),
            {"hash": token_digest(token)},
        )
    ).first()
    if claimed is None or str(claimed.user_id) != payload["sub"]:
        raise refused
    user = await session.get(User, claimed.user_id, with_for_update=True)
    if user is None or not user.is_active:
        raise refused
    await change_password(session, settings, user, password)
    await lockout.unlock(session, user.id)
    await security_events.record(session, "password_reset", user_id=user.id, email=user.email, client_ip=client_ip)
    await session.commit()
