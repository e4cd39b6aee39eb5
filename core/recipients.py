"""Who is told what. Bank-wide figures (the month-end posting's totals, NACHA files, statement runs across
organizations) go only to bank-wide staff; an organization's operators get their own organization's figures.

Who bank-wide staff are is the access policy's to say (core.access.BANK: the superuser and `bank_operations`)."""

import uuid

from sqlalchemy import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import access
from models.users import Role, User

BANK_WIDE_ROLES: tuple[str, ...] = tuple(sorted(access.BANK))


def bank_wide_staff() -> ColumnElement[bool]:
    """The users (active or not: callers add that) who may see bank-wide figures."""
    return col(User.role).in_(BANK_WIDE_ROLES)


def org_operators(org_id: uuid.UUID) -> ColumnElement[bool]:
    return (col(User.org_id) == org_id) & (col(User.role) == Role.operator)


async def bank_wide_recipients(session: AsyncSession) -> list[uuid.UUID]:
    """The active users to tell of a bank-wide operation's figures, in id order."""
    return list(
        (await session.exec(select(User.id).where(bank_wide_staff(), col(User.is_active)).order_by(col(User.id)))).all()
    )
