"""The authorization matrix (PRODUCT.md §7): every operation of the live OpenAPI × every principal (tests/authz_matrix.py:
each role in its own organization A and in another one B, a member on their own and on another member's objects,
no token, an expired, a forged and an `alg: none` token), each answer classed 401 / 403 / 404 / allow and compared
with the reviewed table tests/integration/authorization_matrix.csv.

The rules the table is reviewed against: no or a bad token is a 401; what the caller may not see is a 404 (no hint
that it exists); an action the caller may not take on something they may see is a 403. Rows where today's code
breaks a rule keep the observed value and say `WRONG: ...` in their note.

Every request is valid (so that a validation error never hides an access decision): its path ids are real objects of
organization A owned by A.member_owner, its body and its headers what the endpoint accepts. A request that changes
its target (close, cancel, withdraw, release, resolve, a decision, an answer, pay, DELETE...) gets a target of its
own per principal, so one principal's success never changes the next one's outcome; the token-less principals, who
never get past authentication, share one.

Regenerate the table for review (it never rewrites itself otherwise):
    pytest tests/integration/test_authorization_matrix.py --write-authz-matrix
and with AUTHZ_MATRIX_OBSERVED=<file.csv> every answer's HTTP status and error code is written there too.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import text

from core.security import create_token
from domain import export_links, members
from tests import authz_matrix as matrix
from tests.authz_matrix import PRINCIPALS, Observation, Principal
from tests.conftest import Org, make_org, make_user, open_account
from tests.planted import planted_import
from tests.polling import poll

CONCURRENCY = 8  # requests of the matrix in flight at once
LOAN_SETUP_CONCURRENCY = 16  # fresh loans being brought to their approval at once
PERIOD = "2001-01"  # a month long past: statements and an interest posting of it are fixtures of this test


# --- the world the requests point into ---------------------------------------------------------------------------


@dataclass
class Req:
    """One request, less its method, path template and Authorization (the test adds those)."""

    path: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    data: dict | None = None
    params: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    lists: str | None = None  # a list operation: the id of A's object it shows whoever may see that object


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


class World:
    """Organizations A and B, a user per principal, and the objects of A the requests point at."""

    def __init__(self, http: httpx.AsyncClient, su: dict, settings, db, sandbox_url: str):
        self.http, self.su, self.settings, self.db, self.sandbox_url = http, su, settings, db, sandbox_url
        self.headers: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.shared: dict[str, Any] = {}
        self.loan_slots = asyncio.Semaphore(LOAN_SETUP_CONCURRENCY)
        self.timings: list[tuple[str, float, float]] = []  # (operation, seconds building, seconds answering)

    # Fresh targets: one per authenticated principal, one shared by the token-less ones.
    async def fresh(self, kind: str, principal: Principal, factory: Callable[[], Awaitable[Any]]) -> Any:
        if principal.authenticated:
            return await factory()
        if kind not in self.shared:
            self.shared[kind] = asyncio.ensure_future(factory())
        return await self.shared[kind]

    async def call(self, method: str, url: str, headers: dict, expect: int | tuple = (200, 201), **kwargs) -> Any:
        response = await self.http.request(method, url, headers=headers, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def build(self) -> None:
        http, su = self.http, self.su
        self.started = datetime.now(UTC)
        self.a_name = unique("Matrix org A")
        self.a = Org(await self.call("POST", "/api/v1/organizations", su, json={"name": self.a_name}))
        self.b = await make_org(http, su, roles=())
        orgs = {"A": self.a.id, "B": self.b.id}
        self.headers["superuser"], self.users["superuser"] = su, await self.call("GET", "/api/v1/me", su)

        async def principal_user(p: Principal):
            assert p.role is not None and p.org is not None, p  # the users picked below
            self.users[p.name], self.headers[p.name] = await make_user(http, su, p.role, orgs[p.org])

        helpers = {
            "A.fixture_admin": ("org_admin", "A"),
            "A.fixture_officer": ("loan_officer", "A"),
            "A.fixture_member": ("member", "A"),  # whom A.member_owner shares their money records with
        }

        async def helper_user(name: str, role: str, org: str):
            self.users[name], self.headers[name] = await make_user(http, su, role, orgs[org])

        await asyncio.gather(
            *(
                principal_user(p)
                for p in PRINCIPALS
                if p.token == "user" and p.name != "superuser" and p.org is not None
            ),
            *(helper_user(n, r, o) for n, (r, o) in helpers.items()),
        )
        for p in PRINCIPALS:  # a bank-wide role (superuser aside) is one line in PRINCIPALS: made here
            if p.token == "user" and p.org is None and p.name not in self.users:
                assert p.role is not None, p  # an authenticated principal has a role
                self.users[p.name], self.headers[p.name] = await make_user(http, su, p.role, None)
        for p in PRINCIPALS:  # an API key made by its user principal `<org>.<role>`, acting as them
            if p.token == "api_key":
                creator = f"{p.org}.{p.role}"
                made = await self.call(
                    "POST",
                    "/api/v1/api-keys",
                    {**self.headers[creator], **key()},
                    json={"name": unique("matrix key"), "scopes": matrix.KEY_SCOPES},
                )
                self.users[p.name], self.headers[p.name] = self.users[creator], {"X-API-Key": made["key"]}
        self.owner = self.users["A.member_owner"]
        self.admin = self.headers["A.fixture_admin"]
        self.officer = self.headers["A.fixture_officer"]
        self.login_email, self.login_password = f"login-{uuid.uuid4().hex[:8]}@tests.example", "a-long-test-password"
        await self.call(
            "POST",
            "/api/v1/users",
            su,
            json={
                "email": self.login_email,
                "full_name": "Login user",
                "password": self.login_password,
                "role": "member",
                "org_id": self.a.id,
            },
        )
        self._tokens()

        owner_id = self.owner["id"]
        self.account, self.account2, self.savings = await asyncio.gather(
            open_account(http, su, self.a.id, owner_id, deposit="100000.00"),
            open_account(http, su, self.a.id, owner_id, deposit="100.00"),
            open_account(http, su, self.a.id, owner_id, type_="savings"),
        )
        self.external = await self._link_external()
        async with self.db.session() as session, session.begin():  # the member's own bank account (staff record it)
            await session.execute(
                text("UPDATE external_accounts SET owner_id = :o WHERE id = :id"),
                {"o": owner_id, "id": self.external["id"]},
            )

        # Catalogue: a loan product and a routing rule of this test's own (a member type no other test uses).
        self.member_type = f"matrix-{uuid.uuid4().hex[:8]}"
        self.product = await self.loan_product()
        self.product_edit_body = self.loan_product_body()
        self.product_edit = await self.call("POST", "/api/v1/loan-products", su, json=self.product_edit_body)
        self.rule = await self.approval_rule(self.member_type, priority=0)  # before any other rule
        self.rule_edit = await self.approval_rule(f"matrix-unused-{uuid.uuid4().hex[:8]}")
        self.savings_product = await self.savings_product_()
        self.savings_product_edit = await self.savings_product_()
        await self.call("PATCH", f"/api/v1/users/{owner_id}", su, json={"member_type": self.member_type})
        async with httpx.AsyncClient(base_url=self.sandbox_url) as sandbox:
            await sandbox.put("/bureau/_control", json={"fixed_scores": {owner_id: 720}})

        self.transfer = await self.call(
            "POST",
            "/api/v1/transfers/book",
            {**self.headers["A.member_owner"], **key()},
            json={"from_account_id": self.account["id"], "to_account_id": self.account2["id"], "amount": "1.00"},
        )
        self.payment = await self.ach_payment()
        self.hold = await self.place_hold()
        self.manual_entry = await self.manual_entry_request()
        self.bill_body = self.bill_fields()
        self.api_key = await self.new_api_key()
        self.standing = await self.standing_instruction()
        self.money_share = await self.call(
            "POST",
            "/api/v1/money-shares",
            self.headers["A.member_owner"],
            json={"grantee": self.users["A.fixture_member"]["id"], "what": "transactions"},
        )
        self.member_budget = await self.new_member_budget()
        self.alert_subscription = await self.new_alert_subscription()
        self.member_alert_id = await self.new_member_alert()
        self.report_run = await self.new_report_run()
        self.report_definition = await self.new_report_definition()
        self.subscription = await self.new_subscription()
        await self.money_records()
        self.reward_program = await self.call(
            "POST", "/api/v1/reward-programs", self.admin, 201, json=self.reward_program_body()
        )
        self.reward_account = await self.call(
            "POST", f"/api/v1/reward-programs/{self.reward_program['id']}/enroll", self.headers["A.member_owner"]
        )
        self.export = await self.call(
            "POST",
            "/api/v1/transaction-exports",
            {**self.headers["A.member_owner"], **key()},
            202,
            json=self.export_body(),
        )
        self.reconciliation_acted = await self.new_reconciliation()
        self.reconciliation = await self.new_reconciliation()  # the last: its content is re-imported below
        self.webhook_event_id = await self.dead_webhook_event()
        self.bill = await self.new_bill()
        self.gateway_payment = await self.new_gateway_payment()
        self.active_loan, self.pending_loan = await asyncio.gather(self.loan_active(), self.loan_at_approval())
        self.ach_file_id = await self._ach_file()
        self.bank_event_id = await self.bank_event()
        self.email_id = await self.rejected_email()
        async with self.db.session() as session, session.begin():
            self.notification_id = uuid.uuid4()
            await session.execute(
                text(
                    "INSERT INTO notifications (id, user_id, kind, title, body, dedupe_key) "
                    "VALUES (:id, :user, 'matrix', 'A notice', 'For the authorization matrix', :key)"
                ),
                {"id": self.notification_id, "user": owner_id, "key": f"matrix:{self.notification_id}"},
            )
            await session.execute(
                text(
                    "INSERT INTO statements (account_id, period, period_start, period_end, opening_balance, "
                    "closing_balance, interest, entry_count) VALUES (:a, :p, :s, :e, 0, 0, 0, 0) ON CONFLICT DO NOTHING"
                ),
                {"a": self.account["id"], "p": PERIOD, "s": date(2001, 1, 1), "e": date(2001, 1, 31)},
            )
            await session.execute(
                text(
                    "INSERT INTO interest_posting_runs (period, accounts, total) VALUES (:p, 0, 0) ON CONFLICT DO NOTHING"
                ),
                {"p": PERIOD},
            )

    def _tokens(self) -> None:
        """The token-less principals' Authorization headers, each about A.member_owner."""
        owner = self.owner
        claims = {"role": "member", "org_id": owner["org_id"]}
        expired, _, _ = create_token(
            self.settings,
            subject=owner["id"],
            token_type="access",
            claims=claims,
            now=datetime.now(UTC) - timedelta(days=1),
        )
        now = datetime.now(UTC)
        payload = {
            "sub": owner["id"],
            "type": "access",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + timedelta(hours=2),
            **claims,
        }
        forged = jwt.encode(payload, "not-the-servers-secret-" + "x" * 32, algorithm="HS256")

        def b64(part: dict) -> str:
            return (
                base64.urlsafe_b64encode(json.dumps(part, default=lambda d: int(d.timestamp())).encode())
                .rstrip(b"=")
                .decode()
            )

        alg_none = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."
        self.headers.update(
            {
                "none": {},
                "expired": {"Authorization": f"Bearer {expired}"},
                "forged": {"Authorization": f"Bearer {forged}"},
                "alg_none": {"Authorization": f"Bearer {alg_none}"},
            }
        )

    # --- factories of A's objects ---

    async def _link_external(self) -> dict:
        token = await self.public_token()
        linked = await self.call("POST", "/api/v1/external-accounts/link", self.admin, json={"public_token": token})
        return next(a for a in linked if a["account_type"] == "checking")

    async def public_token(self) -> str:
        link = await self.call("POST", "/api/v1/external-accounts/link-token", self.admin, json={})
        async with httpx.AsyncClient(base_url=self.sandbox_url) as sandbox:
            response = await sandbox.post(
                "/linking/sandbox/public_token/create",
                json={
                    "client_id": "backoffice",
                    "secret": "sandbox-secret",
                    "institution_id": "ins_1",
                    "link_token": link["link_token"],
                },
            )
        assert response.status_code == 200, response.text
        return response.json()["public_token"]

    def loan_product_body(self) -> dict:
        return {
            "name": unique("Matrix loan"),
            "annual_rate": "0.065",
            "min_term": 6,
            "max_term": 60,
            "min_amount": "100.00",
            "max_amount": "50000.00",
            "amortization": "declining_balance",
            "frequency": "monthly",
            "day_count": "30/360",
            "grace_days": 5,
            "late_fee": "25.00",
        }

    async def loan_product(self) -> dict:
        return await self.call("POST", "/api/v1/loan-products", self.su, json=self.loan_product_body())

    def approval_rule_body(self, member_type: str, priority: int = 500_000) -> dict:
        return {
            "name": unique("Matrix rule"),
            "priority": priority,
            "min_amount": "0.01",
            "max_amount": None,
            "member_type": member_type,
            "final_outcome": "decline",
            "levels": [
                {
                    "role": "loan_officer",
                    "quorum": 1,
                    "deadline_seconds": 3600,
                    "reminder_seconds": 0,
                    "escalation_role": None,
                }
            ],
        }

    async def approval_rule(self, member_type: str, priority: int = 500_000) -> dict:
        return await self.call(
            "POST", "/api/v1/approval-rules", self.su, json=self.approval_rule_body(member_type, priority)
        )

    async def savings_product_(self) -> dict:
        return await self.call(
            "POST",
            "/api/v1/savings-products",
            self.su,
            json={"name": unique("Matrix savings"), "annual_rate": "0.02", "day_count": "actual/365"},
        )

    async def zero_account(self) -> dict:
        return await open_account(self.http, self.su, self.a.id, self.owner["id"])

    async def deposit_entry(self) -> str:
        """A cash deposit's journal entry on A's account (reversible by a request)."""
        memo = unique("matrix deposit")  # principals build at once: find ours by its memo
        url = f"/api/v1/accounts/{self.account['id']}"
        await self.call("POST", f"{url}/deposits", {**self.su, **key()}, json={"amount": "1.00", "memo": memo})
        entries = await self.call("GET", f"{url}/entries", self.su, params={"limit": 500})
        return next(e["entry_id"] for e in entries["items"] if e["description"] == memo)

    def standing_body(self) -> dict:
        # Monthly, starting in a year: the matrix's instructions never run.
        start = (datetime.now(UTC) + timedelta(days=365)).isoformat()
        return {
            "from_account_id": self.account["id"],
            "to_account_id": self.account2["id"],
            "amount": "1.00",
            "frequency": "monthly",
            "start_at": start,
        }

    async def new_reconciliation(self) -> dict:
        """A bank statement of A's account (a CSV of one line no posting has: it stays open), imported by the
        superuser; its content unique, so each is a statement of its own."""
        content = f"date,amount,description\n2026-11-30,-0.07,{unique('Matrix fee')}\n"
        self.reconciliation_content = content  # the last one's: re-imported by the matrix's POST
        return await self.call(
            "POST",
            "/api/v1/reconciliations",
            {**self.su, **key()},
            json={"account_id": self.account["id"], "format": "csv", "content": content},
            expect=202,
        )

    async def standing_instruction(self) -> dict:
        """One of A's member owner, made by them."""
        return await self.call(
            "POST",
            "/api/v1/standing-instructions",
            {**self.headers["A.member_owner"], **key()},
            json=self.standing_body(),
        )

    def member_budget_body(self) -> dict:
        # For A's member owner: a superuser names them, a member may name only themself.
        return {"category_key": "groceries", "amount": "10.00", "user_id": self.owner["id"]}

    async def new_member_budget(self) -> dict:
        return await self.call(
            "POST", "/api/v1/member-budgets", self.headers["A.member_owner"], json=self.member_budget_body()
        )

    async def new_alert_subscription(self) -> dict:
        return await self.call(
            "POST", "/api/v1/alert-subscriptions", self.headers["A.member_owner"], json={"type": "payment_returned"}
        )

    async def new_member_alert(self) -> uuid.UUID:
        """An alert raised for A's member owner (as the money-events evaluation writes it)."""
        alert_id = uuid.uuid4()
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO member_alerts (id, user_id, type, title, body, dedupe_key) "
                    "VALUES (:id, :user, 'low_balance', 'Matrix alert', 'For the authorization matrix', :key)"
                ),
                {"id": alert_id, "user": self.owner["id"], "key": f"matrix:{alert_id}"},
            )
        return alert_id

    def report_run_body(self) -> dict:
        return {"kind": "trial-balance", "org_id": self.a.id, "format": "json", "as_of": "2001-01-31"}

    async def new_report_run(self) -> dict:
        return await self.call("POST", "/api/v1/report-runs", {**self.su, **key()}, 202, json=self.report_run_body())

    def report_definition_body(self) -> dict:
        return {
            "name": "Matrix report",
            "kind": "balance-sheet",
            "org_id": self.a.id,
            "period": "previous-month",
            "format": "json",
            "frequency": "monthly",
            "day": 28,
            "hour": 3,
        }

    async def new_report_definition(self) -> dict:
        return await self.call(
            "POST", "/api/v1/report-definitions", {**self.su, **key()}, json=self.report_definition_body()
        )

    async def place_hold(self) -> dict:
        return await self.call(
            "POST",
            f"/api/v1/accounts/{self.account['id']}/holds",
            {**self.su, **key()},
            json={"amount": "1.00", "reason": "Matrix hold"},
        )

    async def manual_entry_body(self) -> dict:
        """A manual journal entry of 1.00 between cash at bank and A's second account (it waits on a checker)."""
        async with self.db.session() as session:
            cash = (
                await session.execute(
                    text("SELECT id FROM ledger_accounts WHERE code = 'GL-CASH' AND currency = 'USD'")
                )
            ).scalar_one()
        legs = [{"account_id": str(cash), "amount": "1.00"}, {"account_id": self.account2["id"], "amount": "-1.00"}]
        return {
            "description": "Matrix manual entry",
            "effective_date": (datetime.now(UTC) - timedelta(days=2)).date().isoformat(),
            "legs": legs,
        }

    async def manual_entry_request(self) -> dict:
        body = await self.manual_entry_body()
        return await self.call("POST", "/api/v1/journal-entries", {**self.admin, **key()}, expect=202, json=body)

    def ach_body(self) -> dict:
        return {
            "kind": "ach_debit",
            "amount": "1.00",
            "account_id": self.account["id"],
            "external_account_id": self.external["id"],
            "memo": "Matrix",
        }

    async def new_api_key(self) -> dict:
        """An API key of A (made by its fixture admin)."""
        body = {"name": unique("matrix A key"), "scopes": ["payments:read"]}
        return await self.call("POST", "/api/v1/api-keys", {**self.admin, **key()}, json=body)

    async def money_records(self) -> None:
        """A line imported for A's member owner, a category and a category rule of theirs."""
        async with self.db.session() as session, session.begin():
            planted = await planted_import(session, self.a.id, self.owner["id"])
            made = await session.execute(
                text(
                    "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, merchant, "
                    "description, dedup_key) VALUES (:o, :u, :import, :account, 'csv', '2026-11-02', -9.99, "
                    "'Matrix Cafe', 'coffee', :k) RETURNING id"
                ),
                {**planted, "o": self.a.id, "u": self.owner["id"], "k": uuid.uuid4().hex},
            )
            self.txn_id = f"I{made.scalar_one()}"
        owner = self.headers["A.member_owner"]
        self.category_key = f"matrix_{uuid.uuid4().hex[:10]}"
        category = {"key": self.category_key, "name": "Matrix", "kind": "expense"}
        await self.call("POST", "/api/v1/categories", owner, json=category)
        self.category_rule = await self.new_category_rule()

    async def new_category_rule(self) -> dict:
        """A rule of A's member owner, made by them."""
        body = {"pattern": "matrix cafe", "category_key": "dining"}
        return await self.call("POST", "/api/v1/category-rules", self.headers["A.member_owner"], json=body)

    def reward_program_body(self) -> dict:
        return {
            "name": unique("Matrix rewards"),
            "org_id": self.a.id,
            "rules": [{"category_key": "groceries", "points_per_unit": "1"}],
        }

    def export_body(self) -> dict:
        return {"member_id": self.owner["id"], "format": "json", "date_to": "2001-01-31"}

    async def new_subscription(self) -> dict:
        """A webhook subscription of A (made by its fixture admin), to KYC events, at the sandbox receiver."""
        body = {"url": f"{self.sandbox_url}/receiver/matrix", "event_types": ["kyc.status_changed"]}
        return await self.call("POST", "/api/v1/webhook-subscriptions", {**self.admin, **key()}, json=body)

    async def dead_webhook_event(self) -> uuid.UUID:
        """A dead letter of A's subscription (as the delivery workflow parks one)."""
        event_id = uuid.uuid4()
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO webhook_events (id, subscription_id, org_id, event_type, entity_type, entity_id, "
                    "event_key, body, status, attempts, last_error, dead_at) VALUES (:id, :s, :o, "
                    "'kyc.status_changed', 'member', :m, :k, :b, 'dead', 3, 'matrix: HTTP 503', now())"
                ),
                {
                    "id": event_id,
                    "s": self.subscription["id"],
                    "o": self.a.id,
                    "m": self.owner["id"],
                    "k": f"matrix:{event_id}",
                    "b": json.dumps({"id": str(event_id), "type": "kyc.status_changed", "data": {}}),
                },
            )
        return event_id

    async def ach_payment(self) -> dict:
        """An ACH debit into A.member_owner's account, made by A's org admin."""
        return await self.call("POST", "/api/v1/payments", {**self.admin, **key()}, json=self.ach_body())

    def bill_fields(self) -> dict:
        return {
            "payee_name": "City Power",
            "amount": "42.00",
            "due_date": str(datetime.now(UTC).date() + timedelta(days=20)),
            "memo": "Matrix",
            "autopay": False,
            "external_account_id": None,
            "account_id": None,
        }

    async def new_bill(self) -> dict:
        return await self.call(
            "POST",
            "/api/v1/bills",
            self.headers["A.member_owner"],
            json={**self.bill_fields(), "payer_id": self.owner["id"]},
        )

    async def gateway_bill(self) -> dict:
        """A bill of A.member_owner's that names the account its payment goes to (a card payment needs one)."""
        return await self.call(
            "POST",
            "/api/v1/bills",
            self.headers["A.member_owner"],
            json={**self.bill_fields(), "payer_id": self.owner["id"], "account_id": self.account["id"]},
        )

    async def new_gateway_payment(self) -> dict:
        """A card payment of A.member_owner's bill, its checkout open at the sandbox gateway."""
        bill = await self.gateway_bill()
        return await self.call(
            "POST",
            "/api/v1/gateway-payments",
            {**self.headers["A.member_owner"], **key()},
            json={"purpose": "bill", "bill_id": bill["id"]},
        )

    async def rejected_email(self) -> uuid.UUID:
        """An email to A.member_owner the mail server refused for good (as the notification activities record one)."""
        email_id = uuid.uuid4()
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO email_outbox (id, dedupe_key, to_address, subject, text_body, status, error) "
                    "VALUES (:id, :key, :to, 'Matrix notice', 'For the authorization matrix', 'rejected', '550 matrix')"
                ),
                {"id": email_id, "key": f"matrix:{email_id}:{self.owner['id']}", "to": self.owner["email"]},
            )
        return email_id

    async def bank_event(self) -> int:
        """An event on the exception list, of A's ACH payment (recorded as the webhook records one)."""
        event_id = f"matrix-{uuid.uuid4().hex}"
        async with self.db.session() as session, session.begin():
            return (
                await session.execute(
                    text(
                        "INSERT INTO bank_events (event_id, type, trace_number, payload, payment_id, status, detail) "
                        "VALUES (:e, 'entry.settled', '000000000000000', CAST(:p AS jsonb), :pay, 'exception', "
                        "'matrix: a settlement no open workflow could take') RETURNING id"
                    ),
                    {"e": event_id, "p": json.dumps({"event_id": event_id}), "pay": self.payment["id"]},
                )
            ).scalar_one()

    def loan_body(self, **extra) -> dict:
        return {
            "product_id": self.product["id"],
            "amount": "5000.00",
            "term": 36,
            "purpose": "Matrix",
            "monthly_income": "20000.00",
            "monthly_debt": "300.00",
            "deposit_account_id": self.account["id"],
            **extra,
        }

    async def loan_at_approval(self, info_requested: bool = False) -> dict:
        """A loan of A.member_owner waiting on a loan officer at its first level (or for the applicant's answer)."""
        async with self.loan_slots:
            loan = await self.call(
                "POST", "/api/v1/loans", {**self.headers["A.member_owner"], **key()}, json=self.loan_body()
            )
            loan = await poll(
                lambda: self.call("GET", f"/api/v1/loans/{loan['id']}", self.su),
                lambda row: (
                    (row["status"] != "submitted" and row["approval_request_id"])
                    or row["status"] in ("declined", "failed")
                ),
                60,
                "loan never reached its approval",
            )
            assert loan["approval_request_id"], loan
            request_id = loan["approval_request_id"]
            # Answered by the approval workflow itself (a quorum), not from the request row written before it starts.
            await poll(
                lambda: self.call("GET", f"/api/v1/approvals/{request_id}", self.su),
                lambda s: s["status"] == "open" and s["level"] == 1 and s["quorum"] >= 1,
                60,
                "approval never opened",
            )
            await poll(
                lambda: self.call("GET", f"/api/v1/loans/{loan['id']}", self.su),
                lambda row: row["status"] == "pending_approval",
                60,
                "loan not pending approval",
            )
            if info_requested:
                await self.call(
                    "POST",
                    f"/api/v1/approvals/{request_id}/decisions",
                    self.officer,
                    json={"decision": "request_info", "reason": "Payslips, please"},
                )
            return loan

    async def loan_active(self) -> dict:
        loan = await self.loan_at_approval()
        await self.call(
            "POST",
            f"/api/v1/approvals/{loan['approval_request_id']}/decisions",
            self.officer,
            json={"decision": "approve", "reason": ""},
        )
        return await poll(
            lambda: self.call("GET", f"/api/v1/loans/{loan['id']}", self.su),
            lambda row: row["status"] in ("active", "declined", "failed", "rejected"),
            60,
            "loan never became active",
        )

    async def _ach_file(self) -> str:
        async def files() -> dict:
            return await self.call("GET", "/api/v1/ach/files", self.su)

        page = await poll(files, lambda page: page["total"] > 0, 60, "no NACHA file was built")
        return page["items"][0]["id"]


def signed_bank_event(settings) -> tuple[bytes, dict]:
    body = json.dumps(
        {
            "event_id": f"matrix-{uuid.uuid4().hex}",
            "type": "entry.settled",
            "trace_number": "999999999999999",
            "amount": "1.00",
        }
    ).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(
        settings.bank_webhook_secret.get_secret_value().encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return body, {"X-Bank-Timestamp": timestamp, "X-Bank-Signature": f"v1={digest}", "Content-Type": "application/json"}


def signed_gateway_event(settings) -> tuple[bytes, dict]:
    """A charge the gateway reports for a reference of no payment of ours: recorded as unmatched, answered 200."""
    body = json.dumps(
        {
            "id": f"evt_matrix_{uuid.uuid4().hex}",
            "event": "charge.success",
            "data": {"reference": f"matrix-{uuid.uuid4().hex}", "amount": 100, "currency": "USD", "status": "success"},
        }
    ).encode()
    digest = hmac.new(settings.gateway_secret_key.get_secret_value().encode(), body, hashlib.sha512).hexdigest()
    return body, {"X-Gateway-Signature": digest, "Content-Type": "application/json"}


# --- one request builder per operation ------------------------------------------------------------------------

Builder = Callable[[World, Principal], Awaitable[Req]]
BUILDERS: dict[str, Builder] = {}


def builds(*operations: str):
    def register(fn: Builder) -> Builder:
        for operation in operations:
            assert operation not in BUILDERS, operation
            BUILDERS[operation] = fn
        return fn

    return register


V1 = "/api/v1"


def static(**kwargs) -> Builder:
    async def build(w: World, p: Principal) -> Req:
        return Req(**kwargs)

    return build


for _operation in ("GET /healthz", "GET /readyz", f"GET {V1}/me"):
    BUILDERS[_operation] = static()


def listing(params: Callable[[World], dict], target: Callable[[World], Any]) -> Builder:
    """A list, filtered down to a few rows (so that A's object is on the first page for whoever may see it)."""

    async def build(w: World, p: Principal) -> Req:
        return Req(params={"limit": 500, **params(w)}, lists=str(target(w)))

    return build


BUILDERS.update(
    {
        f"GET {V1}/organizations": listing(lambda w: {"name": w.a_name}, lambda w: w.a.id),
        f"GET {V1}/users": listing(lambda w: {"email": w.owner["email"]}, lambda w: w.owner["id"]),
        f"GET {V1}/accounts": listing(lambda w: {"owner_id": w.owner["id"]}, lambda w: w.account["id"]),
        f"GET {V1}/external-accounts": listing(lambda w: {"org_id": w.a.id}, lambda w: w.external["id"]),
        f"GET {V1}/transfers": listing(lambda w: {"account_id": w.account2["id"]}, lambda w: w.transfer["id"]),
        f"GET {V1}/payments": listing(
            lambda w: {"kind": "ach_debit", "account_id": w.external["id"]}, lambda w: w.payment["id"]
        ),
        f"GET {V1}/ach/files": listing(lambda w: {"created_from": w.started.isoformat()}, lambda w: w.ach_file_id),
        f"GET {V1}/bank-events": listing(lambda w: {"payment_id": w.payment["id"]}, lambda w: w.bank_event_id),
        f"GET {V1}/notifications": listing(lambda w: {}, lambda w: w.notification_id),
        f"GET {V1}/loan-products": listing(lambda w: {"name": w.product["name"]}, lambda w: w.product["id"]),
        f"GET {V1}/approval-rules": listing(lambda w: {"name": w.rule["name"]}, lambda w: w.rule["id"]),
        f"GET {V1}/loans": listing(
            lambda w: {"applicant_id": w.owner["id"], "status": "active"}, lambda w: w.active_loan["id"]
        ),
        f"GET {V1}/approvals/inbox": listing(lambda w: {}, lambda w: w.pending_loan["approval_request_id"]),
        f"GET {V1}/bills": listing(lambda w: {"payer_id": w.owner["id"], "status": "upcoming"}, lambda w: w.bill["id"]),
        f"GET {V1}/standing-instructions": listing(lambda w: {}, lambda w: w.standing["id"]),
        # Revoked ones too: the owner's DELETE below revokes this very share.
        f"GET {V1}/money-shares": listing(lambda w: {"include_revoked": True}, lambda w: w.money_share["id"]),
        f"GET {V1}/member-budgets": listing(lambda w: {}, lambda w: w.member_budget["id"]),
        f"GET {V1}/alert-subscriptions": listing(lambda w: {}, lambda w: w.alert_subscription["id"]),
        f"GET {V1}/alerts": listing(lambda w: {"include_dismissed": "true"}, lambda w: w.member_alert_id),
        f"GET {V1}/report-runs": listing(lambda w: {}, lambda w: w.report_run["id"]),
        f"GET {V1}/report-definitions": listing(lambda w: {}, lambda w: w.report_definition["id"]),
        f"GET {V1}/transaction-exports": listing(lambda w: {}, lambda w: w.export["id"]),
        f"GET {V1}/reward-programs": listing(lambda w: {}, lambda w: w.reward_program["id"]),
        f"GET {V1}/reward-accounts": listing(lambda w: {}, lambda w: w.reward_account["id"]),
        f"GET {V1}/reconciliations": listing(
            lambda w: {"account_id": w.account["id"]}, lambda w: w.reconciliation["id"]
        ),
        f"GET {V1}/savings-products": listing(
            lambda w: {"name": w.savings_product["name"]}, lambda w: w.savings_product["id"]
        ),
    }
)


# auth
@builds(f"POST {V1}/auth/login")
async def _(w: World, p: Principal) -> Req:
    return Req(data={"username": w.login_email, "password": w.login_password})


@builds(f"POST {V1}/auth/refresh")
async def _(w: World, p: Principal) -> Req:
    # Single use, and the endpoint is public: one each, token-less principals too, of a user no principal is.
    response = await w.http.post(f"{V1}/auth/login", data={"username": w.login_email, "password": w.login_password})
    return Req(json={"refresh_token": response.json()["refresh_token"]})


@builds(f"POST {V1}/auth/logout")
async def _(w: World, p: Principal) -> Req:
    # Public, like refresh: each principal logs out a session of its own of a user no principal is.
    response = await w.http.post(f"{V1}/auth/login", data={"username": w.login_email, "password": w.login_password})
    assert response.status_code == 200, response.text
    return Req(json={"refresh_token": response.json()["refresh_token"]})


@builds(f"POST {V1}/auth/mfa/verify")
async def _(w: World, p: Principal) -> Req:
    # Public: the MFA challenge is the credential. One of no user: refused (401) whoever calls.
    challenge, _, _ = create_token(w.settings, subject=str(uuid.uuid4()), token_type="mfa")
    return Req(json={"mfa_token": challenge, "code": "000000"})


# A signed-in user's own MFA and password: open to every role (a pending enrolment, a wrong code or a wrong current
# password answer after access was granted); nothing is changed for the principals' later requests.
BUILDERS[f"POST {V1}/auth/mfa/enroll"] = static()
for _operation in (f"POST {V1}/auth/mfa/confirm", f"POST {V1}/auth/mfa/disable"):
    BUILDERS[_operation] = static(json={"code": "000000"})
# A weak new password: refused (422) before the current one is checked, so no principal's user counts a failed login.
BUILDERS[f"POST {V1}/auth/password"] = static(
    json={"current_password": "not-the-current-password", "new_password": "password1234"}
)
BUILDERS[f"POST {V1}/auth/password-reset/confirm"] = static(
    json={"token": "not-a-reset-token", "new_password": "a-new-long-matrix-passphrase"}
)


@builds(f"POST {V1}/auth/password-reset")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"email": f"matrix-nobody-{uuid.uuid4().hex[:8]}@tests.example"})  # 202, and no email


# organizations and users
@builds(f"PUT {V1}/organizations/{{org_id}}/mfa-policy")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"org_id": w.a.id}, json={"require_mfa_for_staff": False})  # changes nothing


@builds(f"PUT {V1}/organizations/{{org_id}}/ach-prenote-policy")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"org_id": w.a.id}, json={"require_ach_prenote": False})  # changes nothing


@builds(f"POST {V1}/users/{{user_id}}/unlock")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"user_id": w.owner["id"]})  # not locked: a no-op


@builds(f"POST {V1}/organizations")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"name": unique("Matrix org")})


@builds(f"POST {V1}/users")
async def _(w: World, p: Principal) -> Req:
    return Req(
        json={
            "email": f"matrix-{uuid.uuid4().hex[:10]}@tests.example",
            "full_name": "New member",
            "password": "a-long-test-password",
            "role": "member",
            "org_id": w.a.id,
        }
    )


@builds(f"GET {V1}/users/{{user_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"user_id": w.owner["id"]})


@builds(f"PATCH {V1}/users/{{user_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"user_id": w.owner["id"]}, json={"full_name": w.owner["full_name"]})  # changes nothing


# accounts
@builds(f"POST {V1}/accounts")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"name": unique("Matrix account"), "type": "checking", "org_id": w.a.id, "owner_id": w.owner["id"]})


@builds(
    f"GET {V1}/accounts/{{account_id}}",
    f"GET {V1}/accounts/{{account_id}}/entries",
    f"GET {V1}/accounts/{{account_id}}/accruals",
    f"GET {V1}/accounts/{{account_id}}/savings-product",
)
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"]})


@builds(f"GET {V1}/accounts/{{account_id}}/holds")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"]}, params={"limit": 500}, lists=w.hold["id"])


@builds(f"GET {V1}/accounts/{{account_id}}/statements")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"]}, lists=f"statements/{PERIOD}.pdf")


@builds(f"PATCH {V1}/accounts/{{account_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"]}, json={"name": w.account["name"]})  # changes nothing


@builds(f"POST {V1}/accounts/{{account_id}}/close")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": (await w.fresh("close", p, w.zero_account))["id"]})


@builds(f"POST {V1}/accounts/{{account_id}}/deposits")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"]}, headers=key(), json={"amount": "1.00"})


@builds(f"POST {V1}/accounts/{{account_id}}/withdrawals")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"]}, headers=key(), json={"amount": "1.00"})


@builds(f"POST {V1}/journal-entries")
async def _(w: World, p: Principal) -> Req:
    return Req(headers=key(), json=await w.manual_entry_body())


@builds(f"GET {V1}/organizations/{{org_id}}/maker-checker-policy")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"org_id": w.a.id})


@builds(f"PUT {V1}/organizations/{{org_id}}/maker-checker-policy")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"org_id": w.a.id}, json={"threshold": None})  # the default: changes nothing for the others


@builds(f"GET {V1}/maker-checker")
async def _(w: World, p: Principal) -> Req:
    return Req(params={"limit": 500}, lists=w.manual_entry["id"])


@builds(f"GET {V1}/maker-checker/{{request_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"request_id": w.manual_entry["id"]})


@builds(f"GET {V1}/journal-entries/{{entry_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"entry_id": w.transfer["journal_entry_id"]})


@builds(f"POST {V1}/journal-entries/{{entry_id}}/reversals")
async def _(w: World, p: Principal) -> Req:
    entry_id = await w.fresh("deposit_entry", p, w.deposit_entry)  # one each: a second request would be a 409
    return Req(path={"entry_id": entry_id}, headers=key(), json={"reason": "Matrix reversal"})


@builds(f"POST {V1}/reconciliations")
async def _(w: World, p: Principal) -> Req:
    # The statement of w.reconciliation again: past access control it is found again (200), nothing new to build.
    body = {"account_id": w.account["id"], "format": "csv", "content": w.reconciliation_content}
    return Req(headers=key(), json=body)


@builds(
    f"GET {V1}/reconciliations/{{reconciliation_id}}",
    f"GET {V1}/reconciliations/{{reconciliation_id}}/report",
    f"POST {V1}/reconciliations/{{reconciliation_id}}/close",  # its line stays open: a 409 once access is granted
)
async def _(w: World, p: Principal) -> Req:
    return Req(path={"reconciliation_id": w.reconciliation["id"]})


@builds(f"POST {V1}/reconciliations/{{reconciliation_id}}/actions")
async def _(w: World, p: Principal) -> Req:
    # Shared: whatever came first, a principal past access control gets a 200 or a 409 (line_not_open,
    # reconciliation_not_ready), both `allow`; a target each would only add workflows to the matrix's load.
    body = {"action": "explain", "line_no": 1, "reason_code": "bank_fee", "note": "Matrix"}
    return Req(path={"reconciliation_id": w.reconciliation_acted["id"]}, json=body)


@builds(f"POST {V1}/standing-instructions")
async def _(w: World, p: Principal) -> Req:
    return Req(headers=key(), json=w.standing_body())


@builds(f"GET {V1}/standing-instructions/{{instruction_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"instruction_id": w.standing["id"]})


@builds(
    f"POST {V1}/standing-instructions/{{instruction_id}}/pause",
    f"POST {V1}/standing-instructions/{{instruction_id}}/resume",
    f"DELETE {V1}/standing-instructions/{{instruction_id}}",
)
async def _(w: World, p: Principal) -> Req:
    made = await w.fresh("standing_instruction", p, w.standing_instruction)  # one each: a cancel is final
    return Req(path={"instruction_id": made["id"]})


@builds(f"POST {V1}/money-shares")
async def _(w: World, p: Principal) -> Req:
    # Budgets: a member of A replaces their budgets share with the fixture member, never the transactions share the
    # other requests point at; anyone else's grantee is not a member of their organization (a 422 past the gate).
    return Req(json={"grantee": w.users["A.fixture_member"]["id"], "what": "budgets"})


@builds(f"DELETE {V1}/money-shares/{{share_id}}")
async def _(w: World, p: Principal) -> Req:
    # Shared: revoking is idempotent (the owner's first DELETE revokes it, a second answers the same), so one
    # principal's success never changes another's outcome.
    return Req(path={"share_id": w.money_share["id"]})


@builds(f"GET {V1}/money-shares/presence")
async def _(w: World, p: Principal) -> Req:
    return Req(lists=w.users["A.fixture_member"]["id"])  # A.member_owner's partner


@builds(f"POST {V1}/member-budgets")
async def _(w: World, p: Principal) -> Req:
    return Req(json=w.member_budget_body())


@builds(f"GET {V1}/member-budgets/{{budget_id}}", f"GET {V1}/member-budgets/{{budget_id}}/analytics")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"budget_id": w.member_budget["id"]})


@builds(f"PUT {V1}/member-budgets/{{budget_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"budget_id": w.member_budget["id"]}, json={"amount": "12.00"})


@builds(f"DELETE {V1}/member-budgets/{{budget_id}}")
async def _(w: World, p: Principal) -> Req:
    made = await w.fresh("member_budget", p, w.new_member_budget)  # one each: ending is final
    return Req(path={"budget_id": made["id"]})


@builds(f"POST {V1}/alert-subscriptions")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"type": "large_transaction", "params": {"above": "500.00"}, "channels": ["in_app"]})


@builds(f"GET {V1}/alert-subscriptions/{{subscription_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"subscription_id": w.alert_subscription["id"]})


@builds(f"PUT {V1}/alert-subscriptions/{{subscription_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"subscription_id": w.alert_subscription["id"]}, json={"channels": ["in_app", "email"]})


@builds(f"DELETE {V1}/alert-subscriptions/{{subscription_id}}")
async def _(w: World, p: Principal) -> Req:
    made = await w.fresh("alert_subscription", p, w.new_alert_subscription)
    return Req(path={"subscription_id": made["id"]})


@builds(f"POST {V1}/alerts/{{alert_id}}/read", f"POST {V1}/alerts/{{alert_id}}/dismiss")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"alert_id": w.member_alert_id})  # idempotent: a second mark changes nothing


@builds(f"DELETE {V1}/alerts/{{alert_id}}")
async def _(w: World, p: Principal) -> Req:
    made = await w.fresh("member_alert", p, w.new_member_alert)  # one each: a deleted alert is gone
    return Req(path={"alert_id": made})


@builds(f"POST {V1}/accounts/{{account_id}}/holds")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"]}, headers=key(), json={"amount": "1.00", "reason": "Matrix"})


@builds(f"POST {V1}/accounts/{{account_id}}/holds/{{hold_id}}/release")
async def _(w: World, p: Principal) -> Req:
    hold = await w.fresh("hold", p, w.place_hold)  # placed by the superuser
    return Req(path={"account_id": w.account["id"], "hold_id": hold["id"]})


@builds(f"GET {V1}/accounts/{{account_id}}/statements/{{period}}.pdf")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.account["id"], "period": PERIOD})


@builds(f"PUT {V1}/accounts/{{account_id}}/savings-product")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.savings["id"]}, json={"product_id": w.savings_product["id"]})


@builds(f"DELETE {V1}/accounts/{{account_id}}/savings-product")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.savings["id"]})


# external accounts
@builds(f"POST {V1}/external-accounts/link-token")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"org_id": w.a.id})


@builds(f"POST {V1}/external-accounts/link")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"public_token": await w.fresh("public_token", p, w.public_token), "org_id": w.a.id})


@builds(f"POST {V1}/external-accounts")
async def _(w: World, p: Principal) -> Req:
    return Req(
        json={
            "holder_name": "Matrix holder",
            "institution_name": "First Platypus Bank",
            "routing_number": "021000021",
            "account_number": str(uuid.uuid4().int)[:12],
            "account_type": "checking",
            "org_id": w.a.id,
        }
    )


@builds(f"GET {V1}/external-accounts/{{account_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.external["id"]})


# transfers and payments
@builds(f"POST {V1}/transfers/book")
async def _(w: World, p: Principal) -> Req:
    return Req(
        headers=key(),
        json={
            "from_account_id": w.account["id"],
            "to_account_id": w.account2["id"],
            "amount": "1.00",
            "memo": "Matrix",
        },
    )


@builds(f"GET {V1}/transfers/{{payment_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"payment_id": w.transfer["id"]})


@builds(f"POST {V1}/payments")
async def _(w: World, p: Principal) -> Req:
    return Req(headers=key(), json=w.ach_body())


@builds(f"GET {V1}/payments/{{payment_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"payment_id": w.payment["id"]})


@builds(f"POST {V1}/payments/{{payment_id}}/cancel")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"payment_id": (await w.fresh("payment", p, w.ach_payment))["id"]})


# ACH files, the bank's webhook and its events
@builds(f"GET {V1}/ach/files/{{file_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"file_id": w.ach_file_id})


@builds(f"POST {V1}/webhooks/bank")
async def _(w: World, p: Principal) -> Req:
    body, headers = signed_bank_event(w.settings)
    return Req(content=body, headers=headers)


@builds(f"GET {V1}/bank-events/{{event_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"event_id": w.bank_event_id})


@builds(f"POST {V1}/bank-events/{{event_id}}/resolve")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"event_id": await w.fresh("bank_event", p, w.bank_event)}, json={"note": "Checked with the bank"})


# the operator API
for _operation, _params in (
    (f"GET {V1}/operations/workflows/failed", {"workflow_type": "AchPaymentWorkflow", "limit": 5}),
    (f"GET {V1}/operations/workflows/failed/summary", {}),
    (f"GET {V1}/operations/activities/retrying", {"scan": 5}),
    (f"GET {V1}/operations/dead-letters", {}),
):
    BUILDERS[_operation] = static(params=_params)
BUILDERS[f"GET {V1}/operations/emails"] = listing(lambda w: {"status": "rejected"}, lambda w: w.email_id)


@builds(f"POST {V1}/operations/workflows/{{workflow_id}}/reset")
async def _(w: World, p: Principal) -> Req:
    # A's payment runs or completed (never stuck): whoever may see it gets the 409 of a workflow not to reset.
    return Req(
        path={"workflow_id": w.payment["workflow_id"]},
        headers=key(),
        json={"reason": "Matrix: reset", "reset_to": "last_workflow_task"},
    )


@builds(f"POST {V1}/operations/emails/{{email_id}}/resend")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"email_id": await w.fresh("email", p, w.rejected_email)}, json={})


@builds(f"GET {V1}/audit")
async def _(w: World, p: Principal) -> Req:
    return Req(params={"entity_type": "account", "entity_id": w.account["id"]}, lists=w.account["id"])


@builds(f"POST {V1}/notifications/{{notification_id}}/read")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"notification_id": w.notification_id})  # reading again is a no-op: one is enough


# loan products and approval rules (superuser CRUD)
@builds(f"POST {V1}/loan-products")
async def _(w: World, p: Principal) -> Req:
    return Req(json=w.loan_product_body())


@builds(f"GET {V1}/loan-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"product_id": w.product["id"]})


@builds(f"PUT {V1}/loan-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"product_id": w.product_edit["id"]}, json=w.product_edit_body)  # the same terms again


@builds(f"PATCH {V1}/loan-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"product_id": w.product_edit["id"]}, json={"grace_days": w.product_edit_body["grace_days"]})


@builds(f"DELETE {V1}/loan-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"product_id": (await w.fresh("loan_product", p, w.loan_product))["id"]})


@builds(f"POST {V1}/approval-rules")
async def _(w: World, p: Principal) -> Req:
    return Req(json=w.approval_rule_body(f"matrix-unused-{uuid.uuid4().hex[:8]}"))


@builds(f"GET {V1}/approval-rules/{{rule_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"rule_id": w.rule["id"]})


@builds(f"PATCH {V1}/approval-rules/{{rule_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"rule_id": w.rule_edit["id"]}, json={"priority": w.rule_edit["priority"]})


@builds(f"DELETE {V1}/approval-rules/{{rule_id}}")
async def _(w: World, p: Principal) -> Req:
    rule = await w.fresh("rule", p, lambda: w.approval_rule(f"matrix-unused-{uuid.uuid4().hex[:8]}"))
    return Req(path={"rule_id": rule["id"]})


# loans and approvals
@builds(f"POST {V1}/loans")
async def _(w: World, p: Principal) -> Req:
    # For A.member_owner; paid out to and debited from the member's own bank account.
    return Req(
        headers=key(),
        json=w.loan_body(applicant_id=w.owner["id"], external_account_id=w.external["id"], auto_debit=True),
    )


@builds(
    f"GET {V1}/loans/{{loan_id}}",
    f"GET {V1}/loans/{{loan_id}}/schedule",
    f"GET {V1}/loans/{{loan_id}}/agreement.pdf",
    f"GET {V1}/loans/{{loan_id}}/payoff-quote",
)
async def _(w: World, p: Principal) -> Req:
    return Req(path={"loan_id": w.active_loan["id"]})


@builds(f"POST {V1}/loans/{{loan_id}}/repayments")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"loan_id": w.active_loan["id"]}, headers=key(), json={"amount": "1.00", "mode": "installment"})


@builds(f"POST {V1}/loans/{{loan_id}}/withdraw")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"loan_id": (await w.fresh("withdraw", p, w.loan_at_approval))["id"]})


@builds(f"POST {V1}/loans/{{loan_id}}/information")
async def _(w: World, p: Principal) -> Req:
    loan = await w.fresh("information", p, lambda: w.loan_at_approval(info_requested=True))
    return Req(path={"loan_id": loan["id"]}, json={"text": "Payslips attached"})


@builds(f"GET {V1}/approvals/{{request_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"request_id": w.pending_loan["approval_request_id"]})


@builds(f"POST {V1}/approvals/{{request_id}}/decisions")
async def _(w: World, p: Principal) -> Req:
    loan = await w.fresh("decision", p, w.loan_at_approval)
    return Req(path={"request_id": loan["approval_request_id"]}, json={"decision": "approve", "reason": "Fine"})


# transaction imports: one of A.member_owner's (into their external account), made once; uploads send a small CSV
IMPORT_CSV = b"date,amount,description\n2026-03-01,-4.50,Coffee\n2026-03-01,x,Bad line\n"


def import_upload(w: World) -> tuple[bytes, dict[str, str]]:
    request = httpx.Request(
        "POST",
        "http://matrix",
        data={"external_account_id": w.external["id"]},
        files={"file": ("march.csv", IMPORT_CSV, "text/csv")},
    )
    return request.read(), {"Content-Type": request.headers["Content-Type"], **key()}


async def owners_import(w: World) -> dict:
    if "transaction_import" not in w.shared:

        async def make() -> dict:
            body, headers = import_upload(w)
            return await w.call(
                "POST",
                "/api/v1/transaction-imports",
                {**w.headers["A.member_owner"], **headers},
                expect=202,
                content=body,
            )

        w.shared["transaction_import"] = asyncio.ensure_future(make())
    return await w.shared["transaction_import"]


@builds(f"POST {V1}/transaction-imports")
async def _(w: World, p: Principal) -> Req:
    body, headers = import_upload(w)
    return Req(content=body, headers=headers)


@builds(f"POST {V1}/transaction-imports/sync")
async def _(w: World, p: Principal) -> Req:
    return Req(headers=key(), json={"external_account_id": w.external["id"]})  # A.member_owner's linked account


@builds(f"GET {V1}/transaction-imports")
async def _(w: World, p: Principal) -> Req:
    made = await owners_import(w)
    return Req(params={"limit": 500}, lists=made["id"])


@builds(f"GET {V1}/transaction-imports/{{import_id}}", f"GET {V1}/transaction-imports/{{import_id}}/rejections")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"import_id": (await owners_import(w))["id"]})


# documents: one of A.member_owner's, made once; uploads send a small PDF as multipart
PDF = b"%PDF-1.7\n%%EOF\n"


def multipart(fields: dict, filename: str = "matrix.pdf") -> tuple[bytes, dict[str, str]]:
    """A multipart body (as httpx encodes it) and its Content-Type, for a Req's `content` and `headers`."""
    request = httpx.Request("POST", "http://matrix", data=fields, files={"file": (filename, PDF, "application/pdf")})
    return request.read(), {"Content-Type": request.headers["Content-Type"]}


async def owners_document(w: World) -> dict:
    if "document" not in w.shared:

        async def make() -> dict:
            body, headers = multipart({"entity_type": "user", "entity_id": w.owner["id"], "kind": "id_document"})
            return await w.call(
                "POST", "/api/v1/documents", {**w.headers["A.member_owner"], **headers}, expect=201, content=body
            )

        w.shared["document"] = asyncio.ensure_future(make())
    return await w.shared["document"]


@builds(f"POST {V1}/documents")
async def _(w: World, p: Principal) -> Req:
    body, headers = multipart({"entity_type": "user", "entity_id": w.owner["id"], "kind": "id_document"})
    return Req(content=body, headers=headers)


@builds(f"GET {V1}/documents")
async def _(w: World, p: Principal) -> Req:
    document = await owners_document(w)
    return Req(params={"limit": 500, "entity_id": w.owner["id"]}, lists=document["id"])


@builds(
    f"GET {V1}/documents/{{document_id}}",
    f"GET {V1}/documents/{{document_id}}/versions",
)
async def _(w: World, p: Principal) -> Req:
    return Req(path={"document_id": (await owners_document(w))["id"]})


@builds(f"POST {V1}/documents/{{document_id}}/versions")
async def _(w: World, p: Principal) -> Req:
    body, headers = multipart({})
    return Req(path={"document_id": (await owners_document(w))["id"]}, content=body, headers=headers)


@builds(f"POST {V1}/documents/{{document_id}}/versions/{{number}}/link")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"document_id": (await owners_document(w))["id"], "number": 1})


@builds(f"GET {V1}/documents/{{document_id}}/versions/{{number}}/content")
async def _(w: World, p: Principal) -> Req:
    """A link the owner asked for: the signature is the credential, whoever holds it (and whatever token they send)."""
    document = await owners_document(w)
    link = await w.call("POST", f"/api/v1/documents/{document['id']}/versions/1/link", w.headers["A.member_owner"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["url"]).query).items()}
    return Req(path={"document_id": document["id"], "number": 1}, params=query)


# bills
@builds(f"POST {V1}/bills")
async def _(w: World, p: Principal) -> Req:
    return Req(json={**w.bill_fields(), "payer_id": w.owner["id"]})


@builds(f"GET {V1}/bills/{{bill_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"bill_id": w.bill["id"]})


@builds(f"PUT {V1}/bills/{{bill_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"bill_id": w.bill["id"]}, json=w.bill_body)  # the same details again


@builds(
    f"DELETE {V1}/bills/{{bill_id}}", f"PUT {V1}/bills/{{bill_id}}/pay", f"POST {V1}/bills/{{bill_id}}/send-reminder"
)
async def _(w: World, p: Principal) -> Req:
    return Req(path={"bill_id": (await w.fresh("bill", p, w.new_bill))["id"]})


# savings products and interest
@builds(f"POST {V1}/savings-products")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"name": unique("Matrix savings"), "annual_rate": "0.02", "day_count": "actual/365"})


@builds(f"GET {V1}/savings-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"product_id": w.savings_product["id"]})


@builds(f"PUT {V1}/savings-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    product = w.savings_product_edit
    return Req(
        path={"product_id": product["id"]},
        json={"name": product["name"], "annual_rate": product["annual_rate"], "day_count": product["day_count"]},
    )


@builds(f"PATCH {V1}/savings-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"product_id": w.savings_product_edit["id"]}, json={"day_count": "actual/365"})


@builds(f"DELETE {V1}/savings-products/{{product_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"product_id": (await w.fresh("savings_product", p, w.savings_product_))["id"]})


@builds(f"GET {V1}/interest-postings/{{period}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"period": PERIOD})


@builds(f"POST {V1}/statements/runs")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"period": PERIOD, "notify_owners": False})


# financial reports and closed periods: of organization A, named (B's staff cannot see it)
def _of_a(**params: str) -> Builder:
    async def build(w: World, p: Principal) -> Req:
        return Req(params={"org_id": w.a.id, **params})

    return build


BUILDERS[f"GET {V1}/reports/trial-balance"] = _of_a(as_of="2001-01-31")
BUILDERS[f"GET {V1}/reports/balance-sheet"] = _of_a(as_of="2001-01-31", format="pdf")
BUILDERS[f"GET {V1}/reports/income-statement"] = _of_a(**{"from": "2001-01-01", "to": "2001-01-31"})
BUILDERS[f"GET {V1}/reports/cash-flow"] = _of_a(**{"from": "2001-01-01", "to": "2001-01-31", "format": "csv"})
BUILDERS[f"GET {V1}/reports/periods"] = _of_a()
BUILDERS[f"GET {V1}/reports/loan-portfolio"] = _of_a(as_of="2001-01-31", format="xlsx")
BUILDERS[f"GET {V1}/reports/budget-variance"] = _of_a(**{"from": "2001-01-01", "to": "2001-01-31"})
BUILDERS[f"GET {V1}/reports/cash-forecast"] = _of_a(**{"from": "2001-01-01", "weeks": "2", "format": "pdf"})
BUILDERS[f"GET {V1}/reports/ledger-summary"] = _of_a(**{"from": "2001-01-01", "to": "2001-01-31", "group_by": "month"})
BUILDERS[f"GET {V1}/reports/budgets"] = _of_a(period_from="2001-01")


@builds(f"PUT {V1}/reports/budgets/{{period}}/{{line_key}}")
async def _(w: World, p: Principal) -> Req:
    # A's budget of a long-past month: setting it again (the same amount) changes nothing.
    return Req(path={"period": "2001-01", "line_key": "GL-CASH"}, json={"org_id": w.a.id, "amount": "1.00"})


@builds(f"GET {V1}/transaction-exports/download")
async def _(w: World, p: Principal) -> Req:
    return Req(params={"member_id": w.owner["id"], "format": "json", "date_to": "2001-01-31"})


@builds(f"POST {V1}/transaction-exports")
async def _(w: World, p: Principal) -> Req:
    return Req(headers=key(), json=w.export_body())


@builds(f"GET {V1}/transaction-exports/{{export_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"export_id": w.export["id"]})


@builds(f"GET {V1}/transaction-exports/{{export_id}}/file")
async def _(w: World, p: Principal) -> Req:
    # The signed link is the credential (no sign-in): every principal holding it gets the file (409 until ready).
    expires = int(time.time()) + 3600
    signature = export_links.signature(w.settings, uuid.UUID(w.export["id"]), expires)
    return Req(path={"export_id": w.export["id"]}, params={"expires": expires, "signature": signature})


@builds(f"POST {V1}/members/{{member_id}}/gdpr-export")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"member_id": w.owner["id"]}, headers=key())


@builds(f"POST {V1}/reward-programs")
async def _(w: World, p: Principal) -> Req:
    return Req(json=w.reward_program_body())


@builds(
    f"GET {V1}/reward-programs/{{program_id}}",
    f"POST {V1}/reward-programs/{{program_id}}/enroll",  # enrolling again finds the account: nothing changes
)
async def _(w: World, p: Principal) -> Req:
    return Req(path={"program_id": w.reward_program["id"]})


@builds(f"PATCH {V1}/reward-programs/{{program_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"program_id": w.reward_program["id"]}, json={"active": True})


@builds(
    f"GET {V1}/reward-accounts/{{account_id}}",
    f"GET {V1}/reward-accounts/{{account_id}}/entries",
    f"POST {V1}/reward-accounts/{{account_id}}/earn",  # nothing to earn: the same answer each time
)
async def _(w: World, p: Principal) -> Req:
    return Req(path={"account_id": w.reward_account["id"]})


@builds(f"POST {V1}/reward-accounts/{{account_id}}/redemptions")
async def _(w: World, p: Principal) -> Req:
    # The balance is zero: past access control, a 409 insufficient_points (nothing changes).
    return Req(path={"account_id": w.reward_account["id"]}, headers=key(), json={"points": "1.00", "reason": "Matrix"})


@builds(f"POST {V1}/report-runs")
async def _(w: World, p: Principal) -> Req:
    return Req(headers=key(), json=w.report_run_body())


@builds(f"GET {V1}/report-runs/{{run_id}}", f"GET {V1}/report-runs/{{run_id}}/file")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"run_id": w.report_run["id"]})


@builds(f"POST {V1}/report-definitions")
async def _(w: World, p: Principal) -> Req:
    return Req(headers=key(), json=w.report_definition_body())


@builds(f"GET {V1}/report-definitions/{{definition_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"definition_id": w.report_definition["id"]})


@builds(
    f"POST {V1}/report-definitions/{{definition_id}}/pause",
    f"POST {V1}/report-definitions/{{definition_id}}/resume",
    f"DELETE {V1}/report-definitions/{{definition_id}}",
)
async def _(w: World, p: Principal) -> Req:
    made = await w.fresh("report_definition", p, w.new_report_definition)  # one each: a delete is final
    return Req(path={"definition_id": made["id"]})


@builds(f"POST {V1}/reports/periods")
async def _(w: World, p: Principal) -> Req:
    # A month long before anything the matrix posts: closing it (again) refuses no posting of the tests.
    body = {"org_id": w.a.id, "period_start": "1990-01-01", "period_end": "1990-01-31", "reason": "Matrix close"}
    return Req(json=body)


# members and KYC
async def _member_link(w: World, table: str) -> str:
    """A pending invitation or sign-up of organization A with a known token (what the emailed link carries)."""
    token, email = members.new_token(), f"matrix-{uuid.uuid4().hex[:10]}@tests.example"
    purpose = "invitation" if table == "member_invitations" else "signup"
    columns = "member_type, invited_by" if table == "member_invitations" else "full_name, hashed_password"
    values = "'consumer', :by" if table == "member_invitations" else "'Matrix member', 'x'"
    async with w.db.session() as session, session.begin():
        await session.execute(
            text(
                f"INSERT INTO {table} (id, org_id, email, {columns}, token_hash, expires_at) "
                f"VALUES (:id, :org, :email, {values}, :hash, now() + interval '1 hour')"
            ),
            {
                "id": uuid.uuid4(),
                "org": w.a.id,
                "email": email,
                "by": w.users["A.fixture_admin"]["id"],
                "hash": members.token_hash(w.settings, purpose, token),
            },
        )
    return token


async def _fresh_member(w: World) -> dict:
    return (await make_user(w.http, w.su, "member", w.a.id))[0]


@builds(f"PATCH {V1}/organizations/{{org_id}}/settings")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"org_id": w.a.id}, json={"open_registration": True})


@builds(f"POST {V1}/organizations/{{org_id}}/invitations")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"org_id": w.a.id}, json={"email": f"matrix-{uuid.uuid4().hex[:10]}@tests.example"})


@builds(f"POST {V1}/invitations/accept")
async def _(w: World, p: Principal) -> Req:
    token = await w.fresh("invitation", p, lambda: _member_link(w, "member_invitations"))
    return Req(json={"token": token, "full_name": "Matrix member", "password": "a-long-test-password"})


@builds(f"POST {V1}/organizations/{{org_id}}/signups")
async def _(w: World, p: Principal) -> Req:
    async with w.db.session() as session, session.begin():  # open to anyone, whatever the settings row's turn
        await session.execute(text("UPDATE organizations SET open_registration = true WHERE id = :id"), {"id": w.a.id})
    return Req(
        path={"org_id": w.a.id},
        json={
            "email": f"matrix-{uuid.uuid4().hex[:10]}@tests.example",
            "full_name": "Matrix member",
            "password": "a-long-test-password",
        },
    )


@builds(f"POST {V1}/signups/verify")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"token": await w.fresh("signup", p, lambda: _member_link(w, "member_signups"))})


BUILDERS[f"GET {V1}/profile"] = static()
BUILDERS[f"PATCH {V1}/profile"] = static(json={"phone": "+1 555 0100"})
BUILDERS[f"GET {V1}/members"] = listing(lambda w: {"q": w.owner["email"]}, lambda w: w.owner["id"])

# Currency: a conversion (same currency: no rate needed, so the sandbox's rates never decide the outcome), one's own
# base currency (set to what it is).
BUILDERS[f"GET {V1}/fx/convert"] = static(params={"amount": "1.00", "from": "USD", "to": "USD"})
BUILDERS[f"GET {V1}/me/base-currency"] = static()
BUILDERS[f"PUT {V1}/me/base-currency"] = static(json={"base_currency": "USD"})


# A member's money summary and insights: A.member_owner's, in dollars (their accounts' currency: no rate fetched).
@builds(
    f"GET {V1}/money/summary",
    f"GET {V1}/insights/cash-flow",
    f"GET {V1}/insights/top-merchants",
    f"GET {V1}/insights/categories",
    f"GET {V1}/insights/burn-rate",
    f"GET {V1}/insights/net-worth",
)
async def _(w: World, p: Principal) -> Req:
    return Req(params={"member_id": w.owner["id"], "currency": "USD"})


@builds(f"GET {V1}/members/{{member_id}}", f"GET {V1}/members/{{member_id}}/kyc")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"member_id": w.owner["id"]})


@builds(f"POST {V1}/members/{{member_id}}/deactivate")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"member_id": (await w.fresh("member", p, lambda: _fresh_member(w)))["id"]})


@builds(f"POST {V1}/members/{{member_id}}/kyc/submissions")
async def _(w: World, p: Principal) -> Req:
    # The owner is verified (a superuser made them): whoever may submit gets a 409 already_verified, no workflow.
    return Req(
        path={"member_id": w.owner["id"]},
        json={
            "full_name": "Matrix member",
            "date_of_birth": "1990-04-01",
            "address": "1 Main St",
            "national_id_last4": "1234",
        },
    )


# API keys
BUILDERS[f"GET {V1}/api-keys"] = listing(lambda w: {"name": w.api_key["name"]}, lambda w: w.api_key["id"])


@builds(f"POST {V1}/api-keys")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"name": unique("matrix new key"), "scopes": ["payments:read"]}, headers=key())


@builds(f"GET {V1}/api-keys/{{key_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"key_id": w.api_key["id"]})


@builds(f"POST {V1}/api-keys/{{key_id}}/revoke")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"key_id": (await w.fresh("api_key", p, w.new_api_key))["id"]})


@builds(f"POST {V1}/api-keys/{{key_id}}/rotate")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"key_id": (await w.fresh("api_key", p, w.new_api_key))["id"]}, json={"overlap_seconds": 60})


# card payments in through the gateway, and the gateway's webhook
BUILDERS[f"GET {V1}/gateway-payments"] = listing(
    lambda w: {"purpose": "bill", "bill_id": w.gateway_payment["bill_id"]}, lambda w: w.gateway_payment["id"]
)


@builds(f"POST {V1}/gateway-payments")
async def _(w: World, p: Principal) -> Req:
    # A bill of A's member owner each: a card payment holds its bill, so one principal's would refuse the next's.
    bill = await w.fresh("gateway_bill", p, w.gateway_bill)
    return Req(json={"purpose": "bill", "bill_id": bill["id"]}, headers=key())


@builds(f"GET {V1}/gateway-payments/{{payment_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"payment_id": w.gateway_payment["id"]})


@builds(f"POST {V1}/webhooks/gateway")
async def _(w: World, p: Principal) -> Req:
    body, headers = signed_gateway_event(w.settings)
    return Req(content=body, headers=headers)


# webhooks out
BUILDERS[f"GET {V1}/webhook-subscriptions"] = listing(lambda w: {}, lambda w: w.subscription["id"])
BUILDERS[f"GET {V1}/webhook-deliveries"] = listing(
    lambda w: {"subscription_id": w.subscription["id"]}, lambda w: w.webhook_event_id
)


@builds(f"POST {V1}/webhook-subscriptions")
async def _(w: World, p: Principal) -> Req:
    # Into A: a superuser names it, A's admin may, B's admin may not (403).
    body = {"url": "https://erp.example.com/hooks", "event_types": ["loan.status_changed"], "org_id": w.a.id}
    return Req(json=body, headers=key())


@builds(f"GET {V1}/webhook-subscriptions/{{subscription_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"subscription_id": w.subscription["id"]})


@builds(f"GET {V1}/webhook-subscriptions/{{subscription_id}}/deliveries")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"subscription_id": w.subscription["id"]}, lists=str(w.webhook_event_id))


@builds(f"PATCH {V1}/webhook-subscriptions/{{subscription_id}}")
async def _(w: World, p: Principal) -> Req:
    target = await w.fresh("subscription", p, w.new_subscription)
    return Req(path={"subscription_id": target["id"]}, json={"status": "paused", "description": "Matrix"})


@builds(f"DELETE {V1}/webhook-subscriptions/{{subscription_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"subscription_id": (await w.fresh("subscription", p, w.new_subscription))["id"]})


@builds(f"POST {V1}/webhook-deliveries/{{event_id}}/replay")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"event_id": await w.fresh("webhook_event", p, w.dead_webhook_event)})


# members' transactions, categories and category rules
BUILDERS[f"GET {V1}/transactions"] = listing(lambda w: {"member_id": w.owner["id"]}, lambda w: w.txn_id)
BUILDERS[f"GET {V1}/categories"] = listing(lambda w: {"member_id": w.owner["id"]}, lambda w: w.category_key)
BUILDERS[f"GET {V1}/category-rules"] = listing(lambda w: {"member_id": w.owner["id"]}, lambda w: w.category_rule["id"])


@builds(f"GET {V1}/transactions/{{txn_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"txn_id": w.txn_id})


@builds(f"PATCH {V1}/transactions/{{txn_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"txn_id": w.txn_id}, json={"notes": "Matrix"})  # the same each time: shared


@builds(f"POST {V1}/transactions/recategorise")
async def _(w: World, p: Principal) -> Req:
    # Scoped like a list: whoever passes the gate gets a 200 (a count of 0 for what they may not change).
    return Req(json={"txn_ids": [w.txn_id], "category_key": "groceries"})


@builds(f"POST {V1}/categories")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"key": f"matrix_{uuid.uuid4().hex[:10]}", "name": "Matrix", "kind": "expense"})


@builds(f"POST {V1}/category-rules")
async def _(w: World, p: Principal) -> Req:
    # A's: its member's own rule, or its admin's (a superuser's) organization-wide one; B's users cannot see A.
    return Req(json={"pattern": "matrix", "category_key": "groceries", "org_id": w.a.id})


@builds(f"POST {V1}/category-rules/apply")
async def _(w: World, p: Principal) -> Req:
    return Req(json={"member_id": w.owner["id"], "include_ledger": False})


@builds(f"GET {V1}/category-rules/{{rule_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"rule_id": w.category_rule["id"]})


@builds(f"PATCH {V1}/category-rules/{{rule_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"rule_id": w.category_rule["id"]}, json={"priority": 50})  # the same each time: shared


@builds(f"DELETE {V1}/category-rules/{{rule_id}}")
async def _(w: World, p: Principal) -> Req:
    return Req(path={"rule_id": (await w.fresh("category_rule", p, w.new_category_rule))["id"]})


# --- the test ---------------------------------------------------------------------------------------------------


async def observe(w: World, operation: str, principal: Principal, sem: asyncio.Semaphore) -> Observation:
    method, template = operation.split(" ", 1)
    started = time.monotonic()
    try:
        req = await BUILDERS[operation](w, principal)
    except Exception as exc:  # a fixture that could not be made is the test's problem, named as such
        raise AssertionError(f"building {operation} for {principal.name}: {exc!r}") from exc
    built = time.monotonic()
    async with sem:
        sent = time.monotonic()
        response = await w.http.request(
            method,
            template.format(**req.path),
            headers={**w.headers[principal.name], **req.headers},
            json=req.json,
            data=req.data,
            params=req.params,
            content=req.content,
        )
    w.timings.append((operation, built - started, time.monotonic() - sent))
    outcome, code = matrix.classify(response, req.lists)
    return Observation(operation, principal.name, outcome, response.status_code, code)


async def test_authorization_matrix(api_server, su, settings, db, sandbox_url, odfi, request):
    # A client of its own, without keep-alive: the server (in this event loop, beside the worker) may be held up for
    # seconds under this load, after which it closes a kept-alive connection (uvicorn: 5 s idle) even as a request
    # is sent on it. A new connection per request never meets that. Waiting for one of the 50 connections is only a
    # queue (every builder of the matrix starts at once): no pool timeout, each request still has its 60 s.
    async with httpx.AsyncClient(
        base_url=api_server.url,
        timeout=httpx.Timeout(60, pool=None),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=0),
    ) as http:
        await run_matrix(http, su, settings, db, sandbox_url, request.config.getoption("--write-authz-matrix"))


async def run_matrix(http, su, settings, db, sandbox_url, write: bool) -> None:
    openapi = (await http.get("/openapi.json")).json()
    table = matrix.load_table()
    problems = matrix.coverage_problems(openapi, table, BUILDERS)
    if write:  # rows are what is regenerated; a request builder only a person can write
        problems = [problem for problem in problems if "no request builder" in problem]
    # A missing row or builder fails before anything runs.
    assert not problems, "the authorization matrix does not cover the API:\n  " + "\n  ".join(problems)

    started = time.monotonic()
    world = World(http, su, settings, db, sandbox_url)
    await world.build()
    setup = time.monotonic() - started
    sem = asyncio.Semaphore(CONCURRENCY)
    pairs = [(operation, p) for operation in matrix.operations(openapi) if operation in BUILDERS for p in PRINCIPALS]
    observed = await asyncio.gather(*(observe(world, operation, p, sem) for operation, p in pairs))
    print(
        f"\nauthorization matrix: {len(pairs)} requests; setup {setup:.1f} s, "
        f"matrix {time.monotonic() - started - setup:.1f} s"
    )
    slowest = sorted(world.timings, key=lambda t: -(t[1] + t[2]))[:8]
    print("slowest (build s, answer s): " + "; ".join(f"{o} {b:.1f}/{a:.1f}" for o, b, a in slowest))

    unusable = [
        f"{o.operation} as {o.principal}: {o.outcome} (HTTP {o.status}, {o.code})"
        for o in observed
        if o.outcome not in matrix.OUTCOMES
    ]
    assert not unusable, (
        "these requests are not valid or crashed, so they say nothing about access; fix the "
        "builder (or the bug):\n  " + "\n  ".join(unusable)
    )
    if dump := os.environ.get("AUTHZ_MATRIX_OBSERVED"):  # every answer's status and error code, for a reviewer
        await asyncio.to_thread(
            Path(dump).write_text,
            "operation,principal,outcome,status,code\n"
            + "".join(f"{o.operation},{o.principal},{o.outcome},{o.status},{o.code or ''}\n" for o in observed),
        )
    if write:
        new = matrix.regenerated(table, observed)
        matrix.TABLE.write_text(matrix.render_table(new))
        changed = [k for k in new if table.get(k, {}).get("expected") != new[k]["expected"]]
        pytest.skip(f"wrote {matrix.TABLE} ({len(new)} rows, {len(changed)} new or changed): review the diff")
    wrong = matrix.mismatches(table, observed)
    assert not wrong, (
        f"{len(wrong)} access decisions differ from {matrix.TABLE.name} (if intended, regenerate with "
        "--write-authz-matrix and review):\n  " + "\n  ".join(wrong)
    )
