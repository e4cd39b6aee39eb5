"""Closed accounting periods: no posting may be dated inside one (the database refuses it, migration 0025)."""

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at, uuid_pk


class ClosedPeriod(SQLModel, table=True):
    """A period closed for one organization's accounts (org_id), or for the whole bank (org_id null). Overlapping
    closures are harmless: a posting is refused when its entry's date falls inside any that applies to it."""

    __tablename__ = "closed_periods"
    __table_args__ = (CheckConstraint("period_start <= period_end", name="closed_periods_range_valid"),)
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)
    period_start: date
    period_end: date
    reason: str = Field(max_length=500)
    closed_by: uuid.UUID = Field(foreign_key="users.id")
    closed_at: datetime = created_at()
