"""Month-end interest posting (PRODUCT.md §5): seconds to post a month of accrued interest for N accounts
(100,000 and 1,000,000 by default, one run each, so that the per-account cost of both sizes shows whether it is
flat) through the real workflow and worker, beside ONE hand-written set-based SQL statement doing the same writes
(interest_postings rows, journal entries, both legs of each) on the same data.

Both start from the same seeded database: N savings accounts with a month of daily accruals (set-based,
generate_series), copied with CREATE DATABASE ... TEMPLATE before the workflow runs, so the statement runs on a
fresh copy (postings are append-only: they can't be deleted to run again). Both write under the same unique
constraints and ledger triggers. The workflow time runs from the start request until the launcher's result,
so it includes the counting, every batch round trip, continue-as-new and the summary (the bench has no
operators, so no email). The worker's peak RSS is VmHWM of the worker process, a fresh one per size.

Figures (2026-11-21, 2 vCPU AMD EPYC, 23.5 GiB, shared with other jobs, embedded PostgreSQL 16 with its default
128 MB shared_buffers), before each batch looked its accounts up by index: 1,000,000 accounts, 31,000,000
accrual rows, 937,400 posted: workflow 130.1 s (7,688 accounts/s, batches of 10,000, continue-as-new every 50),
one statement 74.5 s (13,430 accounts/s), ratio 1.75; worker peak RSS 162 MiB; at 100,000 accounts 1.09.
Each batch then read ledger_accounts (and interest_postings) whole: quadratic (bench/notes/interest_posting.md).

2026-12-01, same machine under a load average of 5 to 9 (other benchmarks and test runs), after the change: not
yet measured at 1,000,000 through this benchmark (seeding 31,000,000 accruals took 25 minutes on the loaded
machine). What was measured: `--accounts 10000 30000`: workflow 16.5 s and 48.6 s (1,650 and 1,621 µs an
account: flat), one statement 3.4 s and 20.9 s, ratios 4.81 and 2.33 (at these sizes the workflow's fixed
cost, a fresh worker's first tasks and the 6 other activities, dominates); worker peak RSS 176 and 180 MiB. The
batch activity alone (no Temporal) at 1,000,000 accounts: 101 batches in 972 s on the loaded machine, the last
tenth of the batches as fast as the first (the per-batch cost flat); no sequential scan of ledger_accounts and
38 ms in the open-account trigger in all, against 97 scans reading 43,000,258 rows and 9.6 s in the first 27
batches before. The one statement on a copy right after took 262 s: 3.7x, NOT the target yet.
The ledger's postings_balanced trigger still reads the whole postings entry_id index once per batch (203 s in 101
calls, against 7.4 s in the statement's one): the next thing to change (bench/notes/interest_posting.md).

2026-12-03, quiet machine, 1 GB shared_buffers, the batches planned afresh (core/db.execute_planned_afresh) instead of
under plan_cache_mode = force_custom_plan, which re-planned every foreign-key check row by row: 1,000,000 accounts,
workflow 157.7 s beside the statement's 160.2 s, ratio 0.98 (1.14 in an earlier run); 100,000: 0.93–1.08.

`python -m bench interest_posting [--accounts N [N ...]] [--batch-size B]`"""

import argparse
import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import cast

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from temporalio.client import Client

from bench.ach_throughput import load, machine
from bench.stack import peak_rss_mib, running_stack
from core.db import libpq_url, psycopg_sql
from core.interest import POST_ALL
from models.interest import MonthEndInput, PostingSummary
from models.ledger import GL_INTEREST_EXPENSE
from workflows.month_end_posting import MonthEndPostingWorkflow, posting_workflow_id

PERIOD, FIRST, LAST = "2026-10", date(2026, 10, 1), date(2026, 10, 31)

SEED = [
    "INSERT INTO savings_products (id, name, annual_rate, day_count, active) "
    "VALUES (%(product)s, 'Bench savings', 0.0365, 'actual/365', true)",
    "INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, status) "
    "SELECT gen_random_uuid(), 'Bench savings ' || i, 'internal', 'savings', 'credit', 'USD', 'active' "
    "FROM generate_series(1, %(accounts)s) AS i",
    "INSERT INTO savings_accounts (account_id, product_id) "
    "SELECT id, %(product)s FROM ledger_accounts WHERE kind = 'internal' AND name LIKE 'Bench savings %%'",
    # Up to 0.1 a day, 10 decimals, from a hash: varied amounts that exercise the rounding; one account in
    # ~16 accrues nothing (and posts nothing).
    "INSERT INTO interest_accruals (account_id, day, product_id, balance, amount) "
    "SELECT s.account_id, d::date, %(product)s, 1000.00, "
    "       CASE WHEN hashtext(s.account_id::text) %% 16 = 0 THEN 0 "
    "            ELSE (abs(hashtext(s.account_id::text || d::date::text)) %% 1000000000) / 10000000000.0 END "
    "FROM savings_accounts s, generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d "
    "ORDER BY s.account_id, d",  # in key order: appends to the primary key's index instead of random inserts
    # The month's accrual runs finished (else the posting would accrue its days first).
    "INSERT INTO accrual_runs (day, accounts, accrued) "
    "SELECT day, count(*), sum(amount) FROM interest_accruals WHERE day BETWEEN %(first)s AND %(last)s GROUP BY day",
    # Vacuumed as a month of autovacuum would have by month end (hint bits, visibility map), for both paths alike.
    "VACUUM ANALYZE",
]


def database(url: str, name: str) -> str:
    """`url` pointed at another database of the same server."""
    return make_conninfo("", **{**conninfo_to_dict(libpq_url(url)), "dbname": name})


async def seed(url: str, accounts: int) -> float:
    started = time.monotonic()
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        params = {"product": uuid.uuid4(), "accounts": accounts, "first": FIRST, "last": LAST}
        for statement in SEED:
            await conn.execute(statement, params)
    return time.monotonic() - started


async def copy_database(url: str, copy: str) -> float:
    """A file-level copy of the seeded database (no connection may use it meanwhile: the stack's are closed)."""
    started = time.monotonic()
    source = conninfo_to_dict(libpq_url(url))["dbname"]
    async with await psycopg.AsyncConnection.connect(database(url, "template1"), autocommit=True) as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (source,),
        )
        await conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{source}" STRATEGY = FILE_COPY')
    return time.monotonic() - started


async def batch_seconds(client: Client) -> list[float]:
    """Each posting batch's time, scheduled to completed, in the order they ran, over every run of the period's
    posting workflow (it continues as new): whether a batch costs the same late in the run as early."""
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{posting_workflow_id(PERIOD)}'")]
    seconds: list[float] = []
    for w in sorted(runs, key=lambda w: w.start_time):
        history = await client.get_workflow_handle(w.id, run_id=w.run_id).fetch_history()
        scheduled = {
            e.event_id: e.event_time.ToDatetime()
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "post_interest_batch"
        }
        for e in history.events:
            if e.HasField("activity_task_completed_event_attributes"):
                started = scheduled.get(e.activity_task_completed_event_attributes.scheduled_event_id)
                if started is not None:
                    seconds.append((e.event_time.ToDatetime() - started).total_seconds())
    return seconds


def by_tenths(seconds: list[float]) -> str:
    """Mean seconds a batch in each tenth of the run (fewer parts when there are fewer batches)."""
    parts = min(10, len(seconds))
    if not parts:
        return "none"
    bounds = [round(i * len(seconds) / parts) for i in range(parts + 1)]
    return " ".join(f"{sum(seconds[a:b]) / (b - a):.2f}" for a, b in itertools.pairwise(bounds))


async def run_workflow(client: Client, task_queue: str) -> tuple[float, PostingSummary]:
    started = time.monotonic()
    summary = await client.execute_workflow(
        MonthEndPostingWorkflow.run,
        MonthEndInput(period=PERIOD),
        id=f"bench-month-end-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    assert summary is not None  # a new workflow id: it posts
    return time.monotonic() - started, summary


async def run_statement(url: str) -> tuple[float, int, Decimal]:
    """The baseline: every account's posting in one statement, one transaction (commit included)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        gl_row = await (
            await conn.execute(
                "SELECT id FROM ledger_accounts WHERE code = %s AND currency = 'USD'", (GL_INTEREST_EXPENSE,)
            )
        ).fetchone()
        assert gl_row is not None
        gl = gl_row[0]
        sql = psycopg_sql(POST_ALL)
        started = time.monotonic()
        row = await (await conn.execute(sql, {"period": PERIOD, "first": FIRST, "last": LAST, "gl": gl})).fetchone()
        await conn.commit()
        elapsed = time.monotonic() - started
    assert row is not None  # an aggregate: always one row
    return elapsed, row[2], row[4]


async def totals(url: str) -> tuple[int, Decimal, Decimal]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        posted = await (
            await conn.execute("SELECT count(*), sum(amount) FROM interest_postings WHERE period = %s", (PERIOD,))
        ).fetchone()
        books_row = await (await conn.execute("SELECT sum(amount) FROM postings")).fetchone()
    assert posted is not None and books_row is not None  # aggregates: always one row
    return posted[0], posted[1], books_row[0]


QUICK = {"accounts": [10_000, 20_000]}  # make bench-quick: both sizes small


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("interest_posting")
    group.add_argument(
        "--accounts",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        metavar="N",
        help="savings accounts to seed and post, one run per size (default 100,000 and 1,000,000: the per-account "
        "cost of each, to show it flat)",
    )
    group.add_argument("--batch-size", type=int, default=10_000, help="accounts per posting batch (default 10,000)")
    group.add_argument(
        "--continue-as-new-after",
        type=int,
        default=50,
        help="batches per workflow run before it continues as new (default 50)",
    )


@dataclass
class Measured:
    accounts: int
    load_before: str
    seeding: float
    copying: float
    workflow: float
    statement: float
    rss_before: float
    rss_peak: float
    summary: PostingSummary
    batches: list[float]


async def measure(args: argparse.Namespace, n: int) -> Measured:
    """Both paths at N accounts, on a stack of their own (the worker's peak RSS is this size's alone)."""
    load_before = load()
    settings = {
        "INTEREST_BATCH_SIZE": str(args.batch_size),
        "INTEREST_CONTINUE_AS_NEW_AFTER": str(args.continue_as_new_after),
    }
    async with running_stack(settings, name="bench-interest") as stack:
        seeding = await seed(stack.database_url, n)
        baseline_db = f"baseline_{uuid.uuid4().hex[:8]}"
        copying = await copy_database(stack.database_url, baseline_db)
        worker = next(c for c in stack.children if "worker.py" in cast(list[str], c.args))
        rss_before = peak_rss_mib(worker.pid)
        workflow_seconds, summary = await run_workflow(stack.client, stack.task_queue)
        rss_peak = peak_rss_mib(worker.pid)
        batches = await batch_seconds(stack.client)
        statement_seconds, _count, _total = await run_statement(database(stack.database_url, baseline_db))
        by_workflow = await totals(libpq_url(stack.database_url))
        by_statement = await totals(database(stack.database_url, baseline_db))
    if by_workflow != by_statement or by_workflow[:2] != (summary.accounts, summary.total) or by_workflow[2] != 0:
        raise RuntimeError(
            f"the two runs disagree: workflow {by_workflow} (summary {summary}), statement {by_statement}"
        )
    return Measured(
        n, load_before, seeding, copying, workflow_seconds, statement_seconds, rss_before, rss_peak, summary, batches
    )


def per_account_us(seconds: float, n: int) -> float:
    return seconds / n * 1e6


async def run(args: argparse.Namespace) -> None:
    runs = [await measure(args, n) for n in args.accounts]
    days = (LAST - FIRST).days + 1
    workflow_label = f"workflow (batches of {args.batch_size:,}, continue-as-new every {args.continue_as_new_after})"
    width = max(len(workflow_label), 34)
    print(
        f"""
Month-end interest posting — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}
  one Postgres, Temporal dev server and worker process on this machine, a fresh stack per size""",
        flush=True,
    )
    for m in runs:
        n = m.accounts
        print(
            f"""  N = {n:,} savings accounts with {days} days of accruals each ({n * days:,} rows), seeded in {m.seeding:.1f} s,
  copied in {m.copying:.1f} s; load average {m.load_before} before the run
    {workflow_label:<{width}} {m.workflow:8.1f} s = {n / m.workflow:8.0f} accounts/s, {per_account_us(m.workflow, n):6.1f} µs each
    {"one hand-written SQL statement":<{width}} {m.statement:8.1f} s = {n / m.statement:8.0f} accounts/s, {per_account_us(m.statement, n):6.1f} µs each
    {"ratio workflow / statement":<{width}} {m.workflow / m.statement:8.2f}
    {len(m.batches)} batches, {sum(m.batches):.1f} s in all; mean s a batch by tenth of the run: {by_tenths(m.batches)}
    {"worker peak RSS (VmHWM)":<{width}} {m.rss_peak:8.0f} MiB ({m.rss_before:.0f} MiB before the run)
    both posted {m.summary.accounts:,} accounts (the rest accrued nothing), {m.summary.total:,} in total; books sum to 0""",
            flush=True,
        )
    if len(runs) > 1:
        small, large = min(runs, key=lambda m: m.accounts), max(runs, key=lambda m: m.accounts)
        print(
            f"  per-account cost at {large.accounts:,} / at {small.accounts:,} accounts: workflow "
            f"{per_account_us(large.workflow, large.accounts) / per_account_us(small.workflow, small.accounts):.2f}, "
            f"statement "
            f"{per_account_us(large.statement, large.accounts) / per_account_us(small.statement, small.accounts):.2f}; "
            f"worker peak RSS {large.rss_peak:.0f} vs {small.rss_peak:.0f} MiB",
            flush=True,
        )
