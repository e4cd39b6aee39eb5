"""Who is told what. Bank-wide figures (the month-end posting's totals, NACHA files, statement runs across
organizations) go only to bank-wide staff; an organization's operators get their own organization's figures.

BANK_WIDE_ROLES is the one place that says who bank-wide staff are: today the superuser; the bank-wide operations
role (`bank_operations`) joins it here once it exists."""

import uuid

from sqlalchemy import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.users import Role, User

BANK_WIDE_ROLES: tuple[str, ...] = (Role.superuser,)


def bank_wide_staff() -> ColumnElement[bool]:
    """The users (active or not: callers add that) who may see bank-wide figures."""
    return col(User.role).in_(BANK_WIDE_ROLES)


def org_operators(org_id: uuid.UUID) -> ColumnElement[bool]:
    return (User.org_id == org_id) & (User.role == Role.operator)


async def bank_wide_recipients(session: AsyncSession) -> list[uuid.UUID]:
    """The active users to tell of a bank-wide operation's figures, in id order."""
    return list((await session.exec(select(User.id).where(bank_wide_staff(), col(User.is_active))
                                    .order_by(User.id))).all())
