"""Shares of a member's money records (transactions or budgets) with another member of their organization: made,
replaced, listed and revoked. What a share lets the grantee see or change is core/access.money_rows."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from api.fields import line_rules
from core import access, audit
from core.access import Action, Entity
from models.money import Category, MoneyShare, ShareAccess, ShareScope, ShareWhat
from models.users import Role, User

CategoryKey = Annotated[str, *line_rules(40, 1)]


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grantee: Annotated[str, *line_rules(320, 1, strip=True)] = Field(
        description="the other member: their email or user id"
    )
    what: ShareWhat
    access: ShareAccess = ShareAccess.read
    scope: ShareScope = ShareScope.all
    category_keys: list[CategoryKey] | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def categories_with_their_scope(self) -> Self:
        if (self.scope == ShareScope.categories) != bool(self.category_keys):
            raise ValueError("category_keys go with scope 'categories', and only with it")
        return self


class ShareOut(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    grantee_id: uuid.UUID
    what: str
    access: str
    scope: str
    category_keys: list[str] | None
    created_at: datetime
    revoked_at: datetime | None


class SharesOut(BaseModel):
    given: list[ShareOut] = Field(description="the shares you gave")
    received: list[ShareOut] = Field(description="the shares others gave you")


def out(share: MoneyShare) -> ShareOut:
    return ShareOut.model_validate(share, from_attributes=True)


async def _grantee(session: AsyncSession, user: User, named: str) -> User:
    """The active member of the caller's organization `named` (email or id). Anyone else, existing or not, is the
    same 422: the answer says nothing of who exists outside the organization."""
    try:
        match = col(User.id) == uuid.UUID(named)
    except ValueError:
        match = func.lower(col(User.email)) == named.strip().lower()
    grantee = (
        await session.exec(
            select(User).where(
                match, col(User.org_id) == user.org_id, col(User.role) == Role.member, col(User.is_active).is_(True)
            )
        )
    ).first()
    if grantee is None:
        raise AppError(
            422, "invalid_grantee", "the grantee must be another member of your organization", {"grantee": named}
        )
    if grantee.id == user.id:
        raise AppError(422, "invalid_grantee", "a share is with another member, not with yourself")
    return grantee


async def _check_categories(session: AsyncSession, user: User, keys: list[str]) -> None:
    known = set(
        (
            await session.exec(
                select(Category.key).where(
                    col(Category.key).in_(keys), or_(col(Category.user_id).is_(None), col(Category.user_id) == user.id)
                )
            )
        ).all()
    )
    if unknown := sorted(set(keys) - known):
        raise AppError(422, "unknown_category", "no such categories", {"category_keys": unknown})


async def share(session: AsyncSession, user: User, body: ShareIn) -> ShareOut:
    """A new live share; one for the same grantee and `what` is replaced (revoked, then the new one inserted, in one
    transaction). Two at once: the partial unique index lets one through, the other is a 409."""
    access.gate(user, Entity.money_share, Action.create)
    grantee = await _grantee(session, user, body.grantee)
    if body.category_keys:
        await _check_categories(session, user, body.category_keys)
    assert user.org_id is not None  # a member has an organization
    now = datetime.now(UTC)
    replaced = await session.execute(
        update(MoneyShare)
        .where(
            col(MoneyShare.owner_id) == user.id,
            col(MoneyShare.grantee_id) == grantee.id,
            col(MoneyShare.what) == body.what,
            col(MoneyShare.revoked_at).is_(None),
        )
        .values(revoked_at=now)
        .returning(col(MoneyShare.id))
    )
    replaced_id = replaced.scalar_one_or_none()
    made = MoneyShare(
        org_id=user.org_id,
        owner_id=user.id,
        grantee_id=grantee.id,
        what=body.what,
        access=body.access,
        scope=body.scope,
        category_keys=sorted(set(body.category_keys)) if body.category_keys else None,
    )
    session.add(made)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="money_share.replaced" if replaced_id else "money_share.created",
        entity_type="money_share",
        entity_id=made.id,
        before={"replaced": str(replaced_id)} if replaced_id else None,
        after={**body.model_dump(mode="json"), "grantee_id": str(grantee.id)},
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise AppError(
            409, "share_conflict", "another change of this share was made at the same moment: try again"
        ) from None
    await session.refresh(made)
    return out(made)


async def listing(session: AsyncSession, user: User, include_revoked: bool = False) -> SharesOut:
    access.gate(user, Entity.money_share, Action.read)
    query = access.scope(user, Entity.money_share, select(MoneyShare))
    if not include_revoked:
        query = query.where(col(MoneyShare.revoked_at).is_(None))
    rows = (await session.exec(query.order_by(col(MoneyShare.created_at).desc(), col(MoneyShare.id)))).all()
    return SharesOut(
        given=[out(s) for s in rows if s.owner_id == user.id],
        received=[out(s) for s in rows if s.grantee_id == user.id],
    )


async def revoke(session: AsyncSession, user: User, share_id: uuid.UUID) -> ShareOut:
    """The owner ends a share (kept, with its revoked_at); revoking it again changes nothing. Its grantee sees it
    but may not revoke it (403); anyone else gets a 404."""
    access.gate(user, Entity.money_share, Action.delete)
    found: MoneyShare = await access.visible(session, user, Entity.money_share, share_id, for_update=True)
    if found.owner_id != user.id:
        raise access.forbid(user, Entity.money_share, share_id, Action.delete, "only the member who shared revokes")
    if found.revoked_at is None:
        found.revoked_at = datetime.now(UTC)
        session.add(found)
        await audit.record(
            session,
            actor=user.email,
            actor_id=user.id,
            action="money_share.revoked",
            entity_type="money_share",
            entity_id=share_id,
        )
        await session.commit()
        await session.refresh(found)
    return out(found)
