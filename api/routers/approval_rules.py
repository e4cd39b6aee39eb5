"""Approval routing rules (PRODUCT.md §4.4), as data a superuser changes: by amount and member type, which
levels of approvers a request goes through (see finance.approval_routing). Rules are deactivated, never
deleted: approval requests reference the rule they were routed by."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import col, select

from api.crud import flush_unique_name, get_for_update
from api.deps import ReadSessionDep, SessionDep, allowed
from api.fields import Filter, Money, MoneyOrZero, Name, not_below, partial_model, validate_merged
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core.access import Action, Entity
from finance.approval_routing import FinalOutcome, Level
from models.base import utcnow
from models.loans import ApprovalRule
from models.users import User

router = APIRouter(prefix="/approval-rules", tags=["approval rules"])

RuleReader = Annotated[User, Depends(allowed(Entity.approval_rule, Action.read))]  # superuser
RuleWriter = Annotated[User, Depends(allowed(Entity.approval_rule, Action.write))]

_LEVEL_EXAMPLE: dict[str, Any] = {
    "role": "credit_committee",
    "quorum": 2,
    "deadline_seconds": 172800,
    "reminder_seconds": 86400,
    "escalation_role": "branch_manager",
}


class ApprovalRuleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Business above 50,000: manager, then 2 of the committee",
                    "priority": 150,
                    "min_amount": "50000.01",
                    "max_amount": None,
                    "member_type": "business",
                    "levels": [
                        {
                            **_LEVEL_EXAMPLE,
                            "role": "branch_manager",
                            "quorum": 1,
                            "escalation_role": "credit_committee",
                        },
                        _LEVEL_EXAMPLE,
                    ],
                    "final_outcome": "hold",
                }
            ]
        },
    )

    name: Name
    priority: int = Field(default=100, ge=0, le=1_000_000, description="lower first; the first matching rule wins")
    min_amount: MoneyOrZero = Field(description="inclusive")
    max_amount: Money | None = Field(default=None, description="inclusive, >= min_amount; null: no upper bound")
    member_type: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_-]*$",
        max_length=40,
        examples=["business"],
        description="null: any member type",
    )
    levels: list[Level] = Field(min_length=1, max_length=10, description="in order; each must approve")
    final_outcome: FinalOutcome = Field(
        default=FinalOutcome.decline, description="after the last escalation's deadline: decline or hold"
    )

    _max_amount_not_below_min = field_validator("max_amount")(not_below("min_amount"))


if TYPE_CHECKING:  # made at run time (see partial_model): to mypy, a BaseModel
    ApprovalRulePatch = BaseModel
else:
    ApprovalRulePatch = partial_model(
        ApprovalRuleIn, "ApprovalRulePatch", active=(bool | None, Field(default=None, description="true reactivates"))
    )


class ApprovalRuleOut(BaseModel):
    id: uuid.UUID
    name: str
    priority: int
    min_amount: Decimal
    max_amount: Decimal | None
    member_type: str | None
    levels: list[Level]
    final_outcome: str
    active: bool
    created_at: datetime
    updated_at: datetime | None


_FIELDS = [*ApprovalRuleIn.model_fields, "active"]


def _columns(rule: ApprovalRuleIn) -> dict:
    return {**rule.model_dump(exclude={"levels"}), "levels": [level.model_dump(mode="json") for level in rule.levels]}


@router.post("", response_model=ApprovalRuleOut, status_code=201, summary="Create an approval rule (superuser)")
async def create_approval_rule(body: ApprovalRuleIn, session: SessionDep, actor: RuleWriter):
    rule = ApprovalRule(**_columns(body))
    session.add(rule)
    await flush_unique_name(session, "approval rule", rule.name)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="approval_rule.created",
        entity_type="approval_rule",
        entity_id=rule.id,
        after=audit.snapshot(rule, _FIELDS),
    )
    await session.commit()
    return rule


@router.get("", response_model=Page[ApprovalRuleOut], summary="Approval rules, in the order they are tried (superuser)")
async def list_approval_rules(
    session: ReadSessionDep,
    user: RuleReader,
    page: PageDep,
    active: bool | None = None,
    member_type: Annotated[Filter | None, Query(description="rules for exactly this member type")] = None,
    name: Annotated[Filter | None, Query(description="contains, case-insensitive")] = None,
):
    statement = access.scope(user, Entity.approval_rule, select(ApprovalRule))
    if active is not None:
        statement = statement.where(ApprovalRule.active == active)
    if member_type:
        statement = statement.where(ApprovalRule.member_type == member_type)
    if name:
        statement = statement.where(col(ApprovalRule.name).ilike(f"%{name}%"))
    order = [ApprovalRule.priority, col(ApprovalRule.member_type).is_(None), ApprovalRule.name, ApprovalRule.id]
    items, total = await paginate(session, statement, page, order)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{rule_id}", response_model=ApprovalRuleOut, summary="One approval rule (superuser)")
async def get_approval_rule(rule_id: uuid.UUID, session: SessionDep, user: RuleReader):
    return await access.visible(session, user, Entity.approval_rule, rule_id)


@router.patch(
    "/{rule_id}",
    response_model=ApprovalRuleOut,
    summary="Change an approval rule (superuser)",
    description="Only the fields given change (`levels` is replaced as a whole); the result is validated "
    "as a whole. `active: true` reactivates a rule. Requests already routed keep their levels.",
)
async def update_approval_rule(rule_id: uuid.UUID, body: ApprovalRulePatch, session: SessionDep, actor: RuleWriter):
    rule = await get_for_update(session, ApprovalRule, rule_id, Entity.approval_rule)
    before = audit.snapshot(rule, _FIELDS)
    changes = body.model_dump(exclude_unset=True)
    active = changes.pop("active", None)
    valid = validate_merged(ApprovalRuleIn, audit.snapshot(rule, list(ApprovalRuleIn.model_fields)), changes)
    for field, value in _columns(valid).items():
        setattr(rule, field, value)
    if active is not None:
        rule.active = active
    rule.updated_at = utcnow()
    session.add(rule)
    await flush_unique_name(session, "approval rule", rule.name)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="approval_rule.updated",
        entity_type="approval_rule",
        entity_id=rule.id,
        before=before,
        after=audit.snapshot(rule, _FIELDS),
    )
    await session.commit()
    return rule


@router.delete(
    "/{rule_id}", status_code=204, response_class=Response, summary="Deactivate an approval rule (soft; superuser)"
)
async def deactivate_approval_rule(rule_id: uuid.UUID, session: SessionDep, actor: RuleWriter):
    rule = await get_for_update(session, ApprovalRule, rule_id, Entity.approval_rule)
    if rule.active:
        before = audit.snapshot(rule, _FIELDS)
        rule.active, rule.updated_at = False, utcnow()
        session.add(rule)
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="approval_rule.deactivated",
            entity_type="approval_rule",
            entity_id=rule.id,
            before=before,
            after=audit.snapshot(rule, _FIELDS),
        )
        await session.commit()
    return Response(status_code=204)
