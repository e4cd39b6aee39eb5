"""Members: joining an organization (an org admin's invitation, or open registration with email verification),
their profile, and the member list and deactivation for staff. KYC lives in api/routers/kyc.py.

A sign-up creates no user: the user exists (and can log in) only once the emailed link is followed, so an
unverified address can neither log in nor hold a name. An invitation's link proves the address, so accepting it
creates the member at once. Both links are single use and expire; only keyed hashes of their tokens are stored.
Sign-up answers 202 whether or not the email already has an account (no hint that it exists)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import or_, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.deps import CurrentUser, ReadSessionDep, SessionDep, SettingsDep, TemporalDep, allowed
from api.errors import AppError
from api.fields import BusinessDate, Filter, Token, line_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core.access import Action, Entity
from core.security import hash_password, off_loop
from domain import members
from domain.members import MemberOut
from domain.passwords import check_strength
from models.members import MemberInvitation, MemberSignup
from models.users import KycStatus, Organization, Role, User

router = APIRouter(tags=["members"])

OrgUpdater = Annotated[User, Depends(allowed(Entity.organization, Action.update))]  # superuser, org admin
MemberReader = Annotated[User, Depends(allowed(Entity.member, Action.read))]  # superuser, org admin, operator
Inviter = Annotated[User, Depends(allowed(Entity.member, Action.create))]  # superuser, org admin
MemberUpdater = Annotated[User, Depends(allowed(Entity.member, Action.update))]  # superuser, org admin

_MEMBER_FIELDS = ["email", "full_name", "is_active", "phone", "address", "date_of_birth", "member_type", "kyc_status"]
# Length here; strength and common passwords (domain.passwords.check_strength) once the email is known.
Password = Annotated[str, *line_rules(128, 12), Field(description="at least 12 characters")]
MemberType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=40, examples=["consumer"])]


class OrganizationSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    open_registration: bool = Field(description="anyone may sign up (with email verification); else invitation only")


class OrganizationSettingsOut(BaseModel):
    id: uuid.UUID
    name: str
    open_registration: bool


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(examples=["new.member@example.com"])
    member_type: MemberType = Field(default="consumer", description="routes the member's loans; staff choose it")


class InvitationOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    member_type: str
    expires_at: datetime


class AcceptInvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Token = Field(description="the token of the invitation's link")
    full_name: Annotated[str, *line_rules(200, 1, strip=True)] = Field(examples=["Dana Member"])
    password: Password


class SignupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(examples=["dana@example.com"])
    full_name: Annotated[str, *line_rules(200, 1, strip=True)] = Field(examples=["Dana Member"])
    password: Password


class SignupAccepted(BaseModel):
    status: Literal["verification_email_sent"] = "verification_email_sent"
    message: str = "if the address can join, a verification link is on its way; it works once and expires"


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Token = Field(description="the token of the verification link")


class ProfileUpdate(BaseModel):
    """The member's own details; the member type and the KYC status are staff's and the workflow's (a field
    not listed here is a 422)."""

    model_config = ConfigDict(extra="forbid")
    full_name: Annotated[str, *line_rules(200, 1, strip=True)] | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{3,40}$", max_length=41, examples=["+1 555 0100"])] | None = None
    address: Annotated[str, *line_rules(500, 1, strip=True)] | None = None
    date_of_birth: BusinessDate | None = None


def _invalid_token() -> AppError:
    # One answer for unknown, used and expired tokens: nothing to learn by trying.
    return AppError(422, "invalid_token", "this link is not valid: it may have expired or been used already")


def _new_member(org_id: uuid.UUID, email: str, full_name: str, hashed_password: str, member_type: str) -> User:
    return User(
        email=email,
        full_name=full_name,
        hashed_password=hashed_password,
        role=Role.member,
        org_id=org_id,
        member_type=member_type,
        kyc_status=KycStatus.unverified,  # verified only through the KYC review
        email_verified_at=datetime.now(UTC),
    )


async def _create_member(session, user: User, action: str, actor: str) -> User:
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AppError(409, "duplicate", "an account with this email exists; log in instead") from exc
    await audit.record(
        session,
        actor=actor,
        actor_id=user.id,
        action=action,
        entity_type="user",
        entity_id=user.id,
        after=audit.snapshot(user, _MEMBER_FIELDS),
    )
    return user


# --- organization settings and invitations --------------------------------------------------------------------


@router.patch(
    "/organizations/{org_id}/settings",
    response_model=OrganizationSettingsOut,
    summary="Open or close the organization's registration to anyone (org admin)",
)
async def update_organization_settings(
    org_id: uuid.UUID, body: OrganizationSettingsIn, session: SessionDep, actor: OrgUpdater
):
    org: Organization = await access.visible(session, actor, Entity.organization, org_id, for_update=True)
    before = {"open_registration": org.open_registration}
    org.open_registration = body.open_registration
    session.add(org)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="organization.settings_updated",
        entity_type="organization",
        entity_id=org.id,
        before=before,
        after={"open_registration": org.open_registration},
    )
    await session.commit()
    return OrganizationSettingsOut(id=org.id, name=org.name, open_registration=org.open_registration)


@router.post(
    "/organizations/{org_id}/invitations",
    response_model=InvitationOut,
    status_code=201,
    summary="Invite someone to become a member (emailed single-use link; org admin)",
)
async def invite_member(
    org_id: uuid.UUID,
    body: InvitationIn,
    session: SessionDep,
    actor: Inviter,
    settings: SettingsDep,
    client: TemporalDep,
):
    org: Organization = await access.visible(session, actor, Entity.organization, org_id)
    email = str(body.email).lower()
    if (await session.exec(select(User.id).where(User.email == email))).first() is not None:
        raise AppError(409, "duplicate", f"a user with email {email} exists")
    token = members.new_token()
    invitation = MemberInvitation(
        org_id=org.id,
        email=email,
        member_type=body.member_type,
        invited_by=actor.id,
        token_hash=members.token_hash(settings, "invitation", token),
        expires_at=datetime.now(UTC) + settings.invitation_ttl,
    )
    session.add(invitation)
    await session.flush()
    outbox = members.outbox_email(
        email,
        "member_invitation",
        {
            "org_name": org.name,
            "inviter": actor.full_name,
            "link": members.link(settings, "/invitations/accept", token),
            "expires_at": f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC",
        },
        f"invitation:{invitation.id}",
    )
    session.add(outbox)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="member.invited",
        entity_type="organization",
        entity_id=org.id,
        after={"invitation_id": str(invitation.id), "email": email, "member_type": body.member_type},
    )
    await session.commit()
    out = InvitationOut.model_validate(invitation, from_attributes=True)
    await members.send_outbox(client, settings, outbox.id, f"Invitation to {org.name}")
    return out


@router.post(
    "/invitations/accept",
    response_model=MemberOut,
    status_code=201,
    summary="Accept an invitation: the member is created (no sign-in needed; the link proves the email)",
)
async def accept_invitation(body: AcceptInvitationIn, session: SessionDep, settings: SettingsDep):
    now = datetime.now(UTC)
    # Atomic single use: of two concurrent accepts with one token, exactly one gets the row back.
    claimed = (
        await session.execute(
            text(
                "UPDATE member_invitations SET accepted_at = :now WHERE token_hash = :hash AND accepted_at IS NULL "
                "AND expires_at > :now RETURNING id, org_id, email, member_type"
            ),
            {"now": now, "hash": members.token_hash(settings, "invitation", body.token)},
        )
    ).first()
    if claimed is None:
        raise _invalid_token()
    check_strength(settings, body.password, claimed.email, body.full_name)  # a refusal rolls the claim back
    hashed = await off_loop(hash_password, body.password)
    user = _new_member(claimed.org_id, claimed.email, body.full_name, hashed, claimed.member_type)
    await _create_member(session, user, "member.joined_by_invitation", claimed.email)
    await session.execute(
        text("UPDATE member_invitations SET user_id = :user WHERE id = :id"), {"user": user.id, "id": claimed.id}
    )
    await session.commit()
    return MemberOut.model_validate(user, from_attributes=True)


# --- open registration ------------------------------------------------------------------------------------------


@router.post(
    "/organizations/{org_id}/signups",
    response_model=SignupAccepted,
    status_code=202,
    responses={403: {"description": "the organization joins by invitation only"}},
    summary="Sign up as a member of an organization open to registration (a verification link is emailed)",
)
async def sign_up(org_id: uuid.UUID, body: SignupIn, session: SessionDep, settings: SettingsDep, client: TemporalDep):
    org = await session.get(Organization, org_id)
    if org is None:
        raise AppError(404, "not_found", f"organization {org_id} not found")
    if not org.open_registration:
        raise AppError(403, "registration_closed", "this organization accepts members by invitation only")
    email = str(body.email).lower()
    check_strength(settings, body.password, email, body.full_name)
    if (await session.exec(select(User.id).where(User.email == email))).first() is not None:
        return SignupAccepted()  # the same answer as for a new address: no hint that the account exists
    token = members.new_token()
    signup = MemberSignup(
        org_id=org.id,
        email=email,
        full_name=body.full_name,
        hashed_password=await off_loop(hash_password, body.password),
        token_hash=members.token_hash(settings, "signup", token),
        expires_at=datetime.now(UTC) + settings.signup_token_ttl,
    )
    session.add(signup)
    await session.flush()
    outbox = members.outbox_email(
        email,
        "signup_verification",
        {
            "org_name": org.name,
            "full_name": body.full_name,
            "link": members.link(settings, "/signup/verify", token),
            "expires_at": f"{signup.expires_at:%Y-%m-%d %H:%M} UTC",
        },
        f"signup:{signup.id}",
    )
    session.add(outbox)
    await session.commit()
    await members.send_outbox(client, settings, outbox.id, f"Sign-up verification for {org.name}")
    return SignupAccepted()


@router.post(
    "/signups/verify",
    response_model=MemberOut,
    status_code=201,
    summary="Verify a sign-up's email with the emailed token: the member is created and can log in",
)
async def verify_signup(body: VerifyIn, session: SessionDep, settings: SettingsDep):
    now = datetime.now(UTC)
    claimed = (
        await session.execute(
            text(
                "UPDATE member_signups SET verified_at = :now WHERE token_hash = :hash AND verified_at IS NULL "
                "AND expires_at > :now RETURNING id, org_id, email, full_name, hashed_password"
            ),
            {"now": now, "hash": members.token_hash(settings, "signup", body.token)},
        )
    ).first()
    if claimed is None:
        raise _invalid_token()
    user = _new_member(claimed.org_id, claimed.email, claimed.full_name, claimed.hashed_password, "consumer")
    await _create_member(session, user, "member.signed_up", claimed.email)
    await session.execute(
        text("UPDATE member_signups SET user_id = :user WHERE id = :id"), {"user": user.id, "id": claimed.id}
    )
    await session.commit()
    return MemberOut.model_validate(user, from_attributes=True)


# --- the member's own profile ---------------------------------------------------------------------------------------


@router.get("/profile", response_model=MemberOut, summary="My profile, with my KYC status")
async def get_profile(session: SessionDep, user: CurrentUser):
    row = await session.get(User, user.id)
    return MemberOut.model_validate(row, from_attributes=True)


@router.patch("/profile", response_model=MemberOut, summary="Update my name, phone, address or date of birth")
async def update_profile(body: ProfileUpdate, session: SessionDep, user: CurrentUser):
    row = await session.get(User, user.id, with_for_update=True)
    assert row is not None  # the signed-in user
    before = audit.snapshot(row, _MEMBER_FIELDS)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is None and field == "full_name":
            raise AppError(422, "name_required", "full_name cannot be removed")
        setattr(row, field, value)
    session.add(row)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="profile.updated",
        entity_type="user",
        entity_id=row.id,
        before=before,
        after=audit.snapshot(row, _MEMBER_FIELDS),
    )
    await session.commit()
    return MemberOut.model_validate(row, from_attributes=True)


# --- staff: the member list, one member, deactivation ---------------------------------------------------------


@router.get("/members", response_model=Page[MemberOut], summary="Members of my organization: search and filter")
async def list_members(
    session: ReadSessionDep,
    actor: MemberReader,
    page: PageDep,
    q: Annotated[Filter | None, Query(description="in the name or the email, case-insensitive")] = None,
    kyc_status: KycStatus | None = None,
    kyc_waiting_on: Annotated[Filter | None, Query(description="whom their KYC waits on (member, operator...)")] = None,
    member_type: Annotated[Filter | None, Query()] = None,
    is_active: bool | None = None,
    org_id: uuid.UUID | None = None,
):
    statement = access.scope(actor, Entity.member, select(User))
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        statement = statement.where(or_(col(User.full_name).ilike(pattern), col(User.email).ilike(pattern)))
    if kyc_status:
        statement = statement.where(User.kyc_status == kyc_status)
    if kyc_waiting_on:
        statement = statement.where(User.kyc_waiting_on == kyc_waiting_on)
    if member_type:
        statement = statement.where(User.member_type == member_type)
    if is_active is not None:
        statement = statement.where(User.is_active == is_active)
    if org_id:
        statement = statement.where(User.org_id == org_id)
    items, total = await paginate(session, statement, page, [User.full_name, User.id])
    return Page(
        items=[MemberOut.model_validate(u, from_attributes=True) for u in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/members/{member_id}", response_model=MemberOut, summary="One member (staff of the organization)")
async def get_member(member_id: uuid.UUID, session: SessionDep, actor: MemberReader):
    return MemberOut.model_validate(
        await access.visible(session, actor, Entity.member, member_id), from_attributes=True
    )


@router.post(
    "/members/{member_id}/deactivate",
    response_model=MemberOut,
    summary="Deactivate a member: logins refused, every session ended; the row and its history stay (org admin)",
)
async def deactivate_member(member_id: uuid.UUID, session: SessionDep, actor: MemberUpdater):
    member: User = await access.visible(session, actor, Entity.member, member_id, for_update=True)
    if member.is_active:
        before = audit.snapshot(member, _MEMBER_FIELDS)
        member.is_active = False
        session.add(member)
        await session.execute(
            text("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = :id AND revoked_at IS NULL"),
            {"id": member.id},
        )
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="member.deactivated",
            entity_type="user",
            entity_id=member.id,
            before=before,
            after=audit.snapshot(member, _MEMBER_FIELDS),
        )
    await session.commit()
    return MemberOut.model_validate(member, from_attributes=True)
