"""Bank reconciliation (PRODUCT.md §4.8): import a bank statement of one ledger account, let ReconciliationWorkflow
match its lines to the account's postings, take the operator's actions through the workflow's updates, and report.

The statement's own identity (camt.053 Stmt/Id, a CSV's content hash) is the business key: one reconciliation per
(account, statement) in the database, and the workflow id `reconciliation-<account>-<statement>`. Importing the same
statement again answers the same reconciliation and writes nothing; the same identity with other content is a 409.
A file that does not parse is a 422 with the parser's code, before anything is written.

Every action is checked here against the database first (clear 4xx with details), then by the workflow's validator
(nothing in history when it refuses), then by the activity under lock (the races in between)."""

import hashlib
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import AppError
from api.fields import line_rules, multiline_rules
from core import access, audit
from core import search_attributes as sa
from core.access import Action, Entity
from core.config import Settings
from core.task_queues import queue_for
from finance import reports as fin
from finance.bank_statements import StatementError, StatementFormat, parse, workflow_key
from models.ledger import LedgerAccount
from models.reconciliation import (
    CloseInput,
    ExplanationCode,
    LineStatus,
    Reconciliation,
    ReconciliationAction,
    ReconciliationParams,
    ReconciliationProgress,
    ReconciliationStatus,
)
from models.users import User
from workflows.reconciliation import ReconciliationWorkflow

CONTENT_MAX = 1_000_000  # characters; the request body limit (REQUEST_MAX_BYTES) bounds it first
UNMATCHED_POSTINGS_SHOWN = 500

# The workflow's and the activity's refusals (their ApplicationError types) as HTTP statuses.
REFUSALS = {
    "reconciliation_closed": 409,
    "reconciliation_not_ready": 409,
    "reconciliation_busy": 503,
    "unknown_line": 422,
    "line_not_open": 409,
    "line_not_resolved": 409,
    "reason_required": 422,
    "entries_required": 422,
    "unknown_entry": 422,
    "amount_mismatch": 422,
    "posting_already_matched": 409,
    "lines_open": 409,
}


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: uuid.UUID = Field(description="the ledger account the statement mirrors (e.g. GL cash at bank)")
    format: StatementFormat = Field(description="csv, camt053 or bai2")
    content: Annotated[str, *multiline_rules(CONTENT_MAX, 1)] = Field(description="the statement file, as text")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["match", "split", "explain", "unmatch"]
    line_no: int = Field(ge=1, le=1_000_000, description="the statement line (1-based, in the statement's order)")
    entry_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="match/split: the journal entries whose postings on the account the line is (their sum)",
    )
    reason_code: ExplanationCode | None = Field(default=None, description="explain: why the line has no posting")
    note: Annotated[str, *line_rules(500)] = ""


class ReconciliationView(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    org_id: uuid.UUID | None
    statement_ref: str
    format: str
    currency: str | None
    opening_balance: Decimal | None
    closing_balance: Decimal | None
    period_start: date | None
    period_end: date | None
    line_count: int
    status: ReconciliationStatus
    workflow_id: str
    created_by: uuid.UUID
    created_at: datetime
    closed_by: uuid.UUID | None
    closed_at: datetime | None
    open_lines: int = 0
    matched_lines: int = 0
    explained_lines: int = 0


class MatchView(BaseModel):
    posting_id: int
    entry_id: uuid.UUID
    entry_description: str
    effective_date: date
    amount: Decimal  # the posting's, on the account
    kind: str
    score: Decimal | None


class LineView(BaseModel):
    line_no: int
    value_date: date
    amount: Decimal
    ledger_amount: Decimal
    description: str
    reference: str
    counterparty: str
    status: LineStatus
    reason_code: str | None
    note: str | None
    matches: list[MatchView]


class PostingView(BaseModel):
    posting_id: int
    entry_id: uuid.UUID
    entry_description: str
    effective_date: date
    amount: Decimal


class ReportSummary(BaseModel):
    lines: int
    matched: int
    explained: int
    open: int
    matched_by_trace: int
    matched_by_score: int
    matched_by_operator: int
    statement_total: Decimal
    matched_total: Decimal
    explained_total: Decimal
    open_total: Decimal


class ReconciliationReport(BaseModel):
    reconciliation: ReconciliationView
    summary: ReportSummary
    matched: list[LineView]
    exceptions: list[LineView] = Field(description="lines explained by the operator (bank fees, mismatches...)")
    unmatched: list[LineView] = Field(description="lines still open")
    unmatched_postings: list[PostingView] = Field(
        description=f"postings of the account in the statement's period (with the matching window) on no statement "
        f"line: the ledger's side of the exceptions (at most {UNMATCHED_POSTINGS_SHOWN})"
    )


# --- import -------------------------------------------------------------------------------------------------------


async def import_statement(
    session, user: User, client: Client, settings: Settings, body: ImportIn
) -> tuple[ReconciliationView, bool]:
    """The reconciliation of this statement, made and its workflow started, or found again (created False)."""
    access.gate(user, Entity.reconciliation, Action.create)
    account = await session.get(LedgerAccount, body.account_id)
    if account is None:
        raise access.not_visible(user, Entity.account, body.account_id, exists=False)
    access.check_reconcile_account(user, account)
    try:
        statement = parse(body.content, body.format, settings.reconciliation_max_lines)
    except StatementError as refused:
        raise AppError(422, refused.code, refused.message, refused.details) from None
    if statement.currency and statement.currency != account.currency:
        raise AppError(
            422,
            "currency_mismatch",
            f"the statement is in {statement.currency}, the account in {account.currency}",
            {"statement": statement.currency, "account": account.currency},
        )
    content_hash = hashlib.sha256(body.content.encode()).hexdigest()
    existing = await _existing(session, account.id, statement.statement_id)
    if existing is None:
        reconciliation_id = uuid.uuid4()
        reconciliation = Reconciliation(
            id=reconciliation_id,
            account_id=account.id,
            org_id=account.org_id,
            statement_ref=statement.statement_id,
            format=statement.format,
            content_hash=content_hash,
            content=body.content,
            currency=statement.currency,
            opening_balance=statement.opening_balance,
            closing_balance=statement.closing_balance,
            period_start=statement.period_start,
            period_end=statement.period_end,
            line_count=len(statement.lines),
            status=ReconciliationStatus.matching,
            workflow_id=f"reconciliation-{account.id}-{workflow_key(statement.statement_id)}",
            created_by=user.id,
        )
        session.add(reconciliation)
        try:
            await session.flush()
        except IntegrityError:  # the same statement imported at the same moment: that import's row
            await session.rollback()
            existing = await _existing(session, account.id, statement.statement_id)
            if existing is None:
                raise
        else:
            await audit.record(
                session,
                actor=user.email,
                actor_id=user.id,
                action="reconciliation.imported",
                entity_type="reconciliation",
                entity_id=reconciliation_id,
                after={
                    "account_id": str(account.id),
                    "statement_ref": statement.statement_id,
                    "format": statement.format,
                    "lines": len(statement.lines),
                },
            )
            view = await _view(session, reconciliation)
            await session.commit()
            await _start(client, settings, reconciliation)
            return view, True
    if existing.content_hash != content_hash:
        raise AppError(
            409,
            "statement_id_reused",
            "a statement with this identity and other content was already imported for this account",
            {"reconciliation_id": str(existing.id), "statement_ref": existing.statement_ref},
        )
    view = await _view(session, existing)
    await session.commit()
    if existing.status != ReconciliationStatus.closed:
        await _start(client, settings, existing)  # a crash between the insert and the start: start it now
    return view, False


async def _existing(session, account_id: uuid.UUID, statement_ref: str) -> Reconciliation | None:
    found = await session.exec(
        select(Reconciliation).where(
            Reconciliation.account_id == account_id, Reconciliation.statement_ref == statement_ref
        )
    )
    return found.first()


async def _start(client: Client, settings: Settings, reconciliation: Reconciliation) -> None:
    attributes = [SearchAttributePair(sa.ACCOUNT_ID, str(reconciliation.account_id))]
    if reconciliation.org_id is not None:
        attributes.append(SearchAttributePair(sa.ORG_ID, str(reconciliation.org_id)))
    try:
        await client.start_workflow(
            ReconciliationWorkflow.run,
            ReconciliationParams(
                reconciliation_id=reconciliation.id,
                window_days=settings.reconciliation_date_window_days,
                min_score=settings.reconciliation_min_score,
            ),
            id=reconciliation.workflow_id,
            task_queue=queue_for(settings, ReconciliationWorkflow),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A closed reconciliation's workflow has ended: importing its statement again must not start another.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Reconciliation of statement {reconciliation.statement_ref[:80]}",
            static_details=f"account {reconciliation.account_id}, {reconciliation.line_count} lines",
            search_attributes=TypedSearchAttributes(attributes),
        )
    except WorkflowAlreadyStartedError:
        pass


# --- reads --------------------------------------------------------------------------------------------------------


async def _view(session, reconciliation: Reconciliation) -> ReconciliationView:
    return (await views(session, [reconciliation]))[0]


async def views(session, rows: list[Reconciliation]) -> list[ReconciliationView]:
    """The reconciliations with their lines counted by status (one query for the page)."""
    counts: dict[tuple[Any, str], int] = {}
    if rows:
        for rec_id, status, count in (
            await session.execute(
                text(
                    """SELECT reconciliation_id, status, count(*) FROM reconciliation_lines
                       WHERE reconciliation_id = ANY(CAST(:ids AS uuid[])) GROUP BY reconciliation_id, status"""
                ),
                {"ids": [str(r.id) for r in rows]},
            )
        ).all():
            counts[(str(rec_id), status)] = count
    return [
        ReconciliationView.model_validate(
            {
                **row.model_dump(exclude={"content", "content_hash"}),
                "open_lines": counts.get((str(row.id), LineStatus.open), 0),
                "matched_lines": counts.get((str(row.id), LineStatus.matched), 0),
                "explained_lines": counts.get((str(row.id), LineStatus.explained), 0),
            }
        )
        for row in rows
    ]


def visible_reconciliations(user: User, status: ReconciliationStatus | None, account_id: uuid.UUID | None) -> Any:
    statement = access.scope(user, Entity.reconciliation, select(Reconciliation))
    if status is not None:
        statement = statement.where(Reconciliation.status == status)
    if account_id is not None:
        statement = statement.where(Reconciliation.account_id == account_id)
    return statement


async def get(session, user: User, reconciliation_id: uuid.UUID) -> ReconciliationView:
    access.gate(user, Entity.reconciliation, Action.read)
    return await _view(session, await access.visible(session, user, Entity.reconciliation, reconciliation_id))


async def report(session, user: User, settings: Settings, reconciliation_id: uuid.UUID) -> ReconciliationReport:
    access.gate(user, Entity.reconciliation, Action.read)
    rec: Reconciliation = await access.visible(session, user, Entity.reconciliation, reconciliation_id)
    lines = (
        await session.execute(
            text(
                """SELECT id, line_no, value_date, amount, ledger_amount, description, reference, counterparty, status,
                          reason_code, note
                   FROM reconciliation_lines WHERE reconciliation_id = :id ORDER BY line_no"""
            ),
            {"id": rec.id},
        )
    ).all()
    matches: dict[int, list[MatchView]] = {}
    for m in (
        await session.execute(
            text(
                """SELECT m.line_id, m.posting_id, p.entry_id, e.description AS entry_description, e.effective_date,
                          p.amount, m.kind, m.score
                   FROM reconciliation_matches m JOIN postings p ON p.id = m.posting_id
                   JOIN journal_entries e ON e.id = p.entry_id
                   WHERE m.reconciliation_id = :id ORDER BY m.line_id, m.posting_id"""
            ),
            {"id": rec.id},
        )
    ).all():
        matches.setdefault(m.line_id, []).append(MatchView.model_validate(m, from_attributes=True))
    views_ = [
        LineView.model_validate({**line._mapping, "matches": matches.get(line.id, [])}, from_attributes=False)
        for line in lines
    ]
    unmatched_postings = await _unmatched_postings(session, settings, rec, views_)
    by_status = {status: [v for v in views_ if v.status == status] for status in LineStatus}
    kinds = [m[0].kind for m in (v.matches for v in by_status[LineStatus.matched]) if m]

    def total(items: list[LineView]) -> Decimal:
        return sum((v.amount for v in items), Decimal("0"))

    return ReconciliationReport(
        reconciliation=await _view(session, rec),
        summary=ReportSummary(
            lines=len(views_),
            matched=len(by_status[LineStatus.matched]),
            explained=len(by_status[LineStatus.explained]),
            open=len(by_status[LineStatus.open]),
            matched_by_trace=kinds.count("trace"),
            matched_by_score=kinds.count("score"),
            matched_by_operator=kinds.count("manual") + kinds.count("split"),
            statement_total=total(views_),
            matched_total=total(by_status[LineStatus.matched]),
            explained_total=total(by_status[LineStatus.explained]),
            open_total=total(by_status[LineStatus.open]),
        ),
        matched=by_status[LineStatus.matched],
        exceptions=by_status[LineStatus.explained],
        unmatched=by_status[LineStatus.open],
        unmatched_postings=unmatched_postings,
    )


async def _unmatched_postings(session, settings: Settings, rec: Reconciliation, lines: list[LineView]):
    if not lines:
        return []
    window = settings.reconciliation_date_window_days
    start = min(rec.period_start or lines[0].value_date, min(v.value_date for v in lines))
    end = max(rec.period_end or lines[0].value_date, max(v.value_date for v in lines))
    rows = (
        await session.execute(
            text(
                """SELECT p.id AS posting_id, p.entry_id, e.description AS entry_description, e.effective_date,
                          p.amount
                   FROM postings p JOIN journal_entries e ON e.id = p.entry_id
                   WHERE p.account_id = :account AND e.effective_date BETWEEN :start - :window AND :end + :window
                     AND NOT EXISTS (SELECT 1 FROM reconciliation_matches m WHERE m.posting_id = p.id)
                   ORDER BY e.effective_date, p.id LIMIT :limit"""
            ),
            {
                "account": rec.account_id,
                "start": start,
                "end": end,
                "window": window,
                "limit": UNMATCHED_POSTINGS_SHOWN,
            },
        )
    ).all()
    return [PostingView.model_validate(r, from_attributes=True) for r in rows]


def report_table(report: ReconciliationReport) -> fin.ReportTable:
    """The report as a table (CSV, XLSX, PDF through documents/reports.py): a section per outcome, a line each."""

    def label(v: LineView) -> str:
        how = (
            f"{v.matches[0].kind}: entries {', '.join(str(m.entry_id) for m in v.matches)}"
            if v.matches
            else f"{v.reason_code}: {v.note}"
            if v.status == LineStatus.explained
            else "open"
        )
        return f"Line {v.line_no} | {v.value_date} | {v.description} | {v.reference} | {v.counterparty} | {how}"

    rows: list[fin.TableRow] = []
    for heading, items in (
        ("Matched", report.matched),
        ("Exceptions (explained)", report.exceptions),
        ("Unmatched lines", report.unmatched),
    ):
        rows.append(fin.TableRow(label=heading, values=[None], style="heading"))
        rows.extend(fin.TableRow(label=label(v), values=[v.amount]) for v in items)
        rows.append(
            fin.TableRow(
                label=f"Total {heading.lower()}", values=[sum((v.amount for v in items), Decimal("0"))], style="total"
            )
        )
    rows.append(fin.TableRow(label="Ledger postings on no statement line", values=[None], style="heading"))
    rows.extend(
        fin.TableRow(label=f"{p.effective_date} | entry {p.entry_id} | {p.entry_description}", values=[p.amount])
        for p in report.unmatched_postings
    )
    rec = report.reconciliation
    return fin.ReportTable(
        title=f"Bank reconciliation of statement {rec.statement_ref}",
        subtitle=f"account {rec.account_id}, {rec.status}, {report.summary.lines} lines",
        columns=["Amount"],
        rows=rows,
    )


# --- actions ------------------------------------------------------------------------------------------------------


async def act(session, user: User, client: Client, reconciliation_id: uuid.UUID, body: ActionIn):
    access.gate(user, Entity.reconciliation, Action.update)
    rec: Reconciliation = await access.visible(session, user, Entity.reconciliation, reconciliation_id)
    _check_actionable(rec)
    line = (
        await session.execute(
            text(
                """SELECT id, ledger_amount, status FROM reconciliation_lines
                   WHERE reconciliation_id = :id AND line_no = :no"""
            ),
            {"id": rec.id, "no": body.line_no},
        )
    ).one_or_none()
    if line is None:
        raise AppError(422, "unknown_line", f"the statement has no line {body.line_no}", {"lines": rec.line_count})
    if body.action in ("match", "split"):
        await _check_postings(session, rec, line, body)
    elif body.action == "explain" and body.reason_code is None:
        raise AppError(422, "reason_required", "an explanation needs a reason code", {"codes": list(ExplanationCode)})
    await session.commit()  # no transaction held while the workflow works
    action = ReconciliationAction(
        action=body.action,
        line_no=body.line_no,
        entry_ids=list(dict.fromkeys(body.entry_ids)),
        reason_code=body.reason_code,
        note=body.note,
        actor_id=user.id,
        actor_email=user.email,
    )
    return await _update(client, rec, ReconciliationWorkflow.act, action)


async def close(session, user: User, client: Client, reconciliation_id: uuid.UUID) -> ReconciliationProgress:
    access.gate(user, Entity.reconciliation, Action.update)
    rec: Reconciliation = await access.visible(session, user, Entity.reconciliation, reconciliation_id)
    _check_actionable(rec)
    still_open = (
        await session.execute(
            text("SELECT count(*) FROM reconciliation_lines WHERE reconciliation_id = :id AND status = 'open'"),
            {"id": rec.id},
        )
    ).scalar_one()
    if still_open:
        raise AppError(
            409, "lines_open", f"{still_open} lines are neither matched nor explained", {"open_lines": still_open}
        )
    await session.commit()
    return await _update(
        client, rec, ReconciliationWorkflow.close, CloseInput(actor_id=user.id, actor_email=user.email)
    )


def _check_actionable(rec: Reconciliation) -> None:
    if rec.status == ReconciliationStatus.closed:
        raise AppError(409, "reconciliation_closed", "the reconciliation is closed", {"closed_at": str(rec.closed_at)})
    if rec.status == ReconciliationStatus.matching:
        raise AppError(
            409, "reconciliation_not_ready", "the statement is still being matched automatically: try again shortly"
        )


async def _check_postings(session, rec: Reconciliation, line: Any, body: ActionIn) -> None:
    entries = list(dict.fromkeys(body.entry_ids))
    if not entries or (body.action == "split" and len(entries) < 2):
        raise AppError(
            422,
            "entries_required",
            "a match names the journal entries of its postings; a split at least two",
            {"entry_ids": [str(e) for e in entries]},
        )
    postings = (
        await session.execute(
            text(
                """SELECT p.id, p.entry_id, p.amount, m.line_id AS matched_line, l.reconciliation_id AS matched_in,
                          l.line_no AS matched_line_no
                   FROM postings p LEFT JOIN reconciliation_matches m ON m.posting_id = p.id
                   LEFT JOIN reconciliation_lines l ON l.id = m.line_id
                   WHERE p.account_id = :account AND p.entry_id = ANY(CAST(:entries AS uuid[]))"""
            ),
            {"account": rec.account_id, "entries": [str(e) for e in entries]},
        )
    ).all()
    missing = sorted({str(e) for e in entries} - {str(p.entry_id) for p in postings})
    if missing:
        raise AppError(
            422,
            "unknown_entry",
            "these journal entries have no posting on the reconciled account",
            {"entry_ids": missing},
        )
    taken = [p for p in postings if p.matched_line is not None]
    if taken:
        raise AppError(
            409,
            "posting_already_matched",
            "a posting of these entries is already matched to a statement line",
            {
                "matched": [
                    {"entry_id": str(p.entry_id), "reconciliation_id": str(p.matched_in), "line_no": p.matched_line_no}
                    for p in taken
                ]
            },
        )
    total = sum((p.amount for p in postings), Decimal("0"))
    if total != line.ledger_amount:
        raise AppError(
            422,
            "amount_mismatch",
            "the postings do not sum to the line (as a posting on the account); explain the line instead",
            {"postings_total": str(total), "line_ledger_amount": str(line.ledger_amount)},
        )


async def _update(client: Client, rec: Reconciliation, update: Any, arg: Any) -> ReconciliationProgress:
    try:
        return await client.get_workflow_handle(rec.workflow_id).execute_update(update, arg)
    except WorkflowUpdateFailedError as exc:
        cause: Any = exc.cause
        while getattr(cause, "cause", None) is not None and not getattr(cause, "type", None):
            cause = cause.cause  # an activity's refusal arrives wrapped in an ActivityError
        code = getattr(cause, "type", None) or "action_refused"
        details = list(getattr(cause, "details", ()) or ())
        extra = {"open_lines": details[0]} if code == "lines_open" and details else None
        status = REFUSALS.get(code, 409)
        headers = {"Retry-After": "2"} if status == 503 else None
        raise AppError(status, code, str(getattr(cause, "message", cause)), extra, headers=headers) from exc
    except RPCError as exc:  # the workflow has ended: closed between our read and the update
        raise AppError(409, "reconciliation_closed", "the reconciliation's workflow has ended", str(exc)) from exc
