import uuid
from datetime import datetime

from sqlalchemy import Column, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from models.base import created_at, timestamp, uuid_pk


class ApiKey(SQLModel, table=True):
    """A machine client's key (core/api_keys.py): it acts as its creator, narrowed to its scopes. Only the SHA-256 of
    its secret is kept; the public prefix finds the row."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("created_by", "idempotency_key", name="uq_api_keys_idempotency"),)
    id: uuid.UUID = uuid_pk()
    prefix: str = Field(unique=True, max_length=16)
    secret_hash: str = Field(max_length=64)
    name: str = Field(max_length=200)
    scopes: list[str] = Field(sa_column=Column(ARRAY(String(64)), nullable=False))
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)
    created_by: uuid.UUID = Field(foreign_key="users.id", index=True)
    idempotency_key: str | None = Field(default=None, max_length=200)  # the creation's: a retry makes no second key
    expires_at: datetime = timestamp(nullable=False)
    last_used_at: datetime | None = timestamp()
    revoked_at: datetime | None = timestamp()
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    # Rotation: the key this one replaces (which stays valid until the overlap ends), and its successor.
    rotated_from: uuid.UUID | None = Field(default=None, foreign_key="api_keys.id", unique=True)
    created_at: datetime = created_at()
