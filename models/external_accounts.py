"""Bank accounts held elsewhere, linked through the account-linking provider or entered by hand.

The account number is stored only encrypted; responses carry the last four digits."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at, timestamp, uuid_pk


class ExternalAccountStatus(StrEnum):
    verified = "verified"
    pending_verification = "pending_verification"
    disabled = "disabled"


class ExternalAccount(SQLModel, table=True):
    __tablename__ = "external_accounts"
    __table_args__ = (
        # The same bank account linked twice in one organization is one row.
        UniqueConstraint("org_id", "fingerprint", name="external_accounts_once_per_org"),
        CheckConstraint("account_type IN ('checking','savings')", name="external_accounts_type_valid"),
        CheckConstraint(
            "status IN ('verified','pending_verification','disabled')", name="external_accounts_status_valid"
        ),
    )
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    owner_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    holder_name: str = Field(max_length=200)
    institution_name: str = Field(max_length=200)
    source: str = Field(max_length=16)  # 'linked' or 'manual'
    provider_item_id: str | None = Field(default=None, max_length=100)
    provider_account_id: str | None = Field(default=None, max_length=100)
    routing_number: str = Field(max_length=9)
    account_number_encrypted: str
    account_last4: str = Field(max_length=4)
    fingerprint: str = Field(max_length=64)
    account_type: str = Field(max_length=16)
    status: str = Field(max_length=24)
    debits_blocked: bool = False
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class LinkedItem(SQLModel, table=True):
    """An item at the linking provider: its access token, encrypted, to refresh account data later."""

    __tablename__ = "linked_items"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    provider_item_id: str = Field(unique=True, max_length=100)
    institution_id: str = Field(max_length=100)
    access_token_encrypted: str
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
