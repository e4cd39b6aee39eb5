"""Cash-flow forecast by week (pure: domain/report_sources.py reads the scheduled flows, this adds them up).

The horizon is `weeks` weeks from the first day: week 1 is that day and the six after it. What goes in:
* loan installments due in the week (what is still unpaid of them: payment and late fee less allocations), active
  loans only: inflows;
* unpaid (upcoming or overdue) bills with auto-pay due in the week: the auto-pay ACH debit pulls the amount in from
  the member's external account, an inflow (a bill without auto-pay is paid outside the bank: not forecast);
* the runs of active standing instructions in the week, computed here from their cadence exactly as their Temporal
  Schedules fire (calendar: at STANDING_INSTRUCTION_HOUR in the business time zone on the day; interval: every
  multiple of `every` since the Unix epoch), from the later of their start and now, up to their end and the runs
  their count has left. A standing instruction is a book transfer between two accounts of one organization: it
  leaves one account and enters the other, so it shows as an outflow and an equal inflow (net zero in every scope).
The projected cash is the opening cash (the cash lines' balance the day before the first day) plus the running net.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from finance.reports import ReportTable, Scope, TableRow

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Cadence:
    """A standing instruction as its row holds it (models/standing.py)."""

    frequency: str | None  # daily, weekly, monthly; None with every_seconds
    every_seconds: int | None
    day: int | None  # weekly: weekday, 0 Sunday; monthly: day of month; None: the start's
    start: datetime  # its start_at, else when it was created
    end: datetime | None
    remaining: int | None  # runs its count has left; None: unbounded


def week_starts(first_day: date, weeks: int) -> list[date]:
    return [first_day + timedelta(days=7 * k) for k in range(weeks)]


def week_of(first_day: date, day: date) -> int:
    """The 0-based week of `day` in a horizon starting on `first_day`."""
    return (day - first_day).days // 7


def _calendar_day_matches(cadence: Cadence, day: date) -> bool:
    if cadence.frequency == "daily":
        return True
    if cadence.frequency == "weekly":
        weekday = cadence.day if cadence.day is not None else cadence.start.isoweekday() % 7
        return day.isoweekday() % 7 == weekday
    return day.day == (cadence.day if cadence.day is not None else min(cadence.start.day, 28))


def runs_per_week(cadence: Cadence, first_day: date, weeks: int, now: datetime, zone: ZoneInfo, hour: int) -> list[int]:
    """How many times the instruction runs in each week of the horizon (no run at or before `now`; runs between now
    and the first day use up its count too)."""
    lower = max(cadence.start, now + timedelta(microseconds=1))
    left = cadence.remaining if cadence.remaining is not None else math.inf
    if left != math.inf:
        left -= min(left, _runs_between(cadence, lower, lower.astimezone(zone).date(), first_day, zone, hour))
    counts: list[int] = []
    for start_day in week_starts(first_day, weeks):
        taken = int(min(_runs_between(cadence, lower, start_day, start_day + timedelta(days=7), zone, hour), left))
        left -= taken
        counts.append(taken)
    return counts


def _runs_between(cadence: Cadence, lower: datetime, from_day: date, to_day: date, zone: ZoneInfo, hour: int) -> int:
    """The runs from `from_day` to `to_day` (excluded) in the business time zone, not before `lower`."""
    if from_day >= to_day:
        return 0
    if cadence.every_seconds:
        start = max(lower, datetime.combine(from_day, time(), zone))
        return _interval_runs(cadence, start, datetime.combine(to_day, time(), zone))
    found = 0
    for offset in range((to_day - from_day).days):
        day = from_day + timedelta(days=offset)
        moment = datetime.combine(day, time(hour), zone)
        in_bounds = moment >= lower and (cadence.end is None or moment <= cadence.end)
        found += in_bounds and _calendar_day_matches(cadence, day)
    return found


def _interval_runs(cadence: Cadence, lower: datetime, upper: datetime) -> int:
    """The multiples of `every` seconds since the epoch in [lower, upper), and not after the end."""
    every = cadence.every_seconds or 1
    if cadence.end is not None:
        upper = min(upper, cadence.end + timedelta(microseconds=1))
    first = math.ceil(_seconds(lower) / every)
    last = math.ceil(_seconds(upper) / every) - 1  # the last multiple strictly before upper
    return max(0, last - first + 1)


def _seconds(moment: datetime) -> Decimal:
    return Decimal((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)) / 1_000_000


class ForecastWeek(BaseModel):
    week: int  # 1-based
    date_from: date
    date_to: date
    installments: Decimal
    autopay_bills: Decimal
    standing_transfers: Decimal  # out of one account of the scope and into another: in both columns
    standing_ach_in: Decimal = ZERO  # standing ACH debits: pulled in from members' accounts at other banks
    standing_ach_out: Decimal = ZERO  # standing ACH credits: sent out to members' accounts at other banks
    inflows: Decimal
    outflows: Decimal
    net: Decimal
    projected_cash: Decimal


class CashForecast(BaseModel):
    scope: Scope
    date_from: date
    date_to: date
    opening_cash: Decimal
    weeks: list[ForecastWeek]
    total_inflows: Decimal
    total_outflows: Decimal
    closing_cash: Decimal


def cash_forecast(
    scope: Scope,
    first_day: date,
    weeks: int,
    opening_cash: Decimal,
    installments: dict[int, Decimal],
    autopay_bills: dict[int, Decimal],
    standing: list[tuple[Decimal, list[int]]],
    ach_in: list[tuple[Decimal, list[int]]] = [],  # noqa: B006 (read only)
    ach_out: list[tuple[Decimal, list[int]]] = [],  # noqa: B006 (read only)
) -> CashForecast:
    """`installments`, `autopay_bills`: amounts by 0-based week; `standing` (book transfers), `ach_in` (standing ACH
    debits) and `ach_out` (standing ACH credits): each instruction's amount and runs per week (runs_per_week)."""
    rows, cash = [], opening_cash
    for k, start_day in enumerate(week_starts(first_day, weeks)):
        transfers = sum((amount * runs[k] for amount, runs in standing), ZERO)
        pulled = sum((amount * runs[k] for amount, runs in ach_in), ZERO)
        sent = sum((amount * runs[k] for amount, runs in ach_out), ZERO)
        due, bills = installments.get(k, ZERO), autopay_bills.get(k, ZERO)
        inflows, outflows = due + bills + transfers + pulled, transfers + sent
        cash += inflows - outflows
        rows.append(
            ForecastWeek(
                week=k + 1,
                date_from=start_day,
                date_to=start_day + timedelta(days=6),
                installments=due,
                autopay_bills=bills,
                standing_transfers=transfers,
                standing_ach_in=pulled,
                standing_ach_out=sent,
                inflows=inflows,
                outflows=outflows,
                net=inflows - outflows,
                projected_cash=cash,
            )
        )
    return CashForecast(
        scope=scope,
        date_from=first_day,
        date_to=first_day + timedelta(days=7 * weeks - 1),
        opening_cash=opening_cash,
        weeks=rows,
        total_inflows=sum((r.inflows for r in rows), ZERO),
        total_outflows=sum((r.outflows for r in rows), ZERO),
        closing_cash=cash,
    )


def cash_forecast_table(report: CashForecast) -> ReportTable:
    rows = [TableRow(label="Opening cash", values=[None] * 7 + [report.opening_cash], style="heading")]
    rows += [
        TableRow(
            label=f"Week {w.week}: {w.date_from} to {w.date_to}",
            values=[
                w.installments,
                w.autopay_bills,
                w.standing_transfers,
                w.standing_ach_in,
                w.standing_ach_out,
                w.inflows,
                w.outflows,
                w.projected_cash,
            ],
        )
        for w in report.weeks
    ]
    rows.append(
        TableRow(
            label="Total",
            values=[None] * 5 + [report.total_inflows, report.total_outflows, report.closing_cash],
            style="total",
        )
    )
    return ReportTable(
        title="Cash-flow forecast",
        subtitle=f"{report.scope.name}, {report.date_from} to {report.date_to}",
        columns=[
            "Installments",
            "Auto-pay bills",
            "Standing transfers",
            "Standing ACH in",
            "Standing ACH out",
            "Inflows",
            "Outflows",
            "Projected cash",
        ],
        rows=rows,
    )
