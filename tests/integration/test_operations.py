"""The operator API on the real stack: a failed workflow is listed (to its organization's operator, not another's)
and a reset runs it again, audited; an activity retrying is listed; a rejected email is sent again, once."""

import uuid

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from core import search_attributes as sa
from tests.conftest import assert_error, make_org
from tests.polling import poll
from tests.repairable import RepairableWorkflow, Switch
from worker import build_worker

V1 = "/api/v1/operations"


@pytest.fixture(scope="module")
async def orgs(http, su):
    return await make_org(http, su), await make_org(http, su)


@pytest.fixture(scope="module")
async def repairable(temporal_env, settings, db):
    """A worker of its own, serving the test workflow beside everything else; the switch that breaks its step."""
    own = settings.model_copy(update={"task_queue": f"repair-{uuid.uuid4().hex[:8]}"})
    switch = Switch()
    async with build_worker(
        temporal_env.client, own, db, extra_workflows=[RepairableWorkflow], extra_activities=[switch.step]
    ):
        yield own, switch


async def start(client, own, workflow_id: str, org_id: str, retrying: bool):
    return await client.start_workflow(
        RepairableWorkflow.run,
        retrying,
        id=workflow_id,
        task_queue=own.task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, org_id)]),
    )


async def listed(http, headers, workflow_id: str) -> bool:
    response = await http.get(
        f"{V1}/workflows/failed", headers=headers, params={"workflow_type": "RepairableWorkflow", "limit": 500}
    )
    assert response.status_code == 200, response.text
    return workflow_id in {w["workflow_id"] for w in response.json()["items"]}


async def test_a_failed_workflow_is_listed_and_a_reset_runs_it_again(temporal_env, http, su, orgs, repairable):
    own, switch = repairable
    a, b = orgs
    operator = a.headers["operator"]
    wid, other = f"repairable-{uuid.uuid4().hex}", f"repairable-{uuid.uuid4().hex}"
    switch.broken |= {wid, other}
    handle = await start(temporal_env.client, own, wid, a.id, retrying=False)
    await start(temporal_env.client, own, other, a.id, retrying=False)
    failed_run = handle.result_run_id

    async def failed() -> bool:  # visibility catches up a moment after the failures
        return await listed(http, operator, wid) and await listed(http, operator, other)

    await poll(failed, bool, 30, "the failed workflows in their organization's list")
    # One at a time, with the page token the previous page gave; a token of anyone else's making is a 422.
    seen, token = [], None
    while True:
        params = {"workflow_type": "RepairableWorkflow", "limit": 1, **({"page_token": token} if token else {})}
        page = (await http.get(f"{V1}/workflows/failed", headers=operator, params=params)).json()
        seen += [w["workflow_id"] for w in page["items"]]
        if not (token := page["next_page_token"]):
            break
    assert {wid, other} <= set(seen) and len(seen) == len(set(seen)) == page["total"]
    forged = {"page_token": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"}
    assert_error(await http.get(f"{V1}/workflows/failed", headers=operator, params=forged), 422, "invalid_page_token")
    assert await listed(http, su, wid)
    assert not await listed(http, b.headers["operator"], wid)  # another organization's
    summary = (await http.get(f"{V1}/workflows/failed/summary", headers=operator)).json()
    assert summary["total"] >= 1 and any(c["workflow_type"] == "other" for c in summary["by_type"])
    assert_error(await http.get(f"{V1}/workflows/failed", headers=a.headers["member"]), 403)

    reset = {"reason": "The dependency is back", "reset_to": "first_workflow_task"}
    url = f"{V1}/workflows/{wid}/reset"
    assert_error(await http.post(url, headers={**b.headers["operator"], "Idempotency-Key": "k"}, json=reset), 404)
    assert_error(await http.post(url, headers={**a.headers["member"], "Idempotency-Key": "k"}, json=reset), 403)
    assert_error(await http.post(url, headers={**operator, "Idempotency-Key": "k"}, json={"reason": ""}), 422)

    switch.broken.discard(wid)
    response = await http.post(url, headers={**operator, "Idempotency-Key": uuid.uuid4().hex}, json=reset)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["previous_run_id"] == failed_run != out["run_id"]
    # The new run runs the workflow from its start again, and the step now succeeds.
    assert await temporal_env.client.get_workflow_handle(wid, run_id=out["run_id"]).result() == "done"

    # Audited: who reset which run, to where, and why.
    audit = (await http.get("/api/v1/audit", headers=su, params={"entity_type": "workflow", "entity_id": wid})).json()
    [row] = audit["items"]
    assert row["action"] == "workflow.reset" and row["actor"] == a.users["operator"]["email"]
    assert row["before"]["run_id"] == failed_run and row["before"]["status"] == "failed"
    assert row["after"]["run_id"] == out["run_id"] and row["after"]["reason"] == "The dependency is back"

    # A completed workflow's outcome stands.
    error = assert_error(
        await http.post(url, headers={**operator, "Idempotency-Key": uuid.uuid4().hex}, json=reset), 409
    )
    assert error["code"] == "workflow_not_resettable"
    assert_error(
        await http.post(
            f"{V1}/workflows/no-such-{uuid.uuid4().hex}/reset", headers={**su, "Idempotency-Key": "k"}, json=reset
        ),
        404,
    )


async def test_an_activity_retrying_is_listed_and_its_stuck_workflow_reset(temporal_env, http, orgs, repairable):
    own, switch = repairable
    a, b = orgs
    wid = f"repairable-{uuid.uuid4().hex}"
    switch.broken.add(wid)
    handle = await start(temporal_env.client, own, wid, a.id, retrying=True)

    async def retrying() -> list:
        response = await http.get(
            f"{V1}/activities/retrying",
            headers=a.headers["operator"],
            params={"min_attempts": own.operations_retry_threshold},
        )
        assert response.status_code == 200, response.text
        return [r for r in response.json()["items"] if r["workflow_id"] == wid]

    [row] = await poll(retrying, bool, 30, "the retrying activity")
    assert row["attempt"] >= own.operations_retry_threshold and row["activity_type"] == "repairable_step"
    assert row["last_failure"] == "the step's dependency is down"
    others = (
        await http.get(f"{V1}/activities/retrying", headers=b.headers["operator"], params={"min_attempts": 2})
    ).json()
    assert wid not in {r["workflow_id"] for r in others["items"]}

    # Stuck (an activity at the threshold): a reset to the last workflow task schedules the step afresh.
    reset = {"reason": "Dependency fixed: retry the step now", "reset_to": "last_workflow_task"}
    response = await http.post(
        f"{V1}/workflows/{wid}/reset",
        headers={**a.headers["operator"], "Idempotency-Key": uuid.uuid4().hex},
        json=reset,
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    assert run_id != handle.first_execution_run_id
    switch.broken.discard(wid)
    new_run = temporal_env.client.get_workflow_handle(wid, run_id=run_id)
    assert await new_run.result() == "done"
    assert (await new_run.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_rejected_email_is_sent_again_once_to_its_fixed_address(http, su, db, orgs, mailbox):
    a, b = orgs
    operator = a.headers["operator"]
    user = a.users["member"]
    email_id = uuid.uuid4()
    bad = f"member-{uuid.uuid4().hex[:8]}@{mailbox.REJECTED_DOMAIN}"
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO email_outbox (id, dedupe_key, to_address, subject, text_body, status, error) "
                "VALUES (:id, :key, :to, 'Your statement is ready', 'Hello', 'rejected', '550 no such mailbox')"
            ),
            {"id": email_id, "key": f"test-notice:{email_id}:{user['id']}", "to": bad},
        )

    async def status() -> str:
        response = await http.get(f"{V1}/emails", headers=operator, params={"limit": 500})
        assert response.status_code == 200, response.text
        return next(e["status"] for e in response.json()["items"] if e["id"] == str(email_id))

    assert await status() == "rejected"
    listed = (
        await http.get(f"{V1}/emails", headers=b.headers["operator"], params={"status": "rejected", "limit": 500})
    ).json()
    assert str(email_id) not in {e["id"] for e in listed["items"]}
    assert_error(await http.get(f"{V1}/emails", headers=a.headers["member"]), 403)
    letters = {d["kind"]: d["count"] for d in (await http.get(f"{V1}/dead-letters", headers=operator)).json()["items"]}
    assert letters["rejected_emails"] >= 1
    assert letters["rejected_ach_files"] == 0  # bank-wide: not one organization's to see

    url = f"{V1}/emails/{email_id}/resend"
    assert_error(await http.post(url, headers=b.headers["operator"], json={}), 404)
    assert_error(await http.post(url, headers=operator, json={"to_address": "not an address"}), 422)

    fixed = f"fixed-{uuid.uuid4().hex[:8]}@tests.example"
    response = await http.post(url, headers=operator, json={"to_address": fixed})
    assert response.status_code == 202, response.text
    assert response.json()["to_address"] == fixed
    await poll(status, lambda s: s == "sent", 30, "the email sent again")
    assert len(mailbox.to(fixed)) == 1

    error = assert_error(await http.post(url, headers=operator, json={"to_address": fixed}), 409)
    assert error["code"] == "already_sent"
    assert len(mailbox.to(fixed)) == 1
    audit = (
        await http.get("/api/v1/audit", headers=su, params={"entity_type": "email", "entity_id": str(email_id)})
    ).json()
    [row] = audit["items"]
    assert row["action"] == "email.resend"
    assert row["before"] == {"status": "rejected", "to_address": bad, "error": "550 no such mailbox"}
    assert row["after"] == {"status": "pending", "to_address": fixed, "error": None}
