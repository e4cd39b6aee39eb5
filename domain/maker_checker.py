"""Maker-checker requests (PRODUCT.md §4.8): what one member of staff (the maker) asks and another of the organization
(the checker, MAKER_CHECKER_ROLE) must approve before it applies.

- a deposit, withdrawal or book transfer of more than the organization's threshold (its own, set by a superuser, or
  MAKER_CHECKER_THRESHOLD; below it nothing changes: it posts at once); a withdrawal's or transfer's amount is held on the source account meanwhile, so it is not spent twice;
- every manual journal entry (POST /journal-entries);
- every close of an organization's accounting period (a bank-wide close stays the superuser's own act: the checker
  is an organization's, and a bank-wide close has none).

The request is written with its hold in one transaction, then TransactionApprovalWorkflow (`maker-checker-<id>`)
opens an ApprovalWorkflow child whose validators refuse the maker; on approval it applies the request once (the
journal entry's key is `maker-checker:<id>`), on rejection or at the deadline it releases the hold and posts nothing.
One maker's Idempotency-Key is one request (the request id derives from it)."""

import hashlib
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import AppError
from api.fields import BusinessDate, SignedMoney, line_rules
from core import access, audit, ledger
from core import search_attributes as sa
from core.access import Action, Entity
from core.business_time import business_today
from core.config import Settings
from core.task_queues import queue_for
from domain import fx
from domain.accounts import check_amount_fits
from models.ledger import AccountKind, AccountStatus, InternalAccountType, LedgerAccount
from models.maker_checker import MakerCheckerInput, MakerCheckerKind, MakerCheckerRequest, MakerCheckerStatus
from models.users import User
from workflows.maker_checker import TransactionApprovalWorkflow

_REQUEST_NS = uuid.UUID("0b9f5a3e-6c2d-4f1a-8e7b-32c4d5e6f7a8")
REQUESTS: Table = MakerCheckerRequest.__table__  # type: ignore[attr-defined]  # set by SQLAlchemy
MAX_LEGS = 50


class MakerCheckerOut(BaseModel):
    id: uuid.UUID
    kind: MakerCheckerKind
    status: MakerCheckerStatus
    org_id: uuid.UUID
    requested_by: uuid.UUID
    amount: Decimal
    account_id: uuid.UUID | None
    counter_account_id: uuid.UUID | None
    description: str
    effective_date: date | None
    legs: list[dict] | None = Field(description="a manual entry's postings: account_id, amount (debit positive)")
    period_start: date | None
    period_end: date | None
    budget_line: str | None = Field(default=None, description="a budget change's report line (its month: period_start)")
    hold_id: uuid.UUID | None = Field(description="the funds held on the source account while it waits")
    approval_request_id: uuid.UUID | None = Field(description="the checker decides it at /approvals/{id}/decisions")
    journal_entry_id: uuid.UUID | None
    closed_period_id: uuid.UUID | None
    failure: str | None
    workflow_id: str
    created_at: datetime
    closed_at: datetime | None


def view(request: MakerCheckerRequest) -> MakerCheckerOut:
    return MakerCheckerOut.model_validate(request, from_attributes=True)


class LegIn(BaseModel):
    account_id: uuid.UUID
    amount: SignedMoney = Field(description="debit positive, credit negative; never zero", examples=["250.00"])


class ManualEntryIn(BaseModel):
    description: Annotated[str, *line_rules(500, 3, strip=True)] = Field(examples=["Accrued audit fee, October"])
    effective_date: BusinessDate
    legs: list[LegIn] = Field(min_length=2, max_length=MAX_LEGS)


async def threshold_for(session, settings: Settings, org_id: uuid.UUID | None) -> Decimal:
    """The organization's own threshold (a superuser sets it), else the bank's MAKER_CHECKER_THRESHOLD."""
    own = None
    if org_id is not None:
        own = (
            await session.execute(
                text("SELECT maker_checker_threshold FROM organizations WHERE id = :id"), {"id": org_id}
            )
        ).scalar()
    return own if own is not None else settings.maker_checker_threshold


THRESHOLD_CURRENCY = "USD"  # thresholds are in the bank's own currency


async def is_large(
    session,
    client: Client,
    settings: Settings,
    org_id: uuid.UUID | None,
    amount: Decimal,
    currency: str = THRESHOLD_CURRENCY,
) -> bool:
    """More than the organization's threshold: it waits on a checker. An amount in another currency is weighed at the
    current exchange rate (cached, fetched when stale: README: Currency), unrounded; when no rate can be had for its
    currency it waits on a checker too: a large foreign amount never goes through for want of a rate."""
    threshold = await threshold_for(session, settings, org_id)
    if currency == THRESHOLD_CURRENCY:
        return amount > threshold
    try:
        table = await fx.current_rates(session, client, settings)
        return amount * table.rate(currency, THRESHOLD_CURRENCY) > threshold
    except AppError:  # the provider down or refusing us, or no rate of the currency
        return True


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _idempotency_key(user: User, kind: MakerCheckerKind, key: str) -> str:
    return f"{user.id}:{kind}:{key}"


async def existing_request(
    session, user: User, kind: MakerCheckerKind, key: str, fields: dict[str, Any]
) -> MakerCheckerRequest | None:
    """The request this maker already made under this key (whatever the amount now), or None; 409 when the key came
    with another body."""
    request = await session.get(MakerCheckerRequest, uuid.uuid5(_REQUEST_NS, _idempotency_key(user, kind, key)))
    if request is not None and request.request_hash != _digest(fields):
        raise AppError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used for another request",
            {"maker_checker_id": str(request.id)},
        )
    return request


async def _submit(
    session,
    user: User,
    client: Client,
    settings: Settings,
    kind: MakerCheckerKind,
    key: str,
    fields: dict[str, Any],
    columns: dict[str, Any],
    hold_on: uuid.UUID | None = None,
) -> MakerCheckerOut | None:
    """Writes the request (and its hold on `hold_on`) once per key, commits, then starts its workflow. A concurrent
    request with the same key waits on this one's commit (ON CONFLICT) and finds it. None: another request won a
    business key of its own (a second close of the same range at the same moment)."""
    idempotency_key = _idempotency_key(user, kind, key)
    request_id = uuid.uuid5(_REQUEST_NS, idempotency_key)
    inserted = (
        await session.execute(
            pg_insert(REQUESTS)
            .values(
                id=request_id,
                kind=kind,
                requested_by=user.id,
                idempotency_key=idempotency_key,
                request_hash=_digest(fields),
                status=MakerCheckerStatus.pending_approval,
                workflow_id=f"maker-checker-{request_id}",
                **columns,
            )
            .on_conflict_do_nothing()
            .returning(REQUESTS.c.id)
        )
    ).first()
    if inserted is not None:
        if hold_on is not None:
            hold_id, _ = await ledger.place_hold(
                session,
                account_id=hold_on,
                amount=columns["amount"],
                reason=f"Awaiting a checker: {kind.replace('_', ' ')} {request_id}"[:200],
                idempotency_key=f"maker-checker:{request_id}",
            )
            await session.execute(
                text("UPDATE maker_checker_requests SET hold_id = :hold WHERE id = :id"),
                {"hold": hold_id, "id": request_id},
            )
        await audit.record(
            session,
            actor=user.email,
            actor_id=user.id,
            action=f"maker_checker.{kind}.requested",
            entity_type="maker_checker_request",
            entity_id=request_id,
            after={k: str(v) for k, v in columns.items() if v is not None and k != "legs"},
        )
    await session.commit()
    request = await existing_request(session, user, kind, key, fields)
    if request is None:
        return None
    await session.refresh(request)
    out = view(request)
    await session.commit()  # no pooled connection held across the call to Temporal
    await start(client, settings, request)  # a crash between the commit and the start: the retry starts it
    return out


def transfer_fields(body: Any) -> dict[str, Any]:
    """What makes a book transfer request the same request again (its Idempotency-Key's body)."""
    return {
        "from": str(body.from_account_id),
        "to": str(body.to_account_id),
        "amount": str(body.amount),
        "memo": body.memo,
    }


async def resume(session, client: Client, settings: Settings, request: MakerCheckerRequest) -> MakerCheckerOut:
    """The request found again under its key: started if it still waits (the first call may have crashed before the
    start); a decided one is only shown."""
    out = view(request)
    await session.commit()
    if request.status == MakerCheckerStatus.pending_approval:
        await start(client, settings, request)
    return out


async def start(client: Client, settings: Settings, request: MakerCheckerRequest) -> None:
    """Starts the request's workflow, or attaches to it while it runs. Never a second run once it has closed: that
    run would open the approval again (the request's row is decided before its workflow completes)."""
    try:
        await _start(client, settings, request)
    except WorkflowAlreadyStartedError:
        pass  # it ran and closed between our read of the row and now: nothing to start


async def _start(client: Client, settings: Settings, request: MakerCheckerRequest) -> None:
    await client.start_workflow(
        TransactionApprovalWorkflow.run,
        MakerCheckerInput(request_id=request.id),
        id=request.workflow_id,
        task_queue=queue_for(settings, TransactionApprovalWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=f"Maker-checker: {request.kind.replace('_', ' ')} ${request.amount:,.2f}",
        static_details=f"requested by {request.requested_by}: {request.description}",
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, str(request.org_id))]),
    )


# --- the kinds ---------------------------------------------------------------------------------------------------


async def _found_or_funded(
    session, user: User, kind: MakerCheckerKind, key: str, fields: dict[str, Any], source: LedgerAccount | None
) -> MakerCheckerRequest | None:
    """The request this maker already made under this key; else None, once the source account (money going out) is
    locked and covers the amount. The lock comes before the look: the same request sent twice at once finds the first
    one's row (its hold on) instead of counting that hold against itself; and since the hold goes on in the same
    transaction as this check, two different requests at once cannot both count the same money."""
    if source is not None:
        await ledger.lock_accounts(session, [source.id])
    if (found := await existing_request(session, user, kind, key, fields)) is not None:
        return found
    if source is not None:
        await _check_available(session, source, Decimal(fields["amount"]))
    return None


async def _check_available(session, account: LedgerAccount, amount: Decimal) -> None:
    found = (await ledger.balances(session, [account.id])).get(account.id)
    available = found.available if found else Decimal("0.00")
    if available < amount:
        raise AppError(
            422,
            "insufficient_funds",
            "the available balance does not cover the amount",
            {"available_balance": str(available), "amount": str(amount)},
        )


async def request_teller(
    session,
    user: User,
    client: Client,
    settings: Settings,
    kind: MakerCheckerKind,
    account: LedgerAccount,
    amount: Decimal,
    memo: str,
    key: str,
) -> MakerCheckerOut:
    """A large cash deposit or withdrawal at the counter (the account already checked by the caller)."""
    assert account.org_id is not None  # a deposit account is always an organization's
    fields = {"account_id": str(account.id), "amount": str(amount), "memo": memo}
    source = account if kind == MakerCheckerKind.withdrawal else None
    if (found := await _found_or_funded(session, user, kind, key, fields, source)) is not None:
        return await resume(session, client, settings, found)
    columns = {"org_id": account.org_id, "amount": amount, "account_id": account.id, "description": memo}
    hold_on = account.id if kind == MakerCheckerKind.withdrawal else None
    return _written(await _submit(session, user, client, settings, kind, key, fields, columns, hold_on))


async def request_book_transfer(
    session,
    user: User,
    client: Client,
    settings: Settings,
    key: str,
    body: Any,
    src: LedgerAccount,
    dst: LedgerAccount,
) -> MakerCheckerOut:
    """A large book transfer (its accounts already checked by domain/payments.py)."""
    assert src.org_id is not None
    fields = transfer_fields(body)
    if (found := await _found_or_funded(session, user, MakerCheckerKind.book_transfer, key, fields, src)) is not None:
        return await resume(session, client, settings, found)
    columns = {
        "org_id": src.org_id,
        "amount": body.amount,
        "account_id": src.id,
        "counter_account_id": dst.id,
        "description": body.memo or "Book transfer",
    }
    return _written(
        await _submit(
            session, user, client, settings, MakerCheckerKind.book_transfer, key, fields, columns, hold_on=src.id
        )
    )


async def request_journal_entry(
    session, user: User, client: Client, settings: Settings, body: ManualEntryIn, key: str
) -> MakerCheckerOut:
    """A manual journal entry: balanced, on active accounts of the maker's organization or the bank's GL accounts,
    dated in an open period; it posts once a checker approves. Nothing is written when any of that fails."""
    access.gate(user, Entity.journal_entry, Action.create)
    fields = {
        "description": body.description,
        "effective_date": body.effective_date.isoformat(),
        "legs": [[str(leg.account_id), str(leg.amount)] for leg in body.legs],
    }
    if (found := await existing_request(session, user, MakerCheckerKind.journal_entry, key, fields)) is not None:
        return await resume(session, client, settings, found)
    if any(leg.amount == 0 for leg in body.legs):
        raise AppError(422, "zero_leg", "every leg moves money: none may be zero")
    total = sum((leg.amount for leg in body.legs), Decimal(0))
    if total != 0:
        raise AppError(422, "unbalanced", "the legs must sum to zero (debits equal credits)", {"sum": str(total)})
    today = business_today(settings)
    if body.effective_date > today:
        raise AppError(
            422,
            "future_date",
            "a manual entry is dated today or earlier (the business date)",
            {"effective_date": body.effective_date.isoformat(), "business_date": today.isoformat()},
        )
    org_id, currency = await _entry_org(session, user, [leg.account_id for leg in body.legs])
    for leg in body.legs:
        check_amount_fits(currency, leg.amount)
    if closure := await closed_period_covering(session, org_id, body.effective_date):
        raise AppError(
            409,
            "period_closed",
            f"{body.effective_date} is inside the closed period {closure[0]} to {closure[1]}: date it in an open one",
            {"period_start": closure[0].isoformat(), "period_end": closure[1].isoformat()},
        )
    columns = {
        "org_id": org_id,
        "amount": sum((leg.amount for leg in body.legs if leg.amount > 0), Decimal(0)),
        "description": body.description,
        "effective_date": body.effective_date,
        "legs": [{"account_id": str(leg.account_id), "amount": str(leg.amount)} for leg in body.legs],
    }
    return _written(
        await _submit(session, user, client, settings, MakerCheckerKind.journal_entry, key, fields, columns)
    )


def _written(out: MakerCheckerOut | None) -> MakerCheckerOut:
    assert out is not None  # only a period close has a business key besides the Idempotency-Key
    return out


async def _entry_org(session, user: User, account_ids: list[uuid.UUID]) -> tuple[uuid.UUID, str]:
    """The organization a manual entry belongs to: the maker's (its accounts theirs or GL), or for a superuser the
    one organization its accounts name; and the one currency of its accounts. A 404 for an account the maker cannot
    see, a 422 for one that cannot post or for accounts in several currencies."""
    orgs: set[uuid.UUID] = set()
    currencies: set[str] = set()
    for account_id in dict.fromkeys(account_ids):
        account = await session.get(LedgerAccount, account_id)
        gl = account is not None and account.kind == AccountKind.gl
        if account is None or not (gl or access.is_super(user) or account.org_id == user.org_id):
            raise access.not_visible(user, Entity.account, account_id, exists=account is not None)
        if account.status != AccountStatus.active:
            raise AppError(422, "account_closed", "an account of the entry is closed", {"account_id": str(account_id)})
        if account.org_id is not None:
            orgs.add(account.org_id)
        currencies.add(account.currency)
    if len(currencies) > 1:  # the database refuses it too (ledger_entry_one_currency): refused before the checker
        raise AppError(
            422,
            "currency_mismatch",
            "an entry is in one currency: its accounts hold several",
            {"currencies": sorted(currencies)},
        )
    if not access.is_super(user):
        assert user.org_id is not None  # staff of an organization (the gate)
        return user.org_id, currencies.pop()
    if len(orgs) != 1:
        raise AppError(
            422,
            "not_one_organization",
            "a manual entry is checked by one organization's staff: its accounts must be of exactly one "
            "organization (with the bank's GL accounts)",
            {"organizations": sorted(str(org) for org in orgs)},
        )
    return orgs.pop(), currencies.pop()


async def closed_period_covering(session, org_id: uuid.UUID, day: date) -> tuple[date, date] | None:
    """The closed period (the organization's or the bank's) that `day` falls in, if any."""
    row = (
        await session.execute(
            text(
                """SELECT period_start, period_end FROM closed_periods
                   WHERE (org_id IS NULL OR org_id = :org) AND :day BETWEEN period_start AND period_end
                   ORDER BY period_start LIMIT 1"""
            ),
            {"org": org_id, "day": day},
        )
    ).first()
    return (row.period_start, row.period_end) if row else None


async def request_period_close(
    session, user: User, client: Client, settings: Settings, org_id: uuid.UUID, start_: date, end: date, reason: str
) -> tuple[MakerCheckerOut, bool]:
    """The close of an organization's period as a request (created True), or the one already waiting for the same
    range (False: two admins asking at once make one request, the partial unique index of migration 0032)."""
    pending = (
        await session.execute(
            text(
                """SELECT id FROM maker_checker_requests WHERE kind = 'period_close' AND status = 'pending_approval'
                   AND org_id = :org AND period_start = :start AND period_end = :end"""
            ),
            {"org": org_id, "start": start_, "end": end},
        )
    ).scalar()
    if pending is None:
        key = uuid.uuid4().hex  # no Idempotency-Key on this endpoint: the range is the business key
        fields = {"org_id": str(org_id), "start": start_.isoformat(), "end": end.isoformat()}
        columns = {
            "org_id": org_id,
            "amount": Decimal("0.00"),
            "description": reason,
            "period_start": start_,
            "period_end": end,
        }
        out = await _submit(session, user, client, settings, MakerCheckerKind.period_close, key, fields, columns)
        if out is not None:
            return out, True
        # Another admin's request for the same range committed first: it is the one.
        return await request_period_close(session, user, client, settings, org_id, start_, end, reason)
    request = await session.get(MakerCheckerRequest, pending)
    await session.commit()
    return view(request), False


async def request_budget_change(
    session,
    user: User,
    client: Client,
    settings: Settings,
    org_id: uuid.UUID,
    line_key: str,
    month: date,
    amount: Decimal,
) -> MakerCheckerOut:
    """A change of an organization's budget of a line for a month, as a request another org admin approves. One change
    of a line and month waits at a time: the same amount again finds it; another amount meanwhile is a 409."""
    pending = (
        await session.execute(
            text(
                """SELECT id FROM maker_checker_requests WHERE kind = 'budget_change' AND status = 'pending_approval'
                   AND org_id = :org AND budget_line = :line AND period_start = :month"""
            ),
            {"org": org_id, "line": line_key, "month": month},
        )
    ).scalar()
    if pending is None:
        key = uuid.uuid4().hex  # a PUT carries no Idempotency-Key: the line and month are the business key
        fields = {"org_id": str(org_id), "line": line_key, "month": month.isoformat(), "amount": str(amount)}
        columns = {
            "org_id": org_id,
            "amount": amount,
            "description": f"Budget of {line_key} for {month:%Y-%m}: {amount}",
            "budget_line": line_key,
            "period_start": month,
        }
        out = await _submit(session, user, client, settings, MakerCheckerKind.budget_change, key, fields, columns)
        if out is not None:
            return out
        # Another change of the same line and month committed first: it is the one waiting.
        return await request_budget_change(session, user, client, settings, org_id, line_key, month, amount)
    request = await session.get(MakerCheckerRequest, pending)
    await session.commit()
    if request.amount != amount:
        raise AppError(
            409,
            "budget_change_pending",
            "another change of this budget waits on its checker",
            {"maker_checker_id": str(request.id), "amount": str(request.amount)},
        )
    return view(request)


def check_teller_account(account: LedgerAccount) -> None:
    """Cash goes in and out of checking and savings accounts that are open."""
    if account.kind != AccountKind.internal or account.type == InternalAccountType.loan:
        raise AppError(422, "not_a_deposit_account", "cash goes in and out of checking or savings accounts")
    if account.status != AccountStatus.active:
        raise AppError(409, "account_closed", "the account is closed")
