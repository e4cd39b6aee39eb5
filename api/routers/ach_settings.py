"""An organization's ACH settings: whether a prenote must pass before the first live debit to a new external
account (activities/ach.py queues it; ACH_PRENOTE_WAIT says how long the debit waits for its return)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SessionDep, allowed
from core import access, audit
from core.access import Action, Entity
from models.users import Organization, User

router = APIRouter(tags=["payments"])

OrgUpdater = Annotated[User, Depends(allowed(Entity.organization, Action.update))]  # superuser, org admin


class PrenotePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_ach_prenote: bool = Field(
        description="a zero-dollar prenote must pass (no return within ACH_PRENOTE_WAIT after its cutoff) before "
        "the first live debit to a new external account"
    )


class PrenotePolicyOut(PrenotePolicy):
    org_id: uuid.UUID


@router.put(
    "/organizations/{org_id}/ach-prenote-policy",
    response_model=PrenotePolicyOut,
    summary="Require (or not) a prenote before the first debit to a new external account",
)
async def set_prenote_policy(org_id: uuid.UUID, body: PrenotePolicy, session: SessionDep, actor: OrgUpdater):
    org: Organization = await access.visible(session, actor, Entity.organization, org_id, for_update=True)
    before = {"require_ach_prenote": org.require_ach_prenote}
    org.require_ach_prenote = body.require_ach_prenote
    session.add(org)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="organization.ach_prenote_policy",
        entity_type="organization",
        entity_id=org.id,
        before=before,
        after={"require_ach_prenote": org.require_ach_prenote},
    )
    await session.commit()
    return PrenotePolicyOut(org_id=org.id, require_ach_prenote=org.require_ach_prenote)
