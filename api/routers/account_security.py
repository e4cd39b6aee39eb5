"""Admins' side of account security: unlock a locked account; require MFA of an organization's staff."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from api.deps import SessionDep, allowed
from core import access, audit
from core.access import Action, Entity
from domain import lockout, security_events
from models.users import Organization, User

router = APIRouter(tags=["users"])

UserUpdater = Annotated[User, Depends(allowed(Entity.user, Action.update))]  # superuser, org admin
OrgUpdater = Annotated[User, Depends(allowed(Entity.organization, Action.update))]  # superuser, org admin


class MfaPolicy(BaseModel):
    require_mfa_for_staff: bool = Field(
        description="staff (org admins, operators, approvers) must enrol in MFA before they get tokens"
    )


class MfaPolicyOut(MfaPolicy):
    org_id: uuid.UUID


@router.post(
    "/users/{user_id}/unlock",
    status_code=204,
    response_class=Response,
    summary="Unlock an account locked after failed logins (a no-op when it is not locked)",
)
async def unlock(user_id: uuid.UUID, session: SessionDep, actor: UserUpdater):
    user: User = await access.visible(session, actor, Entity.user, user_id)
    access.check_update_user(actor, user)
    if await lockout.unlock(session, user.id):
        await security_events.record(
            session, "account_unlocked", user_id=user.id, email=user.email, by=actor.email, by_id=actor.id
        )
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="user.unlocked",
            entity_type="user",
            entity_id=user.id,
        )
    await session.commit()
    return Response(status_code=204)


@router.put(
    "/organizations/{org_id}/mfa-policy",
    response_model=MfaPolicyOut,
    summary="Require (or not) MFA of the organization's staff",
)
async def set_mfa_policy(org_id: uuid.UUID, body: MfaPolicy, session: SessionDep, actor: OrgUpdater):
    """When required, staff without MFA get a 403 `mfa_required` at login, with a token that is good only for
    enrolling; members are not concerned."""
    org: Organization = await access.visible(session, actor, Entity.organization, org_id, for_update=True)
    before = {"require_mfa_for_staff": org.require_mfa_for_staff}
    org.require_mfa_for_staff = body.require_mfa_for_staff
    session.add(org)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="organization.mfa_policy",
        entity_type="organization",
        entity_id=org.id,
        before=before,
        after={"require_mfa_for_staff": org.require_mfa_for_staff},
    )
    await session.commit()
    return MfaPolicyOut(org_id=org.id, require_mfa_for_staff=org.require_mfa_for_staff)
