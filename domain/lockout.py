"""Lockout after repeated failed logins: `lockout_threshold` failures within `lockout_window` lock the account for
`lockout_duration`, doubled at each further lock (up to `lockout_max_duration`) until a login succeeds. A lock ends
by itself or when an admin unlocks it. The counting is one upsert per failure, so concurrent failures all count."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core.config import Settings
from domain import security_events
from models.base import utcnow


def lock_duration(settings: Settings, earlier_locks: int) -> timedelta:
    """How long the next lock lasts after `earlier_locks` locks since the last successful login."""
    return min(settings.lockout_duration * (2 ** min(earlier_locks, 30)), settings.lockout_max_duration)


async def locked_until(session: AsyncSession, user_id: uuid.UUID) -> datetime | None:
    """The end of the user's lock, when one is in force now."""
    row = (
        await session.execute(
            text("SELECT locked_until FROM login_lockouts WHERE user_id = :user AND locked_until > now()"),
            {"user": user_id},
        )
    ).first()
    return row.locked_until if row else None


async def record_failure(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, email: str, client_ip: str | None, reason: str
) -> datetime | None:
    """Counts a failed login (wrong password, wrong MFA code); locks the account when it is the threshold's. Returns
    the end of the lock it set, if any."""
    now = utcnow()
    counted = (
        await session.execute(
            text(
                """INSERT INTO login_lockouts (user_id, failures, window_started_at) VALUES (:user, 1, :now)
                   ON CONFLICT (user_id) DO UPDATE SET
                     failures = CASE WHEN login_lockouts.window_started_at > :window_start
                                     THEN login_lockouts.failures + 1 ELSE 1 END,
                     window_started_at = CASE WHEN login_lockouts.window_started_at > :window_start
                                              THEN login_lockouts.window_started_at ELSE :now END
                   RETURNING failures, lock_count"""
            ),
            {"user": user_id, "now": now, "window_start": now - settings.lockout_window},
        )
    ).one()
    await security_events.record(
        session, "login_failed", user_id=user_id, email=email, client_ip=client_ip, reason=reason
    )
    if counted.failures < settings.lockout_threshold:
        return None
    until = now + lock_duration(settings, counted.lock_count)
    await session.execute(
        text(
            "UPDATE login_lockouts SET locked_until = :until, lock_count = lock_count + 1, failures = 0, "
            "window_started_at = NULL WHERE user_id = :user"
        ),
        {"user": user_id, "until": until},
    )
    await security_events.record(
        session,
        "account_locked",
        user_id=user_id,
        email=email,
        client_ip=client_ip,
        until=until.isoformat(),
        lock=counted.lock_count + 1,
    )
    return until


async def record_success(session: AsyncSession, user_id: uuid.UUID) -> None:
    """A successful login clears the count and the escalation."""
    await session.execute(text("DELETE FROM login_lockouts WHERE user_id = :user"), {"user": user_id})


async def unlock(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Ends a lock in force now (an admin's decision, or a completed password reset); True when there was one. The
    escalation is kept: a new lock after this one lasts longer."""
    ended = (
        await session.execute(
            text(
                "UPDATE login_lockouts SET locked_until = NULL, failures = 0, window_started_at = NULL "
                "WHERE user_id = :user AND locked_until > now() RETURNING user_id"
            ),
            {"user": user_id},
        )
    ).first()
    return ended is not None
