"""A member's shares of their transactions or budgets with other members of their organization
(domain/money_shares.py), and which of their partners are online (domain/presence.py)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import CurrentUser, ReadSessionDep, SessionDep, SettingsDep, allowed
from core.access import Action, Entity
from domain import money_shares, presence
from domain.money_shares import ShareIn, ShareOut, SharesOut
from domain.presence import PartnerPresence
from models.users import User

router = APIRouter(prefix="/money-shares", tags=["money sharing"])
ShareReader = Annotated[User, Depends(allowed(Entity.money_share, Action.read))]


@router.post(
    "",
    response_model=ShareOut,
    status_code=201,
    responses={
        409: {"description": "the same share changed at the same moment by another request"},
        422: {"description": "the grantee is not another active member of your organization; unknown categories"},
    },
    summary="Share your transactions or budgets with another member (replaces your live share with them of the same)",
)
async def create_share(body: ShareIn, session: SessionDep, user: CurrentUser) -> ShareOut:
    return await money_shares.share(session, user, body)


@router.get("", response_model=SharesOut, summary="The shares you gave and the ones you were given")
async def list_shares(session: ReadSessionDep, user: CurrentUser, include_revoked: bool = False) -> SharesOut:
    return await money_shares.listing(session, user, include_revoked)


@router.get(
    "/presence",
    response_model=list[PartnerPresence],
    summary="The members you share with or who share with you, and whether each is connected (GET /api/v1/ws)",
)
async def partners_presence(session: ReadSessionDep, user: ShareReader, settings: SettingsDep) -> list[PartnerPresence]:
    return await presence.partners(session, user.id, settings.live_session_expiry)


@router.delete(
    "/{share_id}",
    response_model=ShareOut,
    responses={403: {"description": "a share you were given: only its owner revokes it"}},
    summary="Revoke a share you gave (kept with its revoked_at; again: unchanged)",
)
async def revoke_share(share_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> ShareOut:
    return await money_shares.revoke(session, user, share_id)
