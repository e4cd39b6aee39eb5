"""API keys for machine clients: their format, their hash, and the scope each API path needs.

A key is `bo_<prefix>_<secret>`: the prefix (12 hex characters) is public and finds the row; the secret (32 random
bytes, URL-safe base64) is shown once and kept only as its SHA-256 (a fast hash is right for a random secret of this
size: there is nothing to guess). It is sent as `Authorization: Bearer bo_...` or `X-API-Key: bo_...`.

A key acts as the user who created it, narrowed to its scopes: `<resource>:read` (GET) or `<resource>:write` (any
other method) for the first segment of the API path (core/access.py `SCOPE_ROLES` says which role may hold which).
No scope reaches the API keys themselves or sign-in (`api-keys`, `auth`): those need a person. Pure: no I/O."""

import hashlib
import hmac
import re
import secrets
import uuid
from contextvars import ContextVar

PREFIX = "bo"

# The key the current request acts through (set by the API when a key signs it in; read by core/audit.py).
acting_key: ContextVar[uuid.UUID | None] = ContextVar("acting_key", default=None)
_KEY_RE = re.compile(r"^bo_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$", re.ASCII)

# The first segment of an /api/v1 path -> the scope resource it belongs to. A path whose segment is not here is
# never open to a key.
RESOURCES: dict[str, str] = {
    "organizations": "organizations",
    "users": "users",
    "accounts": "accounts",
    "external-accounts": "external_accounts",
    "transfers": "payments",
    "payments": "payments",
    "ach": "ach_files",
    "bank-events": "bank_events",
    "audit": "audit",
    "notifications": "notifications",
    "loan-products": "loan_products",
    "savings-products": "savings_products",
    "approval-rules": "approval_rules",
    "loans": "loans",
    "approvals": "approvals",
    "bills": "bills",
    "interest-postings": "interest",
    "statements": "statements",
    "operations": "operations",
    # The members work (merged on main after this branch began): members and their KYC, invitations to join.
    "members": "members",
    "invitations": "members",
    "documents": "documents",  # the documents work (merged on main meanwhile)
    "journal-entries": "journal_entries",
    "standing-instructions": "standing_instructions",
    "transaction-imports": "transaction_imports",
    "reports": "reports",  # financial reports and accounting periods
    "report-runs": "reports",
    "report-definitions": "reports",
    "webhook-subscriptions": "webhooks",
    "webhook-deliveries": "webhooks",
    "reconciliations": "reconciliations",
    "gateway-payments": "gateway_payments",  # card payments in; the gateway's own webhook is signed, not keyed
    "maker-checker": "maker_checker",  # large transactions, manual entries and closes awaiting a checker
    "transactions": "transactions",  # members' transactions (ledger postings and imported lines)
    "categories": "categories",
    "category-rules": "category_rules",
    "transaction-exports": "exports",  # members' transactions exports (their signed file links need no key)
    "reward-programs": "rewards",
    "reward-accounts": "rewards",
    "money-shares": "money_shares",  # a member's shares of their money records, and their partners' presence
    "ws": "notifications",  # the live updates WebSocket: notifications and shared changes as they happen
    "member-budgets": "member_budgets",  # members' own budgets (not the organization's: reports/budgets)
    "alert-subscriptions": "alerts",
    "alerts": "alerts",
    "fx": "fx",  # currency conversion
    "insights": "insights",  # a member's cash flow, merchants, categories, burn rate, net worth
    "money": "insights",  # a member's money summary across accounts and currencies
}
# Paths any key may call whatever its scopes: who the key acts as. (/api/v1/me/..., /api/v1/profile, sign-up and
# sign-in are a person's own: not in RESOURCES, so closed to keys.)
OPEN_TO_KEYS = frozenset({"/api/v1/me"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_key() -> tuple[str, str, str]:
    """(the whole key to show once, its prefix, the hash to store)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}_{prefix}_{secret}", prefix, hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = _KEY_RE.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX + "_")


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def scope_for(path: str, method: str) -> str | None:
    """The scope a request for `path` (as asked, or a route's template: only its first segment after /api/v1
    counts) needs; "" when any key may call it; None when no key may."""
    if path in OPEN_TO_KEYS:
        return ""
    parts = path.split("/")
    if len(parts) < 4 or parts[:3] != ["", "api", "v1"]:
        return None
    resource = RESOURCES.get(parts[3])
    if resource is None:
        return None
    return f"{resource}:{'read' if method.upper() in READ_METHODS else 'write'}"
