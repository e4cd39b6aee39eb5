"""Approval requests on Postgres: the request row kept current for the inbox (its level, round and role), and
every decision recorded once (unique per request, level, round and approver) with its audit row."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from temporalio import activity

from core import audit
from core.db import Database
from models.approvals import DecisionRecord, LevelUpdate

FINAL = {"approved", "rejected", "declined", "on_hold", "withdrawn"}


class ApprovalActivities:
    def __init__(self, db: Database):
        self.db = db

    @activity.defn
    async def update_request(self, update: LevelUpdate) -> list[uuid.UUID]:
        """Writes the request's state; when a level opens, reminds or escalates, returns whom to tell."""
        now = datetime.now(UTC)
        async with self.db.session() as session, session.begin():
            before = (
                await session.execute(
                    text(
                        "SELECT status, current_level, current_round, waiting_on_role, org_id, applicant_id, submitted_by "
                        "FROM approval_requests WHERE id = :id FOR UPDATE"
                    ),
                    {"id": update.request_id},
                )
            ).one()
            await session.execute(
                text(
                    """UPDATE approval_requests SET status = :status, current_level = :level, current_round = :round,
                          waiting_on_role = :role, deadline_at = :deadline,
                          level_opened_at = CASE WHEN :opened THEN :now ELSE level_opened_at END,
                          closed_at = CASE WHEN :final THEN coalesce(closed_at, :now) ELSE NULL END
                   WHERE id = :id"""
                ),
                {
                    "id": update.request_id,
                    "status": update.status,
                    "level": update.level,
                    "round": update.round,
                    "role": update.waiting_on_role,
                    "deadline": update.deadline_at,
                    "now": now,
                    "opened": update.notify in ("opened", "escalated"),
                    "final": update.status in FINAL,
                },
            )
            if (before.status, before.current_level, before.current_round, before.waiting_on_role) != (
                update.status,
                update.level,
                update.round,
                update.waiting_on_role,
            ):
                await audit.record(
                    session,
                    actor=f"system:{activity.info().workflow_id}",
                    actor_id=None,
                    action=f"approval.{update.notify or update.status}",
                    entity_type="approval_request",
                    entity_id=update.request_id,
                    before={
                        "status": before.status,
                        "level": before.current_level,
                        "round": before.current_round,
                        "waiting_on_role": before.waiting_on_role,
                    },
                    after={
                        "status": update.status,
                        "level": update.level,
                        "round": update.round,
                        "waiting_on_role": update.waiting_on_role,
                    },
                )
            if update.notify is None or update.waiting_on_role is None:
                return []
            excluded = {before.applicant_id, before.submitted_by} - {None}  # maker-checker: never ask them
            rows = await session.execute(
                text("SELECT id FROM users WHERE org_id = :org AND role = :role AND is_active ORDER BY email"),
                {"org": before.org_id, "role": update.waiting_on_role},
            )
            return [r.id for r in rows if r.id not in excluded]

    @activity.defn
    async def record_decision(self, record: DecisionRecord) -> None:
        async with self.db.session() as session, session.begin():
            inserted = (
                await session.execute(
                    text(
                        """INSERT INTO approval_decisions (id, request_id, level, round, role, approver_id, decision, reason)
                   VALUES (:id, :request, :level, :round, :role, :approver, :decision, :reason)
                   ON CONFLICT ON CONSTRAINT approval_decisions_once DO NOTHING RETURNING id"""
                    ),
                    {
                        "id": uuid.uuid4(),
                        "request": record.request_id,
                        "level": record.level,
                        "round": record.round,
                        "role": record.role,
                        "approver": record.approver_id,
                        "decision": record.decision,
                        "reason": record.reason,
                    },
                )
            ).first()
            if inserted:
                await audit.record(
                    session,
                    actor=record.approver_email,
                    actor_id=record.approver_id,
                    action=f"approval.decision.{record.decision}",
                    entity_type="approval_request",
                    entity_id=record.request_id,
                    after={
                        "level": record.level,
                        "round": record.round,
                        "role": record.role,
                        "decision": record.decision,
                        "reason": record.reason,
                    },
                )
