"""Maker-checker requests (domain/maker_checker.py): where a large transaction, a manual journal entry or a period
close stands while it waits on its checker, and what it became (its journal entry, its closed period). The maker asks
at the resource's own endpoint (deposits, withdrawals, transfers, journal entries, periods); the checker decides in
the approvals inbox. An organization's threshold (above it a deposit, withdrawal or transfer waits) is its own when
a superuser set one, else MAKER_CHECKER_THRESHOLD."""

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from api.deps import CurrentUser, ReadSessionDep, SessionDep, SettingsDep, allowed
from api.fields import Money
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core.access import Action, Entity
from domain.maker_checker import MakerCheckerOut, view
from models.maker_checker import MakerCheckerKind, MakerCheckerRequest, MakerCheckerStatus
from models.users import Organization, User

router = APIRouter(prefix="/maker-checker", tags=["maker-checker"])
policy_router = APIRouter(tags=["maker-checker"])

ThresholdSetter = Annotated[User, Depends(allowed(Entity.maker_checker_request, Action.write))]  # superuser


class MakerCheckerPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: Money | None = Field(
        description="above it a deposit, withdrawal or book transfer waits on a checker; null: the bank's default "
        "(MAKER_CHECKER_THRESHOLD)",
        examples=["25000.00"],
    )


class MakerCheckerPolicyOut(BaseModel):
    org_id: uuid.UUID
    threshold: Decimal | None = Field(description="the organization's own; null when it has none")
    effective_threshold: Decimal = Field(description="the one that applies: its own, else MAKER_CHECKER_THRESHOLD")


def _policy(org: Organization, default: Decimal) -> MakerCheckerPolicyOut:
    own = org.maker_checker_threshold
    return MakerCheckerPolicyOut(org_id=org.id, threshold=own, effective_threshold=own if own is not None else default)


@policy_router.get(
    "/organizations/{org_id}/maker-checker-policy",
    response_model=MakerCheckerPolicyOut,
    summary="The organization's maker-checker threshold",
)
async def get_policy(org_id: uuid.UUID, session: SessionDep, user: CurrentUser, settings: SettingsDep):
    org: Organization = await access.visible(session, user, Entity.organization, org_id)
    return _policy(org, settings.maker_checker_threshold)


@policy_router.put(
    "/organizations/{org_id}/maker-checker-policy",
    response_model=MakerCheckerPolicyOut,
    summary="Set (or clear) the organization's own maker-checker threshold (superuser)",
)
async def set_policy(
    org_id: uuid.UUID, body: MakerCheckerPolicy, session: SessionDep, actor: ThresholdSetter, settings: SettingsDep
):
    org: Organization = await access.visible(session, actor, Entity.organization, org_id, for_update=True)
    before = {"maker_checker_threshold": str(org.maker_checker_threshold)}
    org.maker_checker_threshold = body.threshold
    session.add(org)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="organization.maker_checker_policy",
        entity_type="organization",
        entity_id=org.id,
        before=before,
        after={"maker_checker_threshold": str(body.threshold)},
    )
    await session.commit()
    return _policy(org, settings.maker_checker_threshold)


@router.get("", response_model=Page[MakerCheckerOut], summary="Maker-checker requests you can see, newest first")
async def list_requests(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    status: MakerCheckerStatus | None = None,
    kind: MakerCheckerKind | None = None,
    account_id: uuid.UUID | None = None,
):
    statement = access.scope(user, Entity.maker_checker_request, select(MakerCheckerRequest))
    for column, value in (
        (MakerCheckerRequest.status, status),
        (MakerCheckerRequest.kind, kind),
        (MakerCheckerRequest.account_id, account_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    items, total = await paginate(
        session, statement, page, [col(MakerCheckerRequest.created_at).desc(), col(MakerCheckerRequest.id)]
    )
    return Page(items=[view(r) for r in items], total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/{request_id}",
    response_model=MakerCheckerOut,
    summary="A maker-checker request: its status, its approval request, and once applied its journal entry or period",
)
async def get_request(request_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> MakerCheckerOut:
    return view(await access.visible(session, user, Entity.maker_checker_request, request_id))
