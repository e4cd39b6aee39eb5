"""Rewards: an organization's programs (org admins set them and their earn rules), a member's account in a program,
and its entries. Every change of a balance is an entry with its reason (earn, redeem, adjust, expire) written in the
same transaction as the balance (a CHECK keeps it from going below zero); nothing is ever overwritten.

Earning is set-based (`earn_for_member`): one statement inserts an earn entry for every expense of the member's
transactions (`member_transactions`) recorded since they enrolled that a rule of an active program matches, ON
CONFLICT (account, transaction) DO NOTHING, so a transaction earns once however often it runs; the balances grow by
what was inserted, in the same statement. Points: the expense's amount times the rule's rate, to the cent."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from api.errors import AppError
from api.fields import Money, Name, _decimal_schema, _strict_decimal
from api.pagination import Page, PageParams, paginate
from core import access, audit
from core.access import Action, Entity
from models.rewards import RewardAccount, RewardEarnRule, RewardEntry, RewardProgram, RewardReason
from models.users import Organization, Role, User

RATE_PATTERN = r"^[0-9]{1,4}(\.[0-9]{1,4})?$"
# Points per 1.00 spent: a plain decimal string (or JSON number), at most 4 decimals, under 10,000.
Rate = Annotated[
    Decimal,
    BeforeValidator(_strict_decimal(re.compile(RATE_PATTERN, re.ASCII), "points per 1.00, at most 4 decimals")),
    Field(gt=0, lt=10_000, decimal_places=4),
    _decimal_schema(RATE_PATTERN, "1.5", "points earned per 1.00 spent (> 0, at most 4 decimals)", positive=True),
]
CategoryKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]

EARN = """
WITH earned AS (
    INSERT INTO reward_entries (account_id, points, reason, txn_id, created_by)
    SELECT ra.id, round(-t.amount * r.points_per_unit, 2), 'earn', t.txn_id, CAST(:actor AS uuid)
      FROM reward_accounts ra
      JOIN reward_programs p ON p.id = ra.program_id AND p.active
      JOIN reward_earn_rules r ON r.program_id = p.id
      JOIN member_transactions t ON t.user_id = ra.user_id AND t.category_key = r.category_key
     WHERE ra.user_id = :user_id
       AND (CAST(:account_id AS uuid) IS NULL OR ra.id = CAST(:account_id AS uuid))
       AND t.amount < 0 AND t.created_at >= ra.created_at
       AND (r.min_amount IS NULL OR -t.amount >= r.min_amount)
       AND round(-t.amount * r.points_per_unit, 2) > 0
    ON CONFLICT (account_id, txn_id) DO NOTHING
    RETURNING account_id, points
), totals AS (
    SELECT account_id, sum(points) AS points, count(*) AS entries FROM earned GROUP BY account_id
), grown AS (
    UPDATE reward_accounts a SET balance = a.balance + totals.points FROM totals WHERE a.id = totals.account_id
    RETURNING a.id
)
SELECT coalesce(sum(entries), 0) AS entries, coalesce(sum(points), 0) AS points, (SELECT count(*) FROM grown) AS accounts
  FROM totals"""


class RuleIn(BaseModel):
    category_key: CategoryKey
    points_per_unit: Rate
    min_amount: Money | None = None


class ProgramIn(BaseModel):
    name: Name
    active: bool = True
    org_id: uuid.UUID | None = Field(default=None, description="a superuser names the organization")
    rules: list[RuleIn] = Field(default_factory=list, max_length=100)


class ProgramPatch(BaseModel):
    name: Name | None = None
    active: bool | None = None
    rules: list[RuleIn] | None = Field(default=None, max_length=100, description="replaces every rule")


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    category_key: str
    points_per_unit: Decimal
    min_amount: Decimal | None


class ProgramOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    active: bool
    created_at: datetime
    updated_at: datetime | None
    rules: list[RuleOut] = []


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    program_id: uuid.UUID
    user_id: uuid.UUID
    balance: Decimal
    created_at: datetime


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    points: Decimal
    reason: RewardReason
    txn_id: str | None
    note: str | None
    created_by: uuid.UUID | None
    created_at: datetime


class RedemptionIn(BaseModel):
    points: Money
    reason: Name = Field(description="what the points were redeemed for")


class EarnOut(BaseModel):
    entries: int
    points: Decimal
    balance: Decimal


def _unique_categories(rules: list[RuleIn]) -> None:
    keys = [r.category_key for r in rules]
    if len(keys) != len(set(keys)):
        raise AppError(422, "duplicate_category", "one rule per category", {"categories": keys})


async def program_out(session, program: RewardProgram) -> ProgramOut:
    rules = (
        await session.exec(
            select(RewardEarnRule)
            .where(RewardEarnRule.program_id == program.id)
            .order_by(col(RewardEarnRule.category_key))
        )
    ).all()
    out = ProgramOut.model_validate(program)
    out.rules = [RuleOut.model_validate(r) for r in rules]
    return out


async def create_program(session, user: User, body: ProgramIn) -> ProgramOut:
    access.gate(user, Entity.reward_program, Action.create)
    org_id = access.target_org(user, body.org_id)
    if org_id is None:
        raise AppError(422, "org_required", "name the organization (org_id) of the program")
    if await session.get(Organization, org_id) is None:
        raise access.not_visible(user, Entity.organization, org_id, exists=False)
    _unique_categories(body.rules)
    clash = await session.exec(
        select(RewardProgram).where(RewardProgram.org_id == org_id, RewardProgram.name == body.name)
    )
    if clash.first() is not None:
        raise AppError(409, "program_exists", f"the organization has a program named {body.name!r}")
    program = RewardProgram(org_id=org_id, name=body.name, active=body.active, created_by=user.id)
    session.add(program)
    await session.flush()
    for rule in body.rules:
        session.add(RewardEarnRule(program_id=program.id, **rule.model_dump()))
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="reward_program.created",
        entity_type="reward_program",
        entity_id=program.id,
        after={"name": body.name, "active": body.active, "rules": [r.model_dump(mode="json") for r in body.rules]},
    )
    await session.commit()
    return await program_out(session, program)


async def visible_program(session, user: User, program_id: uuid.UUID, for_update: bool = False) -> RewardProgram:
    access.gate(user, Entity.reward_program, Action.read)
    program: RewardProgram = await access.visible(
        session, user, Entity.reward_program, program_id, for_update=for_update
    )
    return program


async def update_program(session, user: User, program_id: uuid.UUID, body: ProgramPatch) -> ProgramOut:
    access.gate(user, Entity.reward_program, Action.update)
    program = await visible_program(session, user, program_id, for_update=True)
    before = (await program_out(session, program)).model_dump(mode="json")
    if body.name is not None and body.name != program.name:
        clash = await session.exec(
            select(RewardProgram).where(RewardProgram.org_id == program.org_id, RewardProgram.name == body.name)
        )
        if clash.first() is not None:
            raise AppError(409, "program_exists", f"the organization has a program named {body.name!r}")
        program.name = body.name
    if body.active is not None:
        program.active = body.active
    if body.rules is not None:
        _unique_categories(body.rules)
        await session.execute(delete(RewardEarnRule).where(col(RewardEarnRule.program_id) == program.id))
        for rule in body.rules:
            session.add(RewardEarnRule(program_id=program.id, **rule.model_dump()))
    program.updated_at = datetime.now(UTC)
    session.add(program)
    await session.flush()
    out = await program_out(session, program)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="reward_program.updated",
        entity_type="reward_program",
        entity_id=program.id,
        before=before,
        after=out.model_dump(mode="json"),
    )
    await session.commit()
    return out


async def list_programs(session, user: User, page: PageParams, active: bool | None) -> Page[ProgramOut]:
    access.gate(user, Entity.reward_program, Action.read)
    statement = access.scope(user, Entity.reward_program, select(RewardProgram))
    if active is not None:
        statement = statement.where(RewardProgram.active == active)
    rows, total = await paginate(
        session, statement, page, [col(RewardProgram.created_at).desc(), col(RewardProgram.id)]
    )
    items = [await program_out(session, p) for p in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def enroll(session, user: User, program_id: uuid.UUID) -> tuple[AccountOut, bool]:
    """The caller's account in the program, opened once (enrolling again finds it)."""
    access.gate(user, Entity.reward_account, Action.create, "only members enroll in a rewards program")
    program = await visible_program(session, user, program_id)
    if user.role != Role.member or user.org_id != program.org_id:
        raise access.forbid(
            user, Entity.reward_program, program.id, Action.create, "members of its organization enroll"
        )
    if not program.active:
        raise AppError(409, "program_inactive", "this rewards program is not active")
    made = await session.execute(
        insert(RewardAccount)
        .values(id=uuid.uuid4(), program_id=program.id, user_id=user.id, org_id=program.org_id, balance=Decimal("0"))
        .on_conflict_do_nothing(constraint="reward_accounts_once_per_member")
        .returning(col(RewardAccount.id))
    )
    created = made.first() is not None
    await session.commit()
    account = (
        await session.exec(
            select(RewardAccount).where(RewardAccount.program_id == program.id, RewardAccount.user_id == user.id)
        )
    ).one()
    return AccountOut.model_validate(account), created


async def visible_account(session, user: User, account_id: uuid.UUID, for_update: bool = False) -> RewardAccount:
    access.gate(user, Entity.reward_account, Action.read)
    account: RewardAccount = await access.visible(
        session, user, Entity.reward_account, account_id, for_update=for_update
    )
    return account


async def list_accounts(session, user: User, page: PageParams) -> Page[AccountOut]:
    access.gate(user, Entity.reward_account, Action.read)
    statement = access.scope(user, Entity.reward_account, select(RewardAccount))
    rows, total = await paginate(
        session, statement, page, [col(RewardAccount.created_at).desc(), col(RewardAccount.id)]
    )
    return Page(items=[AccountOut.model_validate(a) for a in rows], total=total, limit=page.limit, offset=page.offset)


async def entries(session, user: User, account_id: uuid.UUID, page: PageParams) -> Page[EntryOut]:
    account = await visible_account(session, user, account_id)
    statement = select(RewardEntry).where(RewardEntry.account_id == account.id)
    rows, total = await paginate(session, statement, page, [col(RewardEntry.id).desc()])
    return Page(items=[EntryOut.model_validate(e) for e in rows], total=total, limit=page.limit, offset=page.offset)


async def redeem(session, user: User, account_id: uuid.UUID, body: RedemptionIn, key: str) -> tuple[EntryOut, bool]:
    """A redemption by the account's member (a superuser for them): an entry of -points and the balance, at once.
    The same Idempotency-Key again answers the entry it made."""
    account = await visible_account(session, user, account_id, for_update=True)
    if account.user_id != user.id and not access.is_super(user):
        raise access.forbid(user, Entity.reward_account, account.id, Action.update, "only the member redeems points")
    idempotency_key = f"{user.id}:{key}"
    existing = (
        await session.exec(
            select(RewardEntry).where(
                RewardEntry.account_id == account.id, RewardEntry.idempotency_key == idempotency_key
            )
        )
    ).first()
    if existing is not None:
        if (existing.points, existing.note) != (-body.points, body.reason):
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another redemption")
        await session.commit()
        return EntryOut.model_validate(existing), False
    if account.balance < body.points:
        raise AppError(
            409,
            "insufficient_points",
            f"the balance is {account.balance} points: {body.points} cannot be redeemed",
            {"balance": str(account.balance), "points": str(body.points)},
        )
    entry = RewardEntry(
        account_id=account.id,
        points=-body.points,
        reason=RewardReason.redeem,
        note=body.reason,
        idempotency_key=idempotency_key,
        created_by=user.id,
    )
    session.add(entry)
    account.balance = account.balance - body.points
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="reward_account.redeemed",
        entity_type="reward_account",
        entity_id=account.id,
        after={"points": str(body.points), "reason": body.reason, "balance": str(account.balance)},
    )
    await session.commit()
    return EntryOut.model_validate(entry), True


async def earn_for_member(db_session, user_id: uuid.UUID, account_id: uuid.UUID | None = None, actor=None) -> EarnOut:
    """Inserts the earn entries of the member's new matching transactions and grows their balances, in one
    statement (the caller commits). Running it again earns nothing more. For the lead to call after imports and
    postings (an activity), or through POST /reward-accounts/{id}/earn."""
    row = (
        await db_session.execute(
            text(EARN), {"user_id": user_id, "account_id": account_id, "actor": str(actor) if actor else None}
        )
    ).one()
    balance = Decimal("0")
    if account_id is not None:
        balance = (
            await db_session.execute(text("SELECT balance FROM reward_accounts WHERE id = :id"), {"id": account_id})
        ).scalar_one()
    return EarnOut(entries=int(row.entries), points=Decimal(row.points), balance=balance)


async def earn(session, user: User, account_id: uuid.UUID) -> EarnOut:
    """Earning by rule, asked for one account: by its member, their org admin or a superuser."""
    account = await visible_account(session, user, account_id)
    if not (account.user_id == user.id or access.is_super(user) or user.role == Role.org_admin):
        raise access.forbid(user, Entity.reward_account, account.id, Action.update, "the member or an org admin")
    out = await earn_for_member(session, account.user_id, account.id, actor=user.id)
    await session.commit()
    return out
