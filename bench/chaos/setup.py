"""The run's data, made through the API (and the interest accruals by SQL, as the posting benchmark seeds them)
before any fault is switched on: an organization paying and collecting by ACH with its external accounts, members
with loans to apply for and the loan officer who approves them, an organization's bills on auto-pay."""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date

import httpx

from bench.chaos.retry import ok
from bench.chaos.scenarios import ACH_SCENARIOS, BILL_CENTS, ach_plan
from bench.interest_posting import seed as seed_accruals
from bench.stack import Stack
from core.db import Database
from domain.users import ensure_superuser
from tests.conftest import login, make_org, make_user, open_account

SUPERUSER = ("root@chaos.example", "chaos-superuser-password")
MEMBER_TYPE = "chaos"
LOAN_AMOUNT, LOAN_TERM = "300.00", 2  # 0 %, equal principal: two installments of 150.00, which the bank settles
BILL_DAY = date(2031, 6, 2)  # the bill run's day: far ahead, so a bill due again is upcoming, not overdue
CONCURRENCY = 8  # set-up requests in flight (each login hashes a password: CPU-bound)


@dataclass
class LoanCase:
    member: dict  # headers
    member_id: str
    deposit_account_id: str
    external_account_id: str | None  # auto-debited loans are paid out to it and pull each installment from it
    auto_debit: bool
    loan_id: str = ""


@dataclass
class World:
    su: dict
    ach_admin: dict
    ach_account_id: str
    payments: list[tuple[str, str, str, str]] = field(default_factory=list)  # key, scenario name, amount, external
    loan_officer: dict = field(default_factory=dict)
    product_id: str = ""
    loans: list[LoanCase] = field(default_factory=list)
    bills: dict[str, str] = field(default_factory=dict)  # bill id -> expected status
    savings_accounts: int = 0


async def bounded(calls, concurrency: int = CONCURRENCY) -> list:
    slots = asyncio.Semaphore(concurrency)

    async def one(call):
        async with slots:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


async def superuser(http: httpx.AsyncClient, database_url: str) -> dict:
    db = Database(database_url, pool_size=1)
    await ensure_superuser(db, *SUPERUSER)
    await db.close()
    return await login(http, *SUPERUSER)


async def link(http: httpx.AsyncClient, sandbox_url: str, admin: dict, owner_id: str | None = None) -> list[dict]:
    """A new item at the sandbox's first bank: its checking and savings accounts, linked for the organization."""
    token = (await ok(http, "POST", "/api/v1/external-accounts/link-token", headers=admin, json={}))["link_token"]
    public = await ok(
        http,
        "POST",
        f"{sandbox_url}/linking/sandbox/public_token/create",
        json={"client_id": "backoffice", "secret": "sandbox-secret", "institution_id": "ins_1", "link_token": token},
    )
    return await ok(
        http,
        "POST",
        "/api/v1/external-accounts/link",
        headers=admin,
        json={"public_token": public["public_token"], "owner_id": owner_id},
    )


async def ach_payers(http: httpx.AsyncClient, stack: Stack, world: World, n: int) -> None:
    """The payments' organization: one funded account, one external account shared by the scenarios whose return
    leaves the account as it is, and one of its own for each payment whose return disables or blocks it."""
    org = await make_org(http, world.su, roles=("org_admin", "member"))
    world.ach_admin = org.headers["org_admin"]
    account = await open_account(http, world.su, org.id, org.users["member"]["id"], deposit="100000000.00")
    world.ach_account_id = account["id"]
    shared = (await link(http, stack.sandbox_url, world.ach_admin))[0]["id"]
    plan = ach_plan(n)
    own_needed = sum(1 for scenario, _ in plan if scenario.own_external_account)
    linked = await bounded(link(http, stack.sandbox_url, world.ach_admin) for _ in range((own_needed + 1) // 2))
    own = iter(a["id"] for accounts in linked for a in accounts)
    for i, (scenario, amount) in enumerate(plan):
        external = next(own) if scenario.own_external_account else shared
        world.payments.append((f"chaos-{i}-{scenario.name}", scenario.name, amount, external))


async def borrowers(http: httpx.AsyncClient, stack: Stack, world: World, m: int) -> None:
    """One organization: a loan officer, m members (half with auto-debit from a linked bank account, half repaying
    by hand), a 0 % product and the rule that routes the members' loans to the officer."""
    org = await make_org(http, world.su, roles=("org_admin", "loan_officer"))
    world.loan_officer = org.headers["loan_officer"]
    product = await ok(
        http,
        "POST",
        "/api/v1/loan-products",
        headers=world.su,
        json={
            "name": f"Chaos {uuid.uuid4().hex[:6]}",
            "annual_rate": "0",
            "min_term": 1,
            "max_term": 12,
            "min_amount": "100.00",
            "max_amount": "10000.00",
            "amortization": "equal_principal",
            "frequency": "monthly",
            "day_count": "30/360",
            # Longer than the run: an installment pulled late under the faults is never charged a late fee.
            "grace_days": 365,
            "late_fee": "15.00",
        },
    )
    world.product_id = product["id"]
    await ok(
        http,
        "POST",
        "/api/v1/approval-rules",
        headers=world.su,
        json={
            "name": MEMBER_TYPE,
            "priority": 1,
            "min_amount": "0.01",
            "max_amount": None,
            "member_type": MEMBER_TYPE,
            "levels": [
                {
                    "role": "loan_officer",
                    "quorum": 1,
                    "deadline_seconds": 3600,
                    "reminder_seconds": 0,
                    "escalation_role": None,
                }
            ],
            "final_outcome": "decline",
        },
    )

    async def member(i: int) -> LoanCase:
        user, headers = await make_user(http, world.su, "member", org.id)
        await ok(
            http,
            "PATCH",
            f"/api/v1/users/{user['id']}",
            headers=org.headers["org_admin"],
            json={"member_type": MEMBER_TYPE},
        )
        auto = i % 2 == 0
        # The hand-repaid loan is paid off from this deposit; the auto-debited one pays out and pulls by ACH.
        account = await open_account(http, world.su, org.id, user["id"], deposit="1000.00")
        external = (
            (await link(http, stack.sandbox_url, org.headers["org_admin"], user["id"]))[0]["id"] if auto else None
        )
        return LoanCase(headers, user["id"], account["id"], external, auto)

    world.loans = await bounded(member(i) for i in range(m))
    # Every applicant has a good score at the bureau.
    await ok(
        http,
        "PUT",
        f"{stack.sandbox_url}/bureau/_control",
        json={"fixed_scores": {case.member_id: 760 for case in world.loans}},
    )


async def bills(http: httpx.AsyncClient, stack: Stack, world: World, count: int) -> None:
    """An organization's bills on auto-pay, due on BILL_DAY, debited from its linked bank account into its own."""
    org = await make_org(http, world.su, roles=("org_admin", "member"))
    account = await open_account(http, world.su, org.id)
    external = (await link(http, stack.sandbox_url, org.headers["org_admin"]))[0]["id"]
    cents = sorted(BILL_CENTS)

    async def bill(i: int) -> None:
        cent = cents[i % len(cents)]
        created = await ok(
            http,
            "POST",
            "/api/v1/bills",
            headers=org.headers["org_admin"],
            json={
                "payee_name": f"Chaos payee {i}",
                "amount": f"{10 + i}.{cent}",
                "due_date": BILL_DAY.isoformat(),
                "autopay": True,
                "payer_id": org.users["member"]["id"],
                "external_account_id": external,
                "account_id": account["id"],
            },
        )
        world.bills[created["id"]] = BILL_CENTS[cent]

    await bounded(bill(i) for i in range(count))


async def build(http: httpx.AsyncClient, stack: Stack, n: int, m: int, bill_count: int, savings: int) -> World:
    world = World(su=await superuser(http, stack.database_url), ach_admin={}, ach_account_id="")
    await ach_payers(http, stack, world, n)
    await borrowers(http, stack, world, m)
    await bills(http, stack, world, bill_count)
    await seed_accruals(stack.database_url, savings)
    world.savings_accounts = savings
    assert {s.name for s in ACH_SCENARIOS} >= {name for _, name, _, _ in world.payments}
    return world
