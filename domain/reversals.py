"""Reversals of posted journal entries, as maker-checker requests (PRODUCT.md §4.8).

A member of staff (the maker) asks for an entry to be reversed, with a reason; a checker of the entry's
organization (REVERSAL_CHECKER_ROLE) approves or rejects it through the approvals API (the ApprovalWorkflow refuses
the maker); once approved, ReversalWorkflow posts the exact opposite entry, dated today (so in the open period),
once, and links it to the original (entry_reversals).

What can be reversed this way: an entry whose accounts belong to one organization (its GL counterparts aside), not
itself a reversal, and not owned by a running process: a payment's entries are undone by its own lifecycle (a cancel,
a return), a loan's by its servicing (a repayment reversal). Whatever requests race, the ledger gets one reversal
at most: the reversal's journal entry has the unique idempotency key `reversal:<entry id>`."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import AppError
from api.fields import line_rules
from core import access, audit
from core import search_attributes as sa
from core.access import Action, Entity
from core.config import Settings
from core.task_queues import queue_for
from models.ledger import JournalEntry
from models.reversals import EntryReversal, ReversalInput, ReversalStatus
from models.users import User
from workflows.reversal import ReversalWorkflow

LIVE = (ReversalStatus.pending_approval, ReversalStatus.posted)
OWNED_BY_A_LOAN = "loan_"  # entry types a loan's servicing writes and corrects itself


class ReversalIn(BaseModel):
    reason: Annotated[str, *line_rules(500, 3, strip=True)]


class PostingView(BaseModel):
    account_id: uuid.UUID
    account_name: str
    account_kind: str
    amount: Decimal  # debit positive, credit negative


class ReversalView(BaseModel):
    id: uuid.UUID
    status: ReversalStatus
    reason: str
    requested_by: uuid.UUID
    approval_request_id: uuid.UUID | None
    reversal_entry_id: uuid.UUID | None
    failure: str | None
    workflow_id: str
    created_at: datetime
    closed_at: datetime | None


class EntryView(BaseModel):
    id: uuid.UUID
    entry_type: str
    description: str
    effective_date: date
    payment_id: uuid.UUID | None
    created_at: datetime
    postings: list[PostingView]
    reverses_entry_id: uuid.UUID | None  # this entry is the reversal of that one
    reversed_by_entry_id: uuid.UUID | None  # this entry's reversal, once posted
    reversals: list[ReversalView]  # every request to reverse it, newest first


async def entry_view(session, user: User, entry_id: uuid.UUID) -> EntryView:
    entry: JournalEntry = await access.visible(session, user, Entity.journal_entry, entry_id)
    postings = (
        await session.execute(
            text(
                """SELECT p.account_id, a.name, a.kind, p.amount FROM postings p
                   JOIN ledger_accounts a ON a.id = p.account_id WHERE p.entry_id = :id ORDER BY p.amount DESC, p.id"""
            ),
            {"id": entry_id},
        )
    ).all()
    requests = (
        await session.exec(
            select(EntryReversal)
            .where(EntryReversal.entry_id == entry_id)
            .order_by(col(EntryReversal.created_at).desc(), col(EntryReversal.id))
        )
    ).all()
    reverses = (
        await session.exec(select(EntryReversal.entry_id).where(EntryReversal.reversal_entry_id == entry_id))
    ).first()
    return EntryView(
        id=entry.id,
        entry_type=entry.entry_type,
        description=entry.description,
        effective_date=entry.effective_date,
        payment_id=entry.payment_id,
        created_at=entry.created_at,
        postings=[PostingView(account_id=r[0], account_name=r[1], account_kind=r[2], amount=r[3]) for r in postings],
        reverses_entry_id=reverses,
        reversed_by_entry_id=next((r.reversal_entry_id for r in requests if r.reversal_entry_id), None),
        reversals=[ReversalView.model_validate(r, from_attributes=True) for r in requests],
    )


async def _reversible_org(session, entry: JournalEntry) -> uuid.UUID:
    """The organization the entry belongs to, or the 4xx saying why it cannot be reversed through a request."""
    if entry.payment_id is not None:
        raise AppError(
            422,
            "owned_by_a_payment",
            "this entry belongs to a payment: it is undone by the payment's own lifecycle (a cancel or a return)",
            {"payment_id": str(entry.payment_id)},
        )
    if entry.entry_type.startswith(OWNED_BY_A_LOAN):
        raise AppError(
            422,
            "owned_by_a_loan",
            "this entry belongs to a loan's servicing, which corrects it itself (a repayment reversal)",
            {"entry_type": entry.entry_type},
        )
    if entry.idempotency_key.startswith("reversal:"):
        raise AppError(422, "is_a_reversal", "this entry is itself a reversal: it is not reversed again")
    orgs = (
        await session.execute(
            text(
                """SELECT DISTINCT a.org_id FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
                   WHERE p.entry_id = :id AND a.org_id IS NOT NULL"""
            ),
            {"id": entry.id},
        )
    ).scalars()
    found = list(orgs)
    if len(found) != 1:
        raise AppError(
            422,
            "not_one_organization",
            "only an entry of one organization's accounts (with the bank's GL accounts) is reversed by a request: "
            + ("this one touches only GL accounts" if not found else "this one spans organizations"),
            {"organizations": [str(org) for org in found]},
        )
    return found[0]


async def request_reversal(
    session, user: User, client: Client, settings: Settings, entry_id: uuid.UUID, body: ReversalIn, key: str
) -> tuple[ReversalView, bool]:
    """The request for `entry_id`'s reversal under this maker's Idempotency-Key, made and started, or found again
    (created False). A second live request for the same entry is a 409."""
    access.gate(user, Entity.journal_entry, Action.reverse)
    entry: JournalEntry = await access.visible(session, user, Entity.journal_entry, entry_id, for_update=True)
    idempotency_key = f"{user.id}:{key}"
    existing = (
        await session.exec(select(EntryReversal).where(EntryReversal.idempotency_key == idempotency_key))
    ).first()
    if existing is not None:
        if existing.entry_id != entry_id or existing.reason != body.reason:
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another request")
        await session.commit()
        if existing.status == ReversalStatus.pending_approval:  # a crash between the insert and the start
            await _start(client, settings, existing)
        return ReversalView.model_validate(existing, from_attributes=True), False
    org_id = await _reversible_org(session, entry)
    live = (
        await session.exec(
            select(EntryReversal).where(EntryReversal.entry_id == entry_id, col(EntryReversal.status).in_(LIVE))
        )
    ).first()
    if live is not None:
        raise _already(live)
    reversal_id = uuid.uuid4()
    reversal = EntryReversal(
        id=reversal_id,
        entry_id=entry_id,
        org_id=org_id,
        reason=body.reason,
        requested_by=user.id,
        idempotency_key=idempotency_key,
        status=ReversalStatus.pending_approval,
        workflow_id=f"reversal-{reversal_id}",
    )
    session.add(reversal)
    try:
        await session.flush()
    except IntegrityError as exc:  # another request for this entry committed first (the partial unique index)
        await session.rollback()
        raise AppError(409, "reversal_pending", "another request to reverse this entry has just been made") from exc
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="journal_entry.reversal_requested",
        entity_type="journal_entry",
        entity_id=entry_id,
        after={"reversal_id": str(reversal_id), "reason": body.reason},
    )
    view = ReversalView.model_validate(reversal, from_attributes=True)
    await session.commit()
    await _start(client, settings, reversal)
    return view, True


def _already(live: EntryReversal) -> AppError:
    if live.status == ReversalStatus.posted:
        return AppError(
            409,
            "already_reversed",
            "this entry has been reversed",
            {"reversal_id": str(live.id), "reversal_entry_id": str(live.reversal_entry_id)},
        )
    return AppError(
        409, "reversal_pending", "a request to reverse this entry waits on its checker", {"reversal_id": str(live.id)}
    )


async def _start(client: Client, settings: Settings, reversal: EntryReversal) -> None:
    """Starts the request's workflow once: a finished one is never started again (its approval would reopen)."""
    try:
        await _start_once(client, settings, reversal)
    except WorkflowAlreadyStartedError:
        pass  # it ran already: the row says how it ended


async def _start_once(client: Client, settings: Settings, reversal: EntryReversal) -> None:
    await client.start_workflow(
        ReversalWorkflow.run,
        ReversalInput(reversal_id=reversal.id),
        id=reversal.workflow_id,
        task_queue=queue_for(settings, ReversalWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=f"Reversal of journal entry {reversal.entry_id}",
        static_details=f"requested by {reversal.requested_by}: {reversal.reason}",
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, str(reversal.org_id))]),
    )
