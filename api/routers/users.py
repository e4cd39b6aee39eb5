import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.deps import CurrentUser, ReadSessionDep, SessionDep, SettingsDep, allowed
from api.errors import AppError
from api.fields import Filter, line_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core.access import Action, Entity
from core.security import hash_password
from domain.passwords import check_strength
from domain.users import UserOut, target_org
from models.users import Organization, Role, User

router = APIRouter(tags=["users"])

OrgCreator = Annotated[User, Depends(allowed(Entity.organization, Action.create))]  # superuser
UserReader = Annotated[User, Depends(allowed(Entity.user, Action.read))]  # superuser, org admin
UserCreator = Annotated[User, Depends(allowed(Entity.user, Action.create))]
UserUpdater = Annotated[User, Depends(allowed(Entity.user, Action.update))]

_USER_FIELDS = ["email", "full_name", "role", "org_id", "is_active", "member_type", "kyc_status"]


class OrganizationIn(BaseModel):
    name: Annotated[str, *line_rules(200, 1, strip=True)] = Field(examples=["Riverside Credit Union"])


class OrganizationOut(BaseModel):
    id: uuid.UUID
    name: str


# Picks the approval route of the member's loans, with the amount (see /approval-rules); set by staff only.
MemberType = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_-]*$",
        max_length=40,
        examples=["business"],
        description="routes the member's loans (see approval rules); staff set it",
    ),
]


class UserIn(BaseModel):
    email: EmailStr = Field(examples=["teller@riverside.example"])
    full_name: Annotated[str, *line_rules(200, 1)] = Field(examples=["Dana Teller"])
    password: Annotated[str, *line_rules(128, 12)] = Field(
        description="at least 12 characters, hard to guess (zxcvbn score 3 or more)"
    )
    role: Role = Field(examples=["member"])
    org_id: uuid.UUID | None = Field(default=None, description="required from a superuser (except for superusers)")
    member_type: MemberType = "consumer"
    kyc_status: Literal["unverified", "verified"] | None = Field(
        default=None,
        description="a member's KYC: unverified (the default from an org admin: verified only through the KYC "
        "review) or verified, which only a superuser may give without a review (members migrated from before KYC; "
        "the default from a superuser), audited",
    )


class UserUpdate(BaseModel):
    full_name: Annotated[str, *line_rules(200, 1)] | None = None
    role: Role | None = None
    is_active: bool | None = None
    member_type: MemberType | None = None


@router.post("/organizations", response_model=OrganizationOut, status_code=201, summary="Create an organization")
async def create_organization(body: OrganizationIn, session: SessionDep, user: OrgCreator):
    org = Organization(name=body.name.strip())
    session.add(org)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AppError(409, "duplicate", f"an organization named {org.name!r} exists") from exc
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="organization.created",
        entity_type="organization",
        entity_id=org.id,
        after={"name": org.name},
    )
    await session.commit()
    return org


@router.get("/organizations", response_model=Page[OrganizationOut], summary="Organizations you can see")
async def list_organizations(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    name: Annotated[Filter | None, Query(description="contains, case-insensitive")] = None,
):
    statement = access.scope(user, Entity.organization, select(Organization))
    if name:
        statement = statement.where(col(Organization.name).ilike(f"%{name}%"))
    items, total = await paginate(session, statement, page, [Organization.name])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user")
async def create_user(body: UserIn, session: SessionDep, settings: SettingsDep, actor: UserCreator):
    # Org admins manage the staff and members of their own organization, never admins or bank-wide roles.
    access.check_grant(actor, body.role)
    # The bank-wide roles (superuser, bank_operations) belong to no organization.
    org_id = None if not access.has_organization(body.role) else target_org(actor, body.org_id)
    if org_id and await session.get(Organization, org_id) is None:
        raise AppError(422, "unknown_organization", f"organization {org_id} does not exist")
    access.check_kyc_grant(actor, body.kyc_status)
    kyc_status = body.kyc_status or ("verified" if access.is_super(actor) else "unverified")
    check_strength(settings, body.password, body.email, body.full_name)
    user = User(
        email=body.email.lower(),
        full_name=body.full_name,
        hashed_password=hash_password(body.password),
        role=body.role,
        org_id=org_id,
        member_type=body.member_type,
        kyc_status=kyc_status if body.role == Role.member else "verified",
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AppError(409, "duplicate", f"a user with email {user.email} exists") from exc
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        after=audit.snapshot(user, _USER_FIELDS),
    )
    await session.commit()
    return user


@router.get("/users", response_model=Page[UserOut], summary="Users you can see")
async def list_users(
    session: ReadSessionDep,
    actor: UserReader,
    page: PageDep,
    role: Role | None = None,
    org_id: uuid.UUID | None = None,
    is_active: bool | None = None,
    email: Annotated[Filter | None, Query(description="contains, case-insensitive")] = None,
):
    statement = access.scope(actor, Entity.user, select(User))
    if role:
        statement = statement.where(User.role == role)
    if org_id:
        statement = statement.where(User.org_id == org_id)
    if is_active is not None:
        statement = statement.where(User.is_active == is_active)
    if email:
        statement = statement.where(col(User.email).ilike(f"%{email}%"))
    items, total = await paginate(session, statement, page, [User.email])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def _visible_user(session, actor: User, user_id: uuid.UUID) -> User:
    user: User = await access.visible(session, actor, Entity.user, user_id)
    return user


@router.get("/users/{user_id}", response_model=UserOut, summary="One user")
async def get_user(user_id: uuid.UUID, session: SessionDep, actor: UserReader):
    return await _visible_user(session, actor, user_id)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Rename, change the role or the member type of, or disable a user",
)
async def update_user(user_id: uuid.UUID, body: UserUpdate, session: SessionDep, actor: UserUpdater):
    user = await _visible_user(session, actor, user_id)
    access.check_update_user(actor, user)
    if body.role is not None:
        access.check_grant(actor, body.role)
        if access.has_organization(body.role) != access.has_organization(user.role):
            raise AppError(
                422,
                "role_change_not_allowed",
                "a user cannot move between a bank-wide role (superuser, bank_operations) and an organization's role",
            )
    if user.id == actor.id and body.is_active is False:
        raise AppError(422, "cannot_disable_self", "you cannot disable yourself")
    before = audit.snapshot(user, _USER_FIELDS)
    for field, value in body.model_dump(exclude_none=True).items():
        setattr(user, field, value)
    session.add(user)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="user.updated",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=audit.snapshot(user, _USER_FIELDS),
    )
    await session.commit()
    return user
