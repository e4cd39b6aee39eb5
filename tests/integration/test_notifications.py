"""The notification activities against the real Postgres and a real SMTP server, and the API that reads them."""

import uuid

import pytest
from sqlalchemy import text
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from core.email import EmailSender
from devstack.processes import free_port
from models.notifications import NotifyOrgAdmins, NotifyUsers
from tests.conftest import assert_error, make_org, make_user
from tests.mailbox import recipients


def returned_payment(org_id: str) -> NotifyOrgAdmins:
    payment_id = str(uuid.uuid4())
    return NotifyOrgAdmins(
        org_id=org_id,
        kind="payment_returned",
        template="payment_returned",
        entity_type="payment",
        entity_id=payment_id,
        dedupe_key=f"payment-returned:{payment_id}:R01",
        context=dict(
            payment_id=payment_id,
            kind="debit",
            amount="$125.00",
            return_code="R01",
            return_reason="Insufficient funds",
            account="****1234",
            link=f"/api/v1/payments/{payment_id}",
        ),
    )


async def outbox_statuses(db, dedupe_key: str) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT status FROM email_outbox WHERE dedupe_key LIKE :prefix"), {"prefix": f"{dedupe_key}:%"}
        )
        return sorted(r.status for r in rows)


async def test_org_admins_are_told_once_in_app_and_by_email(http, su, db, settings, mailbox):
    org = await make_org(http, su)
    second_admin, second_admin_headers = await make_user(http, su, "org_admin", org.id)
    admins = {org.users["org_admin"]["email"], second_admin["email"]}
    req = returned_payment(org.id)
    notifications = NotificationActivities(db, EmailSender(settings))

    assert await ActivityEnvironment().run(notifications.notify_org_admins, req) == 2
    for admin in admins:
        message = await mailbox.wait_for(lambda m, admin=admin: admin in recipients(m))
        assert message["Subject"] == "Payment returned: ACH debit of $125.00 (R01 Insufficient funds)"
        assert "****1234" in message.get_body(("plain",)).get_content()
        assert req.entity_id in message.get_body(("html",)).get_content()

    # A retry (or a replayed workflow) writes and sends nothing more: the send is synchronous, so any
    # duplicate would already be in the mailbox when run() returns.
    assert await ActivityEnvironment().run(notifications.notify_org_admins, req) == 2
    assert sorted(len(mailbox.to(admin)) for admin in admins) == [1, 1]
    assert not mailbox.to(org.users["operator"]["email"]) and not mailbox.to(org.users["member"]["email"])
    assert await outbox_statuses(db, req.dedupe_key) == ["sent", "sent"]

    # Each admin sees theirs through the API.
    for headers in (org.headers["org_admin"], second_admin_headers):
        page = (await http.get("/api/v1/notifications", headers=headers)).json()
        assert page["total"] == 1
        mine = page["items"][0]
        assert mine["kind"] == "payment_returned" and mine["entity_id"] == req.entity_id and mine["read_at"] is None
        assert "R01" in mine["title"] and "$125.00" in mine["body"]

    # The second admin marks theirs read, idempotently.
    headers = second_admin_headers
    unread = (await http.get("/api/v1/notifications", headers=headers, params={"unread": True})).json()
    assert [n["id"] for n in unread["items"]] == [mine["id"]]

    first = await http.post(f"/api/v1/notifications/{mine['id']}/read", headers=headers)
    assert first.status_code == 200 and first.json()["read_at"]
    again = await http.post(f"/api/v1/notifications/{mine['id']}/read", headers=headers)
    assert again.status_code == 200 and again.json()["read_at"] == first.json()["read_at"]
    assert (await http.get("/api/v1/notifications", headers=headers, params={"unread": True})).json()["total"] == 0
    assert (await http.get("/api/v1/notifications", headers=headers, params={"unread": False})).json()["total"] == 1

    # Nobody else sees or touches it: not the other admin, not a member, not a superuser.
    for other in (org.headers["org_admin"], org.headers["member"], su):
        assert_error(await http.post(f"/api/v1/notifications/{mine['id']}/read", headers=other), 404, "not_found")
    assert (await http.get("/api/v1/notifications", headers=org.headers["member"])).json()["total"] == 0
    assert_error(await http.post(f"/api/v1/notifications/{uuid.uuid4()}/read", headers=headers), 404)
    assert_error(await http.get("/api/v1/notifications"), 401)


async def test_notifications_are_listed_newest_first_and_paginated(http, su, db, settings):
    org = await make_org(http, su, roles=("member",))
    member = org.users["member"]
    notifications = NotificationActivities(db, EmailSender(settings))
    for n in range(3):
        req = NotifyUsers(
            user_ids=[member["id"]],
            kind="approval_requested",
            template="approval_requested",
            dedupe_key=f"approval:{uuid.uuid4()}",
            entity_type="loan",
            entity_id=f"loan-{n}",
            context=dict(request_title=f"Loan {n}", level=1, role="loan_officer", deadline="tomorrow"),
        )
        assert await ActivityEnvironment().run(notifications.notify_users, req) == 1
    page = (await http.get("/api/v1/notifications", headers=org.headers["member"], params={"limit": 2})).json()
    assert page["total"] == 3 and page["limit"] == 2
    assert [n["entity_id"] for n in page["items"]] == ["loan-2", "loan-1"]
    rest = (
        await http.get("/api/v1/notifications", headers=org.headers["member"], params={"limit": 2, "offset": 2})
    ).json()
    assert [n["entity_id"] for n in rest["items"]] == ["loan-0"]
    assert_error(
        await http.get("/api/v1/notifications", headers=org.headers["member"], params={"unread": "maybe"}),
        422,
        "validation_error",
    )


async def test_an_smtp_outage_leaves_emails_pending_and_the_retry_sends_each_once(http, su, db, settings, mailbox):
    org = await make_org(http, su, roles=("org_admin",))
    admin = org.users["org_admin"]["email"]
    req = returned_payment(org.id)
    nothing_listens = settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout": 2})

    with pytest.raises(OSError):  # aiosmtplib's SMTPConnectError is an OSError: retryable for Temporal
        await ActivityEnvironment().run(NotificationActivities(db, EmailSender(nothing_listens)).notify_org_admins, req)
    assert await outbox_statuses(db, req.dedupe_key) == ["pending"]
    assert (await http.get("/api/v1/notifications", headers=org.headers["org_admin"])).json()["total"] == 1

    assert (
        await ActivityEnvironment().run(NotificationActivities(db, EmailSender(settings)).notify_org_admins, req) == 1
    )
    assert await outbox_statuses(db, req.dedupe_key) == ["sent"]
    assert len(mailbox.to(admin)) == 1
    assert (await http.get("/api/v1/notifications", headers=org.headers["org_admin"])).json()["total"] == 1


async def test_an_unknown_template_or_missing_variable_fails_for_good(http, su, db, settings):
    org = await make_org(http, su, roles=("org_admin",))
    notifications = NotificationActivities(db, EmailSender(settings))
    unknown = returned_payment(org.id).model_copy(update={"template": "no_such_template"})
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(notifications.notify_org_admins, unknown)
    assert failure.value.non_retryable and failure.value.type == "UnknownTemplate"

    incomplete = returned_payment(org.id)
    del incomplete.context["amount"]
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(notifications.notify_org_admins, incomplete)
    assert failure.value.non_retryable and failure.value.type == "TemplateContextError"
    assert (await http.get("/api/v1/notifications", headers=org.headers["org_admin"])).json()["total"] == 0


async def test_a_permanent_refusal_is_recorded_not_retried_and_the_others_are_sent(http, su, db, settings, mailbox):
    org = await make_org(http, su, roles=("org_admin",))
    bounced = f"gone-{uuid.uuid4().hex[:8]}@{mailbox.REJECTED_DOMAIN}"
    response = await http.post(
        "/api/v1/users",
        headers=su,
        json={
            "email": bounced,
            "full_name": "Gone Admin",
            "password": "a-long-test-password",
            "role": "org_admin",
            "org_id": org.id,
        },
    )
    assert response.status_code == 201, response.text
    req = returned_payment(org.id)
    assert (
        await ActivityEnvironment().run(NotificationActivities(db, EmailSender(settings)).notify_org_admins, req) == 2
    )
    assert await outbox_statuses(db, req.dedupe_key) == ["rejected", "sent"]
    assert len(mailbox.to(org.users["org_admin"]["email"])) == 1 and mailbox.to(bounced) == []
    async with db.session() as session:
        error = (
            await session.execute(
                text("SELECT error FROM email_outbox WHERE dedupe_key LIKE :p AND status = 'rejected'"),
                {"p": f"{req.dedupe_key}:%"},
            )
        ).scalar_one()
    assert "550" in error
