"""A Plaid-like account-linking provider: link token → public token → access token → auth numbers.

Mirrors Plaid's shapes closely enough that the main app's client would talk to the real service the
same way: JSON bodies carrying client_id and secret, errors as {"error_type", "error_code",
"error_message"} with a 4xx status. State lives in memory; a restart forgets every item.
"""

import hashlib
import hmac
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

LINK_TOKEN_TTL = timedelta(hours=4)
PUBLIC_TOKEN_TTL = timedelta(minutes=30)
SUPPORTED_PRODUCTS = {"auth"}


# --- institutions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountTemplate:
    name: str
    official_name: str
    subtype: Literal["checking", "savings"]


@dataclass(frozen=True)
class Institution:
    institution_id: str
    name: str
    routing: str
    wire_routing: str
    accounts: tuple[AccountTemplate, ...]


INSTITUTIONS: dict[str, Institution] = {
    i.institution_id: i
    for i in (
        Institution(
            "ins_1",
            "First Platypus Bank",
            routing="011401533",
            wire_routing="021000021",
            accounts=(
                AccountTemplate("Platypus Checking", "First Platypus Everyday Checking", "checking"),
                AccountTemplate("Platypus Savings", "First Platypus High-Yield Savings", "savings"),
            ),
        ),
        Institution(
            "ins_2",
            "Tartan Credit Union",
            routing="121000358",
            wire_routing="121000358",
            accounts=(AccountTemplate("Share Draft", "Tartan Credit Union Share Draft Checking", "checking"),),
        ),
        # 011401534 differs from ins_1's routing in the check digit only, so it FAILS the ABA checksum:
        # the main app must refuse to store accounts from this bank.
        Institution(
            "ins_3",
            "Broken Routing Bank",
            routing="011401534",
            wire_routing="011401534",
            accounts=(AccountTemplate("Broken Checking", "Broken Routing Bank Checking", "checking"),),
        ),
    )
}


# --- errors ---------------------------------------------------------------------------------------


class PlaidError(Exception):
    def __init__(self, status: int, error_type: str, error_code: str, error_message: str):
        self.status, self.error_type, self.error_code, self.error_message = (
            status,
            error_type,
            error_code,
            error_message,
        )

    def response(self) -> JSONResponse:
        body = {"error_type": self.error_type, "error_code": self.error_code, "error_message": self.error_message}
        return JSONResponse(body, status_code=self.status)


def _validation_error(exc: RequestValidationError) -> PlaidError:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return PlaidError(400, "INVALID_REQUEST", "INVALID_BODY", "body could not be parsed as JSON")
    fields = ", ".join(".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in errors)
    if any(e["type"] == "missing" for e in errors):
        return PlaidError(
            400, "INVALID_REQUEST", "MISSING_FIELDS", f"the following required fields are missing: {fields}"
        )
    return PlaidError(400, "INVALID_REQUEST", "INVALID_FIELD", f"invalid fields: {fields}")


class PlaidErrorRoute(APIRoute):
    """Turns validation errors and PlaidErrors into Plaid's error body, for this router only
    (other sandbox services speak their own dialects)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def plaid_handler(request: Request):
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(exc).response()
            except PlaidError as exc:
                return exc.response()

        return plaid_handler


# --- state ----------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _PendingPublicToken:
    institution_id: str
    expires_at: datetime


class LinkingState:
    """Tokens and items in memory. One lock guards all maps: the critical sections are tiny."""

    def __init__(self, client_id: str, secret: str, clock: Callable[[], datetime] = _utcnow):
        self._client_id, self._secret = client_id, secret
        self.clock = clock  # replaceable so tests can move time forward
        self._lock = threading.Lock()
        self._link_tokens: dict[str, datetime] = {}  # link_token → expires_at
        self._public_tokens: dict[str, _PendingPublicToken] = {}
        self._items: dict[str, str] = {}  # item_id → institution_id
        self._access_tokens: dict[str, str] = {}  # access_token → item_id

    def authenticate(self, client_id: str, secret: str) -> None:
        # compare_digest on both, always, so timing says nothing about which one was wrong
        ok_id = hmac.compare_digest(client_id.encode(), self._client_id.encode())
        ok_secret = hmac.compare_digest(secret.encode(), self._secret.encode())
        if not (ok_id and ok_secret):
            raise PlaidError(401, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided")

    def create_link_token(self) -> tuple[str, datetime]:
        token = f"link-sandbox-{uuid.uuid4()}"
        expires_at = (self.clock() + LINK_TOKEN_TTL).replace(microsecond=0)  # Plaid sends whole seconds
        with self._lock:
            self._link_tokens[token] = expires_at
        return token, expires_at

    def create_public_token(self, institution_id: str, link_token: str | None) -> str:
        if institution_id not in INSTITUTIONS:
            raise PlaidError(400, "INVALID_INPUT", "INVALID_INSTITUTION", f"unknown institution_id {institution_id!r}")
        now = self.clock()
        with self._lock:
            if link_token is not None and self._link_tokens.get(link_token, now) <= now:
                raise PlaidError(400, "INVALID_INPUT", "INVALID_LINK_TOKEN", "link token is invalid or expired")
            token = f"public-sandbox-{uuid.uuid4()}"
            self._public_tokens[token] = _PendingPublicToken(institution_id, now + PUBLIC_TOKEN_TTL)
        return token

    def exchange(self, public_token: str) -> tuple[str, str]:
        now = self.clock()
        with self._lock:
            pending = self._public_tokens.pop(public_token, None)  # pop: a public token is single-use
            if pending is None or pending.expires_at <= now:
                raise PlaidError(
                    400,
                    "INVALID_INPUT",
                    "INVALID_PUBLIC_TOKEN",
                    "public token is invalid, expired or already exchanged",
                )
            item_id, access_token = uuid.uuid4().hex, f"access-sandbox-{uuid.uuid4()}"
            self._items[item_id] = pending.institution_id
            self._access_tokens[access_token] = item_id
        return access_token, item_id

    def item(self, access_token: str) -> tuple[str, Institution]:
        with self._lock:
            item_id = self._access_tokens.get(access_token)
            if item_id is None:
                raise PlaidError(
                    400,
                    "INVALID_INPUT",
                    "INVALID_ACCESS_TOKEN",
                    "provided access token is in an invalid format or does not exist",
                )
            return item_id, INSTITUTIONS[self._items[item_id]]


def _derived_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest(), "big")


def derive_accounts(item_id: str, institution: Institution) -> tuple[list["Account"], list["AchNumbers"]]:
    """Accounts and numbers are a pure function of the item, so one access token always gets the same
    ones and different items get different ones, without storing them."""
    accounts, numbers = [], []
    for index, template in enumerate(institution.accounts):
        account_id = f"{_derived_int('account-id', item_id, index):064x}"[:32]
        seed = _derived_int("account-number", item_id, index)
        account_number = str(seed)[: 8 + seed % 5]  # 8–12 digits; a ~77-digit int never starts with 0
        accounts.append(
            Account(
                account_id=account_id,
                name=template.name,
                official_name=template.official_name,
                mask=account_number[-4:],
                subtype=template.subtype,
            )
        )
        numbers.append(
            AchNumbers(
                account_id=account_id,
                account=account_number,
                routing=institution.routing,
                wire_routing=institution.wire_routing,
            )
        )
    return accounts, numbers


# --- transactions (as Plaid's /transactions/sync) -------------------------------------------------

SYNC_HISTORY = 40  # each account's transactions, a pure function of the item like its numbers
MERCHANTS = (
    ("Fresh Market", "FOOD_AND_DRINK"),
    ("Corner Coffee", "FOOD_AND_DRINK"),
    ("City Transit", "TRANSPORTATION"),
    ("Power & Light", "RENT_AND_UTILITIES"),
    ("Streamly", "ENTERTAINMENT"),
)


def derive_transactions(item_id: str, institution: Institution, today: date) -> list["SyncTransaction"]:
    """Every account's last SYNC_HISTORY transactions, oldest first: a payroll credit every tenth, card spending
    otherwise (Plaid's sign: positive is money out of the account). The same item always gets the same ones."""
    accounts, _ = derive_accounts(item_id, institution)
    out = []
    for n in range(SYNC_HISTORY):
        for account in accounts:
            seed = _derived_int("txn", item_id, account.account_id, n)
            day = today - timedelta(days=SYNC_HISTORY - n)
            if n % 10 == 9:
                name, merchant, category, cents = "ACME PAYROLL", None, "INCOME", -(150_000 + seed % 50_000)
            else:
                merchant, category = MERCHANTS[seed % len(MERCHANTS)]
                name, cents = f"{merchant.upper()} #{seed % 900 + 100}", 100 + seed % 9_000
            out.append(
                SyncTransaction(
                    transaction_id=f"{_derived_int('txn-id', item_id, account.account_id, n):064x}"[:32],
                    account_id=account.account_id,
                    amount=Decimal(cents) / 100,
                    date=day,
                    name=name,
                    merchant_name=merchant,
                    personal_finance_category=PersonalFinanceCategory(primary=category),
                )
            )
    return out


def decode_cursor(cursor: str) -> int:
    """A cursor is the position after the last transaction handed out, opaque to the caller."""
    if not cursor:
        return 0
    try:
        return int(cursor.removeprefix("c"), 16)
    except ValueError as exc:
        raise PlaidError(400, "INVALID_INPUT", "INVALID_CURSOR", "cursor is not valid") from exc


# --- wire shapes ----------------------------------------------------------------------------------


class Credentials(BaseModel):
    client_id: str
    secret: str


class LinkUser(BaseModel):
    client_user_id: str = Field(min_length=1)


class LinkTokenCreateRequest(Credentials):
    user: LinkUser
    products: list[str] = Field(min_length=1)


class LinkTokenCreateResponse(BaseModel):
    link_token: str
    expiration: datetime


class PublicTokenCreateRequest(Credentials):
    institution_id: str
    link_token: str | None = None


class PublicTokenCreateResponse(BaseModel):
    public_token: str


class PublicTokenExchangeRequest(Credentials):
    public_token: str


class PublicTokenExchangeResponse(BaseModel):
    access_token: str
    item_id: str


class AuthGetRequest(Credentials):
    access_token: str


class Item(BaseModel):
    item_id: str
    institution_id: str


class Account(BaseModel):
    account_id: str
    name: str
    official_name: str
    mask: str
    type: Literal["depository"] = "depository"
    subtype: Literal["checking", "savings"]


class AchNumbers(BaseModel):
    account_id: str
    account: str
    routing: str
    wire_routing: str


class Numbers(BaseModel):
    ach: list[AchNumbers]


class AuthGetResponse(BaseModel):
    item: Item
    accounts: list[Account]
    numbers: Numbers


class TransactionsSyncRequest(Credentials):
    access_token: str
    cursor: str = ""
    count: int = Field(default=100, ge=1, le=500)


class PersonalFinanceCategory(BaseModel):
    primary: str


class SyncTransaction(BaseModel):
    transaction_id: str
    account_id: str
    amount: Decimal  # Plaid's sign: positive is money out of the account
    iso_currency_code: str = "USD"
    date: date
    name: str
    merchant_name: str | None
    personal_finance_category: PersonalFinanceCategory


class RemovedTransaction(BaseModel):
    transaction_id: str


class TransactionsSyncResponse(BaseModel):
    added: list[SyncTransaction]
    modified: list[SyncTransaction] = []
    removed: list[RemovedTransaction] = []
    next_cursor: str
    has_more: bool


class InstitutionOut(BaseModel):
    institution_id: str
    name: str
    routing_numbers: list[str]
    products: list[str]


class InstitutionsResponse(BaseModel):
    institutions: list[InstitutionOut]


# --- routes ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/linking", tags=["linking"], route_class=PlaidErrorRoute)


def _state(request: Request) -> LinkingState:
    return request.app.state.linking


@router.get("/institutions", response_model=InstitutionsResponse)
async def list_institutions() -> InstitutionsResponse:
    """The public catalogue (no credentials: there is no body on a GET)."""
    return InstitutionsResponse(
        institutions=[
            InstitutionOut(
                institution_id=i.institution_id,
                name=i.name,
                routing_numbers=[i.routing],
                products=sorted(SUPPORTED_PRODUCTS),
            )
            for i in INSTITUTIONS.values()
        ]
    )


@router.post("/link/token/create", response_model=LinkTokenCreateResponse)
async def create_link_token(body: LinkTokenCreateRequest, request: Request) -> LinkTokenCreateResponse:
    state = _state(request)
    state.authenticate(body.client_id, body.secret)
    unsupported = sorted(set(body.products) - SUPPORTED_PRODUCTS)
    if unsupported:
        raise PlaidError(400, "INVALID_REQUEST", "INVALID_PRODUCT", f"unsupported products: {unsupported}")
    token, expires_at = state.create_link_token()
    return LinkTokenCreateResponse(link_token=token, expiration=expires_at)


@router.post("/sandbox/public_token/create", response_model=PublicTokenCreateResponse)
async def create_public_token(body: PublicTokenCreateRequest, request: Request) -> PublicTokenCreateResponse:
    """Stands for the end user finishing Link in a browser at the chosen institution."""
    state = _state(request)
    state.authenticate(body.client_id, body.secret)
    return PublicTokenCreateResponse(public_token=state.create_public_token(body.institution_id, body.link_token))


@router.post("/item/public_token/exchange", response_model=PublicTokenExchangeResponse)
async def exchange_public_token(body: PublicTokenExchangeRequest, request: Request) -> PublicTokenExchangeResponse:
    state = _state(request)
    state.authenticate(body.client_id, body.secret)
    access_token, item_id = state.exchange(body.public_token)
    return PublicTokenExchangeResponse(access_token=access_token, item_id=item_id)


@router.post("/auth/get", response_model=AuthGetResponse)
async def get_auth(body: AuthGetRequest, request: Request) -> AuthGetResponse:
    state = _state(request)
    state.authenticate(body.client_id, body.secret)
    item_id, institution = state.item(body.access_token)
    accounts, numbers = derive_accounts(item_id, institution)
    return AuthGetResponse(
        item=Item(item_id=item_id, institution_id=institution.institution_id),
        accounts=accounts,
        numbers=Numbers(ach=numbers),
    )


@router.post("/transactions/sync", response_model=TransactionsSyncResponse)
async def sync_transactions(body: TransactionsSyncRequest, request: Request) -> TransactionsSyncResponse:
    """The item's transactions since `cursor`, `count` at a time, with the cursor to continue from (Plaid's
    /transactions/sync: `added` only here; the history is fixed, so nothing is modified or removed)."""
    state = _state(request)
    state.authenticate(body.client_id, body.secret)
    item_id, institution = state.item(body.access_token)
    everything = derive_transactions(item_id, institution, state.clock().date())
    start = decode_cursor(body.cursor)
    page = everything[start : start + body.count]
    end = start + len(page)
    return TransactionsSyncResponse(added=page, next_cursor=f"c{end:x}", has_more=end < len(everything))
