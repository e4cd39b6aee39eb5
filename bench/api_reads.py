"""Reads under steady load (PRODUCT.md §5): p50/p95/p99 of the main list and detail endpoints (accounts, payments,
loans, with their usual filters and pages) at a fixed arrival rate, on a database seeded with N payments
(1,000,000 by default), N/10 loans and their ledger (bench/read_seed.py).

The load is open-loop (bench/open_loop.py): request k leaves at k/rate s whatever the others are doing, over at
most `--read-clients` connections, each request as one of as many users (an org admin, an operator or a member,
of different organizations, cycling); a latency runs from the scheduled time, so queueing counts. A short
warm-up at the same rate goes first and is not counted.

Before the load, every endpoint's statements are captured as the API really sends them (the app in this
process, bench/query_plans.py) for a user of each role, and EXPLAINed: a sequential scan of a big table
(payments, loans, the ledger's) fails the benchmark after its figures are printed.

Also printed: the API's and the worker's peak RSS (VmHWM, each process and its children), and the cache hit rate
over the measured runs when the API exports `backoffice_cache_requests_total` on /metrics.

Figures (2026-12-01 21:49 UTC, 2 vCPU AMD EPYC, 23.5 GiB, load average 7.8 from other jobs; embedded PostgreSQL
16, 128 MB shared_buffers): 1,000,000 payments, 100,000 loans, 1,765,813 journal entries, 3,531,626 postings,
seeded and checked in 587 s. 100 users, 30 s a rate: at 10 requests/s p50 50 ms, p95 198 ms, p99 300 ms, no
errors (target met, narrowly); at 25/s only 3.9/s answered, 355 of 750 errors; at 50/s 3.0/s answered, 1,200 of
1,500 errors. The errors are 500s, sqlalchemy's QueuePool timeout: a list request holds one pooled connection for
the signed-in user (get_current_user's session, never given back before the response) and waits for a second
(its read session, on the same engine when DATABASE_READ_URL is unset); past 10 such requests at once, the 20
connections are all held by requests waiting for another, and each waits out the 30 s pool timeout. API peak RSS
233 MiB, worker 181 MiB. The plans: no sequential scan of a big table (after migration 0017 and the member scope
in core/access.py; before them every account read summed all postings and holds, and every member's payment list
read all payments).

2026-12-03 08:36 UTC, quiet machine, the cache and 1 GB shared_buffers: seeded in 105.6 s; p95 39 ms at 10/s, 35 ms at
25/s, 1,461 ms at 50/s (one API process saturated), no errors; cache hits 90.2 %; API peak RSS 346 MiB.

`python -m bench api_reads [--read-payments N] [--read-rates R1,R2] [--read-seconds S] [--read-clients C]`
(`--read-payments 20000`: a quick run of a couple of minutes)."""

import argparse
import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from bench import query_plans
from bench.ach_throughput import load, machine
from bench.open_loop import Run, Stats, by_endpoint, run_open_loop, stats
from bench.read_seed import PASSWORD, Shape, seed
from bench.stack import METRICS_TOKEN, SHAREABLE_SETTINGS, Stack, running_stack, tree_peak_rss
from core.config import Settings
from core.db import libpq_url

ROLES = ("org_admin", "operator", "member")
TARGET_P95 = 0.200
WARMUP_SECONDS = 5.0
SAMPLE_IDS = 20  # of each kind, per client, for the detail GETs
MONTH_AGO = datetime.now(UTC) - timedelta(days=30)  # the seeded payments span a year up to now


@dataclass
class Client:
    """One user of the load, with a sample of what they can see."""

    role: str
    org: int
    headers: dict[str, str] = field(default_factory=dict)
    accounts: list[str] = field(default_factory=list)
    payments: list[str] = field(default_factory=list)
    loans: list[str] = field(default_factory=list)


# --- the request mix ------------------------------------------------------------------------------------------

Build = Callable[[Client, random.Random], tuple[str, dict] | None]  # (path, query) or None: nothing to ask


def one_of(ids: list[str], rng: random.Random) -> str | None:
    return rng.choice(ids) if ids else None


def _detail(kind: str, ids: Callable[[Client], list[str]], suffix: str = "") -> Build:
    def build(client: Client, rng: random.Random) -> tuple[str, dict] | None:
        chosen = one_of(ids(client), rng)
        return (f"/api/v1/{kind}/{chosen}{suffix}", {}) if chosen else None

    return build


def _list(kind: str, query: dict | Callable[[Client, random.Random], dict | None]) -> Build:
    def build(client: Client, rng: random.Random) -> tuple[str, dict] | None:
        params = query(client, rng) if callable(query) else query
        return None if params is None else (f"/api/v1/{kind}", {"limit": 50, **params})

    return build


def _by_account(client: Client, rng: random.Random) -> dict | None:
    account = one_of(client.accounts, rng)
    return {"account_id": account} if account else None


# name, weight, request: what a back-office screen asks most (lists first, then the rows opened from them)
ENDPOINTS: list[tuple[str, int, Build]] = [
    ("GET /accounts", 8, _list("accounts", {})),
    ("GET /accounts?type=checking&offset", 4, _list("accounts", {"type": "checking", "offset": 20, "limit": 20})),
    ("GET /accounts/{id}", 8, _detail("accounts", lambda c: c.accounts)),
    ("GET /accounts/{id}/entries", 8, _detail("accounts", lambda c: c.accounts, "/entries")),
    ("GET /payments", 12, _list("payments", {})),
    ("GET /payments?status=completed", 5, _list("payments", {"status": "completed"})),
    ("GET /payments?kind=ach_credit", 4, _list("payments", {"kind": "ach_credit"})),
    ("GET /payments?account_id", 6, _list("payments", _by_account)),
    ("GET /payments?offset=100", 4, _list("payments", {"offset": 100})),
    ("GET /payments?created_from", 3, _list("payments", {"created_from": f"{MONTH_AGO:%Y-%m-%dT%H:%M:%SZ}"})),
    ("GET /payments/{id}", 12, _detail("payments", lambda c: c.payments)),
    ("GET /loans", 8, _list("loans", {})),
    ("GET /loans?status=active", 4, _list("loans", {"status": "active"})),
    ("GET /loans?in_arrears=true", 3, _list("loans", {"in_arrears": "true"})),
    ("GET /loans/{id}", 6, _detail("loans", lambda c: c.loans)),
]


def request_for(k: int, clients: list[Client], seed: int = 12) -> tuple[Client, str, str, dict]:
    """Request k of the run: its client (cycling), endpoint (by weight) and path; an endpoint with nothing to ask
    for that client (a member without loans) gives way to its list."""
    rng = random.Random(seed * 1_000_003 + k)
    client = clients[k % len(clients)]
    name, _, build = rng.choices(ENDPOINTS, weights=[w for _, w, _ in ENDPOINTS])[0]
    built = build(client, rng)
    if built is None:
        name, _, build = next(e for e in ENDPOINTS if e[0] == "GET /" + name.split("/")[1].split("?")[0])
        built = build(client, rng)
    assert built is not None  # a plain list always has something to ask
    return client, name, *built


# --- setting up the users -------------------------------------------------------------------------------------


def choose_clients(shape: Shape, count: int) -> list[Client]:
    """`count` users, cycling through the organizations and, within each, the roles."""
    return [Client(role=ROLES[j % len(ROLES)], org=j % shape.orgs + 1) for j in range(count)]


def email(client: Client, index: int, shape: Shape) -> str:
    if client.role != "member":
        return f"{client.role}-{client.org}@reads.bench.example"
    # The org's members are accounts org, org + orgs, org + 2·orgs, ...: a different one for each client.
    member = client.org + shape.orgs * (index // shape.orgs % (shape.accounts // shape.orgs))
    return f"member-{member}@reads.bench.example"


async def sign_in(http: httpx.AsyncClient, clients: list[Client], shape: Shape) -> None:
    slots = asyncio.Semaphore(4)  # argon2 verifies are CPU-bound on purpose

    async def one(index: int, client: Client) -> None:
        async with slots:
            response = await http.post(
                "/api/v1/auth/login", data={"username": email(client, index, shape), "password": PASSWORD}
            )
        response.raise_for_status()
        client.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))


async def sample_ids(database_url: str, clients: list[Client], shape: Shape) -> None:
    """What each client will open: a random sample of the accounts, payments and loans they can see."""
    staff = {
        "accounts": "SELECT id FROM ledger_accounts WHERE org_id = md5('org:' || %(org)s)::uuid",
        "payments": "SELECT id FROM payments WHERE org_id = md5('org:' || %(org)s)::uuid",
        "loans": "SELECT id FROM loans WHERE org_id = md5('org:' || %(org)s)::uuid",
    }
    member = {
        "accounts": "SELECT id FROM ledger_accounts WHERE owner_id = %(user)s",
        "payments": "SELECT id FROM payments WHERE from_account_id IN "
        "(SELECT id FROM ledger_accounts WHERE owner_id = %(user)s) UNION "
        "SELECT id FROM payments WHERE to_account_id IN (SELECT id FROM ledger_accounts WHERE owner_id = %(user)s)",
        "loans": "SELECT id FROM loans WHERE applicant_id = %(user)s",
    }
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as conn:
        for index, client in enumerate(clients):
            user = await (
                await conn.execute("SELECT id FROM users WHERE email = %s", (email(client, index, shape),))
            ).fetchone()
            assert user is not None  # seeded
            for kind, sql in (member if client.role == "member" else staff).items():
                rows = await (
                    await conn.execute(
                        f"SELECT id FROM ({sql}) AS visible ORDER BY random() LIMIT {SAMPLE_IDS}",
                        {"org": client.org, "user": user[0]},
                    )
                ).fetchall()
                setattr(client, kind, [str(r[0]) for r in rows])


# --- the plans ------------------------------------------------------------------------------------------------


@dataclass
class Plans:
    lines: list[str]
    bad: list[str]  # sequential scans of a big table


async def check_plans(stack: Stack, clients: list[Client]) -> Plans:
    """Each endpoint, as a user of each role, through the app in this process: the scans of its statements."""
    settings = Settings(
        database_url=stack.database_url,
        temporal_address=stack.env["TEMPORAL_ADDRESS"],
        task_queue=stack.task_queue,
        log_level="WARNING",
        log_json=False,
    )
    app = create_app(settings)
    lines, bad = [], []
    one_of_each = [next(c for c in clients if c.role == role) for role in ROLES]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reads") as http,
        await psycopg.AsyncConnection.connect(libpq_url(stack.database_url), autocommit=True) as conn,
    ):
        rows = await query_plans.table_rows(conn)
        for name, _, build in ENDPOINTS:
            found: set[str] = set()
            for client in one_of_each:
                built = build(client, random.Random(0))
                if built is None:
                    continue
                path, params = built
                with query_plans.captured(app.state.db.engine) as statements:
                    response = await http.get(path, params=params, headers=client.headers)
                if response.status_code != 200:
                    bad.append(f"{name} as {client.role}: {response.status_code} {response.text[:200]}")
                for statement, parameters in statements:
                    for scan in query_plans.scans(await query_plans.explain(conn, statement, parameters)):
                        found.add(str(scan))
                        if scan.node == "Seq Scan" and rows.get(scan.relation, 0) >= query_plans.BIG:
                            bad.append(f"{name} as {client.role}: Seq Scan on {scan.relation} in {statement[:120]!r}…")
            lines.append(f"    {name:<36} {'; '.join(sorted(found)) or '(no watched table)'}")
    return Plans(lines, bad)


# --- peak memory and the cache --------------------------------------------------------------------------------


def cache_counts(exposition: str) -> tuple[float, float] | None:
    """(hits, lookups) summed over `backoffice_cache_requests_total`'s series (a hit: a label valued "hit"); None
    when the API exports no such metric."""
    hits = total = 0.0
    present = False
    for family in text_string_to_metric_families(exposition):
        if family.name not in ("backoffice_cache_requests", "backoffice_cache_requests_total"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                present = True
                total += sample.value
                hits += sample.value if "hit" in sample.labels.values() else 0
    return (hits, total) if present else None


async def scrape_cache(http: httpx.AsyncClient) -> tuple[float, float] | None:
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    response.raise_for_status()
    return cache_counts(response.text)


def cache_line(before: tuple[float, float] | None, after: tuple[float, float] | None) -> str:
    if before is None or after is None:
        return "cache: not present (no backoffice_cache_requests_total on /metrics)"
    hits, lookups = after[0] - before[0], after[1] - before[1]
    rate = f"{hits / lookups:.1%}" if lookups else "n/a"
    return f"cache hit rate {rate} ({hits:,.0f} of {lookups:,.0f} lookups over the measured runs; target >= 80%)"


# --- the benchmark --------------------------------------------------------------------------------------------

QUICK = {
    "read_payments": 20_000,
    "read_rates": [5.0, 10.0],
    "read_seconds": 5.0,
    "read_clients": 30,
}  # make bench-quick


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("api_reads")
    group.add_argument(
        "--read-payments",
        type=int,
        default=1_000_000,
        metavar="N",
        help="payments to seed; loans, accounts and organizations scale with it (default 1,000,000; "
        "20000 for a quick run)",
    )
    group.add_argument(
        "--read-rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[10.0, 25.0, 50.0],
        metavar="R1,R2,...",
        help="requests a second, open-loop, one measured run each, the first shown by endpoint (default 10,25,50)",
    )
    group.add_argument("--read-seconds", type=float, default=30.0, help="seconds of each measured run (default 30)")
    group.add_argument("--read-clients", type=int, default=100, help="users and connections (default 100)")


async def drive(stack: Stack, clients: list[Client], rate: float, seconds: float, offset: int) -> Run:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        timeout=60,
        limits=httpx.Limits(max_connections=len(clients), max_keepalive_connections=len(clients)),
    ) as http:
        # Requests beyond the connections wait here, not in httpcore's pool, whose bookkeeping grows with the square
        # of the requests waiting in it (a backlog of thousands made the driver, not the API, the bottleneck).
        connections = asyncio.Semaphore(len(clients))

        async def call(k: int) -> tuple[str, bool]:
            client, name, path, params = request_for(offset + k, clients)
            try:
                async with connections:
                    response = await http.get(path, params=params, headers=client.headers)
                return name, response.status_code == 200
            except httpx.HTTPError:
                return name, False

        return await run_open_loop(rate, seconds, call)


def row(label: str, s: Stats) -> str:
    return (
        f"    {label:<36} {s.count:6d} {s.errors:6d} {s.p50 * 1000:8.0f} {s.p95 * 1000:8.0f} {s.p99 * 1000:8.0f}"
        f"{'' if s.p95 < TARGET_P95 else '  > target'}"
    )


async def run(args: argparse.Namespace) -> None:
    shape, load_before, rates = Shape.for_payments(args.read_payments), load(), args.read_rates
    async with running_stack(SHAREABLE_SETTINGS, name="bench-reads", shareable=True) as stack:
        seeding, counts = await seed(stack.database_url, shape)
        clients = choose_clients(shape, args.read_clients)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http:
            await sign_in(http, clients, shape)
            await sample_ids(stack.database_url, clients, shape)
            plans = await check_plans(stack, clients)
            await drive(stack, clients, rates[0], WARMUP_SECONDS, offset=10**9)
            cache_before = await scrape_cache(http)
            runs = []
            for i, rate in enumerate(rates):
                runs.append(await drive(stack, clients, rate, args.read_seconds, offset=i * 10**7))
            cache_after = await scrape_cache(http)
        api_rss, worker_rss = (tree_peak_rss(stack.named[name][0].pid) for name in ("api", "worker"))
        if plans.bad:
            stack.keep = True
    first = runs[0]
    print(
        f"""
Reads under steady load — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}
  seeded in {seeding:.1f} s (VACUUM ANALYZE and checks included): {counts["payments"]:,} payments, {counts["loans"]:,} loans, {counts["journal_entries"]:,} journal entries, {counts["postings"]:,} postings,
  {counts["payment_events"]:,} payment events, {counts["holds"]:,} holds, {counts["ledger_accounts"]:,} ledger accounts, {counts["users"]:,} users in {shape.orgs} organizations; load average {load_before} before the run
  open loop, {args.read_seconds:g} s a rate: {len(clients)} users ({", ".join(ROLES)} of {min(len(clients), shape.orgs)} organizations) over at most {len(clients)} connections; the API on {stack.api_processes} process(es), one worker
  at {rates[0]:g} requests/s ({len(first.samples):,} sent, {len(first.samples) / first.seconds:.1f}/s answered, the driver at most {first.max_lag * 1000:.0f} ms late):
    {"endpoint":<36} {"count":>6} {"errors":>6} {"p50 ms":>8} {"p95 ms":>8} {"p99 ms":>8}
{chr(10).join(row(name, s) for name, s in by_endpoint(first.samples).items())}
{chr(10).join(row(f"all at {rate:g}/s ({len(r.samples) / r.seconds:.1f}/s answered)", stats(r.samples)) for rate, r in zip(rates, runs, strict=True))}
  target p95 < {TARGET_P95 * 1000:.0f} ms at {len(clients)} clients: \
{", ".join(f"{'met' if stats(r.samples).p95 < TARGET_P95 else 'NOT met'} at {rate:g}/s" for rate, r in zip(rates, runs, strict=True))}
  {cache_line(cache_before, cache_after)}
  peak RSS (VmHWM): API {api_rss}; worker {worker_rss}
  scans of the big tables by each endpoint's statements (EXPLAIN, as an org admin, an operator and a member):
{chr(10).join(plans.lines)}""",
        flush=True,
    )
    if plans.bad:
        raise RuntimeError("bad query plans or answers:\n  " + "\n  ".join(plans.bad))
