"""Users and organizations as several routers see them (auth's /me, the users endpoints, writes that go to an
organization)."""

import uuid

from pydantic import BaseModel

from api.errors import AppError
from core import access
from models.users import User


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    org_id: uuid.UUID | None
    is_active: bool
    member_type: str


def target_org(user: User, requested: uuid.UUID | None) -> uuid.UUID:
    """The organization a write goes to: a superuser names it, everyone else writes to their own (403 for another,
    core/access.py)."""
    org_id = access.target_org(user, requested)
    if org_id is None:
        raise AppError(422, "org_required", "a superuser must say which organization (org_id)")
    return org_id
