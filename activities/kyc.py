"""KYC on Postgres and at the identity-verification service (the sandbox's /identity in development).

Every write is keyed so a retry writes once: a submission by (run, round), the review's approval request by a
UUID derived from (run, round); the member's KYC record is set to a state (not incremented) and audited only when it
changes. The screening call's retries are Temporal's: connection errors, timeouts, 5xx and 429 raise plain
exceptions; any other 4xx is non-retryable (ScreeningRefused: our request or credentials are wrong)."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.approval_requests import insert_approval_request
from core import audit
from core import search_attributes as sa
from core.config import Settings
from core.db import Database
from core.task_queues import queue_for
from domain import webhooks
from models.approvals import ApprovalInput, LevelSpec
from models.members import (
    KycInput,
    KycReviewSettings,
    KycStatusUpdate,
    RecordedSubmission,
    ReviewRequest,
    ScreeningRequest,
    ScreeningResult,
    SubmissionRecord,
)
from models.webhooks import WebhookEventType

KYC_NS = uuid.UUID("0c6f3a52-8f1e-4b8e-9d7a-3e5b1c2d4f60")
REVERIFY_BATCH = 500


def kyc_workflow_id(member_id: uuid.UUID) -> str:
    return f"kyc-{member_id}"


def review_settings(settings: Settings) -> KycReviewSettings:
    return KycReviewSettings(
        valid_for_seconds=settings.kyc_valid_for.total_seconds(),
        review_deadline_seconds=settings.kyc_review_deadline.total_seconds(),
        review_reminder_seconds=settings.kyc_review_reminder.total_seconds(),
        reviewer_role=settings.kyc_reviewer_role,
        escalation_role=settings.kyc_escalation_role or None,
    )


def kyc_search_attributes(
    org_id: uuid.UUID, member_id: uuid.UUID, status: str, waiting_on: str | None
) -> TypedSearchAttributes:
    """A KYC workflow's search attributes at its start (it keeps KycStatus and KycWaitingOn current itself)."""
    pairs: list[SearchAttributePair] = [
        SearchAttributePair(sa.ORG_ID, str(org_id)),
        SearchAttributePair(sa.APPLICANT_ID, str(member_id)),
        SearchAttributePair(sa.KYC_STATUS, status),
    ]
    if waiting_on:
        pairs.append(SearchAttributePair(sa.KYC_WAITING_ON, waiting_on))
    return TypedSearchAttributes(pairs)


class KycActivities:
    def __init__(self, db: Database, settings: Settings, client: Client, http: httpx.AsyncClient | None = None):
        self.db, self.settings, self.client = db, settings, client
        self.http = http or httpx.AsyncClient(timeout=settings.http_timeout)

    @activity.defn
    async def record_kyc_submission(self, record: SubmissionRecord) -> RecordedSubmission:
        """The round's submission, once; the member's KYC becomes pending (screening)."""
        submission_id = uuid.uuid5(KYC_NS, f"submission:{record.run_id}:{record.round}")
        async with self.db.session() as session, session.begin():
            inserted = (
                await session.execute(
                    text(
                        """INSERT INTO kyc_submissions (id, member_id, submitted_by, workflow_id, run_id, round, identity,
                                                       document_ids)
                           VALUES (:id, :member, :by, :wf, :run, :round, CAST(:identity AS jsonb), CAST(:docs AS uuid[]))
                           ON CONFLICT ON CONSTRAINT kyc_submissions_once DO NOTHING RETURNING id"""
                    ),
                    {
                        "id": submission_id,
                        "member": record.member_id,
                        "by": record.submission.submitted_by,
                        "wf": record.workflow_id,
                        "run": record.run_id,
                        "round": record.round,
                        "identity": record.submission.identity.model_dump_json(),
                        "docs": record.submission.document_ids,
                    },
                )
            ).first()
            if inserted:
                await audit.record(
                    session,
                    actor=f"system:{record.workflow_id}",
                    actor_id=record.submission.submitted_by,
                    action="kyc.submitted",
                    entity_type="user",
                    entity_id=record.member_id,
                    after={"round": record.round, "document_ids": [str(d) for d in record.submission.document_ids]},
                )
        return RecordedSubmission(submission_id=submission_id, round=record.round)

    @activity.defn
    async def screen_identity(self, req: ScreeningRequest) -> ScreeningResult:
        """The identity service's answer, stored with the submission."""
        identity = req.identity
        response = await self.http.post(
            f"{self.settings.identity_base_url.rstrip('/')}/identity/verifications",
            json={
                "reference": str(req.submission_id),
                "full_name": identity.full_name,
                "date_of_birth": identity.date_of_birth.isoformat(),
                "address": identity.address,
                "national_id_last4": identity.national_id_last4,
            },
            headers={
                "Authorization": f"Bearer {self.settings.identity_api_key.get_secret_value()}",
                "Idempotency-Key": f"kyc-{req.submission_id}",
            },
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise RuntimeError(f"the identity service answered {response.status_code}; retrying")
        if not response.is_success:
            raise ApplicationError(
                f"the identity service refused the screening: {response.status_code} {response.text[:300]}",
                {"status": response.status_code},
                type="ScreeningRefused",
                non_retryable=True,
            )
        result = ScreeningResult.model_validate(response.json(), strict=False)
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE kyc_submissions SET screening_result = :result, screening_reasons = CAST(:reasons AS jsonb) "
                    "WHERE id = :id"
                ),
                {"id": req.submission_id, "result": result.result, "reasons": json.dumps(result.reasons)},
            )
        return result

    @activity.defn
    async def set_kyc_status(self, update: KycStatusUpdate) -> None:
        """The member's KYC record; audited when it changes. A verification is valid for valid_for_seconds from now."""
        now = datetime.now(UTC)
        async with self.db.session() as session, session.begin():
            before = (
                await session.execute(
                    text(
                        "SELECT org_id, kyc_status, kyc_waiting_on, kyc_reason, kyc_expires_at FROM users WHERE id = :id "
                        "FOR UPDATE"
                    ),
                    {"id": update.member_id},
                )
            ).one()
            verified = update.status == "verified" and update.valid_for_seconds is not None
            expires_at = now + timedelta(seconds=update.valid_for_seconds or 0) if verified else None
            await session.execute(
                text(
                    """UPDATE users SET kyc_status = :status, kyc_waiting_on = :waiting, kyc_reason = :reason,
                          kyc_verified_at = CASE WHEN :verified THEN :now ELSE kyc_verified_at END,
                          kyc_expires_at = CASE WHEN :verified THEN :expires ELSE kyc_expires_at END
                       WHERE id = :id"""
                ),
                {
                    "id": update.member_id,
                    "status": update.status,
                    "waiting": update.waiting_on,
                    "reason": update.reason,
                    "verified": verified,
                    "now": now,
                    "expires": expires_at,
                },
            )
            after = {"kyc_status": update.status, "kyc_waiting_on": update.waiting_on, "kyc_reason": update.reason}
            previous = {
                "kyc_status": before.kyc_status,
                "kyc_waiting_on": before.kyc_waiting_on,
                "kyc_reason": before.kyc_reason,
            }
            if before.kyc_status != update.status:
                # A member's KYC passes through the same statuses again (re-verification, a second review round):
                # the transition is keyed by the activity that made it, which a retry keeps.
                info = activity.info()
                await webhooks.emit(
                    session,
                    org_id=before.org_id,
                    event_type=WebhookEventType.kyc_status_changed,
                    entity_type="member",
                    entity_id=update.member_id,
                    event_key=f"{update.status}:{info.workflow_run_id}:{info.activity_id}",
                    data={
                        "member_id": str(update.member_id),
                        "status": update.status,
                        "previous_status": before.kyc_status,
                        "reason": update.reason,
                    },
                )
            if previous != after or verified:
                await audit.record(
                    session,
                    actor=f"system:{activity.info().workflow_id}",
                    actor_id=None,
                    action=f"kyc.{update.status}",
                    entity_type="user",
                    entity_id=update.member_id,
                    before={
                        **previous,
                        "kyc_expires_at": before.kyc_expires_at.isoformat() if before.kyc_expires_at else None,
                    },
                    after={**after, "kyc_expires_at": expires_at.isoformat() if expires_at else None},
                )

    @activity.defn
    async def create_kyc_review(self, req: ReviewRequest) -> ApprovalInput:
        """The human review of a referred screening as an approval request (once per run and round): one level of
        the reviewer role, escalating to the escalation role; the member applies, the submitter may not decide."""
        request_id = uuid.uuid5(KYC_NS, f"review:{req.run_id}:{req.round}")
        levels = [
            LevelSpec(
                role=req.review.reviewer_role,
                deadline_seconds=req.review.review_deadline_seconds,
                reminder_seconds=req.review.review_reminder_seconds,
                escalation_role=req.review.escalation_role,
            )
        ]
        async with self.db.session() as session, session.begin():
            name = (
                await session.execute(text("SELECT full_name FROM users WHERE id = :id"), {"id": req.member_id})
            ).scalar_one()
            title = f"KYC review of {name}" + (f" ({', '.join(req.reasons)})" if req.reasons else "")
            await insert_approval_request(
                session,
                request_id=request_id,
                subject_type="kyc",
                subject_id=req.member_id,
                title=title[:200],
                org_id=req.org_id,
                amount=0,
                applicant_id=req.member_id,
                submitted_by=req.submitted_by,
                levels=[level.model_dump(mode="json") for level in levels],
                final_outcome="decline",
            )
        return ApprovalInput(
            request_id=request_id,
            org_id=req.org_id,
            title=title[:200],
            amount=0,
            applicant_id=req.member_id,
            submitted_by=req.submitted_by,
            levels=levels,
            final_outcome="decline",
            parent_workflow_id=kyc_workflow_id(req.member_id),
            task_queue=queue_for(self.settings, "ApprovalWorkflow"),
        )

    @activity.defn
    async def kyc_review_reason(self, request_id: uuid.UUID) -> str | None:
        """The reason of the review's last rejection or request for documents."""
        async with self.db.session() as session:
            return (
                await session.execute(
                    text(
                        "SELECT reason FROM approval_decisions WHERE request_id = :id AND decision <> 'approve' "
                        "ORDER BY at DESC LIMIT 1"
                    ),
                    {"id": request_id},
                )
            ).scalar_one_or_none()

    @activity.defn
    async def start_kyc_reverifications(self) -> int:
        """Starts `kyc-<member id>` as a re-verification for every verified member whose KYC ends within
        kyc_reverify_ahead (one already running is left alone); returns how many it started."""
        now = datetime.now(UTC)
        started, after = 0, uuid.UUID(int=0)
        while True:
            async with self.db.session() as session:
                rows = (
                    await session.execute(
                        text(
                            """SELECT id, org_id, kyc_expires_at FROM users
                               WHERE kyc_status = 'verified' AND kyc_expires_at <= :horizon AND is_active
                                 AND role = 'member' AND id > :after
                               ORDER BY id LIMIT :limit"""
                        ),
                        {"horizon": now + self.settings.kyc_reverify_ahead, "after": after, "limit": REVERIFY_BATCH},
                    )
                ).all()
            for row in rows:
                try:
                    await self.client.start_workflow(
                        "KycWorkflow",
                        KycInput(
                            member_id=row.id,
                            org_id=row.org_id,
                            reason="reverification",
                            expires_at=row.kyc_expires_at,
                            review=review_settings(self.settings),
                        ),
                        id=kyc_workflow_id(row.id),
                        task_queue=queue_for(self.settings, "KycWorkflow"),
                        static_summary=f"KYC re-verification of member {row.id}",
                        search_attributes=kyc_search_attributes(row.org_id, row.id, "verified", "member"),
                    )
                    started += 1
                except WorkflowAlreadyStartedError:
                    pass
                activity.heartbeat(started)
            if len(rows) < REVERIFY_BATCH:
                return started
            after = rows[-1].id
