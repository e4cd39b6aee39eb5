"""External bank accounts: linked through the provider, or entered by hand (to be verified by
micro-deposits). Account numbers are stored encrypted and leave only masked.

An external account is the organization's, or a member's (`owner_id`, named by the staff who link it): a member
sees and names for their loans and bills only their own (core/access.py)."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import col, select

from api.deps import CipherDep, ReadSessionDep, SessionDep, allowed
from api.errors import AppError
from api.fields import Token, line_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core.access import Action, Entity
from core.linking import LinkingClient, LinkingError, LinkingUnavailable
from domain.users import target_org
from finance.aba import is_valid_routing_number
from finance.masking import mask_from_last4
from models.external_accounts import ExternalAccount, ExternalAccountStatus
from models.users import Organization, User

router = APIRouter(prefix="/external-accounts", tags=["external accounts"])

OrgAdmin = Annotated[User, Depends(allowed(Entity.external_account, Action.create))]
Viewer = Annotated[User, Depends(allowed(Entity.external_account, Action.read))]

OwnerId = Annotated[
    uuid.UUID | None,
    Field(
        default=None,
        description="the member whose bank account it is (their loans and bills may use it); none: the "
        "organization's own",
    ),
]


class LinkTokenIn(BaseModel):
    org_id: uuid.UUID | None = Field(default=None, description="superusers only: the organization linking")


class LinkTokenOut(BaseModel):
    link_token: str
    expiration: str


class LinkIn(BaseModel):
    public_token: Token = Field(max_length=200, examples=["public-sandbox-5c224a01..."])
    org_id: uuid.UUID | None = None
    owner_id: OwnerId = None


class ManualAccountIn(BaseModel):
    holder_name: Annotated[str, *line_rules(200, 1)] = Field(examples=["Riverside Credit Union operating"])
    institution_name: Annotated[str, *line_rules(200)] = Field(default="", examples=["First Platypus Bank"])
    routing_number: str = Field(pattern=r"^[0-9]{9}$", examples=["021000021"])  # ASCII: \d is any Unicode digit
    account_number: str = Field(pattern=r"^[0-9]{4,17}$", examples=["000123456789"])
    account_type: Literal["checking", "savings"]
    org_id: uuid.UUID | None = None
    owner_id: OwnerId = None


class ExternalAccountOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    holder_name: str
    institution_name: str
    source: str
    routing_number: str
    account_number_masked: str
    account_type: str
    status: str
    debits_blocked: bool
    owner_id: uuid.UUID | None = None
    created_at: datetime


def to_out(account: ExternalAccount) -> ExternalAccountOut:
    return ExternalAccountOut(
        **account.model_dump(exclude={"account_number_encrypted"}),
        account_number_masked=mask_from_last4(account.account_last4),
    )


def _audit_view(account: ExternalAccount) -> dict:
    return to_out(account).model_dump(mode="json", exclude={"created_at"})


async def existing_org(session, user: User, requested: uuid.UUID | None) -> uuid.UUID:
    """The organization the write goes to (domain.users.target_org), which must exist: a superuser may name any."""
    org_id = target_org(user, requested)
    if await session.get(Organization, org_id) is None:
        raise AppError(422, "unknown_organization", f"organization {org_id} does not exist", {"org_id": str(org_id)})
    return org_id


def linking_client(request: Request) -> LinkingClient:
    return request.app.state.linking


LinkingDep = Annotated[LinkingClient, Depends(linking_client)]


def _provider_error(exc: Exception) -> AppError:
    if isinstance(exc, LinkingError):
        return AppError(422, "linking_rejected", exc.message, {"provider_code": exc.code})
    return AppError(502, "linking_unavailable", "the account-linking provider is unavailable; try again", str(exc))


@router.post("/link-token", response_model=LinkTokenOut, summary="Start linking: a token for the provider's Link UI")
async def create_link_token(body: LinkTokenIn, session: SessionDep, user: OrgAdmin, provider: LinkingDep):
    org_id = await existing_org(session, user, body.org_id)
    try:
        token = await provider.create_link_token(f"{org_id}:{user.id}")
    except (LinkingError, LinkingUnavailable) as exc:
        raise _provider_error(exc) from exc
    return LinkTokenOut(link_token=token["link_token"], expiration=str(token["expiration"]))


@router.post(
    "/link",
    response_model=list[ExternalAccountOut],
    status_code=201,
    summary="Finish linking: exchange the public token and store the item's accounts",
)
async def link_accounts(body: LinkIn, session: SessionDep, user: OrgAdmin, provider: LinkingDep, cipher: CipherDep):
    org_id = await existing_org(session, user, body.org_id)
    await _check_owner(session, org_id, body.owner_id)
    try:
        item = await provider.exchange(body.public_token)
    except (LinkingError, LinkingUnavailable) as exc:
        raise _provider_error(exc) from exc
    invalid = [a.provider_account_id for a in item.accounts if not is_valid_routing_number(a.routing_number)]
    if invalid:
        raise AppError(
            422,
            "invalid_routing_number",
            "the provider returned routing numbers that fail the ABA check",
            {"provider_account_ids": invalid},
        )
    await session.execute(
        text(
            """INSERT INTO linked_items (id, org_id, provider_item_id, institution_id, access_token_encrypted, created_by)
           VALUES (:id, :org, :item, :inst, :token, :user) ON CONFLICT (provider_item_id) DO NOTHING"""
        ),
        {
            "id": uuid.uuid4(),
            "org": org_id,
            "item": item.item_id,
            "inst": item.institution_id,
            "token": cipher.encrypt(item.access_token),
            "user": user.id,
        },
    )
    accounts = []
    for linked in item.accounts:
        fingerprints = cipher.fingerprints(linked.routing_number, linked.account_number)
        account = (
            await session.exec(
                select(ExternalAccount).where(
                    ExternalAccount.org_id == org_id, col(ExternalAccount.fingerprint).in_(fingerprints)
                )
            )
        ).first()
        if account is None:  # linking the same bank account again finds the row it made the first time
            account = ExternalAccount(
                org_id=org_id,
                holder_name=linked.name,
                institution_name=item.institution_name,
                source="linked",
                provider_item_id=item.item_id,
                provider_account_id=linked.provider_account_id,
                routing_number=linked.routing_number,
                account_number_encrypted=cipher.encrypt(linked.account_number),
                account_last4=linked.account_number[-4:],
                fingerprint=fingerprints[0],
                account_type=linked.subtype,
                status=ExternalAccountStatus.verified,
                created_by=user.id,
                owner_id=body.owner_id,
            )
            session.add(account)
            await session.flush()
            await audit.record(
                session,
                actor=user.email,
                actor_id=user.id,
                action="external_account.linked",
                entity_type="external_account",
                entity_id=account.id,
                after=_audit_view(account),
            )
        accounts.append(account)
    await session.commit()
    return [to_out(a) for a in accounts]


@router.post(
    "",
    response_model=ExternalAccountOut,
    status_code=201,
    summary="Enter an external account by hand (pending micro-deposit verification)",
)
async def create_manual_account(body: ManualAccountIn, session: SessionDep, user: OrgAdmin, cipher: CipherDep):
    org_id = await existing_org(session, user, body.org_id)
    await _check_owner(session, org_id, body.owner_id)
    if not is_valid_routing_number(body.routing_number):
        raise AppError(
            422,
            "invalid_routing_number",
            "the routing number fails the ABA check digit",
            {"routing_number": body.routing_number},
        )
    fingerprints = cipher.fingerprints(body.routing_number, body.account_number)
    if (
        await session.exec(
            select(ExternalAccount.id).where(
                ExternalAccount.org_id == org_id, col(ExternalAccount.fingerprint).in_(fingerprints)
            )
        )
    ).first():
        raise AppError(409, "duplicate", "this bank account is already on file for the organization")
    account = ExternalAccount(
        org_id=org_id,
        holder_name=body.holder_name,
        institution_name=body.institution_name,
        source="manual",
        routing_number=body.routing_number,
        account_number_encrypted=cipher.encrypt(body.account_number),
        account_last4=body.account_number[-4:],
        fingerprint=fingerprints[0],
        account_type=body.account_type,
        status=ExternalAccountStatus.pending_verification,
        created_by=user.id,
        owner_id=body.owner_id,
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="external_account.created",
        entity_type="external_account",
        entity_id=account.id,
        after=_audit_view(account),
    )
    await session.commit()
    return to_out(account)


@router.get(
    "",
    response_model=Page[ExternalAccountOut],
    summary="External accounts you can see: your organization's (staff), your own (members)",
)
async def list_external_accounts(
    session: ReadSessionDep,
    user: Viewer,
    page: PageDep,
    status: ExternalAccountStatus | None = None,
    account_type: Literal["checking", "savings"] | None = None,
    org_id: uuid.UUID | None = None,
):
    statement = access.scope(user, Entity.external_account, select(ExternalAccount))
    for column, value in (
        (ExternalAccount.status, status),
        (ExternalAccount.account_type, account_type),
        (ExternalAccount.org_id, org_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    items, total = await paginate(session, statement, page, [ExternalAccount.created_at, ExternalAccount.id])
    return Page(items=[to_out(a) for a in items], total=total, limit=page.limit, offset=page.offset)


@router.get("/{account_id}", response_model=ExternalAccountOut, summary="One external account")
async def get_external_account(account_id: uuid.UUID, session: SessionDep, user: Viewer):
    return to_out(await access.visible(session, user, Entity.external_account, account_id))


async def _check_owner(session, org_id: uuid.UUID, owner_id: uuid.UUID | None) -> None:
    if owner_id is None:
        return
    owner = await session.get(User, owner_id)
    if owner is None or owner.org_id != org_id:
        raise AppError(422, "unknown_owner", f"user {owner_id} is not in organization {org_id}")
