"""The access policy's rules, without a database: role gates, row checks, and the WHERE clauses of list scoping."""

import logging
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from core import access
from core.access import Action, Entity, Forbidden, NotVisible
from models.ach import Notification
from models.external_accounts import ExternalAccount
from models.ledger import Hold, LedgerAccount
from models.loans import ApprovalRequest
from models.users import Role, User

ORG, OTHER_ORG = uuid.uuid4(), uuid.uuid4()


def user(role: Role, org: uuid.UUID | None = ORG) -> User:
    return User(
        id=uuid.uuid4(),
        email=f"{role}@x.example",
        full_name=role,
        hashed_password="x",
        role=role,
        org_id=None if role in (Role.superuser, Role.bank_operations) else org,
    )


def sql(statement) -> str:
    return str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize(
    "entity, action",
    [(Entity.ach_file, Action.read), (Entity.interest_posting, Action.read), (Entity.statement_run, Action.run)],
)
def test_bank_wide_operations_are_for_the_superuser_and_bank_operations_only(entity, action):
    for role in (Role.superuser, Role.bank_operations):
        access.gate(user(role), entity, action)
    for role in (Role.org_admin, Role.operator, Role.member, Role.loan_officer):
        with pytest.raises(Forbidden):
            access.gate(user(role), entity, action)


def test_bank_operations_sees_bank_wide_rows_and_no_members_data():
    bank = user(Role.bank_operations)
    assert "false" in sql(access.scope(bank, Entity.account, select(LedgerAccount))).lower()
    assert "WHERE" not in sql(access.scope(bank, Entity.ach_file, select(Hold.id)))
    assert access.has_organization(Role.operator) and not access.has_organization(Role.bank_operations)


def test_a_member_reads_only_approvals_they_applied_for_or_submitted():
    member = user(Role.member)
    where = sql(access.scope(member, Entity.approval_request, select(ApprovalRequest)))
    assert f"applicant_id = '{member.id}'" in where and f"submitted_by = '{member.id}'" in where
    assert "org_id" not in where.split("WHERE")[1]
    assert f"org_id = '{ORG}'" in sql(
        access.scope(user(Role.operator), Entity.approval_request, select(ApprovalRequest))
    )


def test_members_see_their_own_external_accounts_staff_their_organizations():
    member = user(Role.member)
    assert f"owner_id = '{member.id}'" in sql(access.scope(member, Entity.external_account, select(ExternalAccount)))
    assert f"org_id = '{ORG}'" in sql(
        access.scope(user(Role.org_admin), Entity.external_account, select(ExternalAccount))
    )
    assert (
        "false" in sql(access.scope(user(Role.loan_officer), Entity.external_account, select(ExternalAccount))).lower()
    )


def external(owner: User | None, org: uuid.UUID = ORG) -> ExternalAccount:
    return ExternalAccount(
        id=uuid.uuid4(),
        org_id=org,
        owner_id=owner.id if owner else None,
        holder_name="h",
        institution_name="b",
        source="linked",
        routing_number="011401533",
        account_number_encrypted="x",
        account_last4="1234",
        fingerprint="f",
        account_type="checking",
        status="verified",
        created_by=uuid.uuid4(),
    )


def test_only_the_applicants_own_bank_account_is_named_for_their_loan():
    alice, bob, officer = user(Role.member), user(Role.member), user(Role.loan_officer)
    access.check_use_external(alice, external(alice), alice.id)
    access.check_use_external(officer, external(alice), alice.id)
    access.check_use_external(user(Role.superuser), external(alice), alice.id)
    for actor, account in (
        (alice, external(bob)),
        (alice, external(None)),
        (officer, external(bob)),
        (officer, external(alice, org=OTHER_ORG)),
    ):
        with pytest.raises(Forbidden):
            access.check_use_external(actor, account, alice.id)


def hold(placed_by: uuid.UUID | None) -> Hold:
    return Hold(
        id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        amount=Decimal("1"),
        reason="r",
        idempotency_key="k",
        placed_by=placed_by,
    )


def test_holds_are_released_by_hand_only_when_placed_by_hand_by_whoever_placed_them():
    operator, colleague, root = user(Role.operator), user(Role.operator), user(Role.superuser)
    access.check_release_hold(operator, hold(operator.id))
    access.check_release_hold(root, hold(operator.id))
    with pytest.raises(Forbidden):
        access.check_release_hold(colleague, hold(operator.id))
    for actor in (operator, root):
        with pytest.raises(Forbidden) as refused:
            access.check_release_hold(actor, hold(None))
        assert refused.value.code == "system_hold"
    with pytest.raises(Forbidden):
        access.check_release_hold(user(Role.member), hold(None))


def test_notifications_are_private_even_from_a_superuser():
    root = user(Role.superuser)
    assert f"user_id = '{root.id}'" in sql(access.scope(root, Entity.notification, select(Notification)))


def test_a_denial_is_a_security_event(caplog):
    member = user(Role.member)
    caplog.set_level(logging.WARNING, logger="security")
    error = access.not_visible(member, Entity.loan, "l-1")
    assert isinstance(error, NotVisible) and error.status == 404 and error.message == "loan l-1 not found"
    [record] = [r for r in caplog.records if r.name == "security"]
    assert record.getMessage() == "access_denied"
    assert (record.user_id, record.role, record.org_id, record.entity, record.entity_id, record.action) == (
        str(member.id),
        "member",
        str(ORG),
        "loan",
        "l-1",
        "read",
    )
    caplog.clear()
    access.not_visible(member, Entity.loan, "l-2", exists=False)  # a true not-found is no denial
    assert not [r for r in caplog.records if r.name == "security"]
