"""Approval decision round trip (PRODUCT.md §5): latency of the HTTP decision call
`POST /api/v1/approvals/{id}/decisions` under concurrent approvers, beside a direct Temporal client update
`execute_update(ApprovalWorkflow.decide, DecisionInput(...))` on the same kind of workflows on the same server.

Both paths run the same update on the same kind of workflow: a one-level approval (loan_officer, quorum 1) of a
loan, so one approval closes it. The update then records the decision (one activity) and answers once the
workflow has closed the request. The HTTP call adds the API: the token, the officer's and the request's rows
from Postgres, and the API's own Temporal client. The direct call is the bare update, built from the request
rows the benchmark already read. A decision closes its approval, so each call gets a workflow of its own:
N applications, half for each path, plus WARMUP a path that are decided first and not timed.

Interleaved, not one path after the other: the approvals take the two paths in turn, so at every moment both
meet the same server (the same loans disbursing, the same history) under the same 50 approvers in flight, about
half of them on each path. Run one after the other, each alone at full concurrency on the quiet stack, the
second run came out ~1.4 times slower whichever path it was (the HTTP/direct p50 ratio was 1.7 and 2.0 with
the direct run first, 0.95 with HTTP first): that drift would be in the ratio. The price is that the API sees
about 25 of the approvers at a time, not 50. Both are measured after WARMUP decisions a path (interleaved too)
and once the set-up has gone quiet: every approval's "opened" emails sent (one an officer of its branch), the
warm-up loans disbursed.
Each decision sets its loan going (agreement PDF, disbursement) on the same worker, under both paths alike.

Each approver is a coroutine of this process deciding as its own loan officer, one call at a time: a call's time
includes this process's client (httpx, or the Temporal SDK) as well as the servers.

Four phases: decisions arriving at a steady rate (10/s by default, open loop: bench/open_loop.py, each latency
from its scheduled arrival), the two paths in turn; then the concurrent approvers over HTTP, each deciding again as
soon as answered (closed loop), for decisions/s at saturation; then, once those loans have disbursed, the decision's
own path with no loan disbursing behind it: as many rejections (the loan closes as rejected) at the steady rate over
HTTP, then the approvers rejecting at saturation. Each phase prints the CPU a decision costs every process of the
stack, from its first arrival until its last loan has settled: two cores divided by it bound the decisions a second
the machine can keep up with.

`python -m bench approval_roundtrip [--steady N] [--rate R] [--saturation N] [--rejections N] [--concurrency C]`."""

import argparse
import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.ach_throughput import SUPERUSER, bounded, load, machine
from bench.open_loop import Sample, Stats, by_endpoint, by_quarter, run_open_loop, stats
from bench.stack import Stack, running_stack
from core.db import Database
from domain.users import ensure_superuser
from models.approvals import DecisionInput
from tests.conftest import login, make_org, make_user, open_account
from workflows.approval import ApprovalWorkflow

WARMUP = 10  # decisions a path, untimed: first calls pay for connections, imports and caches
ROLE = "loan_officer"
# Branches: the approvers are spread over ORGS organizations (5 officers each at 50 approvers), each with its member
# applying. An approval's opening notifies every officer of its organization; one branch of 50 officers made the
# set-up send 50 emails an approval (26,000 at full size) and it outlasted its time limit.
ORGS = 10
SCORE = 720  # the applicant's fixed bureau score: above the 580 minimum, so every loan reaches its approval


@dataclass
class Officer:
    id: uuid.UUID
    email: str
    headers: dict
    branch: int  # index of its organization


@dataclass
class Approval:
    request_id: str
    workflow_id: str
    level: int
    loan_id: str
    branch: int


# --- set-up -----------------------------------------------------------------------------------------------


async def superuser(http: httpx.AsyncClient, db: Database) -> dict:
    await ensure_superuser(db, *SUPERUSER)
    return await login(http, *SUPERUSER)


async def post(http: httpx.AsyncClient, path: str, headers: dict, body: dict) -> dict:
    response = await http.post(path, headers=headers, json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    return response.json()


async def apply_for_loans(
    http: httpx.AsyncClient, bureau_url: str, db: Database, count: int, officers: int
) -> tuple[list[Officer], list[Approval]]:
    """A rule of its own (one level, loan_officer, quorum 1), ORGS organizations with `officers` loan officers
    between them (officer j in branch j % ORGS) and a member each, and `count` applications spread over the
    branches in turn (approval k in branch k % ORGS), returned once every approval waits on a loan officer."""
    su = await superuser(http, db)
    member_type = f"bench-{uuid.uuid4().hex[:8]}"  # on the member's record, picks this rule over the default tiers
    await post(
        http,
        "/api/v1/approval-rules",
        su,
        {
            "name": member_type,
            "priority": 1,
            "min_amount": "0.01",
            "max_amount": None,
            "member_type": member_type,
            "levels": [{"role": ROLE, "quorum": 1, "deadline_seconds": 3600}],
            "final_outcome": "decline",
        },
    )
    product = await post(
        http,
        "/api/v1/loan-products",
        su,
        {
            "name": f"Bench {member_type}",
            "annual_rate": "0.065",
            "min_term": 6,
            "max_term": 360,
            "min_amount": "1000.00",
            "max_amount": "500000.00",
            "amortization": "declining_balance",
            "frequency": "monthly",
            "day_count": "30/360",
            "grace_days": 10,
            "late_fee": "25.00",
        },
    )
    branches = min(ORGS, officers)
    orgs, accounts = [], []
    for _ in range(branches):
        org = await make_org(http, su, roles=("member",))
        member = org.users["member"]
        response = await http.patch(f"/api/v1/users/{member['id']}", headers=su, json={"member_type": member_type})
        if response.status_code != 200:
            raise RuntimeError(f"PATCH member_type: {response.status_code} {response.text}")
        orgs.append(org)
        accounts.append(await open_account(http, su, org.id, member["id"]))
        scores = {"fixed_scores": {member["id"]: SCORE}}
        (await http.put(f"{bureau_url}/bureau/_control", json=scores)).raise_for_status()
    officer_list: list[Officer | None] = [None] * officers

    async def add_officer(j: int) -> None:
        user, headers = await make_user(http, su, ROLE, orgs[j % branches].id)
        officer_list[j] = Officer(uuid.UUID(user["id"]), user["email"], headers, j % branches)

    await bounded(10, add_officer, range(officers))

    async def apply(k: int) -> None:
        org = orgs[k % branches]
        await post(
            http,
            "/api/v1/loans",
            {**org.headers["member"], "Idempotency-Key": f"bench-{k}"},
            {
                "product_id": product["id"],
                "amount": "5000.00",
                "term": 36,
                "purpose": "Car",
                "monthly_income": "20000.00",
                "monthly_debt": "300.00",
                "deposit_account_id": accounts[k % branches]["id"],
            },
        )

    await bounded(officers, apply, range(count))

    # Waiting = the request row says so (the workflow writes it after setting its level and role) and every
    # "opened" notification is out (one an officer of the branch): none of that set-up may run under the measurement.
    org_ids = [uuid.UUID(org.id) for org in orgs]
    await wait_for(
        db,
        f"{count} approvals waiting on {ROLE}, their emails sent",
        """
        SELECT (SELECT count(*) FROM approval_requests WHERE org_id = ANY(:orgs) AND status = 'open'
                  AND waiting_on_role = :role) = :count
           AND (SELECT count(*) FROM notifications WHERE kind = 'approval_opened') = :emails
           AND NOT EXISTS (SELECT 1 FROM email_outbox WHERE status = 'pending')""",
        {
            "orgs": org_ids,
            "role": ROLE,
            "count": count,
            "emails": sum(
                officers // branches + (1 if k % branches < officers % branches else 0) for k in range(count)
            ),
        },
        timeout=120 + 2 * count,
    )
    async with db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT id, workflow_id, current_level, subject_id, org_id FROM approval_requests "
                    "WHERE org_id = ANY(:orgs) ORDER BY created_at, id"
                ),
                {"orgs": org_ids},
            )
        ).all()
    by_branch: list[list[Approval]] = [[] for _ in range(branches)]
    for r in rows:
        branch = org_ids.index(r.org_id)
        by_branch[branch].append(Approval(str(r.id), r.workflow_id, r.current_level, str(r.subject_id), branch))
    # Approval k of the list in branch k % branches, as the officers are: officers[k % len] may decide approvals[k].
    ordered = [by_branch[k % branches][k // branches] for k in range(count)]
    return [officer for officer in officer_list if officer is not None], ordered


async def wait_for(db: Database, what: str, condition_sql: str, params: dict, timeout: float) -> None:
    """Polls Postgres until `condition_sql` (one boolean) holds."""
    deadline = time.monotonic() + timeout
    while True:
        async with db.session() as session:
            if (await session.execute(text(condition_sql), params)).scalar_one():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.5)


async def wait_loans(db: Database, approvals: list[Approval], status: str = "active") -> None:
    """Each approval sets its loan going (agreement PDF, disbursement: `active`; or `rejected`): lets that finish."""
    await wait_for(
        db,
        f"{len(approvals)} loans {status}",
        "SELECT count(*) = :n FROM loans WHERE id = ANY(:ids) AND status = :status",
        {"n": len(approvals), "ids": [uuid.UUID(a.loan_id) for a in approvals], "status": status},
        timeout=60 + len(approvals),
    )


async def tasks_after_decision(client: Client, approvals: list[Approval], sample: int = 20) -> str:
    """What a decision sets off in Temporal, counted from the histories of `sample` decided approvals: the approval's
    workflow tasks, activity tasks and local activities from its update on, and its loan's from the child's end on."""
    counted = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow tasks",
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity tasks",
        EventType.EVENT_TYPE_MARKER_RECORDED: "markers (local activities, patches)",
    }
    since = {
        "approval": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        "loan": EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
    }
    totals: Counter = Counter()
    chosen = approvals[:sample]
    for approval in chosen:
        for kind, workflow_id in (("approval", approval.workflow_id), ("loan", f"loan-{approval.loan_id}")):
            events = (await client.get_workflow_handle(workflow_id).fetch_history()).events
            start = next(i for i, e in enumerate(events) if e.event_type == since[kind])
            # The update's own workflow task started before it was accepted: count from that task's start.
            if kind == "approval":
                start = max(
                    i
                    for i, e in enumerate(events[:start])
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
                )
            for event in events[start:]:
                if event.event_type in counted:
                    totals[kind, counted[EventType.ValueType(event.event_type)]] += 1
    return "; ".join(
        f"{kind} " + ", ".join(f"{totals[kind, name] / len(chosen):.1f} {name}" for name in counted.values())
        for kind in since
    )


# --- the two ways to decide ------------------------------------------------------------------------------------

Decide = Callable[[Officer, Approval], Awaitable[str]]  # the approval's status after the call


def over_http(http: httpx.AsyncClient, decision: str = "approve") -> Decide:
    async def decide(officer: Officer, approval: Approval) -> str:
        body = {"decision": decision} if decision == "approve" else {"decision": decision, "reason": "bench: rejected"}
        response = await http.post(
            f"/api/v1/approvals/{approval.request_id}/decisions", headers=officer.headers, json=body
        )
        return response.json()["status"] if response.status_code == 200 else f"{response.status_code} {response.text}"

    return decide


def by_update(stack: Stack) -> Decide:
    async def decide(officer: Officer, approval: Approval) -> str:
        state = await stack.client.get_workflow_handle(approval.workflow_id).execute_update(
            ApprovalWorkflow.decide,
            DecisionInput(
                approver_id=officer.id,
                approver_role=ROLE,
                approver_email=officer.email,
                level=approval.level,
                decision="approve",
            ),
        )
        return state.status

    return decide


async def decide_all(
    paths: dict[str, Decide], officers: list[Officer], approvals: list[Approval], outcome: str = "approved"
) -> tuple[dict[str, list[float]], float]:
    """Every officer is an approver taking the next undecided approval of its branch until none is left; the
    approvals take the paths in turn. Returns each path's latencies (seconds) and the seconds the whole batch took."""
    # One iterator a branch, shared by its officers: next() never awaits, so no approval is taken twice.
    undecided = {
        branch: iter([(i, a) for i, a in enumerate(approvals) if a.branch == branch])
        for branch in {officer.branch for officer in officers}
    }
    names = list(paths)
    latencies: dict[str, list[float]] = {name: [] for name in names}

    async def approver(officer: Officer) -> None:
        for i, approval in undecided[officer.branch]:
            path = names[i % len(names)]
            started = time.perf_counter()
            status = await paths[path](officer, approval)
            latencies[path].append(time.perf_counter() - started)
            if status != outcome:
                raise RuntimeError(f"approval {approval.request_id} ({path}): {status}")

    started = time.perf_counter()
    await asyncio.gather(*(approver(officer) for officer in officers))
    return latencies, time.perf_counter() - started


# --- the benchmark --------------------------------------------------------------------------------------------


QUICK = {"steady": 30, "saturation": 50, "rejections": 50}  # bench-quick: each of the 50 approvers decides once a phase


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("approval_roundtrip")
    group.add_argument(
        "--steady",
        type=int,
        default=200,
        metavar="N",
        help="decisions at the steady arrival rate, half over HTTP and half by direct update, then as many rejections "
        "over HTTP (default 200)",
    )
    group.add_argument("--rate", type=float, default=10.0, help="steady arrivals a second, open loop (default 10)")
    group.add_argument(
        "--rejections",
        type=int,
        default=300,
        metavar="N",
        help="decisions that reject, at saturation once the approved loans have disbursed: the decision's own path, "
        "with nothing disbursing (default 300)",
    )
    group.add_argument(
        "--saturation",
        type=int,
        default=300,
        metavar="N",
        help="decisions over HTTP by the concurrent approvers, each deciding again as soon as answered (default 300)",
    )
    try:
        group.add_argument(
            "--concurrency", type=int, default=50, help="concurrent approvers, each its own loan officer (default 50)"
        )
    except argparse.ArgumentError:
        pass  # `python -m bench` registers ach_throughput's --concurrency (same default) for both


def steady_call(
    paths: dict[str, Decide], officers: list[Officer], approvals: list[Approval], outcome: str = "approved"
):
    """Arrival k: approval k, decided by the paths in turn and the officers in turn; (path, reached `outcome`?)."""
    names = list(paths)

    async def call(k: int) -> tuple[str, bool]:
        path = names[k % len(names)]
        return path, await paths[path](officers[k % len(officers)], approvals[k]) == outcome

    return call


def row(label: str, stats: Stats) -> str:
    ms = [1000 * x for x in (stats.p50, stats.p95, stats.p99)]
    return f"  {label:<24}{stats.count:>5}" + "".join(f"{x:>9.1f}" for x in ms) + f"{stats.errors:>8}"


async def run(args: argparse.Namespace) -> None:
    steady, saturation, rate, concurrency = args.steady, args.saturation, args.rate, args.concurrency
    rejections = args.rejections
    load_before = load()
    settings = {
        "DB_POOL_SIZE": "50",  # a pooled connection per approver in flight, in the API as in the worker
        "WORKER_MAX_CONCURRENT_ACTIVITIES": "500",  # the "opened" emails must not hold back record_decision
        "ACCESS_TOKEN_TTL": "PT2H",
    }  # the officers log in once, before the long set-up
    async with running_stack(settings, name="bench-approval") as stack:
        db = Database(stack.database_url, pool_size=2)
        try:
            async with httpx.AsyncClient(
                base_url=stack.api_url, timeout=120, limits=httpx.Limits(max_connections=concurrency)
            ) as http:
                officers, approvals = await apply_for_loans(
                    http, stack.sandbox_url, db, 2 * WARMUP + 2 * steady + saturation + rejections, concurrency
                )
                paths = {"direct": by_update(stack), "http": over_http(http)}
                warmup, approvals = approvals[: 2 * WARMUP], approvals[2 * WARMUP :]
                steadily, saturating, rejecting_steadily, rejecting = (
                    approvals[:steady],
                    approvals[steady : steady + saturation],
                    approvals[steady + saturation : 2 * steady + saturation],
                    approvals[2 * steady + saturation :],
                )
                await decide_all(paths, officers, warmup)
                await wait_loans(db, warmup)
                load_measuring = load()
                meter = stack.cpu_meter()
                steady_run = await run_open_loop(rate, steady / rate, steady_call(paths, officers, steadily))
                await wait_loans(db, steadily)
                steady_cpu = meter.per(steady, "decision")
                meter.reset()
                saturated, elapsed = await decide_all({"http": over_http(http)}, officers, saturating)
                await wait_loans(db, saturating)
                saturated_cpu = meter.per(saturation, "decision")
                meter.reset()
                reject = {"http": over_http(http, "reject")}
                steady_rejections = await run_open_loop(
                    rate, steady / rate, steady_call(reject, officers, rejecting_steadily, "rejected")
                )
                await wait_loans(db, rejecting_steadily, "rejected")
                steady_rejections_cpu = meter.per(steady, "decision")
                meter.reset()
                rejected, rejecting_took = await decide_all(reject, officers, rejecting, outcome="rejected")
                await wait_loans(db, rejecting, "rejected")
                rejected_cpu = meter.per(rejections, "decision")
                rejection_tasks = await tasks_after_decision(stack.client, rejecting)
                rss = stack.peak_rss()
        finally:
            await db.close()

    per_path = by_endpoint(steady_run.samples)
    over_http_stats, direct_stats = per_path["http"], per_path["direct"]
    saturated_stats = stats([Sample("http", seconds, True) for seconds in saturated["http"]])
    rejected_stats = stats([Sample("http", seconds, True) for seconds in rejected["http"]])
    steady_rejected_stats = stats(steady_rejections.samples)
    print(
        f"""
Approval decision round trip — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}
  one level (loan_officer, quorum 1): a decision closes its approval and sets its loan disbursing; one Temporal dev
  server, Postgres, money and interactive workers, the API on {stack.api_processes} process(es), on this machine; {WARMUP} warm-up decisions a path first; load
  average {load_before} before the run, {load_measuring} when measuring began (after the set-up)
  steady: {steady} decisions arriving at {rate:g}/s (open loop: latency from the scheduled arrival), over HTTP and by
  direct update in turn, by {len(officers)} loan officers; {steady_run.seconds:.1f} s
                             calls   p50 ms   p95 ms   p99 ms  errors
{row("HTTP decision call", over_http_stats)}
{row("direct Temporal update", direct_stats)}
  ratio HTTP / direct       p50 {over_http_stats.p50 / direct_stats.p50:.2f}, \
p95 {over_http_stats.p95 / direct_stats.p95:.2f}
  both paths by quarter of the arrivals (p50 / p95 ms): \
{", ".join(f"{1000 * q.p50:.0f} / {1000 * q.p95:.0f}" for q in by_quarter(steady_run.samples))}
  CPU a decision, from the first arrival until every loan has disbursed: {steady_cpu}
  saturation: {concurrency} approvers over HTTP, each deciding again once answered (closed loop)
  {len(saturated["http"])} decisions in {elapsed:.1f} s = {len(saturated["http"]) / elapsed:.1f} decisions/s
{row("HTTP decision call", saturated_stats)}
  CPU a decision, until every loan has disbursed: {saturated_cpu}
  the decision's own path: the same approvers rejecting (the loan closes, nothing disburses), once the approved
  loans have disbursed; first {steady} arriving at {rate:g}/s (open loop), over HTTP:
{row("HTTP decision call", steady_rejected_stats)}
  by quarter of the arrivals (p50 / p95 ms): \
{", ".join(f"{1000 * q.p50:.0f} / {1000 * q.p95:.0f}" for q in by_quarter(steady_rejections.samples))}
  CPU a decision, until every loan is rejected: {steady_rejections_cpu}
  then at saturation ({concurrency} approvers, closed loop): {len(rejected["http"])} in {rejecting_took:.1f} s = \
{len(rejected["http"]) / rejecting_took:.1f} decisions/s
{row("HTTP decision call", rejected_stats)}
  CPU a decision, until every loan is rejected: {rejected_cpu}
  what a rejection sets off in Temporal, a decision (from 20 histories): {rejection_tasks}
  peak RSS: {rss}""",
        flush=True,
    )
