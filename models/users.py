import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel

from models.base import MONEY, created_at, timestamp, uuid_pk


class Role(StrEnum):
    superuser = "superuser"
    bank_operations = "bank_operations"  # bank-wide operations (NACHA files, posting and statement runs); no org
    org_admin = "org_admin"
    operator = "operator"
    member = "member"
    loan_officer = "loan_officer"
    branch_manager = "branch_manager"
    credit_committee = "credit_committee"


APPROVER_ROLES = frozenset({Role.loan_officer, Role.branch_manager, Role.credit_committee})
STAFF_ROLES = frozenset({Role.org_admin, Role.operator}) | APPROVER_ROLES


class KycStatus(StrEnum):
    unverified = "unverified"  # never submitted
    pending = "pending"  # submitted: screening, a human review, or more documents asked for
    verified = "verified"
    rejected = "rejected"
    expired = "expired"  # verified once, past its validity: re-verification waits on the member


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"
    id: uuid.UUID = uuid_pk()
    name: str = Field(unique=True, max_length=200)
    # Anyone may sign up as a member (with email verification) when set; otherwise by invitation only.
    open_registration: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    # Staff (STAFF_ROLES) must enrol in MFA before they get tokens (core/mfa.py); set by the org admin.
    require_mfa_for_staff: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    # A prenote (zero-dollar entry) must pass before the first live debit to a new external account.
    require_ach_prenote: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    # Deposits, withdrawals and book transfers above it wait on a checker (domain/maker_checker.py); null: the
    # bank's MAKER_CHECKER_THRESHOLD. Set by a superuser: a risk limit of the bank's, not the organization's own.
    maker_checker_threshold: Decimal | None = Field(default=None, sa_column=Column(MONEY, nullable=True))
    created_at: datetime = created_at()


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('superuser','bank_operations','org_admin','operator','member','loan_officer',"
            "'branch_manager','credit_committee')",
            name="users_role_valid",
        ),
        # Everyone but the bank-wide roles (superuser, bank_operations) belongs to exactly one organization; the
        # API creates those with none.
        CheckConstraint("role IN ('superuser','bank_operations') OR org_id IS NOT NULL", name="users_org_required"),
        CheckConstraint(
            "kyc_status IN ('unverified','pending','verified','rejected','expired')", name="users_kyc_status_valid"
        ),
    )
    id: uuid.UUID = uuid_pk()
    email: str = Field(unique=True, index=True, max_length=320)
    full_name: str = Field(max_length=200)
    hashed_password: str
    # Tokens issued before this instant are refused: a password reset or change ends every session.
    tokens_valid_after: datetime | None = timestamp()
    role: str = Field(max_length=32)
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    # unverified, pending, verified, rejected, expired (KycStatus). The default 'verified' is that of members from
    # before KYC and of a superuser's explicit pre-verification; sign-ups start unverified (README: Members and KYC).
    kyc_status: str = Field(default="verified", max_length=16, sa_column_kwargs={"server_default": "verified"})
    kyc_waiting_on: str | None = Field(default=None, max_length=32)  # member, operator, org_admin: who acts next
    kyc_reason: str | None = Field(default=None, max_length=1000)  # of a rejection, or of documents requested
    kyc_verified_at: datetime | None = timestamp()
    kyc_expires_at: datetime | None = timestamp()
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)
    date_of_birth: date | None = None
    email_verified_at: datetime | None = timestamp()
    # Picks the approval route of the member's loans (with the amount); staff set it, never the applicant.
    member_type: str = Field(default="consumer", max_length=40, sa_column_kwargs={"server_default": "consumer"})
    # The currency the member's money summary and insights are converted to (ISO 4217; README: Currency).
    base_currency: str = Field(default="USD", max_length=3, sa_column_kwargs={"server_default": "USD"})
    created_at: datetime = created_at()


class RefreshToken(SQLModel, table=True):
    """Issued refresh tokens, so that each is used once (rotation) and a reused one revokes the family."""

    __tablename__ = "refresh_tokens"
    jti: str = Field(primary_key=True, max_length=64)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    # The jti of the family's first token (issued at login), carried through each refresh: logout revokes them all.
    family_id: str = Field(max_length=64, index=True)
    expires_at: datetime = timestamp(nullable=False)
    used_at: datetime | None = timestamp()
    revoked_at: datetime | None = timestamp()
    created_at: datetime = created_at()
