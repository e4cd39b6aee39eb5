"""Users and organizations as several routers see them (auth's /me, the users endpoints, writes that go to an
organization)."""

import uuid

from pydantic import BaseModel
from sqlalchemy import text

from api.errors import AppError
from core import access
from core.db import Database
from core.security import hash_password
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


async def ensure_superuser(db: Database, email: str, password: str) -> None:
    """The first superuser, written straight to the database: the API has no way to make one (a superuser makes the
    others). Idempotent: an existing user of that email is left as it is."""
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO users (id, email, full_name, hashed_password, role) VALUES (:id, :email, 'Root', :pw, "
                "'superuser') ON CONFLICT DO NOTHING"
            ),
            {"id": uuid.uuid4(), "email": email, "pw": hash_password(password)},
        )
