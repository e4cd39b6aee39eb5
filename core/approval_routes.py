"""The approval route of a request, from the active rules in the database (finance.approval_routing decides).
Shared by the loan API, which refuses an application no rule routes before writing anything, and by the
activity that routes the loan when it reaches approval (the rules may have changed in between)."""

from decimal import Decimal

from sqlmodel import select

from finance.approval_routing import Rule, route
from models.loans import ApprovalRule


async def route_for(session, amount: Decimal, member_type: str) -> Rule | None:
    rules = (await session.exec(select(ApprovalRule).where(ApprovalRule.active))).all()
    return route([Rule.model_validate(rule) for rule in rules], amount, member_type)


def no_route(amount: Decimal, member_type: str) -> str:
    return f"no approval rule routes {amount} for a member of type {member_type!r}"
