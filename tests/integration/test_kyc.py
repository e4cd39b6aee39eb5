"""KYC reviews through the API on the real stack: the sandbox identity service screens (pass, fail, refer by input),
a refer is reviewed by an operator of the member's organization through /approvals (maker-checker, deadline,
escalation to the org admin), a request for documents loops back to the member, and the kyc-reverification
schedule asks again once a verification has expired (tests/conftest.py: a level lasts 8 s, a verification 3 s)."""

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from core.schedules import ensure_schedules, jobs
from tests.conftest import assert_error, make_org, make_user
from tests.integration.test_documents import PNG, upload
from tests.integration.test_members import new_member
from tests.polling import poll

IDENTITY = {"full_name": "Kim Member", "date_of_birth": "1990-04-01", "address": "1 Main St, Springfield"}
PASS, FAIL, REFER = "1234", "0000", "9999"  # sandbox/identity.py: a clean id, a mismatch, a thin file


async def id_document(http, headers, member_id: str) -> str:
    """An identity document uploaded for the member (by the member, or staff for them)."""
    response = await upload(http, headers, member_id, PNG, filename="id.png", content_type="image/png")
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def post_submission(http, headers, member_id: str, document_ids: list[str], last4: str = PASS, **identity):
    return await http.post(
        f"/api/v1/members/{member_id}/kyc/submissions",
        headers=headers,
        json={**IDENTITY, **identity, "national_id_last4": last4, "document_ids": document_ids},
    )


async def submit(http, headers, member_id: str, last4: str = PASS, **identity) -> dict:
    document = await id_document(http, headers, member_id)
    response = await post_submission(http, headers, member_id, [document], last4, **identity)
    assert response.status_code == 202, response.text
    return response.json()


async def kyc_state(http, headers, member_id: str, statuses: set[str], waiting_on: str | None = "any") -> dict:
    async def fetch() -> dict:
        return (await http.get(f"/api/v1/members/{member_id}/kyc", headers=headers)).json()

    return await poll(
        fetch,
        lambda s: s["status"] in statuses and (waiting_on == "any" or s["waiting_on"] == waiting_on),
        30,
        what=lambda s: f"KYC of {member_id} not {statuses} / {waiting_on}: {s}",
    )


async def decide(http, headers, request_id: str, decision: str = "approve", reason: str = ""):
    return await http.post(
        f"/api/v1/approvals/{request_id}/decisions", headers=headers, json={"decision": decision, "reason": reason}
    )


async def profile(http, headers) -> dict:
    return (await http.get("/api/v1/profile", headers=headers)).json()


async def kyc_org(http, su):
    org = await make_org(http, su, roles=("org_admin", "operator"))
    org.users["operator2"], org.headers["operator2"] = await make_user(http, su, "operator", org.id)
    return org


async def test_screening_pass_verifies_and_fail_rejects(http, su, mailbox):
    org = await kyc_org(http, su)
    member, headers = await new_member(http, org)
    assert (await submit(http, headers, member["id"]))["status"] == "screening"
    await kyc_state(http, headers, member["id"], {"verified"})
    mine = await profile(http, headers)
    assert mine["kyc_status"] == "verified" and mine["kyc_expires_at"]
    await mailbox.wait_for(lambda m: member["email"] in m["To"] and "verified" in m["Subject"], timeout=20)
    # Verified: nothing to submit until re-verification asks.
    response = await http.post(
        f"/api/v1/members/{member['id']}/kyc/submissions",
        headers=headers,
        json={**IDENTITY, "national_id_last4": PASS},
    )
    assert_error(response, 409, "already_verified")

    rejected, rejected_headers = await new_member(http, org)
    await submit(http, rejected_headers, rejected["id"], FAIL)
    state = await kyc_state(http, rejected_headers, rejected["id"], {"rejected"})
    assert "identity_mismatch" in state["reason"]
    assert (await profile(http, rejected_headers))["kyc_status"] == "rejected"
    # Staff of another organization, and other members, see nothing of it.
    other = await make_org(http, su, roles=("org_admin",))
    assert_error(await http.get(f"/api/v1/members/{rejected['id']}/kyc", headers=other.headers["org_admin"]), 404)
    assert_error(await http.get(f"/api/v1/members/{rejected['id']}/kyc", headers=headers), 404)


async def test_a_submission_names_only_documents_of_its_member(http, su, temporal_env):
    org = await kyc_org(http, su)
    member, headers = await new_member(http, org)
    other, other_headers = await new_member(http, org)
    theirs = await id_document(http, other_headers, other["id"])
    mine = await id_document(http, headers, member["id"])
    made_up = str(uuid.uuid4())
    for ids in ([theirs], [mine, made_up], [mine, theirs, mine]):
        error = assert_error(await post_submission(http, headers, member["id"], ids), 422, "unknown_documents")
        assert error["details"]["document_ids"] == [i for i in dict.fromkeys(ids) if i != mine], error
    # Nothing started: the member is still asked to submit, and no review exists.
    state = (await http.get(f"/api/v1/members/{member['id']}/kyc", headers=headers)).json()
    assert (state["status"], state["waiting_on"]) == ("awaiting_submission", "member"), state
    with pytest.raises(RPCError):
        await temporal_env.client.get_workflow_handle(f"kyc-{member['id']}").describe()
    # Their own document, named twice, is one document of the submission.
    response = await post_submission(http, headers, member["id"], [mine, mine])
    assert response.status_code == 202, response.text
    await kyc_state(http, headers, member["id"], {"verified"})


async def test_refer_goes_to_an_operator_who_approves_or_rejects(http, su, temporal_env):
    org = await kyc_org(http, su)
    member, headers = await new_member(http, org)
    await submit(http, headers, member["id"], REFER)
    state = await kyc_state(http, headers, member["id"], {"in_review"}, "operator")
    assert (await profile(http, headers))["kyc_status"] == "pending"
    # Operators find it in their inbox; the member cannot decide on their own review.
    inbox = (await http.get("/api/v1/approvals/inbox", headers=org.headers["operator"])).json()
    assert state["approval_request_id"] in [item["request_id"] for item in inbox]
    assert_error(await decide(http, headers, state["approval_request_id"]), 403)
    # A second submission while the review runs is refused.
    response = await http.post(
        f"/api/v1/members/{member['id']}/kyc/submissions", headers=headers, json={**IDENTITY, "national_id_last4": PASS}
    )
    assert_error(response, 409, "not_awaiting_submission")
    described = await temporal_env.client.get_workflow_handle(f"kyc-{member['id']}").describe()
    attributes = {k.name: v for k, v in ((p.key, p.value) for p in described.typed_search_attributes)}
    assert (attributes["KycStatus"], attributes["KycWaitingOn"]) == ("in_review", "operator")
    assert (await decide(http, org.headers["operator"], state["approval_request_id"])).status_code == 200
    await kyc_state(http, headers, member["id"], {"verified"})
    assert (await profile(http, headers))["kyc_status"] == "verified"

    refused, refused_headers = await new_member(http, org)
    await submit(http, refused_headers, refused["id"], REFER)
    state = await kyc_state(http, refused_headers, refused["id"], {"in_review"}, "operator")
    assert_error(await decide(http, org.headers["operator"], state["approval_request_id"], "reject"), 422)
    response = await decide(http, org.headers["operator"], state["approval_request_id"], "reject", "document forged")
    assert response.status_code == 200, response.text
    final = await kyc_state(http, refused_headers, refused["id"], {"rejected"})
    assert final["reason"] == "document forged"
    handle = temporal_env.client.get_workflow_handle(f"kyc-{refused['id']}")
    await poll(handle.describe, lambda d: d.status == WorkflowExecutionStatus.COMPLETED, 20, "KYC run not ended")


async def test_more_documents_loop_back_to_the_member(http, su, mailbox):
    org = await kyc_org(http, su)
    member, headers = await new_member(http, org)
    await submit(http, headers, member["id"], REFER)
    state = await kyc_state(http, headers, member["id"], {"in_review"}, "operator")
    response = await decide(http, org.headers["operator"], state["approval_request_id"], "request_info", "a clearer ID")
    assert response.status_code == 200, response.text
    asked = await kyc_state(http, headers, member["id"], {"more_documents_requested"}, "member")
    assert asked["reason"] == "a clearer ID"
    await mailbox.wait_for(lambda m: member["email"] in m["To"] and "more documents" in m["Subject"], timeout=20)
    # The member answers: a new round of screening and review.
    answered = await submit(http, headers, member["id"], REFER)
    assert answered["round"] == 2
    second = await kyc_state(http, headers, member["id"], {"in_review"}, "operator")
    assert second["approval_request_id"] != state["approval_request_id"]
    assert (await decide(http, org.headers["operator"], second["approval_request_id"])).status_code == 200
    await kyc_state(http, headers, member["id"], {"verified"})


async def test_the_submitter_never_reviews_and_a_late_review_escalates(http, su):
    org = await kyc_org(http, su)
    member, headers = await new_member(http, org)
    # An operator submits for the member: that operator may not decide (maker-checker), another one may.
    await submit(http, org.headers["operator"], member["id"], REFER)
    state = await kyc_state(http, headers, member["id"], {"in_review"}, "operator")
    assert_error(await decide(http, org.headers["operator"], state["approval_request_id"]), 403, "maker_checker")
    inbox = (await http.get("/api/v1/approvals/inbox", headers=org.headers["operator"])).json()
    assert state["approval_request_id"] not in [item["request_id"] for item in inbox]
    assert (await decide(http, org.headers["operator2"], state["approval_request_id"])).status_code == 200
    await kyc_state(http, headers, member["id"], {"verified"})

    # A watch-list hit refers too; nobody decides: at the deadline the review escalates to the org admin.
    flagged, flagged_headers = await new_member(http, org, "Ivan Watchlist")
    await submit(http, flagged_headers, flagged["id"], PASS, full_name="Ivan Watchlist")
    state = await kyc_state(http, flagged_headers, flagged["id"], {"in_review"}, "operator")
    escalated = await kyc_state(http, flagged_headers, flagged["id"], {"in_review"}, "org_admin")
    # The member's row follows the escalation: the org admin finds the review in the member list.
    waiting = await poll(
        lambda: http.get("/api/v1/members", headers=org.headers["org_admin"], params={"kyc_waiting_on": "org_admin"}),
        lambda r: [m["id"] for m in r.json()["items"]] == [flagged["id"]],
        15,
        what=lambda r: f"the member list does not show the escalated review: {r.text}",
    )
    assert waiting.json()["items"][0]["kyc_status"] == "pending"
    assert_error(await decide(http, org.headers["operator2"], escalated["approval_request_id"]), 403, "wrong_role")
    assert (await decide(http, org.headers["org_admin"], escalated["approval_request_id"])).status_code == 200
    await kyc_state(http, flagged_headers, flagged["id"], {"verified"})


async def test_an_expired_verification_is_renewed_through_the_schedule(http, su, settings, temporal_env, mailbox):
    org = await kyc_org(http, su)
    member, headers = await new_member(http, org)
    await submit(http, headers, member["id"])
    await kyc_state(http, headers, member["id"], {"verified"})
    expires_at = (await profile(http, headers))["kyc_expires_at"]
    await asyncio.sleep(settings.kyc_valid_for.total_seconds())  # the verification has ended
    prefix = f"test-{uuid.uuid4().hex[:6]}-"
    client = temporal_env.client
    await ensure_schedules(client, settings, prefix)
    try:
        await client.get_schedule_handle(prefix + "kyc-reverification").trigger()
        # The schedule's run starts the member's re-verification, which finds the verification over: expired.
        await kyc_state(http, headers, member["id"], {"expired"}, "member")
        assert (await profile(http, headers))["kyc_status"] == "expired"
        await mailbox.wait_for(lambda m: member["email"] in m["To"] and "expired" in m["Subject"], timeout=20)
        renewed = await submit(http, headers, member["id"])
        assert renewed["round"] == 1
        await kyc_state(http, headers, member["id"], {"verified"})
        assert (await profile(http, headers))["kyc_expires_at"] > expires_at
    finally:
        for job in jobs(settings):
            await client.get_schedule_handle(prefix + job.schedule_id).delete()
