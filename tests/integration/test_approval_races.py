"""Approvals and withdrawals against unlucky timing, on the real stack: a vote still being recorded when its level
escalates, an escalation with part of a quorum in, a withdrawal racing the credit check's decline or the final
approval, an answer to a request for information racing a withdrawal, and the asker deciding after the answer.

The races are set up deterministically: a row lock held by the test from its own connection (as a slow
transaction would) stops a workflow's next write where the race needs it, while the other message arrives."""

import asyncio
import uuid
from contextlib import asynccontextmanager

import httpx
import psycopg
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from core.db import libpq_url
from core.security import hash_password
from tests.conftest import assert_error, open_account
from tests.integration.test_loans import (
    FINAL,
    apply,
    decide,
    inbox_of,
    level,
    rule,
    wait_loan,
    waiting_on,
)
from tests.polling import poll


@asynccontextmanager
async def row_locked(database_url: str, table: str, row_id: str, mode: str = "UPDATE"):
    """Holds a lock on one row from a connection of its own until the block ends: whoever writes the row
    (or, with FOR UPDATE, inserts a row referencing it) waits meanwhile."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as connection, connection.transaction():
        cursor = await connection.execute(f"SELECT status FROM {table} WHERE id = %s FOR {mode}", (row_id,))
        yield (await cursor.fetchone())[0]  # type: ignore[index]  # the row was just locked


async def history_has(temporal_env, workflow_id: str, what: str, found) -> None:
    """Waits until the workflow's history holds an event that `found(event)` recognises."""

    async def fetch():
        return (await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()).events

    await poll(fetch, lambda events: any(found(e) for e in events), 15, f"{workflow_id}: no {what} in its history")


def update_accepted(name: str):
    return lambda e: (
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == name
    )


def signaled(name: str):
    return lambda e: (
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == name
    )


async def answered(task: asyncio.Task, what: str, timeout: float = 20) -> httpx.Response:
    """The HTTP answer of a call started as a task; an AssertionError if it never comes (a deadlock)."""
    try:
        return await asyncio.wait_for(asyncio.shield(task), timeout)
    except (TimeoutError, httpx.ReadTimeout):
        task.cancel()
        raise AssertionError(f"{what}: no answer within {timeout} s") from None


async def approval_state(http, su, request_id: str) -> dict:
    return (await http.get(f"/api/v1/approvals/{request_id}", headers=su)).json()


async def test_escalation_needs_the_escalation_roles_own_decision(http, su, sandbox_url, bank, product, temporal_env):
    # 2 of 3 of the committee within 5 s, else a branch manager decides alone.
    member_type = await rule(http, su, [level("credit_committee", quorum=2, deadline=5, escalation="branch_manager")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "credit_committee"))["request_id"]
    first = await decide(http, bank.headers["committee0"], request_id)
    assert first.status_code == 200 and first.json()["approvals"] == 1, first.text

    # The deadline passes with one approval of two: the level escalates, and the approval before it does not count.
    state = await poll(
        lambda: approval_state(http, su, request_id),
        lambda s: s["escalated"] or s["status"] != "open",
        15,
        "the level did not escalate",
    )
    assert (state["status"], state["waiting_on_role"], state["approvals"], state["quorum"]) == (
        "open",
        "branch_manager",
        0,
        1,
    ), state
    assert (await wait_loan(http, su, loan["id"], {"pending_approval"}))["status"] == "pending_approval"
    # The committee's turn is over; the manager's own decision passes the level.
    assert_error(await decide(http, bank.headers["committee1"], request_id), 403, "wrong_role")
    approved = await decide(http, bank.headers["branch_manager"], request_id)
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"
    # Both decisions stay in the audit trail.
    log = (await http.get("/api/v1/audit", headers=su, params={"entity_id": request_id, "limit": 100})).json()
    assert [row["actor"] for row in log["items"] if row["action"] == "approval.decision.approve"].count(
        bank.users["committee0"]["email"]
    ) == 1
    assert any(
        row["actor"] == bank.users["branch_manager"]["email"]
        for row in log["items"]
        if row["action"] == "approval.decision.approve"
    )


async def test_a_vote_still_being_recorded_when_the_level_escalates_does_not_count(
    http, su, sandbox_url, bank, product, database_url
):
    member_type = await rule(http, su, [level("credit_committee", quorum=1, deadline=5, escalation="branch_manager")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "credit_committee"))["request_id"]
    await inbox_of(http, bank.headers["committee0"], 1)  # the request row is written: the level is open

    # The committee member's vote is accepted, but its record waits on the request row while the deadline passes.
    async with row_locked(database_url, "approval_requests", request_id):
        vote = asyncio.create_task(decide(http, bank.headers["committee0"], request_id))
        state = await poll(
            lambda: approval_state(http, su, request_id), lambda s: s["escalated"], 15, "the level did not escalate"
        )
        assert state["waiting_on_role"] == "branch_manager" and not vote.done()
    late = await answered(vote, "the committee vote")
    assert_error(late, 409, "decision_superseded")

    state = await approval_state(http, su, request_id)
    assert (state["status"], state["waiting_on_role"], state["approvals"]) == ("open", "branch_manager", 0), state
    approved = await decide(http, bank.headers["branch_manager"], request_id)
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"


async def member_without_credit_file(http, su, db, org) -> dict:
    """A member of `org` the bureau has no file for (the sandbox bureau has none for ids starting with 'f')."""
    user_id = uuid.UUID("f" + uuid.uuid4().hex[1:])
    email = f"nofile-{uuid.uuid4().hex[:8]}@tests.example"
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO users (id, email, full_name, hashed_password, role, org_id) "
                "VALUES (:id, :email, 'No File', :pw, 'member', :org)"
            ),
            {"id": user_id, "email": email, "pw": hash_password("a-long-test-password"), "org": org.id},
        )
    return {"id": str(user_id), "email": email}


async def test_a_withdrawal_in_flight_when_the_credit_check_declines_answers_with_the_decline(
    http, su, sandbox_url, bank, product, db, database_url, temporal_env
):
    applicant = await member_without_credit_file(http, su, db, bank)
    account = await open_account(http, su, bank.id, applicant["id"])
    async with httpx.AsyncClient(base_url=sandbox_url) as sandbox:
        await sandbox.put("/_control/faults", json={"latency_ms": 1500})  # time to catch the loan in its check
        try:
            loan = await apply(
                http,
                sandbox_url,
                bank,
                product,
                score=None,
                as_role="loan_officer",
                applicant=applicant,
                deposit_account_id=account["id"],
            )
            await wait_loan(http, su, loan["id"], {"credit_check"}, timeout=10)
            # The decline waits on the loan row while the applicant's withdrawal comes in.
            async with row_locked(database_url, "loans", loan["id"]) as status:
                assert status == "credit_check"
                withdrawal = asyncio.create_task(
                    http.post(f"/api/v1/loans/{loan['id']}/withdraw", headers=bank.headers["loan_officer"])
                )
                await history_has(temporal_env, loan["workflow_id"], "accepted withdrawal", update_accepted("withdraw"))
        finally:
            await sandbox.put("/_control/faults", json={"latency_ms": 0})
    error = assert_error(await answered(withdrawal, "the withdrawal"), 409, "not_withdrawable")
    assert error["details"]["status"] == "declined"
    declined = await wait_loan(http, su, loan["id"], FINAL)
    assert declined["status"] == "declined" and "credit check" in declined["decline_reason"]
    result = await temporal_env.client.get_workflow_handle(loan["workflow_id"]).result()
    assert result == "declined"


async def test_a_withdrawal_racing_the_final_approval_answers_with_the_approval(
    http, su, sandbox_url, bank, product, database_url, temporal_env
):
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    await inbox_of(http, bank.headers["loan_officer"], 1)
    # The approval is decided, but it cannot close (its request row is held) when the withdrawal reaches it.
    async with row_locked(database_url, "approval_requests", request_id, mode="NO KEY UPDATE"):
        approved = await decide(http, bank.headers["loan_officer"], request_id)
        assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
        withdrawal = asyncio.create_task(
            http.post(f"/api/v1/loans/{loan['id']}/withdraw", headers=bank.headers["member"])
        )
        await history_has(temporal_env, loan["workflow_id"], "accepted withdrawal", update_accepted("withdraw"))
        await history_has(temporal_env, f"approval-{request_id}", "withdraw signal", signaled("withdraw"))
    error = assert_error(await answered(withdrawal, "the withdrawal"), 409, "not_withdrawable")
    assert error["details"]["status"] in ("approved", "disbursing", "active"), error
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"


async def test_an_answer_racing_a_withdrawal_ends_both_updates(
    http, su, sandbox_url, bank, product, database_url, temporal_env
):
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    await inbox_of(http, bank.headers["loan_officer"], 1)
    approval_id = f"approval-{request_id}"
    # The officer asks for information; while the request row is held, the applicant answers and withdraws.
    async with row_locked(database_url, "approval_requests", request_id, mode="NO KEY UPDATE"):
        asked = await decide(http, bank.headers["loan_officer"], request_id, "request_info", "Last payslips")
        assert asked.status_code == 200 and asked.json()["status"] == "info_requested", asked.text
        answer = asyncio.create_task(
            http.post(
                f"/api/v1/loans/{loan['id']}/information", headers=bank.headers["member"], json={"text": "Attached"}
            )
        )
        await history_has(temporal_env, approval_id, "accepted answer", update_accepted("provide_information"))
        withdrawal = asyncio.create_task(
            http.post(f"/api/v1/loans/{loan['id']}/withdraw", headers=bank.headers["member"])
        )
        await history_has(temporal_env, approval_id, "withdraw signal", signaled("withdraw"))
    withdrawn = await answered(withdrawal, "the withdrawal")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text
    error = assert_error(await answered(answer, "the answer"), 409, "request_closed")
    assert error["details"]["status"] == "withdrawn"
    assert (await approval_state(http, su, request_id))["status"] == "withdrawn"
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "withdrawn"


async def test_the_approver_who_asked_for_information_decides_after_the_answer(http, su, sandbox_url, bank, product):
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    officer = bank.headers["loan_officer"]
    asked = await decide(http, officer, request_id, "request_info", "Send last payslips")
    assert asked.status_code == 200 and asked.json()["status"] == "info_requested", asked.text
    answered_ = await http.post(
        f"/api/v1/loans/{loan['id']}/information", headers=bank.headers["member"], json={"text": "Attached"}
    )
    assert answered_.status_code == 200 and answered_.json()["status"] == "open", answered_.text
    # The level reopens for everyone at it, the asker included: it is back in their inbox, and their vote counts.
    inbox = await poll(
        lambda: _inbox(http, officer),
        lambda items: request_id in items,
        10,
        "the asker's inbox does not show the reopened request",
    )
    assert inbox[request_id]["level"] == 1
    approved = await decide(http, officer, request_id)
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"
    # Both of the officer's decisions are in the audit trail.
    log = (await http.get("/api/v1/audit", headers=su, params={"entity_id": request_id, "limit": 100})).json()
    actions = [row["action"] for row in log["items"] if row["action"].startswith("approval.decision")]
    assert sorted(actions) == ["approval.decision.approve", "approval.decision.request_info"]


async def _inbox(http, headers) -> dict:
    return {item["request_id"]: item for item in (await http.get("/api/v1/approvals/inbox", headers=headers)).json()}
