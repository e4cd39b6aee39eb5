"""Standing instructions (PRODUCT.md §4.8): a recurring book transfer, or by its `kind` a recurring ACH credit (from
an internal account to a linked external account) or debit (from the external account into an internal one), each
its own Temporal Schedule `standing-<id>` whose runs (StandingInstructionRunWorkflow) pay with deterministic ids. An
ACH run makes its payment through the API's own path (domain/payments.create_ach_payment), so an ACH instruction is
an org admin's (who may make ACH payments), checked again at every run.

The cadence is a calendar (daily, weekly on a weekday, monthly on a day of the month, at STANDING_INSTRUCTION_HOUR
in the business time zone) or an interval (`every`, at least STANDING_INSTRUCTION_MIN_INTERVAL); bounded by a start,
an end and/or a count of runs (the schedule's remaining actions). A run the schedule missed (Temporal down) is caught
up within STANDING_INSTRUCTION_CATCHUP_WINDOW, once: overlapping runs are buffered one deep, and each run's payment
key holds its scheduled time. Pause and resume are the schedule's; cancel deletes it. The row is the source of truth
for the status: a run started just before a pause finds the row paused and pays nothing."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, model_validator
from sqlmodel import col, select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError

from activities.ach import PaymentRejected, check_ach_payment
from api.errors import AppError
from api.fields import BusinessDateTime, Money, line_rules
from api.pagination import Page, paginate
from core import access, audit
from core.access import Action, Entity
from core.config import Settings
from core.schedules import set_schedule_state
from core.task_queues import queue_for
from domain import maker_checker
from domain.accounts import check_transfer_currency
from models.external_accounts import ExternalAccount
from models.ledger import AccountKind, AccountStatus, LedgerAccount
from models.standing import (
    Frequency,
    InstructionKind,
    InstructionStatus,
    StandingInstruction,
    StandingInstructionRun,
    StandingRunInput,
)
from models.users import User

MAX_INTERVAL = timedelta(days=3653)  # ten years: an instruction is a standing one, not a one-off in disguise


class StandingInstructionIn(BaseModel):
    kind: InstructionKind = Field(
        default=InstructionKind.book,
        description="book (between two internal accounts), ach_credit (from_account_id to external_account_id) or "
        "ach_debit (external_account_id into to_account_id)",
    )
    from_account_id: uuid.UUID | None = Field(default=None, description="book and ach_credit: the internal source")
    to_account_id: uuid.UUID | None = Field(default=None, description="book and ach_debit: the internal destination")
    external_account_id: uuid.UUID | None = Field(default=None, description="ACH: the linked external bank account")
    amount: Money
    memo: Annotated[str, *line_rules(140)] = Field(default="", examples=["Rent"])
    frequency: Frequency | None = Field(default=None, description="daily, weekly or monthly; or give `every`")
    every: timedelta | None = Field(
        default=None,
        le=MAX_INTERVAL,
        description="an interval (ISO 8601 duration, e.g. P14D), at least the configured minimum, at most 10 years",
    )
    day: int | None = Field(
        default=None,
        ge=0,
        le=28,
        description="weekly: the weekday (0 Sunday … 6 Saturday); monthly: the day of the month (1–28). "
        "Default: the start's",
    )
    start_at: BusinessDateTime | None = Field(default=None, description="no run before; default now")
    end_at: BusinessDateTime | None = Field(default=None, description="no run after")
    count: int | None = Field(default=None, ge=1, le=10_000, description="at most this many runs")

    @model_validator(mode="after")
    def one_cadence(self) -> "StandingInstructionIn":
        sides = (self.from_account_id is not None, self.to_account_id is not None, self.external_account_id is not None)
        needed = {
            InstructionKind.book: ((True, True, False), "from_account_id and to_account_id"),
            InstructionKind.ach_credit: ((True, False, True), "from_account_id and external_account_id"),
            InstructionKind.ach_debit: ((False, True, True), "to_account_id and external_account_id"),
        }[self.kind]
        if sides != needed[0]:
            raise ValueError(f"a {self.kind} instruction names exactly {needed[1]}")
        if (self.frequency is None) == (self.every is None):
            raise ValueError("give exactly one of `frequency` and `every`")
        if self.day is not None and self.frequency not in (Frequency.weekly, Frequency.monthly):
            raise ValueError("`day` goes with a weekly or monthly frequency")
        if self.frequency == Frequency.weekly and self.day is not None and self.day > 6:
            raise ValueError("a weekly `day` is a weekday, 0 (Sunday) to 6 (Saturday)")
        if self.frequency == Frequency.monthly and self.day == 0:
            raise ValueError("a monthly `day` is 1 to 28")
        for name in ("start_at", "end_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"`{name}` needs a time zone (e.g. 2027-01-01T07:00:00Z)")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("`end_at` must be after `start_at`")
        return self


class RunOut(BaseModel):
    scheduled_for: datetime
    attempt: int
    status: str
    payment_id: uuid.UUID | None
    failure_code: str | None
    failure_reason: str | None


class StandingInstructionOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    created_by: uuid.UUID
    kind: str
    from_account_id: uuid.UUID | None
    to_account_id: uuid.UUID | None
    external_account_id: uuid.UUID | None
    amount: Decimal
    memo: str
    frequency: str | None
    every_seconds: int | None
    start_at: datetime | None
    end_at: datetime | None
    count: int | None
    status: str
    schedule_id: str
    created_at: datetime
    next_runs: list[datetime] = Field(default_factory=list, description="from the schedule, when Temporal answers")
    remaining_runs: int | None = Field(default=None, description="of a counted instruction, from the schedule")
    runs: list[RunOut] = Field(default_factory=list, description="the newest 50 attempts")


def _spec(body: StandingInstructionIn, settings: Settings) -> ScheduleSpec:
    start = body.start_at or datetime.now(UTC)
    hour = (ScheduleRange(settings.standing_instruction_hour),)
    if body.every is not None:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=body.every)], start_at=start, end_at=body.end_at)
    if body.frequency == Frequency.daily:
        calendar = ScheduleCalendarSpec(hour=hour)
    elif body.frequency == Frequency.weekly:
        weekday = body.day if body.day is not None else (start.isoweekday() % 7)
        calendar = ScheduleCalendarSpec(hour=hour, day_of_week=(ScheduleRange(weekday),))
    else:
        day = body.day if body.day is not None else min(start.day, 28)
        calendar = ScheduleCalendarSpec(hour=hour, day_of_month=(ScheduleRange(day),))
    return ScheduleSpec(
        calendars=[calendar], start_at=start, end_at=body.end_at, time_zone_name=settings.business_timezone
    )


def _schedule(instruction: StandingInstruction, body: StandingInstructionIn, settings: Settings) -> Schedule:
    label = {"book": "Standing transfer", "ach_credit": "Standing ACH credit", "ach_debit": "Standing ACH debit"}
    source = instruction.from_account_id or instruction.external_account_id
    destination = instruction.to_account_id or instruction.external_account_id
    description = f"{label[instruction.kind]} ${instruction.amount:,.2f} {source} → {destination}"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "StandingInstructionRunWorkflow",
            StandingRunInput(
                instruction_id=instruction.id,
                attempts=settings.standing_instruction_attempts,
                retry_after_seconds=settings.standing_instruction_retry_after.total_seconds(),
            ),
            id=instruction.schedule_id,
            task_queue=queue_for(settings, "StandingInstructionRunWorkflow"),
            static_summary=description,
        ),
        spec=_spec(body, settings),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ONE, catchup_window=settings.standing_instruction_catchup_window
        ),
        state=ScheduleState(
            note=description, limited_actions=body.count is not None, remaining_actions=body.count or 0
        ),
    )


async def create(
    session, user: User, client: Client, settings: Settings, body: StandingInstructionIn, key: str
) -> tuple[StandingInstructionOut, bool]:
    """The instruction and its schedule, or the ones this user's Idempotency-Key already made (created False)."""
    access.gate(user, Entity.standing_instruction, Action.create)
    idempotency_key = f"{user.id}:{key}"
    existing = (
        await session.exec(select(StandingInstruction).where(StandingInstruction.idempotency_key == idempotency_key))
    ).first()
    if existing is not None:
        same = (
            existing.kind,
            existing.from_account_id,
            existing.to_account_id,
            existing.external_account_id,
            existing.amount,
            existing.memo,
        ) == (body.kind, body.from_account_id, body.to_account_id, body.external_account_id, body.amount, body.memo)
        if not same:
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another instruction")
        await session.commit()
        await _ensure_schedule(client, existing, body, settings)  # a crash between the insert and the schedule
        return await view(session, client, existing), False
    if body.every is not None and body.every < settings.standing_instruction_min_interval:
        raise AppError(
            422,
            "interval_too_short",
            f"`every` is at least {settings.standing_instruction_min_interval}",
            {"minimum_seconds": settings.standing_instruction_min_interval.total_seconds()},
        )
    if body.kind == InstructionKind.book:
        src = await _check_book(session, user, body)
        assert src.org_id is not None  # internal accounts belong to an organization
        org_id = src.org_id
        # Each run posts at once (no checker sees it): a transfer a checker must approve cannot stand as an instruction.
        if await maker_checker.is_large(session, client, settings, org_id, body.amount, src.currency):
            limit = await maker_checker.threshold_for(session, settings, org_id)
            raise AppError(
                422,
                "above_maker_checker_threshold",
                f"a standing transfer is at most {limit} {maker_checker.THRESHOLD_CURRENCY} (or as much in another "
                "currency): larger transfers are approved one by one",
                {"threshold": str(limit), "threshold_currency": maker_checker.THRESHOLD_CURRENCY},
            )
    else:
        org_id = await _check_ach(session, user, settings, body)
    instruction_id = uuid.uuid4()
    instruction = StandingInstruction(
        id=instruction_id,
        org_id=org_id,
        created_by=user.id,
        idempotency_key=idempotency_key,
        kind=body.kind,
        from_account_id=body.from_account_id,
        to_account_id=body.to_account_id,
        external_account_id=body.external_account_id,
        amount=body.amount,
        memo=body.memo,
        frequency=body.frequency,
        every_seconds=int(body.every.total_seconds()) if body.every is not None else None,
        day=body.day,  # the cash-flow forecast computes the runs from it (finance/forecast.py)
        start_at=body.start_at,
        end_at=body.end_at,
        count=body.count,
        status=InstructionStatus.active,
        schedule_id=f"standing-{instruction_id}",
    )
    session.add(instruction)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="standing_instruction.created",
        entity_type="standing_instruction",
        entity_id=instruction_id,
        after=body.model_dump(mode="json"),
    )
    await session.commit()
    await _ensure_schedule(client, instruction, body, settings)
    return await view(session, client, instruction), True


async def _check_book(session, user: User, body: StandingInstructionIn) -> LedgerAccount:
    """Both internal accounts of one organization, the source the caller's to move money from: the source."""
    src: LedgerAccount = await access.visible(session, user, Entity.account, body.from_account_id)
    access.check_move_money(user, src)
    dst = await session.get(LedgerAccount, body.to_account_id)
    if dst is None or dst.kind != AccountKind.internal or dst.org_id != src.org_id:
        raise access.not_visible(user, Entity.account, body.to_account_id, exists=dst is not None)
    if src.id == dst.id:
        raise AppError(422, "same_account", "the source and destination accounts are the same")
    for account in (src, dst):
        if account.status != AccountStatus.active:
            raise AppError(409, "account_closed", f"account {account.id} is closed")
    check_transfer_currency(src, dst, body.amount)  # else each run would be refused: refused once, here
    return src


async def _check_ach(session, user: User, settings: Settings, body: StandingInstructionIn) -> uuid.UUID:
    """What POST /payments checks of an ACH payment, but the funds (a credit's are checked at each run): the
    caller may make ACH payments, sees both accounts, and the external account can take the payment."""
    access.gate(user, Entity.payment, Action.create_ach, "ACH payments are made by an org admin or a superuser")
    internal_id = body.from_account_id if body.kind == InstructionKind.ach_credit else body.to_account_id
    account: LedgerAccount = await access.visible(session, user, Entity.account, internal_id)
    external: ExternalAccount = await access.visible(session, user, Entity.external_account, body.external_account_id)
    try:
        await check_ach_payment(session, settings, body.kind, body.amount, account, external, check_funds=False)
    except PaymentRejected as rejected:
        raise AppError(
            422, rejected.code, rejected.reason, {"account_id": account.id, "external_account_id": external.id}
        ) from rejected
    assert account.org_id is not None  # check_ach_payment: an internal account, in the external's organization
    return account.org_id


async def _ensure_schedule(
    client: Client, instruction: StandingInstruction, body: StandingInstructionIn, settings: Settings
) -> None:
    if instruction.status == InstructionStatus.canceled:
        return
    try:
        await client.create_schedule(instruction.schedule_id, _schedule(instruction, body, settings))
    except ScheduleAlreadyRunningError:
        pass


async def visible(session, user: User, instruction_id: uuid.UUID, for_update: bool = False) -> StandingInstruction:
    access.gate(user, Entity.standing_instruction, Action.read)
    instruction: StandingInstruction = await access.visible(
        session, user, Entity.standing_instruction, instruction_id, for_update=for_update
    )
    return instruction


async def view(session, client: Client, instruction: StandingInstruction) -> StandingInstructionOut:
    runs = (
        await session.exec(
            select(StandingInstructionRun)
            .where(StandingInstructionRun.instruction_id == instruction.id)
            .order_by(col(StandingInstructionRun.scheduled_for).desc(), col(StandingInstructionRun.attempt).desc())
            .limit(50)
        )
    ).all()
    out = StandingInstructionOut.model_validate(instruction, from_attributes=True)
    out.runs = [RunOut.model_validate(run, from_attributes=True) for run in runs]
    if instruction.status != InstructionStatus.canceled:
        try:
            described = await client.get_schedule_handle(instruction.schedule_id).describe(
                rpc_timeout=timedelta(seconds=3)
            )
            out.next_runs = list(described.info.next_action_times)[:5]
            if described.schedule.state.limited_actions:
                out.remaining_runs = described.schedule.state.remaining_actions
        except RPCError:
            pass  # the row still tells what the instruction is
    return out


async def change_state(
    session, user: User, client: Client, instruction_id: uuid.UUID, wanted: InstructionStatus
) -> StandingInstructionOut:
    """Pause, resume or cancel: the row first (what a run checks), then the schedule."""
    access.gate(user, Entity.standing_instruction, Action.update)
    instruction = await visible(session, user, instruction_id, for_update=True)
    if instruction.created_by != user.id:
        source = await session.get(LedgerAccount, instruction.from_account_id or instruction.to_account_id)
        access.check_move_money(user, source)
    if instruction.status == InstructionStatus.canceled:
        raise AppError(409, "canceled", "the instruction is canceled")
    before = instruction.status
    if before != wanted:
        instruction.status = wanted
        if wanted == InstructionStatus.canceled:
            instruction.canceled_at = datetime.now(UTC)
        await audit.record(
            session,
            actor=user.email,
            actor_id=user.id,
            action=f"standing_instruction.{wanted}",
            entity_type="standing_instruction",
            entity_id=instruction.id,
            before={"status": before},
            after={"status": wanted},
        )
    await session.commit()
    await set_schedule_state(client, instruction.schedule_id, wanted, user.email)
    return await view(session, client, instruction)


async def listing(session, user: User, page, status: InstructionStatus | None) -> Page[StandingInstructionOut]:
    access.gate(user, Entity.standing_instruction, Action.read)
    statement = access.scope(user, Entity.standing_instruction, select(StandingInstruction))
    if status is not None:
        statement = statement.where(StandingInstruction.status == status)
    rows, total = await paginate(
        session, statement, page, [col(StandingInstruction.created_at).desc(), col(StandingInstruction.id)]
    )
    items = [StandingInstructionOut.model_validate(row, from_attributes=True) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
