"""Business metrics for Prometheus, computed on scrape by set-based SQL (one round trip) and kept for
METRICS_CACHE_TTL, so several Prometheus replicas or a burst of scrapes cost one query.

The collector yields the last snapshot; the /metrics endpoint awaits `refresh()` first (prometheus-client's
collectors are synchronous, the database is not). The database and Temporal are also probed here: a failure is a
0 in backoffice_dependency_up, never a failed scrape.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from core.business_time import business_today
from core.config import Settings
from core.db import Database
from models.payments import FINAL_STATUSES

PROBE_TIMEOUT = 3.0

# (metric, label, value) rows. Each count reads an indexed column or a small table; the payments by status is the
# largest (an index-only scan of payments' status index).
SNAPSHOT = text("""
SELECT 'payments', status, count(*) FROM payments GROUP BY status
UNION ALL
SELECT 'returns', return_code, count(*) FROM payments WHERE return_code IS NOT NULL GROUP BY return_code
UNION ALL
SELECT 'stuck', '', count(*) FROM payments
 WHERE status <> ALL(CAST(:final AS text[])) AND coalesce(updated_at, created_at) < now() - CAST(:stuck AS interval)
UNION ALL
SELECT 'approvals_past_deadline', '', count(*) FROM approval_requests WHERE status = 'open' AND deadline_at < now()
UNION ALL
SELECT 'dead_letters', 'bank_event_exception', count(*) FROM bank_events WHERE status = 'exception'
UNION ALL
SELECT 'dead_letters', 'email_rejected', count(*) FROM email_outbox WHERE status = 'rejected'
UNION ALL
SELECT 'dead_letters', 'ach_file_' || status, count(*) FROM ach_files WHERE status IN ('rejected', 'failed')
 GROUP BY status
UNION ALL
SELECT 'interest', 'posted', count(*) FROM interest_postings WHERE period = :period
UNION ALL
SELECT 'interest', 'total', count(*) FROM savings_accounts
UNION ALL
SELECT 'interest_complete', '', count(*) FROM interest_posting_runs WHERE period = :period
""")

DEAD_LETTER_KINDS = ("bank_event_exception", "email_rejected", "ach_file_rejected", "ach_file_failed")


def posting_period(today: date) -> str:
    """The month that month-end posting works on now: the one just ended."""
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@dataclass
class Snapshot:
    database_up: bool = False
    temporal_up: bool = False
    period: str = ""
    rows: dict[tuple[str, str], float] = field(default_factory=dict)

    def by_label(self, metric: str) -> dict[str, float]:
        return {label: value for (name, label), value in self.rows.items() if name == metric}

    def value(self, metric: str, label: str = "") -> float:
        return self.rows.get((metric, label), 0.0)


class BusinessMetrics(Collector):
    def __init__(
        self, db: Callable[[], Database], temporal_health: Callable[[], Awaitable[object]], settings: Settings
    ):
        self._db = db  # looked up on each refresh: the API opens its database in the lifespan, after registration
        self._temporal_health = temporal_health
        self._settings = settings
        self._ttl = settings.metrics_cache_ttl.total_seconds()
        self._snapshot = Snapshot()
        self._taken = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:  # concurrent scrapes wait for the one query
            if time.monotonic() - self._taken < self._ttl:
                return
            database, temporal = await asyncio.gather(self._query(), self._temporal_up())
            self._snapshot = database if database is not None else Snapshot()
            self._snapshot.temporal_up = temporal
            self._taken = time.monotonic()

    async def _query(self) -> Snapshot | None:
        period = posting_period(business_today(self._settings))
        try:
            async with self._db().session() as session:
                result = await asyncio.wait_for(
                    session.execute(
                        SNAPSHOT,
                        {
                            "final": sorted(FINAL_STATUSES),
                            "stuck": self._settings.payment_stuck_after,
                            "period": period,
                        },
                    ),
                    timeout=PROBE_TIMEOUT,
                )
                rows = {(metric, label): float(count) for metric, label, count in result.all()}
        except Exception:  # unreachable, or too slow: the dependency gauge says so, the other series are left out
            return None
        return Snapshot(database_up=True, period=period, rows=rows)

    async def _temporal_up(self) -> bool:
        try:
            await asyncio.wait_for(self._temporal_health(), timeout=PROBE_TIMEOUT)
        except Exception:
            return False
        return True

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        up = GaugeMetricFamily(
            "backoffice_dependency_up", "1 when the dependency answered the last probe", labels=["dependency"]
        )
        up.add_metric(["database"], float(snap.database_up))
        up.add_metric(["temporal"], float(snap.temporal_up))
        yield up
        if not snap.database_up:
            return
        yield _labelled("backoffice_payments", "Payments by current status", "status", snap.by_label("payments"))
        yield _labelled(
            "backoffice_payment_returns",
            "Payments returned by the bank, by the R-code of their latest return",
            "code",
            snap.by_label("returns"),
        )
        yield GaugeMetricFamily(
            "backoffice_payments_stuck",
            "Payments not yet final whose last change is older than PAYMENT_STUCK_AFTER",
            value=snap.value("stuck"),
        )
        yield GaugeMetricFamily(
            "backoffice_approvals_past_deadline",
            "Open approval requests whose current level's deadline has passed (escalation is overdue)",
            value=snap.value("approvals_past_deadline"),
        )
        dead = snap.by_label("dead_letters")
        yield _labelled(
            "backoffice_dead_letters",
            "Items that need an operator: bank events in exception, emails rejected, ACH files rejected or failed",
            "kind",
            {kind: dead.get(kind, 0.0) for kind in DEAD_LETTER_KINDS},
        )
        interest = GaugeMetricFamily(
            "backoffice_interest_posting_accounts",
            "Month-end interest posting of the month just ended: accounts posted so far, and savings accounts in all",
            labels=["state", "period"],
        )
        for state in ("posted", "total"):
            interest.add_metric([state, snap.period], snap.value("interest", state))
        yield interest
        complete = GaugeMetricFamily(
            "backoffice_interest_posting_complete",
            "1 once the month just ended is posted to every account (its summary is written)",
            labels=["period"],
        )
        complete.add_metric([snap.period], snap.value("interest_complete"))
        yield complete


def _labelled(name: str, documentation: str, label: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(values.items()):
        family.add_metric([value], count)
    return family
