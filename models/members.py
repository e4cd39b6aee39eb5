"""Members joining an organization (invitations, open sign-ups) and their KYC: the tables, and the types the KYC
workflow, its activities and the API share."""

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Column, UniqueConstraint
from sqlalchemy import Uuid as SaUuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel

from models.base import created_at, timestamp, uuid_pk


class MemberInvitation(SQLModel, table=True):
    """An org admin's invitation: the emailed link (its token kept only as a keyed hash) makes one member, once."""

    __tablename__ = "member_invitations"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = SqlField(foreign_key="organizations.id", index=True)
    email: str = SqlField(max_length=320)
    member_type: str = SqlField(max_length=40)  # chosen by staff, never by the member
    invited_by: uuid.UUID = SqlField(foreign_key="users.id")
    token_hash: str = SqlField(unique=True, max_length=64)
    expires_at: datetime = timestamp(nullable=False)
    accepted_at: datetime | None = timestamp()
    user_id: uuid.UUID | None = SqlField(default=None, foreign_key="users.id")
    created_at: datetime = created_at()


class MemberSignup(SQLModel, table=True):
    """An open sign-up waiting for its email to be verified: no user exists (nobody can log in) until the link is
    followed."""

    __tablename__ = "member_signups"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = SqlField(foreign_key="organizations.id", index=True)
    email: str = SqlField(max_length=320)
    full_name: str = SqlField(max_length=200)
    hashed_password: str
    token_hash: str = SqlField(unique=True, max_length=64)
    expires_at: datetime = timestamp(nullable=False)
    verified_at: datetime | None = timestamp()
    user_id: uuid.UUID | None = SqlField(default=None, foreign_key="users.id")
    created_at: datetime = created_at()


class KycSubmission(SQLModel, table=True):
    """What a member submitted in one round of a KYC review, with the screening's answer."""

    __tablename__ = "kyc_submissions"
    __table_args__ = (UniqueConstraint("run_id", "round", name="kyc_submissions_once"),)
    id: uuid.UUID = uuid_pk()
    member_id: uuid.UUID = SqlField(foreign_key="users.id", index=True)
    submitted_by: uuid.UUID = SqlField(foreign_key="users.id")
    workflow_id: str = SqlField(max_length=200)
    run_id: str = SqlField(max_length=64)
    round: int
    identity: dict = SqlField(sa_column=Column(JSONB, nullable=False))
    document_ids: list[uuid.UUID] = SqlField(sa_column=Column(ARRAY(SaUuid()), nullable=False))
    screening_result: str | None = SqlField(default=None, max_length=16)
    screening_reasons: list | None = SqlField(default=None, sa_column=Column(JSONB, nullable=True))
    created_at: datetime = created_at()


# --- the KYC workflow's messages ---------------------------------------------------------------------------------


class IdentityData(BaseModel):
    full_name: str = Field(min_length=1, max_length=200, examples=["Dana Member"])
    date_of_birth: date = Field(examples=["1990-04-01"])
    address: str = Field(min_length=1, max_length=500, examples=["1 Main St, Springfield, IL 62701"])
    national_id_last4: str = Field(pattern=r"^[0-9]{4}$", examples=["1234"], description="last 4 digits of the SSN")


class KycSubmissionInput(BaseModel):
    submitted_by: uuid.UUID
    identity: IdentityData
    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class KycReviewSettings(BaseModel):
    """Durations and routing of the review, from Settings when the workflow starts (fixed in its history)."""

    valid_for_seconds: float
    review_deadline_seconds: float
    review_reminder_seconds: float
    reviewer_role: str = "operator"
    escalation_role: str | None = "org_admin"


class KycInput(BaseModel):
    member_id: uuid.UUID
    org_id: uuid.UUID
    reason: Literal["initial", "reverification"] = "initial"
    submission: KycSubmissionInput | None = None  # None: waits for the member's (a re-verification)
    expires_at: datetime | None = None  # a re-verification: the current KYC's end
    review: KycReviewSettings


class ScreeningRequest(BaseModel):
    submission_id: uuid.UUID
    identity: IdentityData


class ScreeningResult(BaseModel):
    result: Literal["pass", "refer", "fail"]
    reasons: list[str] = []
    watchlist_hit: bool = False


class RecordedSubmission(BaseModel):
    submission_id: uuid.UUID
    round: int


class SubmissionRecord(BaseModel):
    member_id: uuid.UUID
    workflow_id: str
    run_id: str
    round: int
    submission: KycSubmissionInput


class KycStatusUpdate(BaseModel):
    """The member's KYC record as the workflow moves: written to the users row, audited, the member told."""

    member_id: uuid.UUID
    status: str
    waiting_on: str | None = None
    reason: str | None = None
    valid_for_seconds: float | None = None  # verified: valid this long from now
    notify: bool = False  # email the member (an outcome, documents asked for, re-verification due)


class ReviewRequest(BaseModel):
    member_id: uuid.UUID
    org_id: uuid.UUID
    submitted_by: uuid.UUID
    round: int
    run_id: str
    review: KycReviewSettings
    reasons: list[str] = []


class KycState(BaseModel):
    member_id: uuid.UUID
    status: str  # awaiting_submission, screening, in_review, more_documents_requested, verified, rejected, expired
    waiting_on: str | None
    round: int
    reason: str | None = None
    approval_request_id: uuid.UUID | None = None
    expires_at: datetime | None = None
