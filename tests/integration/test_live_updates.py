"""Sharing and live updates: the money-shares API (made, replaced, listed, revoked; a share shows the owner's records
through access.money_rows), and the /api/v1/ws WebSocket fed across API processes by Postgres LISTEN/NOTIFY: a new
notification, a shared record's change, a partner's presence; a bad token refused."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select, text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core import access
from domain import presence
from models.money import MEMBER_TRANSACTIONS, ShareWhat
from models.users import User
from tests.conftest import ApiServer, assert_error, make_org, make_user
from tests.planted import planted_import

EVENT_TIMEOUT = 10.0


@pytest.fixture(scope="module")
async def second_api(settings, api_server) -> AsyncIterator[ApiServer]:
    """Another API process on the same database: events cross between the two only through Postgres."""
    async with ApiServer(settings) as server:
        for app in (api_server.app, server.app):
            await asyncio.wait_for(app.state.live.listening.wait(), EVENT_TIMEOUT)
        yield server


def token_of(headers: dict) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@asynccontextmanager
async def socket(server: ApiServer, headers: dict) -> AsyncIterator[ClientConnection]:
    """A signed-in socket, once the server has registered it (its `hello`)."""
    async with connect(f"ws://127.0.0.1:{server.port}/api/v1/ws?token={token_of(headers)}") as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT))
        assert hello["type"] == "hello", hello
        yield ws


async def next_event(ws: ClientConnection, type_: str) -> dict[str, Any]:
    """The data of the next event of `type_` (others skipped)."""

    async def read() -> dict[str, Any]:
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == type_:
                return event["data"]

    return await asyncio.wait_for(read(), EVENT_TIMEOUT)


async def notify(db, user_id: str, title: str) -> str:
    """An in-app notification, inserted as NotificationActivities does (the trigger announces it)."""
    notification_id = str(uuid.uuid4())
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO notifications (id, user_id, kind, title, body, dedupe_key) "
                "VALUES (:id, :user, 'test', :title, 'Body', :key)"
            ),
            {"id": notification_id, "user": user_id, "title": title, "key": f"live:{notification_id}"},
        )
    return notification_id


async def members(http, su, count: int) -> tuple[Any, list[tuple[dict, dict]]]:
    org = await make_org(http, su, roles=("operator",))
    made = await asyncio.gather(*(make_user(http, su, "member", org.id) for _ in range(count)))
    return org, list(made)


async def share(http, owner: dict, grantee: str, **fields) -> dict:
    response = await http.post(
        "/api/v1/money-shares", headers=owner, json={"grantee": grantee, "what": "transactions", **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def imported(db, owner: dict, amount: str, category: str) -> str:
    """An imported line of the owner's: its txn_id in member_transactions."""
    async with db.session() as session, session.begin():
        planted = await planted_import(session, owner["org_id"], owner["id"])
        row_id = (
            await session.execute(
                text(
                    "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, merchant, "
                    "description, category_key, dedup_key) VALUES (:org, :user, :import, :account, 'csv', '2026-11-20', :amount, 'Shop', "
                    "'Line', :category, :key) RETURNING id"
                ),
                {
                    **planted,
                    "org": owner["org_id"],
                    "user": owner["id"],
                    "amount": amount,
                    "category": category,
                    "key": uuid.uuid4().hex,
                },
            )
        ).scalar_one()
    return f"I{row_id}"


async def change(db, owner: dict, txn_id: str, new_value: str) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO transaction_changes (txn_id, user_id, field, old_value, new_value, reason) "
                "VALUES (:txn, :user, 'notes', NULL, :value, 'manual')"
            ),
            {"txn": txn_id, "user": owner["id"], "value": new_value},
        )


# --- the shares API --------------------------------------------------------------------------------------------


async def test_a_member_shares_replaces_lists_and_revokes(http, su):
    _org, [(_owner, owner_h), (grantee, grantee_h), (_other, other_h)] = await members(http, su, 3)
    first = await share(http, owner_h, grantee["email"].upper(), access="read")  # by email, any case
    assert (first["grantee_id"], first["access"], first["scope"]) == (grantee["id"], "read", "all")

    second = await share(http, owner_h, grantee["id"], access="edit", scope="expenses")  # by id: replaces it
    given = (await http.get("/api/v1/money-shares", headers=owner_h)).json()
    assert [s["id"] for s in given["given"]] == [second["id"]] and given["received"] == []
    everything = (await http.get("/api/v1/money-shares", headers=owner_h, params={"include_revoked": True})).json()
    assert {s["id"]: s["revoked_at"] is not None for s in everything["given"]} == {
        first["id"]: True,
        second["id"]: False,
    }
    received = (await http.get("/api/v1/money-shares", headers=grantee_h)).json()
    assert [s["id"] for s in received["received"]] == [second["id"]] and received["given"] == []
    assert (await http.get("/api/v1/money-shares", headers=other_h)).json() == {"given": [], "received": []}

    # Only its owner revokes it: its grantee sees it (403), anyone else does not (404, as an unknown id).
    assert_error(await http.delete(f"/api/v1/money-shares/{second['id']}", headers=grantee_h), 403)
    assert_error(await http.delete(f"/api/v1/money-shares/{second['id']}", headers=other_h), 404, "not_found")
    assert_error(await http.delete(f"/api/v1/money-shares/{uuid.uuid4()}", headers=other_h), 404, "not_found")
    revoked = await http.delete(f"/api/v1/money-shares/{second['id']}", headers=owner_h)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    again = await http.delete(f"/api/v1/money-shares/{second['id']}", headers=owner_h)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # revoking again changes nothing
    assert (await http.get("/api/v1/money-shares", headers=grantee_h)).json()["received"] == []


async def test_a_share_is_only_with_another_member_of_the_organization(http, su):
    org, [(owner, owner_h)] = await members(http, su, 1)
    _elsewhere, [(stranger, _)] = await members(http, su, 1)
    refusals = [
        await http.post("/api/v1/money-shares", headers=owner_h, json={"grantee": g, "what": "budgets"})
        for g in (stranger["email"], stranger["id"], f"nobody-{uuid.uuid4().hex[:6]}@tests.example", str(uuid.uuid4()))
    ]
    messages = {assert_error(r, 422, "invalid_grantee")["message"] for r in refusals}
    assert len(messages) == 1  # another organization's member and no one at all: the same answer
    operator = org.users["operator"]
    assert_error(
        await http.post("/api/v1/money-shares", headers=owner_h, json={"grantee": operator["id"], "what": "budgets"}),
        422,
        "invalid_grantee",
    )
    assert_error(
        await http.post("/api/v1/money-shares", headers=owner_h, json={"grantee": owner["id"], "what": "budgets"}),
        422,
        "invalid_grantee",
    )
    # Staff read members' records through the policy, but share nothing of their own.
    staff = await http.post(
        "/api/v1/money-shares", headers=org.headers["operator"], json={"grantee": owner["id"], "what": "budgets"}
    )
    assert_error(staff, 403)
    bad_scope = {"grantee": owner["id"], "what": "transactions", "scope": "categories"}
    assert_error(await http.post("/api/v1/money-shares", headers=owner_h, json=bad_scope), 422)


async def test_concurrent_replacements_leave_one_live_share_and_never_a_500(http, su):
    _, [(_owner, owner_h), (grantee, _)] = await members(http, su, 2)
    answers = await asyncio.gather(
        *(
            http.post(
                "/api/v1/money-shares",
                headers=owner_h,
                json={"grantee": grantee["id"], "what": "transactions", "access": "read"},
            )
            for _ in range(6)
        )
    )
    assert {r.status_code for r in answers} <= {201, 409}, [r.text for r in answers]
    assert any(r.status_code == 201 for r in answers)
    for refused in (r for r in answers if r.status_code == 409):
        assert_error(refused, 409, "share_conflict")
    assert len((await http.get("/api/v1/money-shares", headers=owner_h)).json()["given"]) == 1


async def test_a_read_share_shows_the_owners_records_in_its_scope(http, su, db):
    _, [(owner, owner_h), (grantee, _)] = await members(http, su, 2)
    spent = await imported(db, owner, "-12.50", "dining")
    earned = await imported(db, owner, "100.00", "income")
    async with db.session() as session:
        reader = await session.get(User, uuid.UUID(grantee["id"]))

    async def seen() -> set[str]:
        mt = MEMBER_TRANSACTIONS.c
        where = access.money_rows(reader, ShareWhat.transactions, mt.user_id, mt.org_id, mt.amount, mt.category_key)
        async with db.session() as session:
            rows = await session.execute(select(mt.txn_id).where(where, mt.user_id == uuid.UUID(owner["id"])))
            return set(rows.scalars())

    assert await seen() == set()
    made = await share(http, owner_h, grantee["id"], scope="expenses")
    assert await seen() == {spent}
    await share(http, owner_h, grantee["id"], scope="all")
    assert await seen() == {spent, earned}
    current = (await http.get("/api/v1/money-shares", headers=owner_h)).json()["given"][0]
    assert current["id"] != made["id"]
    await http.delete(f"/api/v1/money-shares/{current['id']}", headers=owner_h)
    assert await seen() == set()


# --- the WebSocket ---------------------------------------------------------------------------------------------


async def test_a_notification_reaches_every_socket_of_its_user_across_processes(http, su, db, api_server, second_api):
    _, [(user, user_h), (other, other_h)] = await members(http, su, 2)
    async with (
        socket(second_api, user_h) as on_second,
        socket(api_server, user_h) as on_first,
        socket(second_api, other_h) as others,
    ):
        notification_id = await notify(db, user["id"], "Your statement is ready")
        for ws in (on_second, on_first):
            data = await next_event(ws, "notification")
            assert (data["id"], data["title"], data["body"]) == (notification_id, "Your statement is ready", "Body")
        # The other user's socket did not get it: their first notification is the one sent to them after.
        theirs = await notify(db, other["id"], "For the other user")
        assert (await next_event(others, "notification"))["id"] == theirs


async def test_a_bad_token_is_refused_and_a_header_or_an_api_key_is_accepted(http, su, api_server):
    org = await make_org(http, su, roles=("org_admin",))
    base = f"ws://127.0.0.1:{api_server.port}/api/v1/ws"
    for url, headers in ((f"{base}?token=not-a-token", {}), (base, {}), (base, {"Authorization": "Bearer x.y.z"})):
        async with connect(url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    async with connect(base, additional_headers=org.headers["org_admin"]) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT))["type"] == "hello"

    async def api_key(scopes: list[str]) -> str:
        response = await http.post(
            "/api/v1/api-keys",
            headers={**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex},
            json={"name": "live", "scopes": scopes},
        )
        assert response.status_code == 201, response.text
        return response.json()["key"]

    async with connect(base, additional_headers={"X-API-Key": await api_key(["notifications:read"])}) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT))["type"] == "hello"
    async with connect(base, additional_headers={"X-API-Key": await api_key(["accounts:read"])}) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_sharing_partner_sees_presence_across_processes(http, su, db, settings, api_server, second_api):
    _, [(owner, owner_h), (partner, partner_h), (stranger, stranger_h)] = await members(http, su, 3)
    await share(http, owner_h, partner["id"])

    async def partner_sees() -> dict:
        listed = (await http.get("/api/v1/money-shares/presence", headers=partner_h)).json()
        return {p["user_id"]: p["online"] for p in listed}

    assert await partner_sees() == {owner["id"]: False}
    async with socket(api_server, partner_h) as watcher, socket(api_server, stranger_h) as stranger_ws:
        async with socket(second_api, owner_h), socket(api_server, owner_h):  # two sockets: online once
            assert await next_event(watcher, "presence") == {"user_id": owner["id"], "online": True}
            assert await partner_sees() == {owner["id"]: True}
        assert await next_event(watcher, "presence") == {"user_id": owner["id"], "online": False}
        assert await partner_sees() == {owner["id"]: False}

        # A dead process's rows (no heartbeat for longer than the expiry) are swept, and the user goes offline.
        async with db.session() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO live_sessions (process_id, user_id, sockets, last_seen) "
                    "VALUES ('dead-process', :user, 1, now() - interval '1 hour')"
                ),
                {"user": owner["id"]},
            )
        assert uuid.UUID(owner["id"]) in await presence.sweep(db, settings.live_session_expiry)
        assert await next_event(watcher, "presence") == {"user_id": owner["id"], "online": False}

        # The stranger shared nothing with the owner: the first presence event they hear of is the owner's once they
        # share (none of the owner's comings and goings above reached them).
        await share(http, owner_h, stranger["id"], what="budgets")
        async with socket(second_api, owner_h):
            assert await next_event(stranger_ws, "presence") == {"user_id": owner["id"], "online": True}


async def test_a_shared_records_change_is_pushed_to_the_grantees_who_may_see_it(http, su, db, api_server, second_api):
    _, [(owner, owner_h), (reader, reader_h), (income_only, income_h)] = await members(http, su, 3)
    await share(http, owner_h, reader["id"])
    await share(http, owner_h, income_only["id"], scope="income")
    spent = await imported(db, owner, "-40.00", "groceries")
    earned = await imported(db, owner, "2500.00", "income")
    async with (
        socket(second_api, owner_h) as owner_ws,
        socket(api_server, reader_h) as reader_ws,
        socket(second_api, income_h) as income_ws,
    ):
        await change(db, owner, spent, "weekly shop")
        for ws in (owner_ws, reader_ws):
            data = await next_event(ws, "transaction_changes")
            assert data["owner_id"] == owner["id"] and data["count"] == 1
            assert [(c["txn_id"], c["field"], c["new_value"]) for c in data["changes"]] == [
                (spent, "notes", "weekly shop")
            ]
        # An expense is not the income-only grantee's to see: the first change they hear of is the salary's.
        await change(db, owner, earned, "salary")
        data = await next_event(income_ws, "transaction_changes")
        assert [c["txn_id"] for c in data["changes"]] == [earned]


async def test_a_bulk_change_is_one_event_with_a_count(http, su, db, api_server):
    """One statement changing many records (a re-categorisation) is one event per audience, counted, not listed."""
    _, [(owner, owner_h), (reader, reader_h)] = await members(http, su, 2)
    await share(http, owner_h, reader["id"], scope="categories", category_keys=["groceries"])
    lines = [await imported(db, owner, "-1.00", "groceries") for _ in range(21)]
    async with socket(api_server, reader_h) as reader_ws:
        async with db.session() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO transaction_changes (txn_id, user_id, field, old_value, new_value, reason) "
                    "SELECT txn, :user, 'category', 'groceries', 'dining', 'bulk_recategorise' FROM unnest(CAST(:txns AS text[])) txn"
                ),
                {"user": owner["id"], "txns": lines},
            )
        data = await next_event(reader_ws, "transaction_changes")
        assert (data["owner_id"], data["count"], data["changes"]) == (owner["id"], 21, None)
