"""Identity tables: password history, lockouts, password resets, MFA and security events (migration 0020)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Uuid
from sqlmodel import Field, SQLModel

from models.base import created_at, jsonb, timestamp, uuid_pk


def _user_key(primary: bool = False) -> Any:
    return Field(
        sa_column=Column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=primary, nullable=False)
    )


class PasswordHistory(SQLModel, table=True):
    """Earlier password hashes of a user: a new password may not be one of the last few (settings.password_history)."""

    __tablename__ = "password_history"
    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = _user_key()
    hashed_password: str
    created_at: datetime = created_at()


class LoginLockout(SQLModel, table=True):
    """Failed logins in the current window, and the lock they led to (each lock longer than the last)."""

    __tablename__ = "login_lockouts"
    user_id: uuid.UUID = _user_key(primary=True)
    failures: int = 0
    window_started_at: datetime | None = timestamp()
    locked_until: datetime | None = timestamp()
    lock_count: int = 0


class PasswordReset(SQLModel, table=True):
    """An emailed reset token, by its SHA-256 (the token itself is never stored); used once."""

    __tablename__ = "password_resets"
    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: uuid.UUID = _user_key()
    expires_at: datetime = timestamp(nullable=False)
    used_at: datetime | None = timestamp()
    created_at: datetime = created_at()


class UserMfa(SQLModel, table=True):
    """A user's TOTP secret (encrypted), confirmed once a code from it was given, and the last time step accepted."""

    __tablename__ = "user_mfa"
    user_id: uuid.UUID = _user_key(primary=True)
    secret_encrypted: str
    confirmed_at: datetime | None = timestamp()
    last_step: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    created_at: datetime = created_at()


class MfaRecoveryCode(SQLModel, table=True):
    __tablename__ = "mfa_recovery_codes"
    code_hash: str = Field(primary_key=True, max_length=64)
    user_id: uuid.UUID = _user_key()
    used_at: datetime | None = timestamp()


class SecurityEvent(SQLModel, table=True):
    """Failed logins, locks, unlocks, resets, MFA changes: the rows behind the `security` log's events."""

    __tablename__ = "security_events"
    id: uuid.UUID = uuid_pk()
    event: str = Field(max_length=40)
    user_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    )
    email: str | None = Field(default=None, max_length=320)
    client_ip: str | None = Field(default=None, max_length=64)
    details: dict | None = jsonb()
    created_at: datetime = created_at()
