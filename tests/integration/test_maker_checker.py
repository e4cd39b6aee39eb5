"""Maker-checker on the real stack (domain/maker_checker.py, workflows/maker_checker.py): a deposit, withdrawal or
book transfer above the threshold (100,000.00 in the tests' settings) waits for a checker of the organization, with
the money held meanwhile; the maker's own approval is refused before anything enters the approval's history; an
approval posts once whatever races it, a rejection posts nothing and releases the hold; below the threshold nothing
changes. Manual journal entries and period closes are always checked."""

import asyncio
import uuid
from decimal import Decimal

import httpx
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.maker_checker import MakerCheckerActivities
from models.ledger import GL_CASH
from models.maker_checker import MakerCheckerInput
from sandbox.fx import USD_RATES
from tests.conftest import assert_error, make_org, make_user, open_account
from tests.polling import poll

GBP_PER_USD = USD_RATES["GBP"]

LARGE = "150000.00"  # above the tests' MAKER_CHECKER_THRESHOLD


def keyed(headers: dict, key: str | None = None) -> dict:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def balances(http, su, account: dict) -> tuple[Decimal, Decimal]:
    """(ledger balance, held) of the account."""
    found = (await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()
    return Decimal(found["ledger_balance"]), Decimal(found["held"])


async def request_of(http, headers, request_id: str) -> dict:
    response = await http.get(f"/api/v1/maker-checker/{request_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def open_approval(http, headers, request_id: str) -> str:
    """The request's approval, once it is open and waiting on the checker's role."""
    view = await poll(
        lambda: request_of(http, headers, request_id),
        lambda r: r["approval_request_id"],
        30,
        "the request's approval request never appeared",
    )
    approval = view["approval_request_id"]
    await poll(
        lambda: http.get(f"/api/v1/approvals/{approval}", headers=headers),
        lambda r: r.status_code == 200 and r.json()["status"] == "open" and r.json()["waiting_on_role"],
        30,
        "the request's approval never opened",
    )
    return approval


async def finished(http, headers, request_id: str) -> dict:
    return await poll(
        lambda: request_of(http, headers, request_id),
        lambda r: r["status"] != "pending_approval",
        30,
        "the request never finished",
    )


async def entries_keyed(db, request_id: str) -> int:
    async with db.session() as session:
        found = await session.execute(
            text("SELECT count(*) FROM journal_entries WHERE idempotency_key = :key"),
            {"key": f"maker-checker:{request_id}"},
        )
        return found.scalar_one()


async def gl_cash(db) -> str:
    async with db.session() as session:
        found = await session.execute(
            text("SELECT id FROM ledger_accounts WHERE code = :code AND currency = 'USD'"), {"code": GL_CASH}
        )
        return str(found.scalar_one())


def approve(http, headers, approval: str):
    return http.post(f"/api/v1/approvals/{approval}/decisions", headers=headers, json={"decision": "approve"})


async def funded_org(http, su, deposits: int = 1):
    """An organization with a second org admin (the checker) and a member's account of 100,000.00 per deposit."""
    org = await make_org(http, su, roles=("org_admin", "operator", "member"))
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="100000.00")
    for _ in range(deposits - 1):
        more = await http.post(
            f"/api/v1/accounts/{account['id']}/deposits", headers=keyed(su), json={"amount": "100000.00"}
        )
        assert more.status_code == 201, more.text
    _, checker = await make_user(http, su, "org_admin", org.id)
    return org, account, checker


async def test_a_large_deposit_waits_for_a_checker_and_posts_once(http, su, db, temporal_env):
    org, account, checker = await funded_org(http, su)
    teller = org.headers["operator"]
    url = f"/api/v1/accounts/{account['id']}/deposits"
    body = {"amount": LARGE, "memo": "Sale of a boat"}

    first = await http.post(url, headers=keyed(teller, "big-deposit"), json=body)
    assert first.status_code == 202, first.text
    request = first.json()
    assert request["kind"] == "deposit" and request["status"] == "pending_approval"
    assert request["amount"] == LARGE and request["hold_id"] is None  # money coming in holds nothing
    # The same key and body again: the same request; another body under the key: refused; nothing posted yet.
    again = await http.post(url, headers=keyed(teller, "big-deposit"), json=body)
    assert again.status_code == 202 and again.json()["id"] == request["id"]
    assert_error(
        await http.post(url, headers=keyed(teller, "big-deposit"), json={**body, "amount": "150000.01"}),
        409,
        "idempotency_key_reused",
    )
    assert_error(
        await http.post(url, headers=keyed(teller, "big-deposit"), json={**body, "amount": "10.00"}),
        409,
        "idempotency_key_reused",
    )
    async with db.session() as session:
        made = await session.execute(
            text("SELECT count(*) FROM maker_checker_requests WHERE requested_by = :maker"),
            {"maker": org.users["operator"]["id"]},
        )
        assert made.scalar_one() == 1
    assert await balances(http, su, account) == (Decimal("100000.00"), Decimal("0.00"))

    approval = await open_approval(http, teller, request["id"])
    # The workflow says open before its activity has written the request row the inbox reads: wait for the row.
    inbox = await poll(
        lambda: http.get("/api/v1/approvals/inbox", headers=checker),
        lambda r: any(i["request_id"] == approval for i in r.json()),
        30,
        "the approval never reached the checker's inbox",
    )
    assert [i["subject_type"] for i in inbox.json() if i["request_id"] == approval] == ["large_deposit"]
    # The teller is not of the checker's role; a member sees nothing of it.
    assert_error(await approve(http, teller, approval), 403, "wrong_role")
    assert_error(await http.get(f"/api/v1/maker-checker/{request['id']}", headers=org.headers["member"]), 404)
    stranger = await make_org(http, su, roles=("org_admin",))
    assert_error(await http.get(f"/api/v1/maker-checker/{request['id']}", headers=stranger.headers["org_admin"]), 404)

    assert (await approve(http, checker, approval)).status_code == 200
    done = await finished(http, teller, request["id"])
    assert done["status"] == "completed" and done["journal_entry_id"]
    assert await balances(http, su, account) == (Decimal("250000.00"), Decimal("0.00"))
    assert await entries_keyed(db, request["id"]) == 1
    entry = (await http.get(f"/api/v1/journal-entries/{done['journal_entry_id']}", headers=checker)).json()
    assert entry["entry_type"] == "cash_deposit" and entry["description"] == "Sale of a boat"
    # The key again once it posted: still that one request, nothing more posted, and no second run of its workflow
    # (which would open its approval again).
    assert (await http.post(url, headers=keyed(teller, "big-deposit"), json=body)).json()["id"] == request["id"]
    latest = await temporal_env.client.get_workflow_handle(request["workflow_id"]).describe()
    assert latest.status == WorkflowExecutionStatus.COMPLETED
    assert (await http.get(f"/api/v1/approvals/{approval}", headers=checker)).json()["status"] == "approved"
    assert await entries_keyed(db, request["id"]) == 1
    listed = (await http.get("/api/v1/maker-checker", params={"kind": "deposit"}, headers=checker)).json()
    assert [r["id"] for r in listed["items"]] == [request["id"]]


async def test_a_large_withdrawal_holds_the_money_and_a_rejection_releases_it_posting_nothing(http, su, db):
    org, account, checker = await funded_org(http, su, deposits=2)
    teller = org.headers["operator"]
    url = f"/api/v1/accounts/{account['id']}/withdrawals"

    # The same request sent twice at once (a client's retry racing the first): one request, one hold. The second
    # must not count the first one's hold against itself (200,000.00 covers one 150,000.00, not two).
    both = await asyncio.gather(
        http.post(url, headers=keyed(teller, "wd-once"), json={"amount": LARGE}),
        http.post(url, headers=keyed(teller, "wd-once"), json={"amount": LARGE}),
    )
    assert [r.status_code for r in both] == [202, 202], [r.text for r in both]
    assert both[0].json()["id"] == both[1].json()["id"]
    request = both[0].json()
    assert request["kind"] == "withdrawal" and request["hold_id"]
    assert await balances(http, su, account) == (Decimal("200000.00"), Decimal(LARGE))
    # The held money cannot go out twice meanwhile: 50,000.00 is what is available.
    assert_error(await http.post(url, headers=keyed(teller), json={"amount": "60000.00"}), 422, "insufficient_funds")
    assert_error(
        await http.post(url, headers=keyed(teller), json={"amount": "60000.00"} | {"amount": LARGE}),
        422,
        "insufficient_funds",
    )
    # Nobody releases the request's hold by hand: it is the workflow's.
    assert_error(
        await http.post(f"/api/v1/accounts/{account['id']}/holds/{request['hold_id']}/release", headers=teller),
        403,
        "system_hold",
    )

    approval = await open_approval(http, teller, request["id"])
    rejection = {"decision": "reject", "reason": "The member did not ask for it"}
    ask = {"decision": "request_info", "reason": "Which branch?"}
    decisions = f"/api/v1/approvals/{approval}/decisions"
    assert_error(await http.post(decisions, headers=checker, json=ask), 422, "no_information_loop")
    assert (await http.post(decisions, headers=checker, json=rejection)).status_code == 200
    done = await finished(http, teller, request["id"])
    assert done["status"] == "rejected" and done["journal_entry_id"] is None
    assert await balances(http, su, account) == (Decimal("200000.00"), Decimal("0.00"))
    assert await entries_keyed(db, request["id"]) == 0
    holds = (await http.get(f"/api/v1/accounts/{account['id']}/holds", headers=su)).json()["items"]
    assert [h["status"] for h in holds if h["id"] == request["hold_id"]] == ["released"]


async def test_the_maker_never_checks_and_racing_approvals_post_a_large_transfer_once(
    http, su, db, settings, temporal_env
):
    org, source, checker = await funded_org(http, su, deposits=2)
    destination = await open_account(http, su, org.id, org.users["member"]["id"])
    _, second_checker = await make_user(http, su, "org_admin", org.id)
    maker = org.headers["org_admin"]
    body = {"from_account_id": source["id"], "to_account_id": destination["id"], "amount": LARGE, "memo": "House"}

    pending = await http.post("/api/v1/transfers/book", headers=keyed(maker, "big-transfer"), json=body)
    assert pending.status_code == 202, pending.text
    request = pending.json()
    assert request["kind"] == "book_transfer" and request["counter_account_id"] == destination["id"]
    assert await balances(http, su, source) == (Decimal("200000.00"), Decimal(LARGE))
    again = await http.post("/api/v1/transfers/book", headers=keyed(maker, "big-transfer"), json=body)
    assert again.status_code == 202 and again.json()["id"] == request["id"]

    approval = await open_approval(http, maker, request["id"])
    # The maker is an org admin, the checker's role: the approval's validator refuses them as the submitter, and a
    # refused update leaves nothing in the workflow's history nor in the decisions.
    assert_error(await approve(http, maker, approval), 403, "maker_checker")
    assert approval not in [i["request_id"] for i in (await http.get("/api/v1/approvals/inbox", headers=maker)).json()]
    history = await temporal_env.client.get_workflow_handle(f"approval-{approval}").fetch_history()
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    async with db.session() as session:
        votes = await session.execute(
            text("SELECT count(*) FROM approval_decisions WHERE request_id = :id"), {"id": approval}
        )
        assert votes.scalar_one() == 0

    # Two checkers approve at the same moment, one of them twice: the transfer posts once.
    answers = await asyncio.gather(
        approve(http, checker, approval), approve(http, checker, approval), approve(http, second_checker, approval)
    )
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and set(codes) <= {200, 409}, [a.text for a in answers]
    done = await finished(http, maker, request["id"])
    assert done["status"] == "completed"
    assert_error(await approve(http, second_checker, approval), 409)
    assert await entries_keyed(db, request["id"]) == 1
    assert await balances(http, su, source) == (Decimal("50000.00"), Decimal("0.00"))
    assert await balances(http, su, destination) == (Decimal(LARGE), Decimal("0.00"))
    holds = (await http.get(f"/api/v1/accounts/{source['id']}/holds", headers=su)).json()["items"]
    assert [h["status"] for h in holds if h["id"] == request["hold_id"]] == ["captured"]

    # A worker killed after the posting committed retries the step; a late close (a lapse racing the approval)
    # comes after it: both find the request applied and change nothing.
    steps, the_request = MakerCheckerActivities(db, settings), MakerCheckerInput(request_id=request["id"])
    retried = await ActivityEnvironment(temporal_env.client).run(steps.apply_maker_checker, the_request)
    assert (retried.status, str(retried.journal_entry_id)) == ("completed", done["journal_entry_id"])
    late = await ActivityEnvironment().run(steps.close_maker_checker, the_request)
    assert late.status == "completed"
    assert await entries_keyed(db, request["id"]) == 1
    assert await balances(http, su, source) == (Decimal("50000.00"), Decimal("0.00"))


async def test_below_the_threshold_nothing_waits(http, su, db):
    org, account, _checker = await funded_org(http, su)
    other = await open_account(http, su, org.id, org.users["member"]["id"])
    teller = org.headers["operator"]
    deposit = await http.post(
        f"/api/v1/accounts/{account['id']}/deposits", headers=keyed(teller), json={"amount": "100000.00"}
    )
    assert deposit.status_code == 201 and deposit.json()["ledger_balance"] == "200000.00"
    url = f"/api/v1/accounts/{account['id']}/withdrawals"
    out = await http.post(url, headers=keyed(teller, "cash-out"), json={"amount": "250.00", "memo": "Cash"})
    assert out.status_code == 201, out.text
    assert out.json()["ledger_balance"] == "199750.00"
    again = await http.post(url, headers=keyed(teller, "cash-out"), json={"amount": "250.00", "memo": "Cash"})
    assert again.status_code == 201 and again.json()["ledger_balance"] == "199750.00"
    assert_error(await http.post(url, headers=keyed(teller, "cash-out"), json={"amount": "1.00"}), 409)
    assert_error(await http.post(url, headers=keyed(org.headers["member"]), json={"amount": "1.00"}), 403)
    assert_error(await http.post(url, headers=keyed(teller), json={"amount": "-1.00"}), 422)
    transfer = await http.post(
        "/api/v1/transfers/book",
        headers=keyed(org.headers["member"]),
        json={"from_account_id": account["id"], "to_account_id": other["id"], "amount": "100000.00"},
    )
    assert transfer.status_code == 201 and transfer.json()["status"] == "completed", transfer.text
    async with db.session() as session:
        waiting = await session.execute(
            text("SELECT count(*) FROM maker_checker_requests WHERE account_id = :id"), {"id": account["id"]}
        )
        assert waiting.scalar_one() == 0
    # The whole balance leaves as cash (exactly the threshold: at once), then nothing more.
    left = await http.post(url, headers=keyed(teller), json={"amount": "99750.00"})
    assert left.status_code == 201 and left.json()["ledger_balance"] == "0.00"
    assert_error(await http.post(url, headers=keyed(teller), json={"amount": "0.01"}), 422, "insufficient_funds")


async def test_a_manual_journal_entry_is_checked_and_posts_once(http, su, db):
    org, account, checker = await funded_org(http, su)
    maker = org.headers["org_admin"]
    cash = await gl_cash(db)
    legs = [{"account_id": cash, "amount": "250.00"}, {"account_id": account["id"], "amount": "-250.00"}]
    body = {"description": "Deposit keyed against the wrong account", "effective_date": "2026-06-01", "legs": legs}

    async def requests_made() -> int:
        async with db.session() as session:
            found = await session.execute(
                text("SELECT count(*) FROM maker_checker_requests WHERE org_id = :org"), {"org": org.id}
            )
            return found.scalar_one()

    unbalanced = {**body, "legs": [legs[0], {**legs[1], "amount": "-249.99"}]}
    assert_error(await http.post("/api/v1/journal-entries", headers=keyed(maker), json=unbalanced), 422, "unbalanced")
    one_leg = {**body, "legs": legs[:1]}
    assert_error(await http.post("/api/v1/journal-entries", headers=keyed(maker), json=one_leg), 422)
    future = {**body, "effective_date": "2199-01-01"}
    assert_error(await http.post("/api/v1/journal-entries", headers=keyed(maker), json=future), 422, "future_date")
    zero = {**body, "legs": [*legs, {"account_id": cash, "amount": "0.00"}]}
    assert_error(await http.post("/api/v1/journal-entries", headers=keyed(maker), json=zero), 422, "zero_leg")
    stranger = await make_org(http, su, roles=("org_admin",))
    foreign = await open_account(http, su, stranger.id)
    theirs = {**body, "legs": [legs[0], {**legs[1], "account_id": foreign["id"]}]}
    assert_error(await http.post("/api/v1/journal-entries", headers=keyed(maker), json=theirs), 404)
    assert_error(await http.post("/api/v1/journal-entries", headers=keyed(org.headers["member"]), json=body), 403)
    assert await requests_made() == 0

    created = await http.post("/api/v1/journal-entries", headers=keyed(maker, "je-1"), json=body)
    assert created.status_code == 202, created.text
    request = created.json()
    assert request["kind"] == "journal_entry" and request["amount"] == "250.00"
    assert request["legs"] == legs and request["effective_date"] == "2026-06-01"
    again = await http.post("/api/v1/journal-entries", headers=keyed(maker, "je-1"), json=body)
    assert again.status_code == 202 and again.json()["id"] == request["id"]
    assert await requests_made() == 1

    approval = await open_approval(http, maker, request["id"])
    assert_error(await approve(http, maker, approval), 403, "maker_checker")
    assert (await approve(http, checker, approval)).status_code == 200
    done = await finished(http, maker, request["id"])
    assert done["status"] == "completed"
    entry = (await http.get(f"/api/v1/journal-entries/{done['journal_entry_id']}", headers=maker)).json()
    assert entry["entry_type"] == "manual" and entry["effective_date"] == "2026-06-01"
    assert {(p["account_id"], p["amount"]) for p in entry["postings"]} == {(cash, "250.00"), (account["id"], "-250.00")}
    assert await balances(http, su, account) == (Decimal("100250.00"), Decimal("0.00"))
    assert await entries_keyed(db, request["id"]) == 1


async def test_closing_an_organizations_period_is_checked_then_refuses_entries_dated_in_it(http, su, db):
    org, account, checker = await funded_org(http, su)
    maker = org.headers["org_admin"]
    june = {"period_start": "2003-06-01", "period_end": "2003-06-30", "reason": "June 2003 books closed"}

    first = await http.post("/api/v1/reports/periods", headers=maker, json=june)
    assert first.status_code == 202, first.text
    request = first.json()
    assert request["kind"] == "period_close" and request["period_end"] == "2003-06-30"
    # Asking again while it waits, even another admin: the same request.
    again = await http.post("/api/v1/reports/periods", headers=checker, json=june)
    assert again.status_code == 202 and again.json()["id"] == request["id"]
    listed = (await http.get("/api/v1/reports/periods", headers=maker)).json()["items"]
    assert not [p for p in listed if p["org_id"] == org.id]  # not closed yet

    approval = await open_approval(http, maker, request["id"])
    assert_error(await approve(http, maker, approval), 403, "maker_checker")
    assert (await approve(http, checker, approval)).status_code == 200
    done = await finished(http, maker, request["id"])
    assert done["status"] == "completed" and done["closed_period_id"]
    listed = (await http.get("/api/v1/reports/periods", headers=maker)).json()["items"]
    assert [p["id"] for p in listed if p["org_id"] == org.id] == [done["closed_period_id"]]
    closed_again = await http.post("/api/v1/reports/periods", headers=maker, json=june)
    assert closed_again.status_code == 200 and closed_again.json()["id"] == done["closed_period_id"]

    # A manual entry dated inside it is refused at once, and writes nothing.
    cash = await gl_cash(db)
    legs = [{"account_id": cash, "amount": "5.00"}, {"account_id": account["id"], "amount": "-5.00"}]
    inside = {"description": "Back-dated fix", "effective_date": "2003-06-15", "legs": legs}
    assert_error(await http.post("/api/v1/journal-entries", headers=keyed(maker), json=inside), 409, "period_closed")
    async with db.session() as session:
        found = await session.execute(
            text("SELECT count(*) FROM maker_checker_requests WHERE kind = 'journal_entry' AND org_id = :org"),
            {"org": org.id},
        )
        assert found.scalar_one() == 0


async def test_an_approval_the_ledger_refuses_fails_the_request_with_its_reason_and_posts_nothing(http, su, db):
    """The account closed while the deposit waited on its checker: the approval cannot post, the request says why."""
    org, _account, checker = await funded_org(http, su)
    empty = await open_account(http, su, org.id, org.users["member"]["id"])
    teller = org.headers["operator"]
    pending = await http.post(f"/api/v1/accounts/{empty['id']}/deposits", headers=keyed(teller), json={"amount": LARGE})
    assert pending.status_code == 202, pending.text
    request = pending.json()
    approval = await open_approval(http, teller, request["id"])
    closed = await http.post(f"/api/v1/accounts/{empty['id']}/close", headers=su)
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text

    assert (await approve(http, checker, approval)).status_code == 200
    done = await finished(http, teller, request["id"])
    assert done["status"] == "failed" and done["journal_entry_id"] is None
    assert "closed" in done["failure"]
    assert await entries_keyed(db, request["id"]) == 0
    assert await balances(http, su, empty) == (Decimal("0.00"), Decimal("0.00"))


async def test_an_organization_may_have_a_threshold_of_its_own_set_by_a_superuser(http, su):
    org, account, _checker = await funded_org(http, su)
    policy = f"/api/v1/organizations/{org.id}/maker-checker-policy"
    default = (await http.get(policy, headers=org.headers["operator"])).json()
    assert default == {"org_id": org.id, "threshold": None, "effective_threshold": "100000.00"}
    assert_error(await http.put(policy, headers=org.headers["org_admin"], json={"threshold": "1000000.00"}), 403)
    assert_error(await http.put(policy, headers=su, json={"threshold": "0"}), 422)
    stranger = await make_org(http, su, roles=("org_admin",))
    assert_error(await http.get(policy, headers=stranger.headers["org_admin"]), 404)

    set_low = await http.put(policy, headers=su, json={"threshold": "500.00"})
    assert set_low.status_code == 200 and set_low.json()["effective_threshold"] == "500.00", set_low.text
    url = f"/api/v1/accounts/{account['id']}/deposits"
    teller = org.headers["operator"]
    assert (await http.post(url, headers=keyed(teller), json={"amount": "500.00"})).status_code == 201
    waits = await http.post(url, headers=keyed(teller), json={"amount": "500.01"})
    assert waits.status_code == 202 and waits.json()["kind"] == "deposit", waits.text
    transfer = await http.post(
        "/api/v1/transfers/book",
        headers=keyed(org.headers["member"]),
        json={"from_account_id": account["id"], "to_account_id": account["id"], "amount": "600.00"},
    )
    assert_error(transfer, 422, "same_account")  # checked like any transfer before it waits

    cleared = await http.put(policy, headers=su, json={"threshold": None})
    assert cleared.json() == {"org_id": org.id, "threshold": None, "effective_threshold": "100000.00"}
    assert (await http.post(url, headers=keyed(teller), json={"amount": "600.00"})).status_code == 201


async def test_an_amount_in_another_currency_is_weighed_in_dollars_at_the_current_rate(http, su, db, sandbox_url):
    """The threshold is in dollars. Pounds weigh more than their number, yen far less: each amount is weighed at the
    current rate (the sandbox's: GBP 0.7891, JPY 151.37 a dollar; fetched when none is cached), so 800 pounds wait on
    a checker under a threshold of 1,000.00 and 150,000 yen do not; with no rate to be had (the provider down), any
    foreign amount waits: never through for want of one."""
    org, _, _ = await funded_org(http, su)
    policy = f"/api/v1/organizations/{org.id}/maker-checker-policy"
    assert (await http.put(policy, headers=su, json={"threshold": "1000.00"})).status_code == 200
    member, teller = org.users["member"]["id"], org.headers["operator"]
    pounds = await open_account(http, su, org.id, member, currency="GBP")
    yen = await open_account(http, su, org.id, member, currency="JPY")

    async def deposit(account: dict, amount: str) -> int:
        url = f"/api/v1/accounts/{account['id']}/deposits"
        return (await http.post(url, headers=keyed(teller), json={"amount": amount})).status_code

    async with db.session() as session, session.begin():
        await session.execute(text("DELETE FROM exchange_rates"))
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as provider:
        assert (await provider.put("/fx/_control", json={"down_next": 10})).status_code == 200
        try:
            assert await deposit(pounds, "10.00") == 202  # no rate to be had: a checker decides
        finally:
            assert (await provider.put("/fx/_control", json={"down_next": 0})).status_code == 200
    assert GBP_PER_USD * Decimal("1000.00") < Decimal("800.00")  # 800 pounds are more than 1,000 dollars
    assert await deposit(pounds, "780.00") == 201  # 988.47 dollars
    assert await deposit(pounds, "800.00") == 202  # 1,013.81 dollars
    assert await deposit(yen, "150000") == 201  # 990.95 dollars: its number far over the threshold, its worth under
    assert await deposit(yen, "152000") == 202  # 1,004.16 dollars
