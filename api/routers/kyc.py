"""A member's KYC: submissions (identity data and document ids) to the member's KYC workflow `kyc-<member id>`, and
where the review stands. The human review of a referred screening is an approval request: reviewers decide through
/approvals like any approval (their inbox lists it; the submitter may not decide: maker-checker)."""

import uuid
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.kyc import kyc_search_attributes, kyc_workflow_id, review_settings
from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError
from api.fields import BusinessDate, line_rules
from core import access
from core.access import Entity
from core.task_queues import queue_for
from domain import documents
from models.members import IdentityData, KycInput, KycState, KycSubmissionInput
from models.users import KycStatus, User
from workflows.kyc import KycWorkflow

router = APIRouter(prefix="/members/{member_id}/kyc", tags=["kyc"])


class KycSubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full_name: Annotated[str, *line_rules(200, 1, strip=True)] = Field(examples=["Dana Member"])
    date_of_birth: BusinessDate = Field(examples=["1990-04-01"])
    address: Annotated[str, *line_rules(500, 1, strip=True)] = Field(examples=["1 Main St, Springfield, IL 62701"])
    national_id_last4: str = Field(pattern=r"^[0-9]{4}$", examples=["1234"], description="last 4 digits of the SSN")
    document_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="uploaded identity documents (see /documents)"
    )


def _from_row(member: User) -> KycState:
    """Where the KYC stands by the member's row (no workflow yet, or it is gone from Temporal's retention)."""
    return KycState(
        member_id=member.id,
        status=member.kyc_status if member.kyc_status != KycStatus.unverified else "awaiting_submission",
        waiting_on=member.kyc_waiting_on or ("member" if member.kyc_status == KycStatus.unverified else None),
        round=0,
        reason=member.kyc_reason,
        expires_at=member.kyc_expires_at,
    )


async def _member(session, user: User, member_id: uuid.UUID) -> User:
    member: User = await access.visible(session, user, Entity.member, member_id)
    return member


@router.post(
    "/submissions",
    response_model=KycState,
    status_code=202,
    responses={
        403: {"description": "neither the member nor staff of their organization"},
        409: {"description": "verified already, or a review under way asks nothing of the member now"},
        422: {"description": "a bad field, or a document that is not one of this member's (code unknown_documents)"},
    },
    summary="Submit identity data and documents for KYC (the member, or staff of their organization for them)",
)
async def submit_kyc(
    member_id: uuid.UUID,
    body: KycSubmissionIn,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
):
    member = await _member(session, user, member_id)
    access.check_submit_kyc(user, member)
    if unknown := await documents.not_of_member(session, member.id, body.document_ids):
        raise AppError(
            422,
            "unknown_documents",
            "every document of a KYC submission must be one uploaded for this member (POST /documents)",
            {"document_ids": [str(document_id) for document_id in unknown]},
        )
    await session.commit()  # no pooled connection held across the calls to Temporal
    if not member.is_active:
        raise AppError(409, "member_inactive", "this member is deactivated")
    assert member.org_id is not None  # a member belongs to an organization (users_org_required)
    submission = KycSubmissionInput(
        submitted_by=user.id,
        identity=IdentityData(
            full_name=body.full_name,
            date_of_birth=body.date_of_birth,
            address=body.address,
            national_id_last4=body.national_id_last4,
        ),
        document_ids=list(dict.fromkeys(body.document_ids)),
    )
    handle = client.get_workflow_handle(kyc_workflow_id(member.id))
    try:
        return await handle.execute_update(KycWorkflow.submit, submission)
    except WorkflowUpdateFailedError as exc:
        raise AppError(409, "not_awaiting_submission", str(getattr(exc.cause, "message", exc.cause))) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    # No review is running: a verified member is asked again by the re-verification schedule, nobody else.
    if member.kyc_status == KycStatus.verified:
        raise AppError(409, "already_verified", "this member's KYC is verified", {"expires_at": member.kyc_expires_at})
    try:
        await client.start_workflow(
            KycWorkflow.run,
            KycInput(
                member_id=member.id, org_id=member.org_id, submission=submission, review=review_settings(settings)
            ),
            id=kyc_workflow_id(member.id),
            task_queue=queue_for(settings, KycWorkflow),
            static_summary=f"KYC review of {member.full_name} ({member.email})",
            search_attributes=kyc_search_attributes(member.org_id, member.id, "screening", None),
        )
    except WorkflowAlreadyStartedError as exc:  # a submission for the same member raced this one
        raise AppError(409, "not_awaiting_submission", "a KYC review of this member has just started") from exc
    return KycState(member_id=member.id, status="screening", waiting_on=None, round=1)


@router.get("", response_model=KycState, summary="Where the member's KYC stands (the member, or staff)")
async def get_kyc(member_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep):
    member = await _member(session, user, member_id)
    await session.commit()
    try:
        return await client.get_workflow_handle(kyc_workflow_id(member.id)).query(KycWorkflow.state)
    except RPCError:
        return _from_row(member)
