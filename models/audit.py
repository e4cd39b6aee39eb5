import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Identity, Index
from sqlmodel import Field, SQLModel

from models.base import created_at, jsonb


class AuditLog(SQLModel, table=True):
    """Who did what to which entity, with before and after, written in the transaction of the change."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("audit_log_entity", "entity_type", "entity_id"), Index("audit_log_at", "at"))
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    at: datetime = created_at()
    actor_id: uuid.UUID | None = Field(default=None, index=True)  # None: the system (a workflow)
    actor: str = Field(max_length=320)  # email, or 'system:<workflow id>'
    api_key_id: uuid.UUID | None = Field(default=None)  # the machine client's key the actor acted through
    action: str = Field(max_length=80)
    entity_type: str = Field(max_length=40)
    entity_id: str = Field(max_length=100)
    before: dict | None = jsonb()
    after: dict | None = jsonb()
    request_id: str | None = Field(default=None, max_length=64)
