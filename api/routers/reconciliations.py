"""Bank reconciliation (domain/reconciliation.py, workflows/reconciliation.py): import a bank statement (CSV or
camt.053) of a ledger account, see what the automatic passes matched, act on the rest, close, and report.

Who: the bank-wide roles (superuser, bank_operations) any account's statements; an organization's admins and
operators their own organization's internal accounts'; members never (core/access.py)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import Response as RawResponse
from sqlmodel import col

from api.deps import CurrentUser, IdempotencyKey, ReadSessionDep, SessionDep, SettingsDep, TemporalDep
from api.pagination import Page, PageDep, paginate
from core import access
from core.access import Action, Entity
from documents.reports import CONTENT_TYPES, render
from domain import reconciliation as domain
from domain.reconciliation import ActionIn, ImportIn, ReconciliationReport, ReconciliationView
from models.reconciliation import Reconciliation, ReconciliationProgress, ReconciliationStatus

router = APIRouter(prefix="/reconciliations", tags=["reconciliations"])

FILE_TYPES = {"csv": "text/csv", "xlsx": CONTENT_TYPES["xlsx"], "pdf": "application/pdf"}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "`reconciliation_closed`, `reconciliation_not_ready`, `line_not_open`, `line_not_resolved`, "
        "`posting_already_matched`, `lines_open` (details.open_lines)"
    },
    422: {"description": "`unknown_line`, `unknown_entry`, `entries_required`, `amount_mismatch`, `reason_required`"},
    503: {"description": "`reconciliation_busy` or `workflow_busy`: nothing changed, try again (Retry-After)"},
}


@router.post(
    "",
    response_model=ReconciliationView,
    status_code=202,
    responses={
        200: {"model": ReconciliationView, "description": "the same statement again: its reconciliation, unchanged"},
        409: {"description": "`statement_id_reused`: the statement's identity was imported with other content"},
        422: {
            "description": "the file does not parse: `invalid_csv`, `missing_columns`, `unknown_columns`, "
            "`invalid_xml`, `unsafe_xml`, `not_camt053`, `invalid_bai2`, `one_statement_per_file`, `missing_statement_id`, "
            "`invalid_amount`, `invalid_date`, `invalid_entry`, `mixed_currencies`, `statement_empty`, "
            "`too_many_lines`, `balances_do_not_add_up`, `currency_mismatch`"
        },
    },
    summary="Import a bank statement of a ledger account and reconcile it (a workflow per statement)",
)
async def import_statement(
    body: ImportIn,
    key: IdempotencyKey,  # the statement's own identity dedupes; the key is kept for the house rule and retries
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> ReconciliationView:
    view, created = await domain.import_statement(session, user, client, settings, body)
    response.status_code = 202 if created else 200
    return view


@router.get("", response_model=Page[ReconciliationView], summary="Reconciliations, newest first")
async def list_reconciliations(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    status: Annotated[ReconciliationStatus | None, Query()] = None,
    account_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[ReconciliationView]:
    access.gate(user, Entity.reconciliation, Action.read)
    statement = domain.visible_reconciliations(user, status, account_id)
    rows, total = await paginate(
        session, statement, page, [col(Reconciliation.created_at).desc(), col(Reconciliation.id)]
    )
    return Page(items=await domain.views(session, rows), total=total, limit=page.limit, offset=page.offset)


@router.get("/{reconciliation_id}", response_model=ReconciliationView, summary="A reconciliation and its line counts")
async def get_reconciliation(reconciliation_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    return await domain.get(session, user, reconciliation_id)


@router.post(
    "/{reconciliation_id}/actions",
    response_model=ReconciliationProgress,
    responses=REFUSED,
    summary="Match a line to postings, split it across several, explain it, or unmatch it (an update of the "
    "reconciliation's workflow)",
)
async def act(
    reconciliation_id: uuid.UUID, body: ActionIn, session: SessionDep, user: CurrentUser, client: TemporalDep
):
    return await domain.act(session, user, client, reconciliation_id, body)


@router.post(
    "/{reconciliation_id}/close",
    response_model=ReconciliationProgress,
    responses=REFUSED,
    summary="Close the reconciliation: only once every line is matched or explained",
)
async def close(reconciliation_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep):
    return await domain.close(session, user, client, reconciliation_id)


@router.get(
    "/{reconciliation_id}/report",
    response_model=ReconciliationReport,
    responses={200: {"content": {media.split(";")[0]: {} for media in FILE_TYPES.values()}}},
    summary="Matched lines, exceptions (explained), unmatched lines and the ledger's unmatched postings: JSON, "
    "or format=csv|xlsx|pdf",
)
async def report(
    reconciliation_id: uuid.UUID,
    session: ReadSessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    fmt: Annotated[str | None, Query(alias="format", pattern="^(json|csv|xlsx|pdf)$")] = None,
    accept: Annotated[str | None, Header(max_length=1000, pattern=r"^[\x20-\x7e]*$")] = None,
):
    result = await domain.report(session, user, settings, reconciliation_id)
    chosen = fmt or next((name for name, media in FILE_TYPES.items() if media.split(";")[0] in (accept or "")), "json")
    if chosen == "json":
        return result
    filename = f"reconciliation-{reconciliation_id}.{chosen}"
    return RawResponse(
        render(domain.report_table(result), chosen),
        media_type=CONTENT_TYPES[chosen],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
