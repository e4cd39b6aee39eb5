from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageParams(BaseModel):
    limit: int
    offset: int


# Postgres takes OFFSET as a BIGINT: one past it is a 422 here, not a database error.
OFFSET_MAX = 2**63 - 1


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX, description="rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


async def paginate(session: AsyncSession, statement, page: PageParams, order_by) -> tuple[list, int]:
    """Runs `statement` (a filtered select) for one page, and counts all its rows."""
    total = (await session.exec(select(func.count()).select_from(statement.subquery()))).one()
    rows = (await session.exec(statement.order_by(*order_by).limit(page.limit).offset(page.offset))).all()
    return list(rows), total
