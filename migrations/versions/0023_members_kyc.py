"""members and KYC: sign-up and invitations, profiles, KYC status with its reviews

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 00:30:00

Users gain a profile (phone, address, date of birth), the time their email was verified, and their KYC record
(status, who it waits on, the reason of a rejection or a request, when it was verified and when it expires).
kyc_status keeps its server default 'verified' for the rows that exist (members from before KYC) and the
superuser's explicit pre-verification (README: Members and KYC); sign-ups start 'unverified'. Organizations gain
the open_registration setting. Sign-ups and invitations keep only keyed hashes of their single-use tokens.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: Union[str, None] = "0022"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KYC_STATUSES = "('unverified','pending','verified','rejected','expired')"


def upgrade() -> None:
    op.add_column("users", sa.Column("phone", sa.String(length=40), nullable=True))
    op.add_column("users", sa.Column("address", sa.String(length=500), nullable=True))
    op.add_column("users", sa.Column("date_of_birth", sa.Date(), nullable=True))
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("kyc_waiting_on", sa.String(length=32), nullable=True))
    op.add_column("users", sa.Column("kyc_reason", sa.String(length=1000), nullable=True))
    op.add_column("users", sa.Column("kyc_verified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("kyc_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint("users_kyc_status_valid", "users", f"kyc_status IN {KYC_STATUSES}")
    # The re-verification schedule's query: verified members whose KYC expires soon.
    op.create_index(
        "ix_users_kyc_expires_at", "users", ["kyc_expires_at"], postgresql_where=sa.text("kyc_status = 'verified'")
    )
    op.add_column(
        "organizations",
        sa.Column("open_registration", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "member_invitations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False, index=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("member_type", sa.String(length=40), nullable=False),
        sa.Column("invited_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "member_signups",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False, index=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("hashed_password", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "kyc_submissions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("member_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("submitted_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("workflow_id", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("identity", postgresql.JSONB(), nullable=False),
        sa.Column("document_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("screening_result", sa.String(length=16), nullable=True),
        sa.Column("screening_reasons", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        # One row per round of a run: a retried activity writes nothing twice.
        sa.UniqueConstraint("run_id", "round", name="kyc_submissions_once"),
    )


def downgrade() -> None:
    op.drop_table("kyc_submissions")
    op.drop_table("member_signups")
    op.drop_table("member_invitations")
    op.drop_column("organizations", "open_registration")
    op.drop_index("ix_users_kyc_expires_at", table_name="users")
    op.drop_constraint("users_kyc_status_valid", "users", type_="check")
    for column in (
        "kyc_expires_at",
        "kyc_verified_at",
        "kyc_reason",
        "kyc_waiting_on",
        "email_verified_at",
        "date_of_birth",
        "address",
        "phone",
    ):
        op.drop_column("users", column)
