"""Currency on the real stack: conversions at rates fetched from the sandbox's exchange-rate API once and then
served from the cache, fetched again once stale, the provider's refusal (502) and outage (503) as clear errors,
JPY rounded to whole yen half to even, ISO 4217 codes checked, a member's base currency and money summary."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from sandbox.fx import USD_RATES
from tests.conftest import assert_error, make_org, make_user, open_account
from tests.planted import planted_import

V1 = "/api/v1"
TODAY_UTC = datetime.now(UTC).date()


@pytest.fixture
async def provider(sandbox_url, db):
    """The sandbox's rate API with its default rates and key, an empty cache; restored afterwards."""

    async def reset(client: httpx.AsyncClient) -> None:
        default = {code: str(rate) for code, rate in USD_RATES.items()}
        put = {"api_key": "sandbox-fx-key", "usd_rates": default, "usd_rates_mode": "replace", "down_next": 0}
        assert (await client.put("/fx/_control", json={**put, "as_of": None})).status_code == 200
        async with db.session() as session, session.begin():
            await session.execute(text("DELETE FROM exchange_rates"))

    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        await reset(client)
        yield client
        await reset(client)


async def requests_made(provider: httpx.AsyncClient) -> int:
    return len((await provider.get("/fx/requests")).json())


async def convert(http, headers, amount: str, from_: str, to: str) -> httpx.Response:
    return await http.get(f"{V1}/fx/convert", params={"amount": amount, "from": from_, "to": to}, headers=headers)


async def test_a_conversion_fetches_once_then_uses_the_cache_until_it_is_stale(http, su, provider, db):
    before = await requests_made(provider)
    response = await convert(http, su, "100.00", "USD", "EUR")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["converted"] == "91.23" and Decimal(body["rate"]) == Decimal("0.9123")
    assert body["as_of"] == TODAY_UTC.isoformat() and body["source"] == "exchangerate-api.v6"
    assert await requests_made(provider) == before + 1

    # A cross rate through the pivot, from the cache: the provider is not asked again.
    response = await convert(http, su, "100.00", "EUR", "GBP")
    assert response.status_code == 200, response.text
    assert Decimal(response.json()["converted"]) == (Decimal("100") * Decimal("0.7891") / Decimal("0.9123")).quantize(
        Decimal("0.01")
    )
    assert await requests_made(provider) == before + 1
    first_fetch = response.json()["fetched_at"]

    # Past the TTL (12 h by default) the rates are fetched again before use; a new rate shows.
    await provider.put("/fx/_control", json={"usd_rates": {"EUR": "0.95"}})
    async with db.session() as session, session.begin():
        await session.execute(text("UPDATE exchange_rates SET fetched_at = now() - interval '13 hours'"))
    response = await convert(http, su, "100.00", "USD", "EUR")
    assert response.status_code == 200, response.text
    assert response.json()["converted"] == "95.00"
    assert response.json()["fetched_at"] > first_fetch
    assert await requests_made(provider) == before + 2
    async with db.session() as session:  # the same provider update (as_of) again: one row per quote, updated
        count = await session.scalar(text("SELECT count(*) FROM exchange_rates WHERE base = 'USD' AND quote = 'EUR'"))
    assert count == 1


async def test_yen_are_whole_and_rounded_half_to_even(http, su, provider):
    await provider.put("/fx/_control", json={"usd_rates": {"JPY": "150.5"}})
    for amount, yen in (("1.00", "150"), ("3.00", "452"), ("10.01", "1507")):  # 150.5 -> 150, 451.5 -> 452
        response = await convert(http, su, amount, "USD", "JPY")
        assert response.status_code == 200, response.text
        assert response.json()["converted"] == yen, (amount, response.json())
    response = await convert(http, su, "1000", "JPY", "USD")
    assert response.json()["converted"] == "6.64"  # 1000 / 150.5 = 6.6445...
    # A yen amount has no decimals; a dinar amount has three.
    error = assert_error(await convert(http, su, "1.5", "JPY", "USD"), 422, "validation_error")
    assert "JPY" in error["message"]
    assert (await convert(http, su, "1.125", "KWD", "USD")).status_code == 200


async def test_the_provider_refusing_or_down_is_a_clear_error_never_a_stale_rate(http, su, provider, db):
    await provider.put("/fx/_control", json={"api_key": "another-key"})
    error = assert_error(await convert(http, su, "10.00", "USD", "EUR"), 502, "fx_provider_refused")
    assert error["details"]["provider_error"] == "invalid-key"

    await provider.put("/fx/_control", json={"api_key": "sandbox-fx-key", "down_next": 10})
    before = await requests_made(provider)
    response = await convert(http, su, "10.00", "USD", "EUR")
    error = assert_error(response, 503, "fx_unavailable")
    assert response.headers["Retry-After"] == "60"
    assert await requests_made(provider) == before + 2  # FX_FETCH_ATTEMPTS (2 in the tests), then the answer
    async with db.session() as session:
        assert await session.scalar(text("SELECT count(*) FROM exchange_rates")) == 0  # nothing half-written

    # Same currency needs no rate at all, provider down or not.
    response = await convert(http, su, "10.00", "EUR", "EUR")
    assert response.status_code == 200 and response.json()["converted"] == "10.00"
    assert response.json()["source"] == "identity" and response.json()["as_of"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"amount": "10", "from": "XYZ", "to": "USD"},  # not ISO 4217
        {"amount": "10", "from": "XAU", "to": "USD"},  # gold: no minor units, not money
        {"amount": "-1", "from": "USD", "to": "EUR"},
        {"amount": "1e3", "from": "USD", "to": "EUR"},
        {"amount": "10", "from": "USD"},
    ],
)
async def test_bad_conversions_are_422(http, su, params):
    assert_error(await http.get(f"{V1}/fx/convert", params=params, headers=su), 422)


async def test_base_currency_and_the_money_summary_in_it(http, su, provider, db):
    org = await make_org(http, su, roles=("member",))
    member, headers = org.users["member"], org.headers["member"]
    assert (await http.get(f"{V1}/me/base-currency", headers=headers)).json() == {"base_currency": "USD"}
    assert_error(await http.put(f"{V1}/me/base-currency", json={"base_currency": "ABC"}, headers=headers), 422)
    response = await http.put(f"{V1}/me/base-currency", json={"base_currency": "eur"}, headers=headers)
    assert response.status_code == 200 and response.json() == {"base_currency": "EUR"}

    account = await open_account(http, su, org.id, owner_id=member["id"], deposit="100.00")
    async with db.session() as session, session.begin():
        planted = await planted_import(session, org.id, member["id"])
        for amount, currency in (("50.00", "GBP"), ("-10.00", "GBP"), ("1000", "JPY")):
            await session.execute(
                text(
                    "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, currency, "
                    "merchant, dedup_key) VALUES (:org, :user, :import, :account, 'csv', :on, :amount, :currency, 'Shop', :key)"
                ),
                {
                    **planted,
                    "org": org.id,
                    "user": member["id"],
                    "on": date(2026, 11, 3),
                    "amount": Decimal(amount),
                    "currency": currency,
                    "key": uuid.uuid4().hex,
                },
            )
    response = await http.get(f"{V1}/money/summary", headers=headers)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["currency"] == "EUR"
    by_currency = {a["currency"]: a for a in summary["accounts"]}
    ledger = by_currency["USD"]
    assert ledger["kind"] == "ledger" and ledger["account_id"] == account["id"] and ledger["balance"] == "100.00"
    assert ledger["converted"] == {
        "currency": "EUR",
        "amount": "91.23",
        "rate": "0.9123000000",
        "as_of": TODAY_UTC.isoformat(),
        "source": "exchangerate-api.v6",
    }
    gbp = by_currency["GBP"]
    assert (gbp["kind"], gbp["account_id"], gbp["balance"]) == ("external", str(planted["account"]), "40.00")
    gbp_in_eur = Decimal("40") * Decimal("0.9123") / Decimal("0.7891")
    assert by_currency["GBP"]["converted"]["amount"] == str(gbp_in_eur.quantize(Decimal("0.01")))
    jpy_in_eur = Decimal("1000") * Decimal("0.9123") / Decimal("151.37")
    # The total: each currency at full precision, added up, rounded once.
    assert summary["total"] == str((Decimal("91.23") + gbp_in_eur + jpy_in_eur).quantize(Decimal("0.01")))

    # Another member of the organization sees nothing of it: 404, as for no such member.
    _, other = await make_user(http, su, "member", org.id)
    assert_error(await http.get(f"{V1}/money/summary", params={"member_id": member["id"]}, headers=other), 404)
    mine = await http.get(f"{V1}/money/summary", headers=other)
    assert mine.status_code == 200 and mine.json()["accounts"] == [] and mine.json()["total"] == "0.00"
