"""TOTP MFA of a user: enrolment (a pending secret, confirmed by a code from it), codes at login (a time step is
accepted once: an atomic UPDATE ... WHERE last_step < step), recovery codes (hashed, single use), disabling.

The secret is stored encrypted with the account-number keys (core/crypto.py AccountNumberCipher): a database dump
alone gives no one the codes."""

import base64
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from core import totp
from core.config import Settings
from core.crypto import AccountNumberCipher
from core.security import token_digest
from domain import security_events
from models.base import utcnow
from models.identity import UserMfa
from models.users import STAFF_ROLES, Organization, User


@dataclass
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_png_base64: str


async def enabled(session: AsyncSession, user_id: uuid.UUID) -> bool:
    row = await session.get(UserMfa, user_id)
    return row is not None and row.confirmed_at is not None


async def required_by_organization(session: AsyncSession, user: User) -> bool:
    """Staff of an organization that requires MFA of its staff."""
    if user.role not in STAFF_ROLES or user.org_id is None:
        return False
    org = await session.get(Organization, user.org_id)
    return org is not None and org.require_mfa_for_staff


async def enrol(session: AsyncSession, settings: Settings, cipher: AccountNumberCipher, user: User) -> Enrolment:
    """A new pending secret (replacing any earlier pending one), shown this once. 409 when MFA is already on."""
    if await enabled(session, user.id):
        raise AppError(409, "mfa_already_enabled", "MFA is already on for this user: disable it first to re-enrol")
    secret = totp.new_secret()
    await session.execute(
        text(
            """INSERT INTO user_mfa (user_id, secret_encrypted, confirmed_at, last_step) VALUES (:user, :secret, NULL, 0)
               ON CONFLICT (user_id) DO UPDATE SET secret_encrypted = EXCLUDED.secret_encrypted, last_step = 0,
                 created_at = now()
               WHERE user_mfa.confirmed_at IS NULL"""
        ),
        {"user": user.id, "secret": cipher.encrypt(secret)},
    )
    uri = totp.provisioning_uri(secret, user.email, settings.mfa_issuer)
    await security_events.record(session, "mfa_enrolment_started", user_id=user.id, email=user.email)
    return Enrolment(secret, uri, base64.b64encode(totp.qr_png(uri)).decode())


async def confirm(
    session: AsyncSession, settings: Settings, cipher: AccountNumberCipher, user: User, code: str
) -> list[str]:
    """Turns MFA on with a code of the pending secret; returns the recovery codes (shown this once)."""
    row = await session.get(UserMfa, user.id, with_for_update=True)
    if row is None or row.confirmed_at is not None:
        raise AppError(
            409,
            "no_pending_enrolment",
            "there is no MFA enrolment waiting for a code: POST /auth/mfa/enroll first"
            if row is None
            else "MFA is already on for this user",
        )
    step = totp.matching_step(cipher.decrypt(row.secret_encrypted), code, utcnow(), settings.mfa_valid_window)
    if step is None or step <= row.last_step:
        raise AppError(422, "invalid_mfa_code", "the code is not valid for this secret (or was used already)")
    row.confirmed_at, row.last_step = utcnow(), step
    session.add(row)
    codes = totp.new_recovery_codes()
    await session.execute(text("DELETE FROM mfa_recovery_codes WHERE user_id = :user"), {"user": user.id})
    await session.execute(
        text("INSERT INTO mfa_recovery_codes (code_hash, user_id) VALUES (:hash, :user)"),
        [{"hash": token_digest(totp.normalize_recovery_code(c)), "user": user.id} for c in codes],
    )
    await security_events.record(session, "mfa_enabled", user_id=user.id, email=user.email)
    return codes


async def accept_code(
    session: AsyncSession, settings: Settings, cipher: AccountNumberCipher, user_id: uuid.UUID, code: str
) -> str | None:
    """Checks a code of a user with MFA on and uses it up: "totp" or "recovery" when it is good, None otherwise (a
    wrong code, a time step already accepted, a recovery code already used)."""
    row = await session.get(UserMfa, user_id)
    if row is None or row.confirmed_at is None:
        return None
    if totp.is_totp_code(code):
        step = totp.matching_step(cipher.decrypt(row.secret_encrypted), code, utcnow(), settings.mfa_valid_window)
        if step is None:
            return None
        # Atomic: of two requests with one code, one gets the row; a later request with it finds last_step = step.
        taken = (
            await session.execute(
                text(
                    "UPDATE user_mfa SET last_step = :step WHERE user_id = :user AND confirmed_at IS NOT NULL "
                    "AND last_step < :step RETURNING user_id"
                ),
                {"user": user_id, "step": step},
            )
        ).first()
        return "totp" if taken else None
    used = (
        await session.execute(
            text(
                "UPDATE mfa_recovery_codes SET used_at = now() WHERE code_hash = :hash AND user_id = :user "
                "AND used_at IS NULL RETURNING user_id"
            ),
            {"hash": token_digest(totp.normalize_recovery_code(code)), "user": user_id},
        )
    ).first()
    return "recovery" if used else None


async def disable(
    session: AsyncSession, settings: Settings, cipher: AccountNumberCipher, user: User, code: str
) -> None:
    """Turns MFA off, given a current code or a recovery code. Staff whose organization requires MFA cannot."""
    if not await enabled(session, user.id):
        raise AppError(409, "mfa_not_enabled", "MFA is not on for this user")
    if await required_by_organization(session, user):
        raise AppError(409, "mfa_required", "your organization requires MFA of its staff: it cannot be turned off")
    if await accept_code(session, settings, cipher, user.id, code) is None:
        raise AppError(422, "invalid_mfa_code", "the code is not valid (or was used already)")
    await session.execute(text("DELETE FROM mfa_recovery_codes WHERE user_id = :user"), {"user": user.id})
    await session.execute(text("DELETE FROM user_mfa WHERE user_id = :user"), {"user": user.id})
    await security_events.record(session, "mfa_disabled", user_id=user.id, email=user.email)
