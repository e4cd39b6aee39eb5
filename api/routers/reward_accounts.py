"""Rewards accounts (domain/rewards.py): a member's points in a program, its entries (each change with its reason),
redemptions, and earning by the program's rules."""

import uuid

from fastapi import APIRouter, Response

from api.deps import CurrentUser, IdempotencyKey, SessionDep
from api.pagination import Page, PageDep
from domain import rewards
from domain.rewards import AccountOut, EarnOut, EntryOut, RedemptionIn

router = APIRouter(prefix="/reward-accounts", tags=["rewards"])


@router.get("", response_model=Page[AccountOut], summary="Rewards accounts you can see")
async def list_accounts(session: SessionDep, user: CurrentUser, page: PageDep) -> Page[AccountOut]:
    return await rewards.list_accounts(session, user, page)


@router.get("/{account_id}", response_model=AccountOut, summary="A rewards account and its balance")
async def get_account(account_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> AccountOut:
    return AccountOut.model_validate(await rewards.visible_account(session, user, account_id))


@router.get("/{account_id}/entries", response_model=Page[EntryOut], summary="Its entries, newest first")
async def list_entries(account_id: uuid.UUID, session: SessionDep, user: CurrentUser, page: PageDep) -> Page[EntryOut]:
    return await rewards.entries(session, user, account_id, page)


@router.post(
    "/{account_id}/redemptions",
    response_model=EntryOut,
    status_code=201,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the redemption already made"},
        409: {"description": "`insufficient_points`, or the Idempotency-Key used for another redemption"},
    },
    summary="Redeem points (the member): an entry of the points taken, with its reason",
)
async def redeem(
    account_id: uuid.UUID,
    body: RedemptionIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
) -> EntryOut:
    out, created = await rewards.redeem(session, user, account_id, body, key)
    response.status_code = 201 if created else 200
    return out


@router.post(
    "/{account_id}/earn",
    response_model=EarnOut,
    summary="Earn points for the member's new expenses that the program's rules match (each transaction once)",
)
async def earn(account_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> EarnOut:
    return await rewards.earn(session, user, account_id)
