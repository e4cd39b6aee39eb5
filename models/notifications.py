"""Inputs of the notification activities: who to tell, with which email template, once per dedupe key."""

import uuid
from typing import Any

from pydantic import BaseModel, Field


class NotificationRequest(BaseModel):
    kind: str = Field(min_length=1, max_length=60, examples=["payment_returned"])
    template: str = Field(
        min_length=1, max_length=100, description="a template in templates/email/", examples=["payment_returned"]
    )
    context: dict[str, Any] = Field(default_factory=dict, description="the template's variables, JSON values")
    entity_type: str | None = Field(default=None, max_length=40, examples=["payment"])
    entity_id: str | None = Field(default=None, max_length=100)
    # The email's key is f"{dedupe_key}:{user_id}" (200 characters at most): room for a UUID and a colon.
    dedupe_key: str = Field(
        min_length=1,
        max_length=160,
        description="the same key never notifies a user twice",
        examples=["payment-returned:3f1c…:R01"],
    )


class NotifyOrgAdmins(NotificationRequest):
    org_id: uuid.UUID


class NotifyUsers(NotificationRequest):
    user_ids: list[uuid.UUID] = Field(min_length=1)


class ResendEmail(BaseModel):
    outbox_id: uuid.UUID
