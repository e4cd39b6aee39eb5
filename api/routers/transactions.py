"""Members' transactions: the one list of ledger postings and imported lines, one with its change history, a manual
change of its category or notes, and a bulk re-categorisation (domain/transactions.py, domain/recategorise.py)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import CurrentUser, ReadSessionDep, SessionDep
from api.fields import BusinessDate, Filter, SignedMoney
from api.pagination import Page, PageDep
from domain import recategorise as bulk
from domain import transactions as domain
from domain.transactions import TransactionDetail, TransactionOut, TransactionPatch

router = APIRouter(prefix="/transactions", tags=["transactions"])


@router.get(
    "",
    response_model=Page[TransactionOut],
    responses={422: {"description": "a bad filter, `from` after `to`, `min_amount` over `max_amount`"}},
    summary="A member's transactions (ledger postings and imported lines), newest first",
)
async def list_transactions(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    member_id: Annotated[uuid.UUID | None, Query(description="whose (default: you, when a member)")] = None,
    date_from: Annotated[BusinessDate | None, Query(alias="from", description="posted on or after")] = None,
    date_to: Annotated[BusinessDate | None, Query(alias="to", description="posted on or before")] = None,
    min_amount: Annotated[SignedMoney | None, Query(description="signed: money out is negative")] = None,
    max_amount: Annotated[SignedMoney | None, Query(description="signed: money out is negative")] = None,
    merchant: Annotated[Filter | None, Query(description="part of the merchant, any case")] = None,
    category: Annotated[Filter | None, Query(description="a category key")] = None,
    account_id: uuid.UUID | None = None,
    external_account_id: uuid.UUID | None = None,
    source: Literal["ledger", "csv", "linked"] | None = None,
    q: Annotated[Filter | None, Query(description="text in the merchant, description or notes")] = None,
) -> Page[TransactionOut]:
    filters = domain.TxnFilters.model_construct(  # the query is validated already: not twice
        member_id=member_id,
        date_from=date_from,
        date_to=date_to,
        min_amount=min_amount,
        max_amount=max_amount,
        merchant=merchant,
        category=category,
        account_id=account_id,
        external_account_id=external_account_id,
        source=source,
        q=q,
    )
    return await domain.listing(session, user, filters, page)


@router.post(
    "/recategorise",
    response_model=bulk.RecategoriseOut,
    responses={422: {"description": "neither txn_ids nor filters (or both), an unknown category"}},
    summary="Set a category on many transactions at once (those you may change), as a manual choice",
)
async def recategorise(body: bulk.RecategoriseIn, session: SessionDep, user: CurrentUser) -> bulk.RecategoriseOut:
    return await bulk.recategorise(session, user, body)


# A transaction's id is 'L<posting id>' or 'I<imported row id>'; any other printable id is a 404 like an unknown one.
TxnPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,40}$", examples=["I42"])]


@router.get(
    "/{txn_id}",
    response_model=TransactionDetail,
    summary="A transaction, with the history of its category and notes",
)
async def get_transaction(txn_id: TxnPath, session: SessionDep, user: CurrentUser) -> TransactionDetail:
    return await domain.detail(session, user, txn_id)


@router.patch(
    "/{txn_id}",
    response_model=TransactionDetail,
    responses={
        403: {"description": "shared with you to read only, or staff"},
        422: {"description": "an unknown category"},
    },
    summary="Change a transaction's category or notes (a manual category: rules no longer change it)",
)
async def patch_transaction(
    txn_id: TxnPath, body: TransactionPatch, session: SessionDep, user: CurrentUser
) -> TransactionDetail:
    return await domain.update(session, user, txn_id, body)
