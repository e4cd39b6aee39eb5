"""Setting a password wherever it happens (a user created by staff, a change, a reset): the rules of core/passwords.py,
the user's recent passwords (the current one and `password_history - 1` before it), and the history kept."""

import uuid

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from core.config import Settings
from core.passwords import PasswordProblem, reused, weakness
from core.security import hash_password, off_loop
from models.base import utcnow
from models.users import User


def _refuse(problem: PasswordProblem) -> AppError:
    return AppError(422, problem.code, problem.message, problem.details)


def check_strength(settings: Settings, password: str, email: str, full_name: str) -> None:
    """422 password_too_short / password_too_weak."""
    problem = weakness(
        password,
        min_length=settings.password_min_length,
        min_score=settings.password_min_score,
        user_inputs=(email, full_name),
    )
    if problem:
        raise _refuse(problem)


async def change_password(session: AsyncSession, settings: Settings, user: User, password: str) -> None:
    """Sets `user`'s (a row of this session, locked by the caller) new password after every check, keeps the old hash
    in the history, and ends every session (refresh tokens revoked, tokens issued before now refused) and every
    pending reset link."""
    check_strength(settings, password, user.email, user.full_name)
    earlier = (
        await session.execute(
            text(
                "SELECT hashed_password FROM password_history WHERE user_id = :user "
                "ORDER BY created_at DESC LIMIT :keep"
            ),
            {"user": user.id, "keep": settings.password_history - 1},
        )
    ).scalars()
    # Up to 5 argon2 verifications, off the event loop.
    if problem := await off_loop(reused, password, [user.hashed_password, *earlier]):
        raise _refuse(problem)
    now = utcnow()
    await session.execute(
        text(
            "INSERT INTO password_history (id, user_id, hashed_password, created_at) VALUES (:id, :user, :hash, :now)"
        ),
        {"id": uuid.uuid4(), "user": user.id, "hash": user.hashed_password, "now": now},
    )
    # Only the hashes the rule looks at are kept.
    await session.execute(
        text(
            "DELETE FROM password_history WHERE user_id = :user AND id NOT IN (SELECT id FROM password_history "
            "WHERE user_id = :user ORDER BY created_at DESC LIMIT :keep)"
        ),
        {"user": user.id, "keep": settings.password_history - 1},
    )
    user.hashed_password = await off_loop(hash_password, password)
    user.tokens_valid_after = now
    session.add(user)
    await revoke_all_refresh_tokens(session, user)
    # Reset links emailed before die with the password they were to replace.
    await session.execute(
        text("UPDATE password_resets SET used_at = now() WHERE user_id = :user AND used_at IS NULL"),
        {"user": user.id},
    )


async def revoke_all_refresh_tokens(session: AsyncSession, user: User) -> None:
    await session.execute(
        text("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = :user AND revoked_at IS NULL"),
        {"user": user.id},
    )
