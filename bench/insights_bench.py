"""Insights on a big member (PRODUCT.md §5; README: Insights): p50/p95 of each insight endpoint and of the money
summary for ONE member with 100,000 imported lines (by default) over three years, in three currencies, beside
other members' lines (as many again, spread over 50 members), all written with COPY, then VACUUM ANALYZE.

Requests go one at a time (latency, not throughput) over the real API, after a warm-up that also fetches the
exchange rates once from the sandbox (then cached). Before timing, every endpoint's statements are captured as the
API sends them (the app in this process, bench/query_plans.py) and EXPLAINed: a sequential scan of
imported_transactions fails the benchmark after its figures are printed. Target: p95 well under 200 ms.

`python -m bench insights [--insights-lines N] [--insights-requests K]`

Figures: bench/README.md ("Insights")."""

import argparse
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from api.main import create_app
from bench import query_plans
from bench.ach_throughput import load, machine
from bench.stack import SHAREABLE_SETTINGS, Stack, running_stack
from core.config import Settings
from core.db import libpq_url
from core.security import hash_password
from tests.planted import planted_import_psycopg

PASSWORD = "insights-bench-password"
TARGET_P95 = 0.200
OTHER_MEMBERS = 50
CATEGORIES = ["groceries", "dining", "transport", "fuel", "housing", "utilities", "shopping", "entertainment",
              "health", "travel", "subscriptions", "fees", "transfers"]  # fmt: skip
CURRENCIES = ["USD"] * 18 + ["EUR", "GBP"]  # 90 % in dollars
ENDPOINTS: list[tuple[str, str, dict[str, Any]]] = [
    ("cash-flow (12 months)", "/api/v1/insights/cash-flow", {}),
    ("top-merchants (12 months)", "/api/v1/insights/top-merchants", {"limit": 10}),
    ("categories (12 months)", "/api/v1/insights/categories", {}),
    ("burn-rate (6 months)", "/api/v1/insights/burn-rate", {"months": 6}),
    ("net-worth (12 months)", "/api/v1/insights/net-worth", {}),
    ("net-worth (3 years)", "/api/v1/insights/net-worth", {"from": "{three_years_ago}"}),
    ("money summary", "/api/v1/money/summary", {}),
    ("baseline: GET /me", "/api/v1/me", {}),  # the API's floor on this machine: sign-in check, no query of money
]


def lines(rng: random.Random, org: uuid.UUID, user: uuid.UUID, planted: dict, count: int, today: date):
    merchants = [f"Merchant {i:03d}" for i in range(300)]
    for i in range(count):
        posted_on = today - timedelta(days=rng.randrange(3 * 365))
        if rng.random() < 0.1:
            amount, merchant, category = Decimal(rng.randrange(100_000, 500_000)) / 100, "Employer", "salary"
        else:
            amount = -Decimal(rng.randrange(100, 30_000)) / 100
            merchant, category = rng.choice(merchants), rng.choice(CATEGORIES)
        yield (
            org,
            user,
            planted["import"],
            planted["account"],
            "csv",
            posted_on,
            amount,
            rng.choice(CURRENCIES),
            merchant,
            category,
            f"bench-{user}-{i}",
        )


async def seed(database_url: str, count: int) -> tuple[uuid.UUID, float]:
    """The organization, the member and the others, their lines: (the member's id, seconds taken)."""
    started = time.monotonic()
    rng, today = random.Random(7), datetime.now(UTC).date()
    org, member = uuid.uuid4(), uuid.uuid4()
    others = [uuid.uuid4() for _ in range(OTHER_MEMBERS)]
    password = hash_password(PASSWORD)
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as conn:
        await conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Insights bench')", (org,))
        for user in [member, *others]:
            await conn.execute(
                "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                "VALUES (%s, %s, 'Bench member', %s, 'member', %s)",
                (user, f"{user}@insights.bench.example", password, org),
            )
        # Every line is of an import of one of its member's external accounts (migration 0048).
        planted = {user: await planted_import_psycopg(conn, org, user) for user in [member, *others]}
        columns = (
            "org_id, user_id, import_id, external_account_id, source, posted_on, amount, currency, merchant, "
            "category_key, dedup_key"
        )
        async with conn.cursor() as cursor, cursor.copy(f"COPY imported_transactions ({columns}) FROM STDIN") as copy:
            for row in lines(rng, org, member, planted[member], count, today):
                await copy.write_row(row)
            for other in others:
                for row in lines(rng, org, other, planted[other], count // OTHER_MEMBERS, today):
                    await copy.write_row(row)
        await conn.execute("VACUUM ANALYZE imported_transactions")
    return member, time.monotonic() - started


def scans_of(plan: dict) -> list[str]:
    found = []
    if plan.get("Relation Name") == "imported_transactions" and plan["Node Type"].endswith("Scan"):
        found.append(f"{plan['Node Type']}" + (f" ({plan['Index Name']})" if plan.get("Index Name") else ""))
    for child in plan.get("Plans", []):
        found.extend(scans_of(child))
    return found


def params_of(params: dict) -> dict:
    three_years_ago = (datetime.now(UTC).date() - timedelta(days=3 * 365)).isoformat()
    return {k: v.format(three_years_ago=three_years_ago) if isinstance(v, str) else v for k, v in params.items()}


async def check_plans(stack: Stack, headers: dict) -> tuple[list[str], list[str]]:
    settings = Settings(
        database_url=stack.database_url,
        temporal_address=stack.env["TEMPORAL_ADDRESS"],
        task_queue=stack.task_queue,
        fx_base_url=stack.sandbox_url,
        log_level="WARNING",
        log_json=False,
    )
    app = create_app(settings)
    shown, bad = [], []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://insights") as http,
        await psycopg.AsyncConnection.connect(libpq_url(stack.database_url), autocommit=True) as conn,
    ):
        for name, path, params in ENDPOINTS:
            with query_plans.captured(app.state.db.engine) as statements:
                response = await http.get(path, params=params_of(params), headers=headers)
            if response.status_code != 200:
                bad.append(f"{name}: {response.status_code} {response.text[:200]}")
            found: set[str] = set()
            for statement, parameters in statements:
                for scan in scans_of(await query_plans.explain(conn, statement, parameters)):
                    found.add(scan)
                    if scan.startswith("Seq Scan"):
                        bad.append(f"{name}: Seq Scan on imported_transactions in {statement[:120]!r}…")
            shown.append(f"    {name:<28} {'; '.join(sorted(found)) or '(no imported_transactions scan)'}")
    return shown, bad


async def timings(http: httpx.AsyncClient, headers: dict, path: str, params: dict, requests: int) -> list[float]:
    out = []
    for _ in range(requests):
        began = time.perf_counter()
        response = await http.get(path, params=params, headers=headers)
        out.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


QUICK = {"insights_lines": 20_000, "insights_requests": 15}  # make bench-quick


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("insights")
    group.add_argument("--insights-lines", type=int, default=100_000, metavar="N", help="the member's lines")
    group.add_argument("--insights-requests", type=int, default=50, metavar="K", help="timed requests an endpoint")


async def run(args: argparse.Namespace) -> None:
    load_before = load()
    async with running_stack(SHAREABLE_SETTINGS, name="bench-insights", shareable=True) as stack:
        member, seconds = await seed(stack.database_url, args.insights_lines)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http:
            login = await http.post(
                "/api/v1/auth/login", data={"username": f"{member}@insights.bench.example", "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            for _, path, params in ENDPOINTS:  # warm-up: connections, caches, the exchange rates fetched once
                await timings(http, headers, path, params_of(params), 3)
            plans, bad = await check_plans(stack, headers)
            figures = []
            for name, path, params in ENDPOINTS:
                took = await timings(http, headers, path, params_of(params), args.insights_requests)
                figures.append((name, p(took, 50), p(took, 95)))
    print(f"\n== insights: one member with {args.insights_lines:,} lines (+ as many over {OTHER_MEMBERS} others) ==")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load average {load_before} before, {load()} after")
    print(
        f"seeded (COPY, VACUUM ANALYZE) in {seconds:.1f} s; {args.insights_requests} requests an endpoint, one at a time"
    )
    for name, p50, p95 in figures:
        verdict = "ok" if p95 < TARGET_P95 else f"OVER the {TARGET_P95 * 1000:.0f} ms target"
        print(f"    {name:<28} p50 {p50 * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms   {verdict}")
    print("  plans (imported_transactions):")
    print("\n".join(plans))
    if bad:
        raise SystemExit("insights benchmark: " + "; ".join(bad))
