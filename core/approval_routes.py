"""The approval route of a request, from the active rules (finance.approval_routing decides), read through the
reference-data cache (core/cache/reference.py). Shared by the loan API, which refuses an application no rule routes
before writing anything, and by the activity that routes the loan when it reaches approval (the rules may have
changed in between)."""

from decimal import Decimal

from core.cache import reference
from core.db import Database
from finance.approval_routing import Rule, route


async def route_for(db: Database, amount: Decimal, member_type: str) -> Rule | None:
    return route(list(await reference.active_rules(db)), amount, member_type)


def no_route(amount: Decimal, member_type: str) -> str:
    return f"no approval rule routes {amount} for a member of type {member_type!r}"
