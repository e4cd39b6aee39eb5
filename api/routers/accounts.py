import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.crud import required
from api.deps import CurrentUser, IdempotencyKey, ReadSessionDep, SessionDep, SettingsDep, TemporalDep, allowed
from api.errors import AppError, not_found
from api.fields import BusinessDate, Filter, Money, line_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit, closing, ledger
from core.access import Action, Entity
from core.business_time import business_today
from domain import accounts as domain
from domain import maker_checker
from domain.accounts import visible_account
from domain.fx import CurrencyCode, minor_units
from domain.maker_checker import MakerCheckerKind, MakerCheckerOut
from domain.money_events import money_changed_quietly
from models.ledger import (
    GL_CASH,
    AccountKind,
    AccountStatus,
    Hold,
    InternalAccountType,
    JournalEntry,
    LedgerAccount,
    Posting,
)
from models.users import Organization, User

router = APIRouter(prefix="/accounts", tags=["accounts"])

_FIELDS = ["name", "kind", "type", "currency", "status", "org_id", "owner_id", "closed_at"]

AccountAdmin = Annotated[User, Depends(allowed(Entity.account, Action.create))]  # open, change, close: superuser
Teller = Annotated[User, Depends(allowed(Entity.account, Action.deposit))]  # cash deposits
CashOut = Annotated[User, Depends(allowed(Entity.account, Action.withdraw))]  # cash withdrawals
HoldPlacer = Annotated[User, Depends(allowed(Entity.account, Action.place_hold))]
HoldReleaser = Annotated[User, Depends(allowed(Entity.hold, Action.release))]


class AccountIn(BaseModel):
    name: Annotated[str, *line_rules(200, 1)] = Field(examples=["Everyday checking"])
    type: InternalAccountType = Field(examples=["checking"])
    org_id: uuid.UUID
    owner_id: uuid.UUID | None = Field(default=None, description="the member who owns it, if any")
    currency: CurrencyCode = Field(
        default="USD", description="ISO 4217, fixed for the account's life; ACH and loans move US dollars alone"
    )


class AccountUpdate(BaseModel):
    name: Annotated[str, *line_rules(200, 1)] | None = None
    type: InternalAccountType | None = None


class AccountOut(BaseModel):
    id: uuid.UUID
    code: str | None
    name: str
    kind: str
    type: str
    normal_balance: str
    currency: str
    org_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    status: str
    created_at: datetime
    closed_at: datetime | None
    ledger_balance: Decimal
    held: Decimal
    available_balance: Decimal


class DepositIn(BaseModel):
    amount: Money
    memo: Annotated[str, *line_rules(140)] = "Cash deposit"


class WithdrawalIn(BaseModel):
    amount: Money
    memo: Annotated[str, *line_rules(140)] = "Cash withdrawal"


# Above MAKER_CHECKER_THRESHOLD a deposit or withdrawal waits for a checker (domain/maker_checker.py).
WAITS_ON_A_CHECKER: dict = {
    202: {
        "model": MakerCheckerOut,
        "description": "above the maker-checker threshold: a request waiting on a checker of the organization "
        "(also when the same Idempotency-Key and body come again); GET /maker-checker/{id} follows it",
    }
}


def pending(request: MakerCheckerOut) -> JSONResponse:
    return JSONResponse(request.model_dump(mode="json"), status_code=202)


class PostingOut(BaseModel):
    entry_id: uuid.UUID
    entry_type: str
    description: str
    effective_date: date
    amount: Decimal = Field(description="signed: debit positive, credit negative")
    created_at: datetime


async def with_balances(session, accounts: list[LedgerAccount]) -> list[AccountOut]:
    found = await ledger.balances(session, [a.id for a in accounts])
    out = []
    for a in accounts:
        b = found.get(a.id) or ledger.Balance(a.id, Decimal("0.00"), Decimal("0.00"))
        out.append(AccountOut(**a.model_dump(), ledger_balance=b.ledger, held=b.held, available_balance=b.available))
    return out


@router.post("", response_model=AccountOut, status_code=201, summary="Open an internal account (superuser)")
async def create_account(body: AccountIn, session: SessionDep, actor: AccountAdmin):
    if await session.get(Organization, body.org_id) is None:
        raise AppError(422, "unknown_organization", f"organization {body.org_id} does not exist")
    if body.owner_id:
        owner = await session.get(User, body.owner_id)
        if owner is None or owner.org_id != body.org_id:
            raise AppError(422, "unknown_owner", f"user {body.owner_id} is not in organization {body.org_id}")
    if minor_units(body.currency) > 2:
        raise AppError(
            422,
            "currency_not_supported",
            f"{body.currency} has {minor_units(body.currency)} decimal places: the ledger keeps amounts in cents",
            {"currency": body.currency},
        )
    if body.type == InternalAccountType.loan and body.currency != "USD":
        raise AppError(422, "currency_not_supported", "loans are in US dollars", {"currency": body.currency})
    normal = "debit" if body.type == InternalAccountType.loan else "credit"
    await ledger.ensure_gl_accounts(session, body.currency)  # cash at bank in this currency, for its deposits
    account = LedgerAccount(
        name=body.name,
        kind=AccountKind.internal,
        type=body.type,
        normal_balance=normal,
        org_id=body.org_id,
        owner_id=body.owner_id,
        currency=body.currency,
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="account.created",
        entity_type="account",
        entity_id=account.id,
        after=audit.snapshot(account, _FIELDS),
    )
    await session.commit()
    return (await with_balances(session, [account]))[0]


@router.get("", response_model=Page[AccountOut], summary="Accounts you can see, with balances")
async def list_accounts(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    kind: AccountKind | None = None,
    type: Filter | None = None,
    status: AccountStatus | None = None,
    org_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    name: Filter | None = None,
):
    statement = access.scope(user, Entity.account, select(LedgerAccount))
    for column, value in (
        (LedgerAccount.kind, kind),
        (LedgerAccount.type, type),
        (LedgerAccount.status, status),
        (LedgerAccount.org_id, org_id),
        (LedgerAccount.owner_id, owner_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if name:
        statement = statement.where(col(LedgerAccount.name).ilike(f"%{name}%"))
    items, total = await paginate(session, statement, page, [LedgerAccount.created_at, LedgerAccount.id])
    return Page(items=await with_balances(session, items), total=total, limit=page.limit, offset=page.offset)


@router.get("/{account_id}", response_model=AccountOut, summary="One account with its balances")
async def get_account(account_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    return (await with_balances(session, [await visible_account(session, user, account_id)]))[0]


@router.patch("/{account_id}", response_model=AccountOut, summary="Rename an account or change its type (superuser)")
async def update_account(account_id: uuid.UUID, body: AccountUpdate, session: SessionDep, actor: AccountAdmin):
    account = await visible_account(session, actor, account_id)
    if account.kind != AccountKind.internal:
        raise AppError(409, "gl_account_fixed", "GL accounts are defined by migrations")
    if account.status == AccountStatus.closed:
        raise AppError(409, "account_closed", "a closed account cannot be changed")
    if body.type is not None and (body.type == InternalAccountType.loan) != (account.type == InternalAccountType.loan):
        raise AppError(422, "type_change_not_allowed", "a deposit account cannot become a loan account or back")
    before = audit.snapshot(account, _FIELDS)
    for field, value in body.model_dump(exclude_none=True).items():
        setattr(account, field, value)
    session.add(account)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="account.updated",
        entity_type="account",
        entity_id=account.id,
        before=before,
        after=audit.snapshot(account, _FIELDS),
    )
    await session.commit()
    return (await with_balances(session, [account]))[0]


@router.post(
    "/{account_id}/close",
    response_model=AccountOut,
    summary="Close an account (soft; superuser)",
    responses={
        409: {
            "description": "payments in flight, an open loan, money or holds on it, or interest "
            "owed to it (core/closing.py)"
        }
    },
)
async def close_account(account_id: uuid.UUID, session: SessionDep, actor: AccountAdmin):
    account = await visible_account(session, actor, account_id)
    if account.kind != AccountKind.internal:
        raise AppError(409, "gl_account_fixed", "GL accounts cannot be closed")
    await closing.lock_for_closing(session, account.id)
    await session.refresh(account)
    if account.status == AccountStatus.closed:
        return (await with_balances(session, [account]))[0]  # closing twice is the same as once
    if blocker := await closing.closing_blocker(session, account.id):
        raise AppError(409, blocker.code, blocker.message, blocker.details)
    before = audit.snapshot(account, _FIELDS)
    account.status, account.closed_at = AccountStatus.closed, datetime.now(UTC)
    session.add(account)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="account.closed",
        entity_type="account",
        entity_id=account.id,
        before=before,
        after=audit.snapshot(account, _FIELDS),
    )
    await session.commit()
    return (await with_balances(session, [account]))[0]


@router.post(
    "/{account_id}/deposits",
    response_model=AccountOut,
    status_code=201,
    responses=WAITS_ON_A_CHECKER,
    summary="Record a cash deposit: debit cash at bank, credit the account (superuser, operator); a large one "
    "waits on a checker",
)
async def deposit(
    account_id: uuid.UUID,
    body: DepositIn,
    key: IdempotencyKey,
    session: SessionDep,
    actor: Teller,
    settings: SettingsDep,
    client: TemporalDep,
):
    account = await visible_account(session, actor, account_id)
    if account.kind != AccountKind.internal or account.type == InternalAccountType.loan:
        raise AppError(422, "not_a_deposit_account", "deposits go to checking or savings accounts")
    if account.status != AccountStatus.active:
        raise AppError(409, "account_closed", "the account is closed")
    domain.check_amount_fits(account.currency, body.amount)
    fields = {"account_id": str(account.id), "amount": str(body.amount), "memo": body.memo}
    if await maker_checker.is_large(
        session, client, settings, account.org_id, body.amount, account.currency
    ) or await maker_checker.existing_request(session, actor, MakerCheckerKind.deposit, key, fields):
        return pending(
            await maker_checker.request_teller(
                session, actor, client, settings, MakerCheckerKind.deposit, account, body.amount, body.memo, key
            )
        )
    cash = await ledger.gl_account(session, GL_CASH, account.currency)
    entry_id, created = await ledger.post_entry(
        session,
        idempotency_key=f"deposit:{actor.id}:{key}",
        entry_type="cash_deposit",
        description=body.memo,
        effective_date=business_today(settings),
        legs=[ledger.Leg(cash, body.amount), ledger.Leg(account.id, -body.amount)],
    )
    if created:
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="account.deposit",
            entity_type="account",
            entity_id=account.id,
            after={"journal_entry_id": str(entry_id), "amount": str(body.amount)},
        )
    else:
        posted = (
            await session.exec(select(Posting).where(Posting.entry_id == entry_id, Posting.account_id == account.id))
        ).first()
        if posted is None or -posted.amount != body.amount:
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another deposit")
    await session.commit()
    await money_changed_quietly(client, session, account.id, "deposit", str(entry_id), settings)
    return (await with_balances(session, [account]))[0]


@router.post(
    "/{account_id}/withdrawals",
    response_model=AccountOut,
    status_code=201,
    responses={
        **WAITS_ON_A_CHECKER,
        409: {"description": "the account is closed, or the Idempotency-Key was used for another withdrawal"},
        422: {"description": "not a deposit account, or the available balance does not cover it"},
    },
    summary="Pay out cash: debit the account, credit cash at bank (superuser, operator); a large one waits on a "
    "checker with the amount held",
)
async def withdraw(
    account_id: uuid.UUID,
    body: WithdrawalIn,
    key: IdempotencyKey,
    session: SessionDep,
    actor: CashOut,
    settings: SettingsDep,
    client: TemporalDep,
):
    account = await visible_account(session, actor, account_id)
    maker_checker.check_teller_account(account)
    domain.check_amount_fits(account.currency, body.amount)
    fields = {"account_id": str(account.id), "amount": str(body.amount), "memo": body.memo}
    if await maker_checker.is_large(
        session, client, settings, account.org_id, body.amount, account.currency
    ) or await maker_checker.existing_request(session, actor, MakerCheckerKind.withdrawal, key, fields):
        return pending(
            await maker_checker.request_teller(
                session, actor, client, settings, MakerCheckerKind.withdrawal, account, body.amount, body.memo, key
            )
        )
    await domain.withdraw(session, actor, settings, account, body.amount, body.memo, key)
    await session.commit()
    await money_changed_quietly(client, session, account.id, "withdrawal", key, settings)
    return (await with_balances(session, [account]))[0]


@router.get("/{account_id}/entries", response_model=Page[PostingOut], summary="The account's postings, newest first")
async def account_entries(
    account_id: uuid.UUID,
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    since: BusinessDate | None = None,
    until: BusinessDate | None = None,
):
    account = await visible_account(session, user, account_id)
    statement = (
        select(
            Posting.entry_id,
            JournalEntry.entry_type,
            JournalEntry.description,  # type: ignore[call-overload]  # sqlmodel types select() of up to 4 columns
            JournalEntry.effective_date,
            Posting.amount,
            JournalEntry.created_at,
        )
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(Posting.account_id == account.id)
    )
    if since:
        statement = statement.where(JournalEntry.effective_date >= since)
    if until:
        statement = statement.where(JournalEntry.effective_date <= until)
    rows, total = await paginate(
        session, statement, page, [col(JournalEntry.created_at).desc(), col(Posting.id).desc()]
    )
    return Page(items=[PostingOut(**r._mapping) for r in rows], total=total, limit=page.limit, offset=page.offset)


class HoldIn(BaseModel):
    amount: Money
    reason: Annotated[str, *line_rules(200, 1)] = Field(examples=["Pending card authorization"])


class HoldOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    amount: Decimal
    reason: str
    status: str
    created_at: datetime
    released_at: datetime | None


@router.post(
    "/{account_id}/holds",
    response_model=HoldOut,
    status_code=201,
    summary="Hold funds: lowers the available balance, not the ledger balance (superuser, operator)",
)
async def place_hold(account_id: uuid.UUID, body: HoldIn, key: IdempotencyKey, session: SessionDep, actor: HoldPlacer):
    account = await visible_account(session, actor, account_id)
    if account.status != AccountStatus.active:
        raise AppError(409, "account_closed", "the account is closed")
    hold_id, created = await ledger.place_hold(
        session,
        account_id=account.id,
        amount=body.amount,
        reason=body.reason,
        idempotency_key=f"hold:{actor.id}:{key}",
        placed_by=actor.id,
    )
    hold = required(await session.get(Hold, hold_id), "the hold")
    if not created and (hold.account_id != account.id or hold.amount != body.amount):
        raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another hold")
    if created:
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="hold.placed",
            entity_type="hold",
            entity_id=hold.id,
            after=audit.snapshot(hold, ["account_id", "amount", "reason", "status"]),
        )
    await session.commit()
    return hold


@router.get("/{account_id}/holds", response_model=Page[HoldOut], summary="The account's holds")
async def list_holds(
    account_id: uuid.UUID, session: ReadSessionDep, user: CurrentUser, page: PageDep, status: Filter | None = None
):
    account = await visible_account(session, user, account_id)
    statement = access.scope(user, Entity.hold, select(Hold).where(Hold.account_id == account.id))
    if status:
        statement = statement.where(Hold.status == status)
    items, total = await paginate(session, statement, page, [col(Hold.created_at).desc()])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/{account_id}/holds/{hold_id}/release",
    response_model=HoldOut,
    summary="Release a hold placed by hand: by the operator who "
    "placed it, or a superuser (a payment's holds are its workflow's: 403 system_hold)",
)
async def release_hold(account_id: uuid.UUID, hold_id: uuid.UUID, session: SessionDep, actor: HoldReleaser):
    await visible_account(session, actor, account_id)
    hold = await access.visible(session, actor, Entity.hold, hold_id)
    if hold.account_id != account_id:
        raise not_found("hold", hold_id)
    access.check_release_hold(actor, hold)
    if await ledger.release_hold(session, hold_id):
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="hold.released",
            entity_type="hold",
            entity_id=hold_id,
            before={"status": "active"},
            after={"status": "released"},
        )
    elif hold.status != "released":
        raise AppError(409, "hold_not_active", f"the hold is {hold.status}")
    await session.commit()
    await session.refresh(hold)
    return hold
