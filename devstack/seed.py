"""Demo data for `make run`: idempotent, so a second start finds the same rows and adds nothing.

Everything has a fixed id (uuid5 of a name); money moves through the ledger with fixed idempotency keys,
and the demo book transfer goes through the API like any client's."""

import asyncio
import io
import uuid
from decimal import Decimal

import httpx
from PIL import Image, ImageDraw
from sqlalchemy import text

from core import api_keys, ledger
from core.business_time import business_today
from core.config import get_settings
from core.crypto import AccountNumberCipher
from core.db import Database
from core.security import hash_password
from models.ledger import GL_CASH

_NS = uuid.UUID("0c6f6c1e-9d0e-4b7a-8f55-2f1d2b4b5a10")


def demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NS, name)


ORG = ("Riverside Credit Union", demo_id("org:riverside"))
USERS = [  # (email, full name, role, password)
    ("admin@backoffice.example", "Sam Superuser", "superuser", "demo-superuser-pass"),
    ("bankops@backoffice.example", "Bea Bankops", "bank_operations", "demo-bankops-pass"),
    ("orgadmin@riverside.example", "Olivia Orgadmin", "org_admin", "demo-orgadmin-pass"),
    ("operator@riverside.example", "Omar Operator", "operator", "demo-operator-pass"),
    ("alice@riverside.example", "Alice Member", "member", "demo-member-pass"),
    ("bob@riverside.example", "Bob Member", "member", "demo-member-pass"),
    ("officer@riverside.example", "Lena Loanofficer", "loan_officer", "demo-officer-pass"),
    ("manager@riverside.example", "Brian Branchmanager", "branch_manager", "demo-manager-pass"),
    ("committee1@riverside.example", "Carla Committee", "credit_committee", "demo-committee-pass"),
    ("committee2@riverside.example", "Chen Committee", "credit_committee", "demo-committee-pass"),
    ("committee3@riverside.example", "Cleo Committee", "credit_committee", "demo-committee-pass"),
    ("uma@riverside.example", "Uma Unverified", "member", "demo-member-pass"),
    ("petra@riverside.example", "Petra Pending", "member", "demo-member-pass"),
    ("vic@riverside.example", "Vic Verified", "member", "demo-member-pass"),
    ("rita@riverside.example", "Rita Rejected", "member", "demo-member-pass"),
    ("secure@riverside.example", "Sasha Secure", "operator", "demo-secure-operator-pass"),
]
# Members at each KYC stage (README: Members and KYC): they start unverified, and those with a national id submit it
# to KYC (the sandbox identity service: 9999 refers to an operator's review, 1234 passes, 0000 fails). Alice and Bob
# stand for members from before KYC: verified.
KYC_MEMBERS = {
    "uma@riverside.example": None,
    "petra@riverside.example": "9999",
    "vic@riverside.example": "1234",
    "rita@riverside.example": "0000",
}
# A staff user with MFA on: log in, then POST /auth/mfa/verify with a code of this secret (any authenticator app,
# or `python -c "import pyotp; print(pyotp.TOTP('<secret>').now())"`). A demo secret, published here: never in production.
MFA_USER = ("secure@riverside.example", "DEMOTOTPSECRETSASHASECUREOPERATR")
ACCOUNTS = [  # (key, name, type, owner email or None)
    ("alice-checking", "Alice everyday checking", "checking", "alice@riverside.example"),
    ("alice-savings", "Alice savings", "savings", "alice@riverside.example"),
    ("bob-checking", "Bob checking", "checking", "bob@riverside.example"),
    ("riverside-operating", "Riverside operating account", "checking", None),
]
DEPOSITS = [("alice-checking", Decimal("5000.00")), ("bob-checking", Decimal("1200.00"))]
DEMO_TRANSFER_KEY = "demo-book-transfer-1"
# A machine client's key of Riverside's org admin, fixed so that a second start finds it (core/api_keys.py format).
DEMO_API_KEY = "bo_de40a0c0ffee_demo-only-api-key-never-use-in-production-x"
DEMO_API_KEY_SCOPES = ["accounts:read", "payments:read", "payments:write", "loans:read"]


async def seed_database(db: Database) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            text("INSERT INTO organizations (id, name) VALUES (:id, :name) ON CONFLICT DO NOTHING"),
            {"id": ORG[1], "name": ORG[0]},
        )
        for email, full_name, role, password in USERS:
            await session.execute(
                text(
                    """INSERT INTO users (id, email, full_name, hashed_password, role, org_id, is_active, kyc_status)
                   VALUES (:id, :email, :name, :pw, :role, :org, true, :kyc) ON CONFLICT DO NOTHING"""
                ),
                {
                    "id": demo_id(f"user:{email}"),
                    "email": email,
                    "name": full_name,
                    "pw": hash_password(password),
                    "role": role,
                    "org": None if role in ("superuser", "bank_operations") else ORG[1],
                    "kyc": "unverified" if email in KYC_MEMBERS else "verified",
                },
            )
        await session.execute(
            text(
                """INSERT INTO user_mfa (user_id, secret_encrypted, confirmed_at) VALUES (:user, :secret, now())
                   ON CONFLICT DO NOTHING"""
            ),
            {
                "user": demo_id(f"user:{MFA_USER[0]}"),
                "secret": AccountNumberCipher.from_settings(get_settings()).encrypt(MFA_USER[1]),
            },
        )
        for key, name, account_type, owner in ACCOUNTS:
            await session.execute(
                text(
                    """INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, org_id, owner_id, status)
                   VALUES (:id, :name, 'internal', :type, 'credit', 'USD', :org, :owner, 'active')
                   ON CONFLICT DO NOTHING"""
                ),
                {
                    "id": demo_id(f"account:{key}"),
                    "name": name,
                    "type": account_type,
                    "org": ORG[1],
                    "owner": demo_id(f"user:{owner}") if owner else None,
                },
            )
        parsed = api_keys.parse(DEMO_API_KEY)
        assert parsed is not None, "the demo API key must have the format of a key"
        await session.execute(
            text(
                """INSERT INTO api_keys (id, prefix, secret_hash, name, scopes, org_id, created_by, expires_at)
                   VALUES (:id, :prefix, :hash, 'Demo reconciliation client', :scopes, :org, :creator,
                           now() + interval '365 days')
                   ON CONFLICT DO NOTHING"""
            ),
            {
                "id": demo_id("api-key:demo"),
                "prefix": parsed[0],
                "hash": api_keys.hash_secret(parsed[1]),
                "scopes": DEMO_API_KEY_SCOPES,
                "org": ORG[1],
                "creator": demo_id("user:orgadmin@riverside.example"),
            },
        )
        cash = (
            await session.execute(
                text("SELECT id FROM ledger_accounts WHERE code = :c AND currency = 'USD'"), {"c": GL_CASH}
            )
        ).scalar_one()
        for key, amount in DEPOSITS:
            await ledger.post_entry(
                session,
                idempotency_key=f"demo:deposit:{key}",
                entry_type="cash_deposit",
                description="Opening deposit (demo)",
                effective_date=business_today(get_settings()),
                legs=[ledger.Leg(cash, amount), ledger.Leg(demo_id(f"account:{key}"), -amount)],
            )


async def seed_through_api(api_url: str, sandbox_url: str) -> list[dict]:
    """A book transfer, a linked external account and two ACH debits (one the bank returns R01), through the API
    with fixed Idempotency-Keys, so a second start finds them instead of making more."""
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30) as http,
        httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox,
    ):
        alice = await _login(http, "alice@riverside.example", "demo-member-pass")
        transfer = await _post(
            http,
            "/api/v1/transfers/book",
            alice,
            DEMO_TRANSFER_KEY,
            {
                "from_account_id": str(demo_id("account:alice-checking")),
                "to_account_id": str(demo_id("account:alice-savings")),
                "amount": "250.00",
                "memo": "Demo: move to savings",
            },
        )
        admin = await _login(http, "orgadmin@riverside.example", "demo-orgadmin-pass")
        external = await _demo_external_account(http, sandbox, admin)
        payments = [transfer]
        for key, amount, memo in (
            ("demo-ach-debit-1", "100.00", "Demo: top-up from the bank"),
            ("demo-ach-debit-r01", "75.01", "Demo: the bank returns this one (R01)"),
        ):
            payments.append(
                await _post(
                    http,
                    "/api/v1/payments",
                    admin,
                    key,
                    {
                        "kind": "ach_debit",
                        "amount": amount,
                        "account_id": str(demo_id("account:riverside-operating")),
                        "external_account_id": external["id"],
                        "memo": memo,
                    },
                )
            )
        payments.extend(await _demo_loans(http, sandbox))
        await _demo_kyc(http)
        return payments


async def _demo_kyc(http: httpx.AsyncClient) -> None:
    """Each KYC member with a national id submits it once (while still unverified: a second start submits nothing)."""
    for email, last4 in KYC_MEMBERS.items():
        if last4 is None:
            continue
        member = await _login(http, email, "demo-member-pass")
        me = (await http.get("/api/v1/profile", headers=member)).json()
        if me["kyc_status"] != "unverified":
            continue
        identity = {"full_name": me["full_name"], "date_of_birth": "1985-06-15", "address": "12 River Rd, Riverside"}
        document = await _demo_id_document(http, member, me)
        response = await http.post(
            f"/api/v1/members/{me['id']}/kyc/submissions",
            headers=member,
            json={**identity, "national_id_last4": last4, "document_ids": [document["id"]]},
        )
        response.raise_for_status()


def _id_card_png(full_name: str) -> bytes:
    """A demo identity card: the same bytes for the same name (so a second start's upload is the same upload)."""
    card = Image.new("RGB", (320, 200), "white")
    draw = ImageDraw.Draw(card)
    draw.rectangle((4, 4, 315, 195), outline="navy", width=3)
    draw.text((16, 16), "DEMO IDENTITY CARD (not a real document)", fill="navy")
    draw.text((16, 80), full_name, fill="black")
    buffer = io.BytesIO()
    card.save(buffer, format="PNG")
    return buffer.getvalue()


async def _demo_id_document(http: httpx.AsyncClient, member: dict, me: dict) -> dict:
    """The member's identity document, uploaded by the member (scanned and sealed as any upload)."""
    response = await http.post(
        "/api/v1/documents",
        headers={**member, "Idempotency-Key": f"demo-id-document-{me['id']}"},
        data={"entity_type": "user", "entity_id": me["id"], "kind": "id_document", "title": "Identity card"},
        files={"file": ("id-card.png", _id_card_png(me["full_name"]), "image/png")},
    )
    response.raise_for_status()
    return response.json()


async def _demo_loans(http: httpx.AsyncClient, sandbox: httpx.AsyncClient) -> list[dict]:
    """Three applications from Alice, left waiting on each level of the default routing: a loan officer, a branch
    manager, the credit committee (findable in the Temporal UI by LoanStatus and WaitingOnRole)."""
    su = await _login(http, "admin@backoffice.example", "demo-superuser-pass")
    products = (await http.get("/api/v1/loan-products", headers=su, params={"name": "Demo personal loan"})).json()
    product = (
        products["items"][0]
        if products["items"]
        else await _post(
            http,
            "/api/v1/loan-products",
            su,
            "",
            {
                "name": "Demo personal loan",
                "annual_rate": "0.0725",
                "min_term": 6,
                "max_term": 120,
                "min_amount": "1000.00",
                "max_amount": "250000.00",
                "amortization": "declining_balance",
                "frequency": "monthly",
                "day_count": "30/360",
                "grace_days": 10,
                "late_fee": "25.00",
            },
        )
    )
    alice_id = str(demo_id("user:alice@riverside.example"))
    await sandbox.put("/bureau/_control", json={"fixed_scores": {alice_id: 742}})
    alice = await _login(http, "alice@riverside.example", "demo-member-pass")
    loans = []
    for key, amount, purpose, approvers in (
        ("demo-loan-officer", "8000.00", "Used car", []),
        ("demo-loan-manager", "45000.00", "Home renovation", ["officer@riverside.example"]),
        (
            "demo-loan-committee",
            "180000.00",
            "Small business premises",
            ["officer@riverside.example", "manager@riverside.example"],
        ),
    ):
        loan = await _post(
            http,
            "/api/v1/loans",
            alice,
            key,
            {
                "product_id": product["id"],
                "amount": amount,
                "term": 120,
                "purpose": purpose,
                "monthly_income": "60000.00",
                "monthly_debt": "400.00",
                "deposit_account_id": str(demo_id("account:alice-checking")),
            },
        )
        for level, email in enumerate(approvers, start=1):
            request_id = await _approval_waiting_at(http, su, loan["id"], level)
            approver = await _login(http, email, "demo-officer-pass" if "officer" in email else "demo-manager-pass")
            await http.post(
                f"/api/v1/approvals/{request_id}/decisions",
                headers=approver,
                json={"decision": "approve", "reason": "Demo", "level": level},
            )
        loans.append({**loan, "kind": "loan", "amount": amount})
    return loans


async def _approval_waiting_at(http: httpx.AsyncClient, su: dict, loan_id: str, level: int) -> str:
    for _ in range(150):
        loan = (await http.get(f"/api/v1/loans/{loan_id}", headers=su)).json()
        if loan.get("approval_request_id"):
            state = (await http.get(f"/api/v1/approvals/{loan['approval_request_id']}", headers=su)).json()
            # quorum 0 is the database's view: the approval workflow has not started yet
            if state.get("level", 0) >= level and state.get("status") == "open" and state.get("quorum", 0) >= 1:
                return loan["approval_request_id"]
        await asyncio.sleep(0.2)
    raise RuntimeError(f"demo loan {loan_id} did not reach approval level {level}")


async def _login(http: httpx.AsyncClient, email: str, password: str) -> dict:
    response = await http.post("/api/v1/auth/login", data={"username": email, "password": password})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _post(http: httpx.AsyncClient, path: str, headers: dict, key: str, body: dict) -> dict:
    response = await http.post(path, headers={**headers, **({"Idempotency-Key": key} if key else {})}, json=body)
    response.raise_for_status()
    return response.json()


async def _demo_external_account(http: httpx.AsyncClient, sandbox: httpx.AsyncClient, admin: dict) -> dict:
    existing = (await http.get("/api/v1/external-accounts", headers=admin, params={"status": "verified"})).json()
    if existing["items"]:
        return existing["items"][0]
    link = (await http.post("/api/v1/external-accounts/link-token", headers=admin, json={})).json()
    public = (
        await sandbox.post(
            "/linking/sandbox/public_token/create",
            json={
                "client_id": "backoffice",
                "secret": "sandbox-secret",
                "institution_id": "ins_1",
                "link_token": link["link_token"],
            },
        )
    ).json()["public_token"]
    response = await http.post("/api/v1/external-accounts/link", headers=admin, json={"public_token": public})
    response.raise_for_status()
    return response.json()[0]
