"""Report runs and scheduled report definitions (issue 14 item 2): a report generated in the background by a
`report-<run id>` workflow (workflows/report_run.py), its file kept sealed in the object storage and its requester
told once, by email and in-app, with a link to it; a definition is a Temporal Schedule (`report-definition-<id>`)
that starts a run at each of its times.

What a client may choose is a whitelist, never SQL: the report's kind (domain/reports.ReportKind), its organization
(through the access policy's report_org), its format, its dates, and for a definition a period relative to each run
(`Period`). A run's dates are resolved when it is asked for (or, for a scheduled one, from its scheduled time), and
stored with it, so a retry or a replay generates the same report."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import col, select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import AppError
from api.fields import BusinessDate, line_rules
from api.pagination import Page, paginate
from core import access, audit
from core import search_attributes as sa
from core.access import Action, Entity
from core.business_time import business_today
from core.config import Settings
from core.schedules import set_schedule_state
from core.task_queues import queue_for
from domain import reports
from domain.ledger_summary import Grouping, LedgerFilters, check_groupings
from domain.reports import ReportKind, ReportParams
from models.report_runs import (
    DefinitionStatus,
    ReportDefinition,
    ReportRun,
    ReportRunInput,
    RunStatus,
    ScheduledReportInput,
)
from models.users import User


class Format(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    pdf = "pdf"


POSITIONS = (ReportKind.trial_balance, ReportKind.balance_sheet, ReportKind.loan_portfolio)  # as of a day
FORECASTS = (ReportKind.cash_forecast,)  # from a day, some weeks ahead; the others cover a period


class Period(StrEnum):
    """A scheduled run's dates, relative to the day it is scheduled for (in the business time zone)."""

    previous_day = "previous-day"
    previous_month = "previous-month"
    month_to_date = "month-to-date"
    year_to_date = "year-to-date"


def period_params(period: Period, day: date) -> ReportParams:
    """The dates of a run scheduled on `day`: a position report is as of the period's last day."""
    if period == Period.previous_day:
        start = end = day - timedelta(days=1)
    elif period == Period.previous_month:
        end = day.replace(day=1) - timedelta(days=1)
        start = end.replace(day=1)
    elif period == Period.month_to_date:
        start, end = day.replace(day=1), day
    else:
        start, end = date(day.year, 1, 1), day
    return ReportParams(as_of=end, date_from=start, date_to=end)


def scheduled_params(kind: ReportKind, period: Period, day: date, options: dict | None = None) -> ReportParams:
    """The dates of a definition's run scheduled on `day` (a forecast looks ahead from that day), with the
    definition's groupings and filters (`options`, ledger summary only)."""
    if kind in FORECASTS:
        return ReportParams(date_from=day, weeks=reports.DEFAULT_FORECAST_WEEKS)
    dates = period_params(period, day)
    if options:
        dates = dates.model_copy(update=ReportOptions.model_validate(options).model_dump(exclude_none=True))
    return resolved(kind, dates, day)


def resolved(kind: ReportKind, params: ReportParams, today: date) -> ReportParams:
    """Every date the report needs, set (today's when not given), and none it does not; a 422 for a range backwards."""
    if kind in POSITIONS:
        return ReportParams(as_of=params.as_of or today)
    if kind in FORECASTS:
        return ReportParams(date_from=params.date_from or today, weeks=params.weeks or reports.DEFAULT_FORECAST_WEEKS)
    end = params.date_to or today
    start = params.date_from or date(end.year, 1, 1)
    if start > end:
        raise AppError(422, "invalid_date_range", "from must not be after to", {"from": str(start), "to": str(end)})
    if kind == ReportKind.ledger_summary:
        return ReportParams(date_from=start, date_to=end, group_by=params.group_by, filters=params.filters)
    return ReportParams(date_from=start, date_to=end)


class ReportOptions(BaseModel):
    """The custom report's choices (ledger-summary only), from the whitelist of domain/ledger_summary.py."""

    model_config = ConfigDict(extra="forbid")
    group_by: list[Grouping] | None = Field(default=None, description="ledger-summary: one to three, in order")
    filters: LedgerFilters | None = Field(default=None, description="ledger-summary: lines, account types, products")

    @model_validator(mode="after")
    def _fits(self) -> ReportOptions:
        if self.group_by is not None:
            check_groupings(self.group_by)
        return self

    def options_for(self, kind: ReportKind) -> dict | None:
        """The options as stored (None when none); a ValueError when given for another kind."""
        chosen = self.model_dump(mode="json", include={"group_by", "filters"}, exclude_none=True)
        if chosen and kind != ReportKind.ledger_summary:
            raise ValueError("group_by and filters go with the ledger-summary report only")
        return chosen or None


# --- runs ------------------------------------------------------------------------------------------------------


class ReportRunIn(ReportOptions):
    model_config = ConfigDict(extra="forbid")
    kind: ReportKind
    org_id: uuid.UUID | None = Field(
        default=None, description="bank-wide roles: an organization, or none for the whole bank; org staff: their own"
    )
    format: Format = Format.pdf
    as_of: BusinessDate | None = Field(default=None, description="position reports: default today")
    date_from: BusinessDate | None = Field(
        default=None, description="period reports: default 1 January of date_to; a forecast's first day: default today"
    )
    date_to: BusinessDate | None = Field(default=None, description="period reports: default today")
    weeks: int | None = Field(default=None, ge=1, le=52, description="cash-flow forecast: weeks ahead (default 8)")

    @model_validator(mode="after")
    def _options_fit_kind(self) -> ReportRunIn:
        self.options_for(self.kind)
        return self


class ReportRunOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID | None
    kind: str
    params: dict
    format: str
    status: RunStatus
    requested_by: uuid.UUID
    definition_id: uuid.UUID | None
    scheduled_for: datetime | None
    filename: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    failure: str | None
    workflow_id: str
    created_at: datetime
    finished_at: datetime | None
    download_url: str | None = Field(default=None, description="once ready: GET it with the same credentials")


def run_out(run: ReportRun, settings: Settings) -> ReportRunOut:
    out = ReportRunOut.model_validate(run, from_attributes=True)
    if run.status == RunStatus.ready:
        out.download_url = download_url(settings, run.id)
    return out


def download_url(settings: Settings, run_id: uuid.UUID) -> str:
    return f"{settings.public_base_url.rstrip('/')}/api/v1/report-runs/{run_id}/file"


async def request_run(
    session, user: User, client: Client, settings: Settings, body: ReportRunIn, key: str
) -> tuple[ReportRunOut, bool]:
    """The run this requester's Idempotency-Key names, made and started, or found again (created False)."""
    access.gate(user, Entity.report_run, Action.create)
    org_id = access.report_org(user, body.org_id)
    params = resolved(
        body.kind,
        ReportParams(
            as_of=body.as_of,
            date_from=body.date_from,
            date_to=body.date_to,
            weeks=body.weeks,
            group_by=body.group_by,
            filters=body.filters,
        ),
        business_today(settings),
    )
    idempotency_key = f"{user.id}:{key}"
    existing = (await session.exec(select(ReportRun).where(ReportRun.idempotency_key == idempotency_key))).first()
    if existing is not None:
        asked = (body.kind.value, org_id, body.format.value, params.model_dump(mode="json", exclude_none=True))
        if (existing.kind, existing.org_id, existing.format, existing.params) != asked:
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another report run")
        await session.commit()
        await start_run(client, settings, existing)  # a crash between the insert and the start: start it now
        return run_out(existing, settings), False
    if org_id is not None and await reports.scope(session, org_id) is None:
        raise access.not_visible(user, Entity.organization, org_id, exists=False)
    run_id = uuid.uuid4()
    run = ReportRun(
        id=run_id,
        org_id=org_id,
        kind=body.kind.value,
        params=params.model_dump(mode="json", exclude_none=True),
        format=body.format.value,
        requested_by=user.id,
        idempotency_key=idempotency_key,
        status=RunStatus.queued,
        workflow_id=f"report-{run_id}",
    )
    session.add(run)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="report_run.requested",
        entity_type="report_run",
        entity_id=run_id,
        after=audit.snapshot(run, ["org_id", "kind", "params", "format"]),
    )
    await session.commit()
    await start_run(client, settings, run)
    return run_out(run, settings), True


async def start_run(client: Client, settings: Settings, run: ReportRun) -> None:
    """Starts the run's workflow; once started (or finished) it is never started again."""
    from workflows.report_run import ReportRunWorkflow

    try:
        await client.start_workflow(
            ReportRunWorkflow.run,
            ReportRunInput(run_id=run.id),
            id=run.workflow_id,
            task_queue=queue_for(settings, ReportRunWorkflow),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Report {run.kind} ({run.format}) for {run.org_id or 'the whole bank'}",
            static_details=f"requested by {run.requested_by}: {run.params}",
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.ORG_ID, str(run.org_id))] if run.org_id else []
            ),
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran already: the row says how it ended


async def visible_run(session, user: User, run_id: uuid.UUID) -> ReportRun:
    access.gate(user, Entity.report_run, Action.read)
    run: ReportRun = await access.visible(session, user, Entity.report_run, run_id)
    return run


async def list_runs(
    session, user: User, settings: Settings, page, status: RunStatus | None, definition_id: uuid.UUID | None
) -> Page[ReportRunOut]:
    access.gate(user, Entity.report_run, Action.read)
    statement = access.scope(user, Entity.report_run, select(ReportRun))
    if status is not None:
        statement = statement.where(ReportRun.status == status)
    if definition_id is not None:
        statement = statement.where(ReportRun.definition_id == definition_id)
    rows, total = await paginate(session, statement, page, [col(ReportRun.created_at).desc(), col(ReportRun.id)])
    return Page(items=[run_out(r, settings) for r in rows], total=total, limit=page.limit, offset=page.offset)


# --- scheduled definitions -------------------------------------------------------------------------------------


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


class ReportDefinitionIn(ReportOptions):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, *line_rules(120, 1, strip=True)] = Field(examples=["Monthly balance sheet"])
    kind: ReportKind
    org_id: uuid.UUID | None = Field(
        default=None, description="bank-wide roles: an organization, or none for the whole bank; org staff: their own"
    )
    period: Period = Field(description="each run's dates, relative to the day it runs")
    format: Format = Format.pdf
    frequency: Frequency
    day: int | None = Field(
        default=None, ge=0, le=28, description="weekly: 0 (Sunday) … 6 (Saturday); monthly: 1 … 28; default 1"
    )
    hour: int = Field(default=6, ge=0, le=23, description="the hour of the day, in the business time zone")

    @model_validator(mode="after")
    def day_fits(self) -> ReportDefinitionIn:
        if self.day is not None and self.frequency == Frequency.daily:
            raise ValueError("`day` goes with a weekly or monthly frequency")
        if self.frequency == Frequency.weekly and self.day is not None and self.day > 6:
            raise ValueError("a weekly `day` is a weekday, 0 (Sunday) to 6 (Saturday)")
        if self.frequency == Frequency.monthly and self.day == 0:
            raise ValueError("a monthly `day` is 1 to 28")
        self.options_for(self.kind)
        return self


class ReportDefinitionOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID | None
    name: str
    kind: str
    period: str
    format: str
    frequency: str
    day: int | None
    hour: int
    options: dict | None = Field(default=None, description="ledger-summary: its groupings and filters")
    status: DefinitionStatus
    schedule_id: str
    created_by: uuid.UUID
    created_at: datetime
    next_runs: list[datetime] = Field(default_factory=list, description="from the schedule, when Temporal answers")


def _schedule(definition: ReportDefinition, settings: Settings) -> Schedule:
    hour = (ScheduleRange(definition.hour),)
    if definition.frequency == Frequency.daily:
        calendar = ScheduleCalendarSpec(hour=hour)
    elif definition.frequency == Frequency.weekly:
        calendar = ScheduleCalendarSpec(hour=hour, day_of_week=(ScheduleRange(definition.day or 1),))
    else:
        calendar = ScheduleCalendarSpec(hour=hour, day_of_month=(ScheduleRange(definition.day or 1),))
    description = f"Report {definition.name!r}: {definition.kind}, {definition.period}, {definition.format}"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "ScheduledReportWorkflow",
            ScheduledReportInput(definition_id=definition.id),
            id=definition.schedule_id,
            task_queue=queue_for(settings, "ScheduledReportWorkflow"),
            static_summary=description,
        ),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name=settings.business_timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE, catchup_window=timedelta(days=1)),
        state=ScheduleState(note=description),
    )


async def create_definition(
    session, user: User, client: Client, settings: Settings, body: ReportDefinitionIn, key: str
) -> tuple[ReportDefinitionOut, bool]:
    access.gate(user, Entity.report_definition, Action.create)
    org_id = access.report_org(user, body.org_id)
    idempotency_key = f"{user.id}:{key}"
    existing = (
        await session.exec(select(ReportDefinition).where(ReportDefinition.idempotency_key == idempotency_key))
    ).first()
    fields = ("name", "kind", "period", "format", "frequency", "day", "hour")
    options = body.options_for(body.kind)
    if existing is not None:
        if (
            existing.org_id != org_id
            or existing.options != options
            or any(getattr(existing, f) != getattr(body, f) for f in fields)
        ):
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another definition")
        await session.commit()
        await _ensure_schedule(client, existing, settings)
        return await definition_view(client, existing), False
    if org_id is not None and await reports.scope(session, org_id) is None:
        raise access.not_visible(user, Entity.organization, org_id, exists=False)
    definition_id = uuid.uuid4()
    definition = ReportDefinition(
        id=definition_id,
        org_id=org_id,
        **{f: getattr(body, f) for f in fields},
        options=options,
        created_by=user.id,
        idempotency_key=idempotency_key,
        status=DefinitionStatus.active,
        schedule_id=f"report-definition-{definition_id}",
    )
    session.add(definition)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="report_definition.created",
        entity_type="report_definition",
        entity_id=definition_id,
        after={**body.model_dump(mode="json"), "org_id": str(org_id) if org_id else None},
    )
    await session.commit()
    await _ensure_schedule(client, definition, settings)
    return await definition_view(client, definition), True


async def _ensure_schedule(client: Client, definition: ReportDefinition, settings: Settings) -> None:
    if definition.status == DefinitionStatus.deleted:
        return
    try:
        await client.create_schedule(definition.schedule_id, _schedule(definition, settings))
    except ScheduleAlreadyRunningError:
        pass


async def visible_definition(session, user: User, definition_id: uuid.UUID, for_update: bool = False):
    access.gate(user, Entity.report_definition, Action.read)
    definition: ReportDefinition = await access.visible(
        session, user, Entity.report_definition, definition_id, for_update=for_update
    )
    return definition


async def definition_view(client: Client, definition: ReportDefinition) -> ReportDefinitionOut:
    out = ReportDefinitionOut.model_validate(definition, from_attributes=True)
    if definition.status == DefinitionStatus.active:
        try:
            described = await client.get_schedule_handle(definition.schedule_id).describe(
                rpc_timeout=timedelta(seconds=3)
            )
            out.next_runs = list(described.info.next_action_times)[:5]
        except RPCError:
            pass  # the row still tells what the definition is
    return out


async def list_definitions(session, user: User, client: Client, page) -> Page[ReportDefinitionOut]:
    access.gate(user, Entity.report_definition, Action.read)
    statement = access.scope(user, Entity.report_definition, select(ReportDefinition)).where(
        ReportDefinition.status != DefinitionStatus.deleted
    )
    rows, total = await paginate(
        session, statement, page, [col(ReportDefinition.created_at).desc(), col(ReportDefinition.id)]
    )
    items = [ReportDefinitionOut.model_validate(r, from_attributes=True) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def change_state(
    session, user: User, client: Client, definition_id: uuid.UUID, wanted: DefinitionStatus
) -> ReportDefinitionOut:
    """Pause, resume or delete: the row first (what a scheduled run checks), then the schedule."""
    access.gate(user, Entity.report_definition, Action.update)
    definition = await visible_definition(session, user, definition_id, for_update=True)
    if definition.status == DefinitionStatus.deleted:
        raise AppError(409, "deleted", "the report definition is deleted")
    before = definition.status
    if before != wanted:
        definition.status = wanted
        await audit.record(
            session,
            actor=user.email,
            actor_id=user.id,
            action=f"report_definition.{wanted}",
            entity_type="report_definition",
            entity_id=definition.id,
            before={"status": before},
            after={"status": wanted},
        )
    await session.commit()
    await set_schedule_state(client, definition.schedule_id, wanted, user.email)
    return await definition_view(client, definition)


def scheduled_run_id(definition_id: uuid.UUID, scheduled_for: datetime) -> uuid.UUID:
    """The one run of a definition at a scheduled time, whoever starts it and however often."""
    moment = scheduled_for.astimezone(UTC).isoformat()
    return uuid.uuid5(uuid.NAMESPACE_URL, f"report-definition:{definition_id}:{moment}")
