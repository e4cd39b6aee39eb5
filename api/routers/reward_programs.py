"""Rewards programs (domain/rewards.py): an organization's admin sets them and their earn rules; its members list
them and enroll."""

import uuid

from fastapi import APIRouter, Response

from api.deps import CurrentUser, SessionDep
from api.pagination import Page, PageDep
from domain import rewards
from domain.rewards import AccountOut, ProgramIn, ProgramOut, ProgramPatch

router = APIRouter(prefix="/reward-programs", tags=["rewards"])


@router.post(
    "",
    response_model=ProgramOut,
    status_code=201,
    responses={409: {"description": "the organization has a program of this name"}},
    summary="Create a rewards program and its earn rules (org admin)",
)
async def create_program(body: ProgramIn, session: SessionDep, user: CurrentUser) -> ProgramOut:
    return await rewards.create_program(session, user, body)


@router.get("", response_model=Page[ProgramOut], summary="Your organization's rewards programs")
async def list_programs(
    session: SessionDep, user: CurrentUser, page: PageDep, active: bool | None = None
) -> Page[ProgramOut]:
    return await rewards.list_programs(session, user, page, active)


@router.get("/{program_id}", response_model=ProgramOut, summary="A rewards program and its earn rules")
async def get_program(program_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> ProgramOut:
    return await rewards.program_out(session, await rewards.visible_program(session, user, program_id))


@router.patch(
    "/{program_id}",
    response_model=ProgramOut,
    summary="Rename, (de)activate a program, or replace its earn rules (org admin)",
)
async def update_program(
    program_id: uuid.UUID, body: ProgramPatch, session: SessionDep, user: CurrentUser
) -> ProgramOut:
    return await rewards.update_program(session, user, program_id, body)


@router.post(
    "/{program_id}/enroll",
    response_model=AccountOut,
    status_code=201,
    responses={200: {"description": "already enrolled: the account"}, 409: {"description": "the program is inactive"}},
    summary="Enroll in a program (a member): your rewards account in it",
)
async def enroll(program_id: uuid.UUID, response: Response, session: SessionDep, user: CurrentUser) -> AccountOut:
    out, created = await rewards.enroll(session, user, program_id)
    response.status_code = 201 if created else 200
    return out
