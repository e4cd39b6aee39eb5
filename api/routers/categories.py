"""Categories of members' transactions: the predefined ones and a member's own (domain/categories.py)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep
from domain import categories as domain
from domain.categories import CategoryIn, CategoryOut

router = APIRouter(prefix="/categories", tags=["transactions"])


@router.get("", response_model=list[CategoryOut], summary="The predefined categories and the member's own")
async def list_categories(
    session: SessionDep,
    user: CurrentUser,
    member_id: Annotated[uuid.UUID | None, Query(description="whose own too (default: you, when a member)")] = None,
) -> list[CategoryOut]:
    return await domain.listing(session, user, member_id)


@router.post(
    "",
    response_model=CategoryOut,
    status_code=201,
    responses={409: {"description": "the key is taken (yours, or a predefined one)"}},
    summary="A category of your own (members)",
)
async def create_category(body: CategoryIn, session: SessionDep, user: CurrentUser) -> CategoryOut:
    return await domain.create(session, user, body)
