"""Security events (failed logins, locks, unlocks, resets, MFA changes): a row in `security_events` in the caller's
transaction, and a line on the `security` logger (as core/access.py logs access denials)."""

import logging
import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from models.identity import SecurityEvent

log = logging.getLogger("security")


async def record(
    session: AsyncSession,
    event: str,
    *,
    user_id: uuid.UUID | None = None,
    email: str | None = None,
    client_ip: str | None = None,
    **details: Any,
) -> None:
    details = {k: v if isinstance(v, str | int | float | bool | None) else str(v) for k, v in details.items()}
    session.add(
        SecurityEvent(
            event=event,
            user_id=user_id,
            email=email[:320] if email else None,
            client_ip=client_ip,
            details=details or None,
        )
    )
    log.warning(
        event,
        extra={
            "security_event": event,
            "user_id": str(user_id) if user_id else None,
            "email": email,
            "client_ip": client_ip,
            **{k: str(v) for k, v in details.items()},
        },
    )
