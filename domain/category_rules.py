"""Category rules: a member's own (user_id = them) and their organization's (user_id NULL, set by its admin), and
their re-application in bulk (domain/categorise.apply_rules). Who sees a rule: its member and those who may read the
member's transactions (access.money_rows); an organization's rule, everyone of the organization who reads members'
money. Who changes it: its member (a member's rule), the organization's admin (an organization's), a superuser any.
A deleted rule is deactivated: lines it categorised and their history still name it."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, and_, false, or_, select, text, true
from sqlalchemy.exc import DBAPIError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from api.fields import MoneyOrZero, line_rules, not_below
from core import access
from core.access import Action, Entity
from domain.categories import CategoryKey, check_usable, member_of
from domain.categorise import apply_rules
from models.money import CategoryRule, ShareWhat
from models.users import Organization, Role, User


class RuleField(StrEnum):
    merchant = "merchant"
    description = "description"
    any = "any"


class RuleMatch(StrEnum):
    keyword = "keyword"  # a case-insensitive substring
    regex = "regex"  # a Postgres regular expression, matched case-insensitively (~*)


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: RuleField = RuleField.any
    match: RuleMatch = RuleMatch.keyword
    pattern: Annotated[str, *line_rules(200, 1)]
    min_amount: MoneyOrZero | None = Field(default=None, description="on the absolute amount, inclusive")
    max_amount: MoneyOrZero | None = Field(default=None, description="inclusive, >= min_amount")
    category_key: CategoryKey
    priority: Annotated[int, Field(ge=0, le=100_000)] = Field(default=100, description="lower first")
    active: bool = True
    org_id: uuid.UUID | None = Field(
        default=None, description="an organization's rule (its admin, or a superuser, who must name it)"
    )

    _max_not_below_min = field_validator("max_amount")(not_below("min_amount"))


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: RuleField | None = None
    match: RuleMatch | None = None
    pattern: Annotated[str | None, *line_rules(200, 1)] = None
    min_amount: MoneyOrZero | None = None
    max_amount: MoneyOrZero | None = None
    category_key: CategoryKey | None = None
    priority: Annotated[int | None, Field(ge=0, le=100_000)] = None
    active: bool | None = None


class RuleOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID | None = Field(description="the member's rule; null: the organization's")
    priority: int
    field: str
    match: str
    pattern: str
    min_amount: Decimal | None
    max_amount: Decimal | None
    category_key: str
    active: bool
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime | None


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: uuid.UUID | None = Field(default=None, description="default: you")
    include_ledger: bool = True
    reset_unmatched: bool = Field(default=False, description="lines no rule matches go back to the default")


class ApplyOut(BaseModel):
    changed: int


def readable(user: User) -> ColumnElement[bool]:
    """The rules `user` may see."""
    owner_org = col(CategoryRule.org_id)
    members = and_(
        col(CategoryRule.user_id).is_not(None),
        access.money_rows(user, ShareWhat.transactions, col(CategoryRule.user_id), owner_org),
    )
    if user.role == Role.superuser:
        return true()
    org_wide = col(CategoryRule.user_id).is_(None) & (owner_org == user.org_id) if user.org_id else false()
    return or_(members, org_wide)


def may_change(user: User, rule: CategoryRule) -> bool:
    if user.role == Role.superuser:
        return True
    if rule.user_id is None:
        return user.role == Role.org_admin and rule.org_id == user.org_id
    return rule.user_id == user.id


async def _check_pattern(session: AsyncSession, match: str, pattern: str) -> None:
    """A regular expression is checked by Postgres itself (the engine that will run it), in a savepoint."""
    if match != RuleMatch.regex:
        return
    try:
        async with session.begin_nested():
            await session.execute(text("SELECT '' ~* :p"), {"p": pattern})
    except DBAPIError as exc:
        message = str(exc.orig).splitlines()[0] if exc.orig else "not a valid regular expression"
        raise AppError(
            422,
            "invalid_pattern",
            "the pattern is not a valid regular expression",
            {"pattern": pattern, "error": message},
        ) from exc


async def _check(session: AsyncSession, rule: CategoryRule) -> None:
    if rule.min_amount is not None and rule.max_amount is not None and rule.min_amount > rule.max_amount:
        raise AppError(
            422,
            "validation_error",
            "the request is not valid",
            [{"loc": ["body", "max_amount"], "message": "must be at least min_amount", "type": "value_error"}],
        )
    await _check_pattern(session, rule.match, rule.pattern)
    await check_usable(session, rule.category_key, rule.user_id)


async def listing(session: AsyncSession, user: User, member_id: uuid.UUID | None) -> list[RuleOut]:
    """The rules that apply to a member (theirs and their organization's), or all the caller may see."""
    access.gate(user, Entity.category_rule, Action.read)
    statement = select(CategoryRule).where(readable(user))
    owner = member_of(user, member_id)
    if owner is not None:
        member_org = select(col(User.org_id)).where(col(User.id) == owner).scalar_subquery()
        statement = statement.where(
            or_(
                col(CategoryRule.user_id) == owner,
                col(CategoryRule.user_id).is_(None) & (col(CategoryRule.org_id) == member_org),
            )
        )
    statement = statement.order_by(
        col(CategoryRule.priority), col(CategoryRule.user_id).is_(None), col(CategoryRule.created_at)
    )
    return [RuleOut.model_validate(r, from_attributes=True) for r in (await session.execute(statement)).scalars()]


async def visible(session: AsyncSession, user: User, rule_id: uuid.UUID, lock: bool = False) -> CategoryRule:
    access.gate(user, Entity.category_rule, Action.read)
    statement = select(CategoryRule).where(col(CategoryRule.id) == rule_id, readable(user))
    rule = (await session.execute(statement.with_for_update() if lock else statement)).scalar_one_or_none()
    if rule is None:
        raise access.not_visible(user, Entity.category_rule, rule_id)
    return rule


async def create(session: AsyncSession, user: User, body: RuleIn) -> RuleOut:
    access.gate(user, Entity.category_rule, Action.create)
    if user.role == Role.member:
        if body.org_id is not None and body.org_id != user.org_id:
            raise access.not_visible(user, Entity.organization, body.org_id)
        assert user.org_id is not None  # a member belongs to an organization
        org_id, owner = user.org_id, user.id
    elif user.role == Role.org_admin:
        if body.org_id is not None and body.org_id != user.org_id:
            raise access.not_visible(user, Entity.organization, body.org_id)
        assert user.org_id is not None
        org_id, owner = user.org_id, None
    else:  # a superuser: an organization's rule, named
        if body.org_id is None or await session.get(Organization, body.org_id) is None:
            raise AppError(
                422, "org_required", "name the organization (org_id) whose rule this is", {"org_id": body.org_id}
            )
        org_id, owner = body.org_id, None
    rule = CategoryRule(**body.model_dump(exclude={"org_id"}), org_id=org_id, user_id=owner, created_by=user.id)
    await _check(session, rule)
    session.add(rule)
    await session.commit()
    await session.refresh(rule)
    return RuleOut.model_validate(rule, from_attributes=True)


async def _changeable(session: AsyncSession, user: User, rule_id: uuid.UUID, action: Action) -> CategoryRule:
    access.gate(user, Entity.category_rule, action)
    rule = await visible(session, user, rule_id, lock=True)
    if not may_change(user, rule):
        whose = "its organization's admin" if rule.user_id is None else "its member"
        raise access.forbid(user, Entity.category_rule, rule_id, action, f"only {whose} changes this rule")
    return rule


async def update(session: AsyncSession, user: User, rule_id: uuid.UUID, patch: RulePatch) -> RuleOut:
    rule = await _changeable(session, user, rule_id, Action.update)
    changes = patch.model_dump(exclude_unset=True)
    for name in ("field", "match", "pattern", "category_key", "priority", "active"):
        if name in changes and changes[name] is None:
            raise AppError(
                422,
                "validation_error",
                "the request is not valid",
                [{"loc": ["body", name], "message": "cannot be null", "type": "value_error"}],
            )
    for name, value in changes.items():
        setattr(rule, name, value)
    await _check(session, rule)
    rule.updated_at = datetime.now(UTC)
    await session.commit()
    await session.refresh(rule)
    return RuleOut.model_validate(rule, from_attributes=True)


async def delete(session: AsyncSession, user: User, rule_id: uuid.UUID) -> None:
    rule = await _changeable(session, user, rule_id, Action.delete)
    if rule.active:
        rule.active, rule.updated_at = False, datetime.now(UTC)
    await session.commit()


async def apply(session: AsyncSession, user: User, body: ApplyIn) -> ApplyOut:
    """Re-applies the rules to a member's lines (their own request, or a superuser's for them)."""
    access.gate(user, Entity.category_rule, Action.run)
    member_id = body.member_id or user.id
    member = await session.get(User, member_id)
    if member is None or member.role != Role.member:
        raise access.not_visible(user, Entity.member, member_id, exists=member is not None)
    if user.role != Role.superuser and member.id != user.id:
        shared = access.money_rows(user, ShareWhat.transactions, col(User.id), col(User.org_id))
        seen = (await session.execute(select(col(User.id)).where(col(User.id) == member.id, shared))).first()
        if seen is None:
            raise access.not_visible(user, Entity.member, member_id)
        raise access.forbid(user, Entity.member, member_id, Action.run, "only the member re-applies their rules")
    changed = await apply_rules(
        session,
        member.id,
        include_ledger=body.include_ledger,
        reset_unmatched=body.reset_unmatched,
        reason="rules_reapplied",
        actor=user.id,
    )
    await session.commit()
    return ApplyOut(changed=changed)
