"""HTTP client of the account-linking provider (Plaid-like: link token -> public token -> exchange -> auth).

Retries only what is safe to retry: connection failures and 5xx answers, which the provider gives before
doing anything. Its 4xx answers are ours to report."""

from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from core.config import Settings


class LinkingError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LinkingUnavailable(Exception):
    pass


@dataclass(frozen=True)
class LinkedBankAccount:
    provider_account_id: str
    name: str
    subtype: str
    routing_number: str
    account_number: str


@dataclass(frozen=True)
class LinkedItemData:
    item_id: str
    institution_id: str
    institution_name: str
    access_token: str
    accounts: list[LinkedBankAccount]


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError) or (
        isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500
    )


class LinkingClient:
    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None, attempts: int = 4):
        self.settings = settings
        self.http = http or httpx.AsyncClient(base_url=settings.linking_base_url, timeout=settings.http_timeout)
        self.attempts = attempts

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _post(self, path: str, body: dict) -> dict:
        body = {
            "client_id": self.settings.linking_client_id,
            "secret": self.settings.linking_secret.get_secret_value(),
            **body,
        }
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                reraise=True,
                wait=wait_exponential(multiplier=0.1, max=2),
                retry=retry_if_exception(_retryable),
            ):
                with attempt:
                    response = await self.http.post(f"/linking{path}", json=body)
                    if response.status_code >= 500:
                        response.raise_for_status()
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            raise LinkingUnavailable(f"the account-linking provider is unavailable: {exc}") from exc
        data = response.json()
        if response.status_code >= 400:
            raise LinkingError(
                response.status_code,
                data.get("error_code", "LINKING_ERROR"),
                data.get("error_message", "the provider refused the request"),
            )
        return data

    async def _institution_name(self, institution_id: str) -> str:
        response = await self.http.get("/linking/institutions")
        if response.status_code != 200:
            return institution_id  # a name is nice to have; the link itself stands without it
        names = {i["institution_id"]: i["name"] for i in response.json().get("institutions", [])}
        return names.get(institution_id, institution_id)

    async def create_link_token(self, client_user_id: str) -> dict:
        return await self._post(
            "/link/token/create", {"user": {"client_user_id": client_user_id}, "products": ["auth"]}
        )

    async def exchange(self, public_token: str) -> LinkedItemData:
        exchanged = await self._post("/item/public_token/exchange", {"public_token": public_token})
        auth = await self._post("/auth/get", {"access_token": exchanged["access_token"]})
        numbers = {n["account_id"]: n for n in auth["numbers"]["ach"]}
        institution_id = auth["item"]["institution_id"]
        return LinkedItemData(
            item_id=exchanged["item_id"],
            institution_id=institution_id,
            institution_name=auth["item"].get("institution_name") or await self._institution_name(institution_id),
            access_token=exchanged["access_token"],
            accounts=[
                LinkedBankAccount(
                    provider_account_id=a["account_id"],
                    name=a["name"],
                    subtype=a["subtype"],
                    routing_number=numbers[a["account_id"]]["routing"],
                    account_number=numbers[a["account_id"]]["account"],
                )
                for a in auth["accounts"]
                if a["account_id"] in numbers
            ],
        )

    async def sync_transactions(self, access_token: str, cursor: str | None, count: int) -> dict:
        """One page of the item's transactions after `cursor` (None: from the beginning), as Plaid's
        /transactions/sync answers: added, modified, removed, next_cursor, has_more."""
        return await self._post(
            "/transactions/sync", {"access_token": access_token, "cursor": cursor or "", "count": count}
        )
