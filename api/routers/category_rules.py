"""Category rules: a member's own and their organization's, and their re-application (domain/category_rules.py)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, SessionDep
from domain import category_rules as domain
from domain.category_rules import ApplyIn, ApplyOut, RuleIn, RuleOut, RulePatch

router = APIRouter(prefix="/category-rules", tags=["transactions"])

INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "an invalid regular expression (invalid_pattern), an unknown category"}
}


@router.get("", response_model=list[RuleOut], summary="Category rules: a member's and their organization's")
async def list_rules(
    session: SessionDep,
    user: CurrentUser,
    member_id: Annotated[uuid.UUID | None, Query(description="the rules applying to them (default: you)")] = None,
) -> list[RuleOut]:
    return await domain.listing(session, user, member_id)


@router.post(
    "",
    response_model=RuleOut,
    status_code=201,
    responses=INVALID,
    summary="A rule: a member's own, or (an org admin's) the organization's",
)
async def create_rule(body: RuleIn, session: SessionDep, user: CurrentUser) -> RuleOut:
    return await domain.create(session, user, body)


@router.post(
    "/apply",
    response_model=ApplyOut,
    summary="Re-apply the rules to a member's transactions (lines categorised by hand are kept)",
)
async def apply_rules(body: ApplyIn, session: SessionDep, user: CurrentUser) -> ApplyOut:
    return await domain.apply(session, user, body)


@router.get("/{rule_id}", response_model=RuleOut, summary="A category rule")
async def get_rule(rule_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> RuleOut:
    return RuleOut.model_validate(await domain.visible(session, user, rule_id), from_attributes=True)


@router.patch("/{rule_id}", response_model=RuleOut, responses=INVALID, summary="Change a category rule")
async def patch_rule(rule_id: uuid.UUID, body: RulePatch, session: SessionDep, user: CurrentUser) -> RuleOut:
    return await domain.update(session, user, rule_id, body)


@router.delete("/{rule_id}", status_code=204, summary="Delete (deactivate) a category rule: its history stays")
async def delete_rule(rule_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    await domain.delete(session, user, rule_id)
    return Response(status_code=204)
