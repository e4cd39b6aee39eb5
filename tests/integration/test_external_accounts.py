import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text

from core.crypto import AccountNumberCipher
from tests.conftest import ApiServer, assert_error, make_org


@pytest.fixture
async def sandbox(sandbox_url):
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        yield client
        await client.put("/_control/faults", json={"latency_ms": 0, "error_rate": 0, "fail_next": 0})


async def public_token(sandbox, institution_id: str, link_token: str) -> str:
    """What the provider's Link UI hands the browser when the user picks a bank."""
    response = await sandbox.post(
        "/linking/sandbox/public_token/create",
        json={
            "client_id": "backoffice",
            "secret": "sandbox-secret",
            "institution_id": institution_id,
            "link_token": link_token,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["public_token"]


async def provider_numbers(sandbox, access_token: str) -> dict:
    auth = (
        await sandbox.post(
            "/linking/auth/get",
            json={"client_id": "backoffice", "secret": "sandbox-secret", "access_token": access_token},
        )
    ).json()
    return {n["account_id"]: n["account"] for n in auth["numbers"]["ach"]}


async def test_link_through_the_provider_stores_encrypted_and_answers_masked(http, su, sandbox, db, settings):
    org = await make_org(http, su)
    admin = org.headers["org_admin"]
    link = await http.post("/api/v1/external-accounts/link-token", headers=admin, json={})
    assert link.status_code == 200 and link.json()["link_token"].startswith("link-")
    token = await public_token(sandbox, "ins_1", link.json()["link_token"])
    linked = await http.post("/api/v1/external-accounts/link", headers=admin, json={"public_token": token})
    assert linked.status_code == 201, linked.text
    accounts = linked.json()
    assert {a["account_type"] for a in accounts} == {"checking", "savings"}
    assert all(a["status"] == "verified" and a["org_id"] == org.id for a in accounts)

    async with db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT e.id, e.provider_account_id, e.account_number_encrypted, e.account_last4, i.access_token_encrypted "
                    "FROM external_accounts e JOIN linked_items i ON i.provider_item_id = e.provider_item_id "
                    "WHERE e.org_id = :org"
                ),
                {"org": org.id},
            )
        ).all()
    cipher = AccountNumberCipher.from_settings(settings)
    numbers = await provider_numbers(sandbox, cipher.decrypt(rows[0].access_token_encrypted))
    for row in rows:
        plain = numbers[row.provider_account_id]
        assert plain not in row.account_number_encrypted  # encrypted at rest
        assert cipher.decrypt(row.account_number_encrypted) == plain
        out = next(a for a in accounts if a["id"] == str(row.id))
        assert out["account_number_masked"] == "****" + plain[-4:]
        assert plain not in linked.text  # never in a response

    listed = await http.get("/api/v1/external-accounts", headers=admin, params={"account_type": "savings"})
    assert listed.json()["total"] == 1
    other = await make_org(http, su)
    assert (await http.get("/api/v1/external-accounts", headers=other.headers["org_admin"])).json()["total"] == 0
    assert_error(
        await http.get(f"/api/v1/external-accounts/{accounts[0]['id']}", headers=other.headers["org_admin"]), 404
    )
    # A member sees only the bank accounts that are theirs: none of the organization's.
    assert (await http.get("/api/v1/external-accounts", headers=org.headers["member"])).json()["total"] == 0
    assert_error(await http.get(f"/api/v1/external-accounts/{accounts[0]['id']}", headers=org.headers["member"]), 404)


async def test_a_used_public_token_and_a_bad_routing_number_are_refused(http, su, sandbox, db):
    org = await make_org(http, su)
    admin = org.headers["org_admin"]
    link_token = (await http.post("/api/v1/external-accounts/link-token", headers=admin, json={})).json()["link_token"]
    token = await public_token(sandbox, "ins_2", link_token)
    assert (
        await http.post("/api/v1/external-accounts/link", headers=admin, json={"public_token": token})
    ).status_code == 201
    error = assert_error(
        await http.post("/api/v1/external-accounts/link", headers=admin, json={"public_token": token}),
        422,
        "linking_rejected",
    )
    assert error["details"]["provider_code"] == "INVALID_PUBLIC_TOKEN"

    broken = await public_token(sandbox, "ins_3", link_token)
    assert_error(
        await http.post("/api/v1/external-accounts/link", headers=admin, json={"public_token": broken}),
        422,
        "invalid_routing_number",
    )
    async with db.session() as session:
        count = (
            await session.execute(text("SELECT count(*) FROM external_accounts WHERE org_id = :o"), {"o": org.id})
        ).scalar_one()
    assert count == 1  # only the ins_2 account


async def test_provider_faults_are_retried_then_reported(http, su, sandbox):
    org = await make_org(http, su)
    admin = org.headers["org_admin"]
    await sandbox.put("/_control/faults", json={"fail_next": 2, "error_status": 503})
    assert (await http.post("/api/v1/external-accounts/link-token", headers=admin, json={})).status_code == 200
    await sandbox.put("/_control/faults", json={"fail_next": 50, "error_status": 500})
    assert_error(
        await http.post("/api/v1/external-accounts/link-token", headers=admin, json={}), 502, "linking_unavailable"
    )


async def test_manual_entry_checks_the_routing_number_and_duplicates(http, su):
    org = await make_org(http, su)
    admin = org.headers["org_admin"]
    body = {
        "holder_name": "Payroll",
        "routing_number": "021000021",
        "account_number": "000123456789",
        "account_type": "checking",
    }
    created = await http.post("/api/v1/external-accounts", headers=admin, json=body)
    assert created.status_code == 201
    assert created.json()["status"] == "pending_verification"
    assert created.json()["account_number_masked"] == "****6789" and "000123456789" not in created.text
    assert_error(await http.post("/api/v1/external-accounts", headers=admin, json=body), 409, "duplicate")
    error = assert_error(
        await http.post("/api/v1/external-accounts", headers=admin, json={**body, "routing_number": "021000022"}),
        422,
        "invalid_routing_number",
    )
    assert error["details"]["routing_number"] == "021000022"
    assert_error(await http.post("/api/v1/external-accounts", headers=su, json=body), 422, "org_required")


async def test_rotating_the_account_number_keys_keeps_duplicates_detected(http, su, sandbox, db, settings):
    """A new key is prepended (it encrypts from now on, the old one still decrypts): the accounts on file, entered
    by hand or linked, are still found as duplicates, and still decrypt."""
    org = await make_org(http, su)
    admin = org.headers["org_admin"]
    manual = {
        "holder_name": "Payroll",
        "routing_number": "021000021",
        "account_number": "000987654321",
        "account_type": "checking",
    }
    assert (await http.post("/api/v1/external-accounts", headers=admin, json=manual)).status_code == 201
    link_token = (await http.post("/api/v1/external-accounts/link-token", headers=admin, json={})).json()["link_token"]
    linked = (
        await http.post(
            "/api/v1/external-accounts/link",
            headers=admin,
            json={"public_token": await public_token(sandbox, "ins_1", link_token)},
        )
    ).json()[0]
    before = AccountNumberCipher.from_settings(settings)
    async with db.session() as session:
        stored = dict(
            (
                await session.execute(
                    text("SELECT id::text, account_number_encrypted FROM external_accounts WHERE org_id = :o"),
                    {"o": org.id},
                )
            ).all()
        )
    linked_number = before.decrypt(stored[linked["id"]])

    rotated = settings.model_copy(
        update={"account_number_keys": [SecretStr(Fernet.generate_key().decode()), *settings.account_number_keys]}
    )
    async with ApiServer(rotated) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as after_rotation:
        for again in (
            manual,
            {
                **manual,
                "routing_number": linked["routing_number"],
                "account_number": linked_number,
                "account_type": linked["account_type"],
            },
        ):
            assert_error(
                await after_rotation.post("/api/v1/external-accounts", headers=admin, json=again), 409, "duplicate"
            )
        fresh = await after_rotation.post(
            "/api/v1/external-accounts", headers=admin, json={**manual, "account_number": "000555666777"}
        )
        assert fresh.status_code == 201, fresh.text

    after = AccountNumberCipher.from_settings(rotated)
    async with db.session() as session:
        rows = dict(
            (
                await session.execute(
                    text("SELECT id::text, account_number_encrypted FROM external_accounts WHERE org_id = :o"),
                    {"o": org.id},
                )
            ).all()
        )
    assert len(rows) == len(stored) + 1  # nothing linked twice
    assert {after.decrypt(rows[i]) for i in stored} == {before.decrypt(stored[i]) for i in stored}
    with pytest.raises(ValueError):  # the new key encrypts from now on
        before.decrypt(rows[fresh.json()["id"]])
