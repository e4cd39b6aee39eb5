"""Journal entries as staff see them; manual entries and reversals of posted ones as maker-checker requests
(domain/maker_checker.py, domain/reversals.py): the maker asks here, a checker decides in the approvals inbox, the
request's workflow posts once."""

import uuid

from fastapi import APIRouter, Response

from api.deps import CurrentUser, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from core import access
from core.access import Action, Entity
from domain import maker_checker, reversals
from domain.maker_checker import MakerCheckerOut, ManualEntryIn
from domain.reversals import EntryView, ReversalIn, ReversalView

router = APIRouter(prefix="/journal-entries", tags=["journal entries"])


@router.post(
    "",
    response_model=MakerCheckerOut,
    status_code=202,
    responses={
        403: {"description": "not staff of an organization (org admin, operator) nor a superuser"},
        404: {"description": "an account the maker cannot see (another organization's)"},
        409: {"description": "`period_closed`: the effective date is in a closed period; `idempotency_key_reused`"},
        422: {
            "description": "`unbalanced` (legs not summing to zero), `zero_leg`, `account_closed`, or "
            "`not_one_organization` (a superuser's entry must name one organization's accounts)"
        },
    },
    summary="Write a manual journal entry (maker-checker): it posts once another member of staff approves it",
)
async def create_manual_entry(
    body: ManualEntryIn,
    key: IdempotencyKey,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> MakerCheckerOut:
    return await maker_checker.request_journal_entry(session, user, client, settings, body, key)


@router.get(
    "/{entry_id}",
    response_model=EntryView,
    summary="A journal entry: its postings, what it reverses or what reversed it, and every request to reverse it",
)
async def get_entry(entry_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> EntryView:
    access.gate(user, Entity.journal_entry, Action.read)
    return await reversals.entry_view(session, user, entry_id)


@router.post(
    "/{entry_id}/reversals",
    response_model=ReversalView,
    status_code=202,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the request already made"},
        409: {
            "description": "`already_reversed`, `reversal_pending` (another request waits on its checker), or "
            "`idempotency_key_reused`"
        },
        422: {
            "description": "an entry a payment or a loan owns (`owned_by_a_payment`, `owned_by_a_loan`), a reversal "
            "itself (`is_a_reversal`), or one not of exactly one organization (`not_one_organization`)"
        },
    },
    summary="Ask for the entry's reversal (maker-checker): a checker of its organization approves it in the inbox",
)
async def request_reversal(
    entry_id: uuid.UUID,
    body: ReversalIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> ReversalView:
    view, created = await reversals.request_reversal(session, user, client, settings, entry_id, body, key)
    response.status_code = 202 if created else 200
    return view
