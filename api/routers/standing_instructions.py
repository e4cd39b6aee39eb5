"""Standing instructions: recurring book transfers or ACH credits or debits, each its own Temporal Schedule
(domain/standing.py)."""

import uuid

from fastapi import APIRouter, Response

from api.deps import CurrentUser, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from api.pagination import Page, PageDep
from domain import standing
from domain.standing import StandingInstructionIn, StandingInstructionOut
from models.standing import InstructionStatus

router = APIRouter(prefix="/standing-instructions", tags=["standing instructions"])


@router.post(
    "",
    response_model=StandingInstructionOut,
    status_code=201,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the instruction already made"},
        409: {"description": "a closed account, or the Idempotency-Key used for another instruction"},
        422: {"description": "no cadence or two, `every` under the minimum, the same account twice"},
    },
    summary="Set a recurring book transfer, ACH credit or ACH debit (its own Temporal Schedule; each run pays once)",
)
async def create_instruction(
    body: StandingInstructionIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> StandingInstructionOut:
    out, created = await standing.create(session, user, client, settings, body, key)
    response.status_code = 201 if created else 200
    return out


@router.get("", response_model=Page[StandingInstructionOut], summary="Standing instructions you can see, newest first")
async def list_instructions(
    session: SessionDep, user: CurrentUser, page: PageDep, status: InstructionStatus | None = None
) -> Page[StandingInstructionOut]:
    return await standing.listing(session, user, page, status)


@router.get(
    "/{instruction_id}",
    response_model=StandingInstructionOut,
    summary="An instruction: its next runs (from its schedule) and its runs so far, with their payments",
)
async def get_instruction(
    instruction_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> StandingInstructionOut:
    return await standing.view(session, client, await standing.visible(session, user, instruction_id))


@router.post("/{instruction_id}/pause", response_model=StandingInstructionOut, summary="Pause: no run until resumed")
async def pause_instruction(
    instruction_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> StandingInstructionOut:
    return await standing.change_state(session, user, client, instruction_id, InstructionStatus.paused)


@router.post("/{instruction_id}/resume", response_model=StandingInstructionOut, summary="Resume a paused instruction")
async def resume_instruction(
    instruction_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> StandingInstructionOut:
    return await standing.change_state(session, user, client, instruction_id, InstructionStatus.active)


@router.delete(
    "/{instruction_id}",
    response_model=StandingInstructionOut,
    responses={409: {"description": "already canceled"}},
    summary="Cancel: its schedule is deleted; its past runs and payments stay",
)
async def cancel_instruction(
    instruction_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> StandingInstructionOut:
    return await standing.change_state(session, user, client, instruction_id, InstructionStatus.canceled)
