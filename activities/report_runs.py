"""A report run's side effects: generating its file (domain/reports.build, documents/reports.render) and storing it
sealed in the object storage, once; opening the one run of a definition's scheduled time; telling the requester.

Generating is idempotent by the run's row: a run already `ready` is not generated again, so a worker killed after the
file was stored and the row committed resumes to the notification, and one killed before the commit generates the
same report again (its dates are fixed in the row) over the same object key."""

import hashlib
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notifications import NotificationActivities
from core.config import Settings
from core.crypto import FileCipher
from core.db import Database
from core.storage import ObjectStorage, storage_from_settings
from core.task_queues import queue_for
from documents.reports import CONTENT_TYPES, render
from domain import reports
from domain.report_runs import Period, download_url, scheduled_params, scheduled_run_id
from models.notifications import NotifyUsers
from models.report_runs import (
    DefinitionStatus,
    ReportDefinition,
    ReportRun,
    ReportRunInput,
    ReportRunOutcome,
    RunStatus,
    ScheduledRun,
    ScheduledRunStep,
)

JSON_TYPE = "application/json"


def run_key(run_id: uuid.UUID) -> str:
    return f"reports/{run_id}"  # the storage's narrow key alphabet: the file's name is the row's


def sealing_context(run_id: uuid.UUID) -> str:
    """The associated data of a report's ciphertext: another run's row cannot open it."""
    return f"report-run:{run_id}"


class ReportRunActivities:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        notifications: NotificationActivities,
        storage: ObjectStorage | None = None,
    ):
        self.db, self.settings, self.notifications = db, settings, notifications
        self.storage = storage or storage_from_settings(settings)
        self.cipher = FileCipher.from_settings(settings)

    @activity.defn
    async def generate_report(self, req: ReportRunInput) -> ReportRunOutcome:
        """The run's file, stored and recorded once. A report that cannot be made (its organization gone, its dates
        refused) fails for good: retrying would not change it."""
        async with self.db.session() as session, session.begin():
            run = await session.get(ReportRun, req.run_id, with_for_update=True)
            if run is None:
                raise ApplicationError(f"report run {req.run_id} not found", type="NotFound", non_retryable=True)
            if run.status != RunStatus.queued:
                return ReportRunOutcome(run_id=run.id, status=RunStatus(run.status), failure=run.failure)
            where = await reports.scope(session, run.org_id)
            if where is None:
                raise ApplicationError(f"organization {run.org_id} not found", type="NoScope", non_retryable=True)
            params = reports.ReportParams.model_validate(run.params or {})
            today = params.as_of or params.date_to or datetime.now(UTC).date()
            try:
                built = await reports.build(session, where, reports.ReportKind(run.kind), params, today, self.settings)
            except reports.InvalidRange as exc:
                raise ApplicationError(str(exc), type="InvalidRange", non_retryable=True) from exc
            if run.format == "json":
                content, content_type = built.report.model_dump_json(indent=2).encode(), JSON_TYPE
            else:
                content, content_type = render(built.table, run.format), CONTENT_TYPES[run.format]
            who = f"org-{run.org_id}" if run.org_id else "bank"
            filename = f"{run.kind}-{who}-{built.dated}.{run.format}"
            key_id, sealed = self.cipher.encrypt(content, sealing_context(run.id))
            key = run_key(run.id)
            await self.storage.put(key, sealed)
            run.status, run.filename, run.content_type = RunStatus.ready, filename, content_type
            run.size_bytes, run.sha256 = len(content), hashlib.sha256(content).hexdigest()
            run.storage_key, run.key_id, run.finished_at = key, key_id, datetime.now(UTC)
            activity.logger.info("report run %s: %s, %d bytes", run.id, filename, len(content))
            return ReportRunOutcome(run_id=run.id, status=RunStatus.ready)

    @activity.defn
    async def fail_report_run(self, outcome: ReportRunOutcome) -> ReportRunOutcome:
        """Records why the run could not be made (a run already ready stays ready)."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE report_runs SET status = 'failed', failure = :why, finished_at = now() "
                    "WHERE id = :id AND status = 'queued'"
                ),
                {"id": outcome.run_id, "why": (outcome.failure or "the report could not be generated")[:500]},
            )
            run = await session.get(ReportRun, outcome.run_id)
            assert run is not None
            return ReportRunOutcome(run_id=run.id, status=RunStatus(run.status), failure=run.failure)

    @activity.defn
    async def notify_report_run(self, req: ReportRunInput) -> int:
        """The requester, by email and in-app, once per run: its file is ready (with the link), or it failed."""
        async with self.db.session() as session:
            run = await session.get(ReportRun, req.run_id)
            assert run is not None
        ready = run.status == RunStatus.ready
        return await self.notifications.notify_users(
            NotifyUsers(
                user_ids=[run.requested_by],
                kind="report_ready" if ready else "report_failed",
                template="report_run",
                context={
                    "ready": ready,
                    "kind": run.kind.replace("-", " "),
                    "scope": f"organization {run.org_id}" if run.org_id else "the whole bank",
                    "dates": ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (run.params or {}).items()),
                    "filename": run.filename or "",
                    "failure": run.failure or "",
                    "link": download_url(self.settings, run.id),
                },
                entity_type="report_run",
                entity_id=str(run.id),
                dedupe_key=f"report-run:{run.id}",
            )
        )

    @activity.defn
    async def open_scheduled_run(self, step: ScheduledRunStep) -> ScheduledRun:
        """The run of the definition at this scheduled time, made once (a second start of the same time finds it);
        none when the definition is no longer active."""
        run_id = scheduled_run_id(step.definition_id, step.scheduled_for)
        async with self.db.session() as session, session.begin():
            definition = await session.get(ReportDefinition, step.definition_id)
            if definition is None or definition.status != DefinitionStatus.active:
                return ScheduledRun(run_id=None)
            day = step.scheduled_for.astimezone(ZoneInfo(self.settings.business_timezone)).date()
            params = scheduled_params(
                reports.ReportKind(definition.kind), Period(definition.period), day, definition.options
            )
            await session.execute(
                insert(ReportRun)
                .values(
                    id=run_id,
                    org_id=definition.org_id,
                    kind=definition.kind,
                    params=params.model_dump(mode="json", exclude_none=True),
                    format=definition.format,
                    requested_by=definition.created_by,
                    definition_id=definition.id,
                    scheduled_for=step.scheduled_for,
                    status=RunStatus.queued,
                    workflow_id=f"report-{run_id}",
                )
                .on_conflict_do_nothing(constraint="report_runs_once_per_scheduled_time")
            )
        return ScheduledRun(run_id=run_id, task_queue=queue_for(self.settings, "ReportRunWorkflow"))
