"""identity: password history, lockout, password reset, MFA, refresh-token families, security events

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 00:30:00

* `password_history`: the hashes of each user's earlier passwords (a new one may not be one of the last 5).
* `login_lockouts`: failed logins in the current window, the lock and how many locks so far (the next lasts longer).
* `password_resets`: the SHA-256 of each emailed reset token, its expiry and when it was used (single use).
* `user_mfa`: the TOTP secret (encrypted as account numbers are), when enrolment was confirmed, the last time step
  accepted (a code's step is accepted only when it is later: no replay); `mfa_recovery_codes`: their SHA-256, used once.
* `security_events`: every failed login, lock, unlock, reset and MFA change, queryable beside the `security` log.
* `refresh_tokens.family_id`: the first token's jti, carried through every refresh, so logout revokes the family.
* `users.tokens_valid_after`: tokens issued before it (a reset, a password change) are refused.
* `organizations.require_mfa_for_staff`: staff of the organization must enrol in MFA before they get tokens.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0020"
down_revision: Union[str, None] = "0019"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _tz(name: str, nullable: bool = True, **kwargs) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, **kwargs)


def _user_fk(nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column:
    return sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "password_history",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _user_fk(),
        sa.Column("hashed_password", sa.String(), nullable=False),
        _tz("created_at", nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_password_history_user", "password_history", ["user_id", "created_at"])
    op.create_table(
        "login_lockouts",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        _tz("window_started_at"),
        _tz("locked_until"),
        sa.Column("lock_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _user_fk(),
        _tz("expires_at", nullable=False),
        _tz("used_at"),
        _tz("created_at", nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_password_resets_user", "password_resets", ["user_id"])
    op.create_table(
        "user_mfa",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("secret_encrypted", sa.String(), nullable=False),
        _tz("confirmed_at"),
        sa.Column("last_step", sa.BigInteger(), nullable=False, server_default="0"),
        _tz("created_at", nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        _user_fk(),
        _tz("used_at"),
    )
    op.create_index("ix_mfa_recovery_codes_user", "mfa_recovery_codes", ["user_id"])
    op.create_table(
        "security_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("event", sa.String(40), nullable=False),
        _user_fk(nullable=True, ondelete="SET NULL"),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("details", JSONB(), nullable=True),
        _tz("created_at", nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_security_events_user", "security_events", ["user_id", "created_at"])
    op.create_index("ix_security_events_event", "security_events", ["event", "created_at"])

    op.add_column("refresh_tokens", sa.Column("family_id", sa.String(64), nullable=True))
    op.execute("UPDATE refresh_tokens SET family_id = jti")  # each token issued before this is a family of its own
    op.alter_column("refresh_tokens", "family_id", nullable=False)
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.add_column("users", sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "organizations",
        sa.Column("require_mfa_for_staff", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("organizations", "require_mfa_for_staff")
    op.drop_column("users", "tokens_valid_after")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.drop_column("refresh_tokens", "family_id")
    for table in (
        "security_events",
        "mfa_recovery_codes",
        "user_mfa",
        "password_resets",
        "login_lockouts",
        "password_history",
    ):
        op.drop_table(table)
