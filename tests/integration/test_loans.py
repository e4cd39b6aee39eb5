"""Loans with multi-level approvals through HTTP: routing tiers, quorum, every validator refusal, reminders and
escalation in seconds, decline and hold, the request-information loop, withdrawal, disbursement to active."""

import asyncio
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from core.task_queues import queue_for
from tests.conftest import assert_error, make_user, open_account
from tests.polling import poll

FINAL = {"active", "declined", "rejected", "on_hold", "withdrawn", "failed"}


async def rule(http, su, levels: list[dict], final_outcome="decline") -> str:
    """A routing rule of its own for one test, picked by a member type no other test uses (give it to the
    applicant with `apply(member_type=...)`)."""
    member_type = f"t-{uuid.uuid4().hex[:10]}"
    response = await http.post(
        "/api/v1/approval-rules",
        headers=su,
        json={
            "name": member_type,
            "priority": 1,
            "min_amount": "0.01",
            "max_amount": None,
            "member_type": member_type,
            "levels": levels,
            "final_outcome": final_outcome,
        },
    )
    assert response.status_code == 201, response.text
    return member_type


def level(role, quorum=1, deadline=600, reminder=0, escalation=None) -> dict:
    return {
        "role": role,
        "quorum": quorum,
        "deadline_seconds": deadline,
        "reminder_seconds": reminder,
        "escalation_role": escalation,
    }


async def set_member_type(http, headers, user: dict, member_type: str) -> dict:
    """Staff set a member's type on their record; the loan's route follows it."""
    response = await http.patch(f"/api/v1/users/{user['id']}", headers=headers, json={"member_type": member_type})
    assert response.status_code == 200, response.text
    return response.json()


async def apply(
    http,
    sandbox_url,
    org,
    product,
    amount="5000.00",
    member_type=None,
    score=720,
    as_role="member",
    applicant=None,
    income="20000.00",
    **extra,
) -> dict:
    """Applies for `applicant` (the org's member by default); `member_type` is first set on their record by the
    org admin; `score` is the bureau's answer for them (None: whatever the bureau derives, or no file)."""
    applicant = applicant or org.users["member"]
    if member_type is not None:
        await set_member_type(http, org.headers["org_admin"], applicant, member_type)
    async with httpx.AsyncClient(base_url=sandbox_url) as sandbox:  # the bureau's answer for this applicant
        await sandbox.put("/bureau/_control", json={"fixed_scores": {applicant["id"]: score}})
    response = await http.post(
        "/api/v1/loans",
        headers={**org.headers[as_role], "Idempotency-Key": uuid.uuid4().hex},
        json={
            "product_id": product["id"],
            "amount": amount,
            "term": 36,
            "purpose": "Car",
            "monthly_income": income,
            "monthly_debt": "300.00",
            "deposit_account_id": extra.pop("deposit_account_id", org.account["id"]),
            **({"applicant_id": applicant["id"]} if as_role != "member" else {}),
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def wait_loan(http, headers, loan_id, statuses, timeout=30) -> dict:
    async def fetch() -> dict:
        return (await http.get(f"/api/v1/loans/{loan_id}", headers=headers)).json()

    return await poll(
        fetch,
        lambda loan: loan["status"] in statuses,
        timeout,
        what=lambda loan: f"loan {loan_id} stuck in {loan['status']}",
    )


async def waiting_on(http, headers, loan_id, level_no, role, timeout=20) -> dict:
    """The loan's approval once it waits on `role` at `level_no`."""
    loan = await wait_loan(http, headers, loan_id, {"pending_approval", *FINAL}, timeout)

    async def fetch() -> dict:
        return (await http.get(f"/api/v1/approvals/{loan['approval_request_id']}", headers=headers)).json()

    return await poll(
        fetch,
        lambda state: state.get("level") == level_no and state["waiting_on_role"] == role and state["status"] == "open",
        timeout,
        f"approval not waiting on {role} at level {level_no}",
    )


async def findable(temporal_env, query: str, what: str) -> list:
    """The workflows a visibility query finds, once it finds any (visibility follows within moments)."""

    async def fetch() -> list:
        return [w async for w in temporal_env.client.list_workflows(query)]

    return await poll(fetch, bool, 10, what)


async def inbox_of(http, headers, size: int, timeout: float = 10) -> list:
    """The inbox once it holds `size` items (the request rows follow the workflow within moments)."""
    deadline = time.monotonic() + timeout
    while True:
        inbox = (await http.get("/api/v1/approvals/inbox", headers=headers)).json()
        if len(inbox) >= size or time.monotonic() > deadline:
            return inbox
        await asyncio.sleep(0.2)


async def decide(http, headers, request_id, decision="approve", reason="", **extra):
    return await http.post(
        f"/api/v1/approvals/{request_id}/decisions",
        headers=headers,
        json={"decision": decision, "reason": reason, **extra},
    )


async def test_each_default_tier_routes_to_its_levels(http, su, sandbox_url, bank, product, db):
    expected = {"5000.00": 1, "50000.00": 2, "150000.00": 3}
    loans = {
        amount: await apply(http, sandbox_url, bank, product, amount=amount, income="900000.00") for amount in expected
    }
    requests = {}
    for amount, levels in expected.items():
        state = await waiting_on(http, su, loans[amount]["id"], 1, "loan_officer")
        assert state["levels"] == levels, amount
        requests[amount] = state["request_id"]
    # The officer's inbox holds all three, oldest first, each with its deadline.
    officer = bank.headers["loan_officer"]
    inbox = await inbox_of(http, officer, 3)
    assert {item["request_id"] for item in inbox} == set(requests.values())
    assert [item["waiting_since"] for item in inbox] == sorted(item["waiting_since"] for item in inbox)
    assert all(item["deadline_at"] for item in inbox)
    # The small one goes through its single level to an active, disbursed loan with an agreement.
    small = loans["5000.00"]
    accepted = await decide(http, officer, requests["5000.00"], "approve")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "approved"
    active = await wait_loan(http, su, small["id"], FINAL)
    assert active["status"] == "active" and active["has_agreement"] and active["credit_score"] == 720
    account = (await http.get(f"/api/v1/accounts/{bank.account['id']}", headers=su)).json()
    assert account["ledger_balance"] == "5000.00"
    schedule = (await http.get(f"/api/v1/loans/{small['id']}/schedule", headers=bank.headers["member"])).json()
    assert len(schedule) == 36 and schedule[-1]["balance"] == "0.00"
    assert sum(Decimal(row["principal"]) for row in schedule) == Decimal("5000.00")
    pdf = await http.get(f"/api/v1/loans/{small['id']}/agreement.pdf", headers=bank.headers["member"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # The middle tier moves on to the branch manager once the officer approves.
    middle = loans["50000.00"]
    assert (await decide(http, officer, requests["50000.00"])).status_code == 200
    await waiting_on(http, su, middle["id"], 2, "branch_manager")
    assert [i["subject_id"] for i in await inbox_of(http, bank.headers["branch_manager"], 1)] == [middle["id"]]


async def test_quorum_and_every_validator_refusal(http, su, sandbox_url, bank, product, temporal_env, settings):
    member_type = await rule(http, su, [level("loan_officer"), level("credit_committee", quorum=2)])
    loan = await apply(
        http,
        sandbox_url,
        bank,
        product,
        member_type=member_type,
        as_role="loan_officer",
        applicant=bank.users["member"],
    )
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]

    error = assert_error(await decide(http, bank.headers["branch_manager"], request_id), 403, "wrong_role")
    assert "loan_officer" in error["message"]
    assert_error(await decide(http, bank.headers["loan_officer"], request_id), 403, "maker_checker")  # submitted it
    assert_error(await decide(http, bank.headers["member"], request_id), 403, "wrong_role")
    assert_error(await decide(http, bank.headers["committee0"], request_id, level=2), 409, "wrong_level")

    _second_officer, second_headers = await make_user(http, su, "loan_officer", bank.id)
    assert_error(await decide(http, second_headers, request_id, "reject"), 422, "reason_required")
    assert (await decide(http, second_headers, request_id, "approve")).status_code == 200
    state = await waiting_on(http, su, loan["id"], 2, "credit_committee")
    assert state["quorum"] == 2

    first = await decide(http, bank.headers["committee0"], request_id)
    assert first.status_code == 200 and first.json()["status"] == "open" and first.json()["approvals"] == 1
    assert_error(await decide(http, bank.headers["committee0"], request_id), 409, "already_decided")
    second = await decide(http, bank.headers["committee1"], request_id)
    assert second.status_code == 200
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"
    assert_error(await decide(http, bank.headers["committee2"], request_id), 409)  # closed

    # The approval ran on the interactive queue, apart from its loan's money queue (core/task_queues.py).
    approval = temporal_env.client.get_workflow_handle(f"approval-{request_id}")
    assert (await approval.describe()).task_queue == queue_for(settings, "ApprovalWorkflow") != settings.task_queue
    assert (await temporal_env.client.get_workflow_handle(loan["workflow_id"]).describe()).task_queue == (
        settings.task_queue
    )

    # Refused decisions left nothing in the approval's history: only the three accepted updates are there.
    history = await approval.fetch_history()
    accepted = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert len(accepted) == 3

    log = (await http.get("/api/v1/audit", headers=su, params={"entity_id": request_id, "limit": 100})).json()
    decisions = [row["action"] for row in log["items"] if row["action"].startswith("approval.decision")]
    assert decisions.count("approval.decision.approve") == 3


async def test_the_applicant_cannot_approve_their_own_loan(http, su, sandbox_url, bank, product):
    officer = bank.users["loan_officer"]
    own_account = await open_account(http, su, bank.id, officer["id"])
    # The officer applies for themself: applicant and submitter at once.
    async with httpx.AsyncClient(base_url=sandbox_url) as sandbox:
        await sandbox.put("/bureau/_control", json={"fixed_scores": {officer["id"]: 700}})
    response = await http.post(
        "/api/v1/loans",
        headers={**bank.headers["loan_officer"], "Idempotency-Key": "own"},
        json={
            "product_id": product["id"],
            "amount": "2000.00",
            "term": 12,
            "monthly_income": "9000.00",
            "deposit_account_id": own_account["id"],
        },
    )
    assert response.status_code == 201, response.text
    loan = response.json()
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    assert_error(await decide(http, bank.headers["loan_officer"], request_id), 403, "own_request")
    inbox = (await http.get("/api/v1/approvals/inbox", headers=bank.headers["loan_officer"])).json()
    assert request_id not in [item["request_id"] for item in inbox]


async def test_reminder_escalation_then_decline(http, su, sandbox_url, bank, product):
    member_type = await rule(
        http, su, [level("loan_officer", deadline=3, reminder=1, escalation="branch_manager")], final_outcome="decline"
    )
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    await waiting_on(http, su, loan["id"], 1, "branch_manager", timeout=20)  # escalated at the deadline
    declined = await wait_loan(http, su, loan["id"], FINAL, timeout=20)
    assert declined["status"] == "declined"
    officer_notes = (await http.get("/api/v1/notifications", headers=bank.headers["loan_officer"])).json()["items"]
    kinds = {n["kind"] for n in officer_notes if n["entity_id"] == declined["approval_request_id"]}
    assert {"approval_opened", "approval_reminder"} <= kinds
    manager_notes = (await http.get("/api/v1/notifications", headers=bank.headers["branch_manager"])).json()["items"]
    assert any(
        n["kind"] == "approval_escalated" and n["entity_id"] == declined["approval_request_id"] for n in manager_notes
    )


async def test_hold_after_the_last_deadline(http, su, sandbox_url, bank, product):
    member_type = await rule(http, su, [level("loan_officer", deadline=1)], final_outcome="hold")
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "on_hold"


async def test_request_information_loop(http, su, sandbox_url, bank, product):
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    assert_error(await decide(http, bank.headers["loan_officer"], request_id, "request_info"), 422, "reason_required")
    asked = await decide(http, bank.headers["loan_officer"], request_id, "request_info", "Send last payslips")
    assert asked.status_code == 200 and asked.json()["status"] == "info_requested"
    assert (await wait_loan(http, su, loan["id"], {"info_requested"}))["status"] == "info_requested"
    assert_error(await decide(http, bank.headers["branch_manager"], request_id), 409)
    assert_error(
        await http.post(
            f"/api/v1/loans/{loan['id']}/information",
            headers=bank.headers["org_admin"],
            json={"text": "not mine to answer"},
        ),
        403,
        "not_the_applicant",
    )
    answered = await http.post(
        f"/api/v1/loans/{loan['id']}/information", headers=bank.headers["member"], json={"text": "Attached"}
    )
    assert answered.status_code == 200 and answered.json()["status"] == "open"
    # The level reopens for every officer (the asker too: see test_approval_races); another one approves.
    _second_officer, headers = await make_user(http, su, "loan_officer", bank.id)
    approved = await decide(http, headers, request_id)
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"


async def test_withdrawal_before_approval_only(http, su, sandbox_url, bank, product):
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    await waiting_on(http, su, loan["id"], 1, "loan_officer")
    withdrawn = await http.post(f"/api/v1/loans/{loan['id']}/withdraw", headers=bank.headers["member"])
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    approval = (await http.get(f"/api/v1/approvals/{withdrawn.json()['approval_request_id']}", headers=su)).json()
    assert approval["status"] == "withdrawn"
    assert_error(await http.post(f"/api/v1/loans/{loan['id']}/withdraw", headers=bank.headers["member"]), 409)


async def test_eligibility_and_credit_declines(http, su, sandbox_url, bank, product, temporal_env):
    too_much_debt = await apply(http, sandbox_url, bank, product, amount="20000.00", income="800.00")
    low_score = await apply(http, sandbox_url, bank, product, score=500)
    declined = [await wait_loan(http, su, loan["id"], FINAL) for loan in (too_much_debt, low_score)]
    assert [d["status"] for d in declined] == ["declined", "declined"]
    assert "debt-to-income" in declined[0]["decline_reason"] and "credit score 500" in declined[1]["decline_reason"]
    query = f"WorkflowId = '{low_score['workflow_id']}' AND LoanStatus = 'declined'"
    await findable(temporal_env, query, "the declined loan is not findable by LoanStatus")


async def test_waiting_loans_are_findable_by_role(http, su, sandbox_url, bank, product, temporal_env):
    member_type = await rule(http, su, [level("branch_manager")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    await waiting_on(http, su, loan["id"], 1, "branch_manager")
    query = (
        f"WorkflowId = '{loan['workflow_id']}' AND LoanStatus = 'pending_approval' AND WaitingOnRole = 'branch_manager'"
    )
    await findable(temporal_env, query, "the loan is not findable by WaitingOnRole")


async def test_repayment_prepayment_and_payoff(http, su, sandbox_url, bank, product, temporal_env):
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    assert (await decide(http, bank.headers["loan_officer"], request_id)).status_code == 200
    loan = await wait_loan(http, su, loan["id"], FINAL)
    assert loan["status"] == "active"
    member = bank.headers["member"]
    schedule = (await http.get(f"/api/v1/loans/{loan['id']}/schedule", headers=member)).json()
    first = schedule[0]

    key = {**member, "Idempotency-Key": uuid.uuid4().hex}
    paid = await http.post(f"/api/v1/loans/{loan['id']}/repayments", headers=key, json={"amount": first["payment"]})
    assert paid.status_code == 200, paid.text
    result = paid.json()
    assert (result["interest"], result["principal"], result["fees"]) == (first["interest"], first["principal"], "0.00")
    again = await http.post(f"/api/v1/loans/{loan['id']}/repayments", headers=key, json={"amount": first["payment"]})
    assert again.json()["journal_entry_id"] == result["journal_entry_id"]  # one repayment for one key
    deposit = (await http.get(f"/api/v1/accounts/{bank.account['id']}", headers=su)).json()
    assert Decimal(deposit["ledger_balance"]) == Decimal("5000.00") - Decimal(first["payment"])
    assert Decimal(result["outstanding_principal"]) == Decimal("5000.00") - Decimal(first["principal"])
    schedule = (await http.get(f"/api/v1/loans/{loan['id']}/schedule", headers=member)).json()
    assert schedule[0]["paid"] == first["payment"] and schedule[1]["paid"] == "0.00"

    prepaid = await http.post(
        f"/api/v1/loans/{loan['id']}/repayments",
        json={"amount": "1000.00", "mode": "prepayment"},
        headers={**member, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert prepaid.status_code == 200 and prepaid.json()["principal"] == "1000.00"
    recomputed = (await http.get(f"/api/v1/loans/{loan['id']}/schedule", headers=member)).json()
    assert Decimal(recomputed[1]["payment"]) < Decimal(schedule[1]["payment"]) and len(recomputed) == 36
    assert recomputed[-1]["balance"] == "0.00"
    assert sum(Decimal(r["principal"]) for r in recomputed[1:]) == Decimal(prepaid.json()["outstanding_principal"])

    assert_error(
        await http.post(
            f"/api/v1/loans/{loan['id']}/repayments",
            json={"amount": "99999.00"},
            headers={**member, "Idempotency-Key": uuid.uuid4().hex},
        ),
        422,
    )
    await http.post(
        f"/api/v1/accounts/{bank.account['id']}/deposits",
        headers={**su, "Idempotency-Key": "top-up"},
        json={"amount": "500.00"},
    )  # the payoff is more than what is left of the disbursement
    quote = (await http.get(f"/api/v1/loans/{loan['id']}/payoff-quote", headers=member)).json()
    assert Decimal(quote["amount"]) >= Decimal(quote["outstanding_principal"])
    wrong = await http.post(
        f"/api/v1/loans/{loan['id']}/repayments",
        json={"amount": str(Decimal(quote["amount"]) - Decimal("0.01")), "mode": "payoff"},
        headers={**member, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert_error(wrong, 409, "payoff_amount_mismatch")
    closed = await http.post(
        f"/api/v1/loans/{loan['id']}/repayments",
        json={"amount": quote["amount"], "mode": "payoff"},
        headers={**member, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    assert closed.json()["outstanding_principal"] == "0.00"
    assert (await http.get(f"/api/v1/loans/{loan['id']}", headers=su)).json()["status"] == "closed"
    loan_account = (await http.get(f"/api/v1/accounts/{loan['loan_account_id']}", headers=su)).json()
    assert loan_account["ledger_balance"] == "0.00"
    assert await temporal_env.client.get_workflow_handle(loan["workflow_id"]).result() == "closed"
    assert_error(
        await http.post(
            f"/api/v1/loans/{loan['id']}/repayments",
            json={"amount": "1.00"},
            headers={**member, "Idempotency-Key": uuid.uuid4().hex},
        ),
        409,
        "loan_not_active",
    )


async def test_the_route_follows_the_members_record_not_the_request(http, su, sandbox_url, bank, product, db):
    member_type = await rule(http, su, [level("branch_manager")])
    member = bank.users["member"]
    body = {
        "product_id": product["id"],
        "amount": "5000.00",
        "term": 36,
        "monthly_income": "20000.00",
        "deposit_account_id": bank.account["id"],
    }
    # The applicant cannot pick their route: a member_type in the request is refused, and so is setting their own.
    sent = await http.post(
        "/api/v1/loans",
        headers={**bank.headers["member"], "Idempotency-Key": uuid.uuid4().hex},
        json={**body, "member_type": member_type},
    )
    error = assert_error(sent, 422, "validation_error")
    assert ["body", "member_type"] in [detail["loc"] for detail in error["details"]]
    assert_error(
        await http.patch(
            f"/api/v1/users/{member['id']}", headers=bank.headers["member"], json={"member_type": member_type}
        ),
        403,
    )
    assert (await http.get(f"/api/v1/users/{member['id']}", headers=su)).json()["member_type"] == "consumer"
    async with db.session() as session:  # nothing was written by the refused application
        assert (
            await session.execute(text("SELECT count(*) FROM loans WHERE applicant_id = :a"), {"a": member["id"]})
        ).scalar_one() == 0
    # Staff set it on the member's record; the loan takes it from there and routes by it.
    assert (await set_member_type(http, bank.headers["org_admin"], member, member_type))["member_type"] == member_type
    loan = await apply(http, sandbox_url, bank, product)
    assert loan["member_type"] == member_type
    state = await waiting_on(http, su, loan["id"], 1, "branch_manager")
    assert state["levels"] == 1


@pytest.fixture
async def only_member_type_rules(http, su):
    """The generic rules (the default tiers) deactivated for one test, so that a member type can match nothing;
    restored afterwards."""
    rules = (await http.get("/api/v1/approval-rules", headers=su, params={"active": True, "limit": 500})).json()
    generic = [r["id"] for r in rules["items"] if r["member_type"] is None]
    assert generic
    for rule_id in generic:
        assert (await http.delete(f"/api/v1/approval-rules/{rule_id}", headers=su)).status_code == 204
    yield
    for rule_id in generic:
        response = await http.patch(f"/api/v1/approval-rules/{rule_id}", headers=su, json={"active": True})
        assert response.status_code == 200, response.text


async def test_a_loan_no_rule_routes_is_refused_before_anything_is_written(
    http, su, sandbox_url, bank, product, db, only_member_type_rules
):
    await set_member_type(http, bank.headers["org_admin"], bank.users["member"], f"t-{uuid.uuid4().hex[:10]}")
    response = await http.post(
        "/api/v1/loans",
        headers={**bank.headers["member"], "Idempotency-Key": "no-route"},
        json={
            "product_id": product["id"],
            "amount": "5000.00",
            "term": 36,
            "monthly_income": "20000.00",
            "deposit_account_id": bank.account["id"],
        },
    )
    error = assert_error(response, 422, "no_approval_route")
    assert error["details"]["amount"] == "5000.00" and error["details"]["member_type"].startswith("t-")
    async with db.session() as session:
        assert (
            await session.execute(
                text("SELECT count(*) FROM loans WHERE applicant_id = :a"), {"a": bank.users["member"]["id"]}
            )
        ).scalar_one() == 0


async def test_a_loan_whose_rule_goes_away_before_routing_fails_with_the_reason(
    http, su, sandbox_url, bank, product, only_member_type_rules
):
    member_type = await rule(http, su, [level("loan_officer")])
    rule_id = (await http.get("/api/v1/approval-rules", headers=su, params={"member_type": member_type})).json()[
        "items"
    ][0]["id"]
    async with httpx.AsyncClient(base_url=sandbox_url) as sandbox:
        await sandbox.put("/_control/faults", json={"latency_ms": 3000})  # a slow bureau: routing comes later
        try:
            loan = await apply(http, sandbox_url, bank, product, amount="5000.00", member_type=member_type)
            assert (await http.delete(f"/api/v1/approval-rules/{rule_id}", headers=su)).status_code == 204
            early = (await http.get(f"/api/v1/loans/{loan['id']}", headers=su)).json()
            assert early["approval_request_id"] is None, "the loan was routed before its rule was deactivated"
        finally:
            await sandbox.put("/_control/faults", json={"latency_ms": 0})
    failed = await wait_loan(http, su, loan["id"], FINAL, timeout=30)
    assert failed["status"] == "failed", failed
    assert "5000.00" in failed["decline_reason"] and member_type in failed["decline_reason"]
