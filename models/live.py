"""The WebSockets each API process holds per user: presence across processes (domain/presence.py)."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Uuid
from sqlmodel import Field, SQLModel

from models.base import timestamp


class LiveSession(SQLModel, table=True):
    """A user's sockets on one API process; `last_seen` is refreshed by that process's heartbeat, and a row left
    unrefreshed past the expiry is a dead process's (swept by the others)."""

    __tablename__ = "live_sessions"
    __table_args__ = (CheckConstraint("sockets > 0", name="live_sessions_sockets"),)
    process_id: str = Field(primary_key=True, max_length=100)
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    )
    sockets: int
    last_seen: datetime | None = timestamp(nullable=False)
