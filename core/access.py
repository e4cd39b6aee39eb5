"""The one access policy: who may READ and who may ACT on every kind of entity, by role, organization and
ownership. Every router and every list query asks it; no router decides access by itself.

* **Reading** a row the caller may not see raises `NotVisible` (answered 404 with the very body of a real
  not-found: no hint that the row exists). List queries are narrowed by `scope()`, which adds the WHERE clauses.
* **Acting** on a row the caller can see, or using an operation their role does not have, raises `Forbidden`
  (answered 403). A gate on an operation is checked before any row is read, so it leaks nothing either.
* Every denial is logged as a security event: logger `security`, message `access_denied`, with the user's id,
  role and organization, the entity, its id and the action.

Roles (see README "Access policy"):
  superuser        everything;
  bank_operations  bank-wide operations only: NACHA files, interest posting runs, statement runs, bank events,
                   the list of organizations; no organization of its own (org_id may be null) and no member data;
  org staff        org_admin, operator and the approvers see their own organization's things;
  operations       (the operator API: failed workflows, retrying activities, dead letters, repairs) the bank-wide
                   roles see and repair everything; an org admin or operator only their organization's
                   (workflows by their OrgId search attribute, emails by their recipient); nobody else any;
  member           only what they own (accounts, bank accounts, payments of their accounts, loans and approval
                   requests they applied for or submitted, bills they pay, documents of themselves or their loans,
                   card payments through the gateway they make).
  documents        org staff read their organization's; org admins and operators upload them too (approvers only
                   read); a member uploads to themself or their own loans (never a loan agreement: the loan writes it).
  webhooks         an org admin manages their organization's subscriptions (a superuser any); their delivery log
                   and dead letters are operations: the operator roles see and replay them, org staff their own.
A notification is its user's alone, whatever the role. A money share (of a member's transactions or budgets, read by
`money_rows`) is made, listed and revoked by members only: the shares they gave or were given; only the owner revokes.

An API key (core/api_keys.py) is a principal too: it acts as the user who created it, so every rule here applies to
it as to that user, and on top each request needs one of the key's scopes (`check_key_scope`). A key can never do
more than its scopes AND its creator's current role allow. Only org admins and superusers create keys, with scopes
their role may hold (`SCOPE_ROLES`); an org admin sees and manages the keys of their organization.

No FastAPI here: api/errors.py maps the two exceptions to responses.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, String, Uuid, and_, any_, cast, false, func, literal, or_, true
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import Select
from sqlmodel import col

from models.ach import AchFile, BankEvent, EmailOutbox, Notification
from models.api_keys import ApiKey
from models.audit import AuditLog
from models.bills import Bill
from models.documents import Document, DocumentKind, OwnerType
from models.exports import TransactionExport
from models.external_accounts import ExternalAccount
from models.gateway import GatewayPayment
from models.interest import InterestAccrual, InterestPostingRun, SavingsProduct
from models.ledger import Hold, JournalEntry, LedgerAccount, Posting
from models.loans import ApprovalRequest, ApprovalRule, Loan, LoanProduct
from models.maker_checker import MakerCheckerRequest
from models.money import MoneyShare, ShareAccess, ShareScope, ShareWhat, TransactionImport
from models.payments import Payment
from models.reconciliation import Reconciliation
from models.report_runs import ReportDefinition, ReportRun
from models.rewards import RewardAccount, RewardProgram
from models.standing import StandingInstruction
from models.statements import Statement
from models.users import APPROVER_ROLES, Organization, Role, User
from models.webhooks import WebhookEvent, WebhookSubscription

log = logging.getLogger("security")

S = TypeVar("S", bound=Select)


class Entity(StrEnum):
    account = "account"
    external_account = "external account"
    payment = "payment"
    hold = "hold"
    loan = "loan"
    approval_request = "approval request"
    bill = "bill"
    statement = "statement"
    accrual = "accrual"
    ach_file = "ACH file"
    interest_posting = "interest posting"
    statement_run = "statement run"
    user = "user"
    organization = "organization"
    audit = "audit log"
    bank_event = "bank event"
    notification = "notification"
    loan_product = "loan product"
    savings_product = "savings product"
    approval_rule = "approval rule"
    workflow = "workflow"  # a Temporal workflow execution, seen through the operator API
    email = "email"  # a row of the email outbox
    member = "member"  # a user of role member, as staff manage them (profiles, KYC, invitations, deactivation)
    document = "document"
    api_key = "API key"
    journal_entry = "journal entry"
    standing_instruction = "standing instruction"
    report = "financial report"  # trial balance, balance sheet, income and cash-flow statements
    accounting_period = "accounting period"
    report_run = "report run"  # a report generated in the background, its file
    report_definition = "report definition"  # a scheduled report
    budget = "budget"  # an organization's budget of a report line for a month (the budget variance report)
    webhook_subscription = "webhook subscription"
    webhook_delivery = "webhook delivery"  # an event of the webhook outbox: the delivery log, dead letters
    reconciliation = "reconciliation"  # a bank statement of a ledger account, reconciled to its postings
    gateway_payment = "gateway payment"  # a card payment in through the payment gateway (a loan repayment, a bill)
    transaction_import = "transaction import"  # a member's CSV of their bank's lines, loaded in bulk
    maker_checker_request = "maker-checker request"  # a large transaction, manual entry or close awaiting a checker
    transaction = "transaction"  # a member's transaction: a ledger posting or an imported line (member_transactions)
    category = "category"  # a category of members' transactions: predefined, or a member's own
    category_rule = "category rule"  # a rule categorising transactions: a member's own, or their organization's
    transaction_export = "export"  # a member's transactions or GDPR export made in the background, its file
    reward_program = "reward program"  # an organization's rewards program and its earn rules
    reward_account = "reward account"  # a member's points in a program, and their entries
    money_share = "money share"  # a member's transactions or budgets shared with another member (money_rows)
    member_budget = "member budget"  # a member's spending limit for a category (money_rows over 'budgets')
    alert_subscription = "alert subscription"  # the alerts a member asked for: their own alone
    member_alert = "alert"  # an alert raised for a member: their own alone
    insight = "insight"  # a member's insights and money summary (domain/insights.py), read under money_rows


class Action(StrEnum):
    read = "read"
    create = "create"
    update = "update"
    delete = "delete"
    run = "run"
    deposit = "deposit"
    place_hold = "place_hold"
    release = "release"
    move_money = "move_money"
    use = "use"  # name an external account as the other side of a payment, loan or bill
    create_ach = "create_ach"
    cancel = "cancel"
    apply_for_other = "apply_for_other"
    withdraw = "withdraw"
    repay = "repay"
    write = "write"
    resolve = "resolve"
    grant = "grant"
    repair = "repair"  # reset a workflow, send an email again
    call = "call"  # an API key calling an endpoint (its scopes)
    reverse = "reverse"  # ask for a posted entry's reversal (maker-checker)


class AccessDenied(Exception):
    status = 403

    def __init__(self, entity: Entity | str, entity_id: Any, action: Action, message: str, code: str = "forbidden"):
        super().__init__(message)
        self.entity, self.entity_id, self.action, self.message, self.code = entity, entity_id, action, message, code


class NotVisible(AccessDenied):
    """A read of something the caller may not see (or that does not exist): a 404 like any not-found."""

    status = 404

    def __init__(self, entity: Entity | str, entity_id: Any, action: Action = Action.read):
        super().__init__(entity, entity_id, action, f"{entity} {entity_id} not found", "not_found")


class Forbidden(AccessDenied):
    """An action the caller may not take on something they can see, or an operation of another role: a 403."""


SUPER = frozenset({Role.superuser})
BANK = frozenset({Role.superuser, Role.bank_operations})
ORG_STAFF = frozenset({Role.org_admin, Role.operator}) | APPROVER_ROLES
BANK_WIDE_ROLES = BANK  # the roles without an organization of their own
OPERATORS = BANK | {Role.org_admin, Role.operator}  # the operator API; org staff within their organization
KEY_ADMINS = frozenset({Role.superuser, Role.org_admin})  # who creates and manages API keys (and users)
MONEY_READERS = frozenset({Role.superuser, Role.org_admin, Role.operator, Role.member})  # members' money records
RULE_WRITERS = frozenset({Role.superuser, Role.org_admin, Role.member})  # category rules

# Operations a role has or has not, whatever the row. Anything not listed is open to every signed-in user
# (and then narrowed by the row rules below).
GATES: dict[tuple[Entity, Action], frozenset[Role]] = {
    (Entity.account, Action.create): SUPER,
    (Entity.account, Action.update): SUPER,
    (Entity.account, Action.deposit): frozenset({Role.superuser, Role.operator}),
    (Entity.account, Action.withdraw): frozenset({Role.superuser, Role.operator}),  # cash out at the counter
    (Entity.account, Action.place_hold): frozenset({Role.superuser, Role.operator}),
    (Entity.hold, Action.release): frozenset({Role.superuser, Role.operator}),
    (Entity.external_account, Action.read): frozenset({Role.superuser, Role.org_admin, Role.operator, Role.member}),
    (Entity.external_account, Action.create): frozenset({Role.superuser, Role.org_admin}),
    (Entity.payment, Action.create_ach): frozenset({Role.superuser, Role.org_admin}),
    (Entity.loan, Action.apply_for_other): frozenset({Role.superuser, Role.org_admin, Role.loan_officer}),
    (Entity.ach_file, Action.read): BANK,
    (Entity.interest_posting, Action.read): BANK,
    (Entity.statement_run, Action.run): BANK,
    (Entity.bank_event, Action.read): frozenset({Role.superuser, Role.bank_operations, Role.org_admin, Role.operator}),
    (Entity.bank_event, Action.resolve): frozenset(
        {Role.superuser, Role.bank_operations, Role.org_admin, Role.operator}
    ),
    (Entity.audit, Action.read): SUPER,
    (Entity.workflow, Action.read): OPERATORS,
    (Entity.workflow, Action.repair): OPERATORS,
    (Entity.email, Action.read): OPERATORS,
    (Entity.email, Action.repair): OPERATORS,
    (Entity.organization, Action.create): SUPER,
    (Entity.organization, Action.update): frozenset({Role.superuser, Role.org_admin}),  # its settings
    (Entity.member, Action.read): frozenset({Role.superuser, Role.org_admin, Role.operator}),  # the member list
    (Entity.member, Action.create): frozenset({Role.superuser, Role.org_admin}),  # invitations
    (Entity.member, Action.update): frozenset({Role.superuser, Role.org_admin}),  # deactivation
    (Entity.user, Action.read): frozenset({Role.superuser, Role.org_admin}),
    (Entity.user, Action.create): frozenset({Role.superuser, Role.org_admin}),
    (Entity.user, Action.update): frozenset({Role.superuser, Role.org_admin}),
    (Entity.approval_rule, Action.read): SUPER,
    (Entity.approval_rule, Action.write): SUPER,
    (Entity.loan_product, Action.write): SUPER,
    (Entity.savings_product, Action.write): SUPER,
    (Entity.document, Action.read): frozenset({Role.superuser, Role.member}) | ORG_STAFF,
    (Entity.document, Action.create): frozenset({Role.superuser, Role.org_admin, Role.operator, Role.member}),
    (Entity.api_key, Action.read): KEY_ADMINS,
    (Entity.api_key, Action.create): KEY_ADMINS,
    (Entity.api_key, Action.update): KEY_ADMINS,
    # Staff read the journal entries of their organization's accounts and ask for reversals; a checker decides.
    (Entity.journal_entry, Action.read): OPERATORS,
    (Entity.journal_entry, Action.reverse): OPERATORS,
    # A manual journal entry: written by staff of the organization (or a superuser), posted once a checker approves.
    (Entity.journal_entry, Action.create): frozenset({Role.superuser, Role.org_admin, Role.operator}),
    # An organization's maker-checker threshold is a risk limit of the bank's: only a superuser sets it.
    (Entity.maker_checker_request, Action.write): SUPER,
    # Standing instructions move money: set, paused, resumed and canceled by whoever may move it from the source.
    (Entity.standing_instruction, Action.create): frozenset({Role.superuser, Role.org_admin, Role.member}),
    (Entity.standing_instruction, Action.update): frozenset({Role.superuser, Role.org_admin, Role.member}),
    (Entity.standing_instruction, Action.read): frozenset(
        {Role.superuser, Role.bank_operations, Role.org_admin, Role.operator, Role.member}
    ),
    # Financial reports: an organization's for its admins and operators, any organization's or the bank's for the
    # bank-wide roles (report_org). Closing a period: the bank-wide roles, or an organization's admin for it.
    (Entity.report, Action.read): OPERATORS,
    (Entity.accounting_period, Action.read): OPERATORS,
    (Entity.accounting_period, Action.create): BANK | {Role.org_admin},
    # Report runs and scheduled definitions: whoever reads the reports, for the organizations they may read.
    (Entity.report_run, Action.read): OPERATORS,
    (Entity.report_run, Action.create): OPERATORS,
    (Entity.report_definition, Action.read): OPERATORS,
    (Entity.report_definition, Action.create): OPERATORS,
    (Entity.report_definition, Action.update): OPERATORS,
    # Budgets: read like the reports; set by an organization's admin for it, by the superuser for any organization.
    (Entity.budget, Action.read): OPERATORS,
    (Entity.budget, Action.write): frozenset({Role.superuser, Role.org_admin}),
    (Entity.webhook_subscription, Action.read): KEY_ADMINS,
    (Entity.webhook_subscription, Action.create): KEY_ADMINS,
    (Entity.webhook_subscription, Action.update): KEY_ADMINS,
    (Entity.webhook_subscription, Action.delete): KEY_ADMINS,
    (Entity.webhook_delivery, Action.read): OPERATORS,
    (Entity.webhook_delivery, Action.repair): OPERATORS,  # replay a dead letter
    # Bank reconciliation: the bank-wide roles any account's (GL accounts only theirs); an organization's admins and
    # operators the statements of their organization's accounts (check_reconcile_account). Members never.
    (Entity.reconciliation, Action.read): OPERATORS,
    (Entity.reconciliation, Action.create): OPERATORS,
    (Entity.reconciliation, Action.update): OPERATORS,
    # Card payments through the gateway: a member pays their own loan or bill at the checkout (a superuser too, for
    # them); their organization's staff read them. Member data: not the bank-wide operations role's.
    (Entity.gateway_payment, Action.create): frozenset({Role.superuser, Role.member}),
    (Entity.gateway_payment, Action.read): frozenset({Role.superuser, Role.member}) | ORG_STAFF,
    # Members' money (money_rows narrows the rows): approvers and the bank-wide operations role have none of it. A
    # member changes their own (or what is shared with them to edit), a superuser any; org staff only read.
    (Entity.transaction, Action.read): MONEY_READERS,
    (Entity.transaction, Action.update): frozenset({Role.superuser, Role.member}),
    (Entity.category, Action.read): MONEY_READERS,
    (Entity.category, Action.create): frozenset({Role.member}),  # a member's own category
    # Rules: a member's own, an organization's set by its admin (a superuser any); re-applied by the member (or a
    # superuser for them).
    (Entity.category_rule, Action.read): MONEY_READERS,
    (Entity.category_rule, Action.create): RULE_WRITERS,
    (Entity.category_rule, Action.update): RULE_WRITERS,
    (Entity.category_rule, Action.delete): RULE_WRITERS,
    (Entity.category_rule, Action.run): frozenset({Role.superuser, Role.member}),
    # Exports of members' transactions: whoever reads members' money (money_rows says which rows); an export row and
    # its file are its requester's. A GDPR export: the member or their org admin (domain/exports.request_gdpr).
    (Entity.transaction_export, Action.read): MONEY_READERS,
    (Entity.transaction_export, Action.create): MONEY_READERS,
    # Rewards: an organization's admin sets its programs and rules; its members enroll, earn and redeem; its staff
    # who read members' money read their accounts.
    (Entity.reward_program, Action.create): KEY_ADMINS,
    (Entity.reward_program, Action.update): KEY_ADMINS,
    (Entity.reward_program, Action.read): MONEY_READERS,
    (Entity.reward_account, Action.read): MONEY_READERS,
    (Entity.reward_account, Action.create): frozenset({Role.superuser, Role.member}),  # enroll
    # Sharing one's money records is a member's own business: members share, list and revoke their shares (and see
    # who of their partners is online); staff read the records through money_rows, never the shares.
    (Entity.money_share, Action.create): frozenset({Role.member}),
    (Entity.money_share, Action.read): frozenset({Role.member}),
    (Entity.money_share, Action.delete): frozenset({Role.member}),
    # Transaction imports: a member imports their own bank's lines, an organization's admin for a member of it;
    # the organization's admins and operators follow them (money records: staff read, members' own).
    (Entity.transaction_import, Action.create): frozenset({Role.superuser, Role.org_admin, Role.member}),
    (Entity.transaction_import, Action.read): frozenset({Role.superuser, Role.org_admin, Role.operator, Role.member}),
    # Members' budgets: a member sets their own (a superuser for a member); reading and changing them is the money
    # policy's (money_rows): shares, and org admins and operators read-only.
    (Entity.member_budget, Action.create): frozenset({Role.superuser, Role.member}),
    (Entity.member_budget, Action.read): frozenset({Role.superuser, Role.org_admin, Role.operator, Role.member}),
    # Alerts are a member's own, like their notifications: only members subscribe (evaluated on their money).
    (Entity.alert_subscription, Action.create): frozenset({Role.member}),
    # A member's insights and money summary: whoever money_rows lets read members' transactions (the member, a grantee
    # of theirs, their organization's admins and operators, a superuser); approvers and bank operations never.
    (Entity.insight, Action.read): frozenset({Role.superuser, Role.org_admin, Role.operator, Role.member}),
}

# The scopes of API keys (core/api_keys.py: `<resource>:read` for GET, `<resource>:write` for the other methods) and
# the roles that may hold each: a key gets only scopes its creator's role has, mirroring the GATES above (the policy
# still applies the creator's role to every request a key makes, so this only keeps keys from promising more).
ALL_ROLES = frozenset(Role)
SCOPE_ROLES: dict[str, frozenset[Role]] = {
    "organizations:read": ALL_ROLES,
    "organizations:write": SUPER,
    "users:read": KEY_ADMINS,
    "users:write": KEY_ADMINS,
    "accounts:read": ALL_ROLES,
    "accounts:write": frozenset({Role.superuser, Role.operator}),  # open, close, deposits, holds
    "external_accounts:read": GATES[(Entity.external_account, Action.read)],
    "external_accounts:write": frozenset({Role.superuser, Role.org_admin, Role.member}),
    "payments:read": ALL_ROLES,
    "payments:write": ALL_ROLES,
    "ach_files:read": BANK,
    "bank_events:read": GATES[(Entity.bank_event, Action.read)],
    "bank_events:write": GATES[(Entity.bank_event, Action.resolve)],
    "audit:read": SUPER,
    "notifications:read": ALL_ROLES,
    "notifications:write": ALL_ROLES,
    "loan_products:read": ALL_ROLES,
    "loan_products:write": SUPER,
    "savings_products:read": ALL_ROLES,
    "savings_products:write": SUPER,
    "approval_rules:read": SUPER,
    "approval_rules:write": SUPER,
    "loans:read": ALL_ROLES,
    "loans:write": ALL_ROLES,
    "approvals:read": ALL_ROLES,
    "approvals:write": ALL_ROLES,
    "bills:read": ALL_ROLES,
    "bills:write": ALL_ROLES,
    "interest:read": BANK,
    "statements:write": BANK,
    "operations:read": OPERATORS,
    "operations:write": OPERATORS,
    "members:read": SUPER | ORG_STAFF,
    "members:write": SUPER | ORG_STAFF,
    "documents:read": ALL_ROLES,
    "documents:write": ALL_ROLES,
    "journal_entries:read": OPERATORS,
    "journal_entries:write": OPERATORS,
    "standing_instructions:read": GATES[(Entity.standing_instruction, Action.read)],
    "standing_instructions:write": GATES[(Entity.standing_instruction, Action.create)],
    "transaction_imports:read": GATES[(Entity.transaction_import, Action.read)],
    "transaction_imports:write": GATES[(Entity.transaction_import, Action.create)],
    "reports:read": OPERATORS,
    "reports:write": GATES[(Entity.accounting_period, Action.create)],
    "webhooks:read": OPERATORS,
    "webhooks:write": OPERATORS,
    "reconciliations:read": OPERATORS,
    "reconciliations:write": OPERATORS,
    "gateway_payments:read": GATES[(Entity.gateway_payment, Action.read)],
    "gateway_payments:write": GATES[(Entity.gateway_payment, Action.create)],
    "maker_checker:read": ALL_ROLES,
    "transactions:read": MONEY_READERS,
    "transactions:write": GATES[(Entity.transaction, Action.update)],
    "categories:read": MONEY_READERS,
    "categories:write": SUPER | GATES[(Entity.category, Action.create)],  # a superuser holds every scope
    "category_rules:read": MONEY_READERS,
    "category_rules:write": RULE_WRITERS,
    "exports:read": MONEY_READERS,
    "exports:write": MONEY_READERS,
    "rewards:read": MONEY_READERS,
    "rewards:write": MONEY_READERS,
    # A superuser holds every scope (its keys are then refused by the gate: shares are members' own).
    "money_shares:read": SUPER | GATES[(Entity.money_share, Action.read)],
    "money_shares:write": SUPER | GATES[(Entity.money_share, Action.create)],
    "member_budgets:read": GATES[(Entity.member_budget, Action.read)],
    "member_budgets:write": GATES[(Entity.member_budget, Action.create)],
    "alerts:read": ALL_ROLES,
    "alerts:write": ALL_ROLES,
    "fx:read": ALL_ROLES,  # conversions at the cached exchange rates
    "insights:read": GATES[(Entity.insight, Action.read)],  # insights and the money summary
}

# The roles an org admin may give (staff and members of their own organization, never admins or bank roles).
ORG_ADMIN_GRANTS = frozenset(
    {Role.operator, Role.member, Role.loan_officer, Role.branch_manager, Role.credit_committee}
)


def grantable_scopes(role: str) -> list[str]:
    """The scopes a key made by a user of `role` may hold, in the vocabulary's order."""
    return [scope for scope, roles in SCOPE_ROLES.items() if role in roles]


def check_key_scope(user: User, key_id: Any, scopes: list[str], needed: str | None) -> None:
    """An API key's request: `needed` is the scope the endpoint wants (core/api_keys.scope_for), "" for one any key
    may call, None for one no key may (sign-in, the keys themselves). Forbidden (403, logged) when the key lacks it."""
    if needed == "":
        return
    if needed is None:
        raise forbid(
            user, Entity.api_key, key_id, Action.call, "API keys cannot call this endpoint: it needs a person signed in"
        )
    if needed not in scopes:
        raise forbid(
            user, Entity.api_key, key_id, Action.call, f"this API key lacks the scope {needed}", "insufficient_scope"
        )


def is_super(user: User) -> bool:
    return user.role == Role.superuser


def has_organization(role: str) -> bool:
    """Everyone but the bank-wide roles belongs to exactly one organization."""
    return role not in BANK_WIDE_ROLES


def _denied(user: User, error: AccessDenied) -> AccessDenied:
    log.warning(
        "access_denied",
        extra={
            "security_event": "access_denied",
            "user_id": str(user.id),
            "role": user.role,
            "org_id": str(user.org_id) if user.org_id else None,
            "entity": str(error.entity),
            "entity_id": str(error.entity_id) if error.entity_id is not None else None,
            "action": str(error.action),
            "status": error.status,
        },
    )
    return error


def gate(user: User, entity: Entity, action: Action, message: str | None = None) -> None:
    """The role-level check of an operation (before any row is read): Forbidden when the role lacks it."""
    roles = GATES.get((entity, action))
    if roles is not None and user.role not in roles:
        raise _denied(
            user, Forbidden(entity, None, action, message or f"this needs one of the roles: {', '.join(sorted(roles))}")
        )


def forbid(
    user: User, entity: Entity, entity_id: Any, action: Action, message: str, code: str = "forbidden"
) -> Forbidden:
    """A denied action on a visible row, logged; the caller raises it."""
    error = _denied(user, Forbidden(entity, entity_id, action, message, code))
    assert isinstance(error, Forbidden)
    return error


def not_visible(user: User, entity: Entity | str, entity_id: Any, exists: bool = True) -> NotVisible:
    """A 404 for a row the caller may not see (logged when the row exists) or that does not exist."""
    error = NotVisible(entity, entity_id)
    if exists:
        _denied(user, error)
    return error


# --- list scoping: the WHERE clauses a user's reads get ---------------------------------------------------------


def visible_account_ids(user: User) -> Select:
    return scope(user, Entity.account, sa_select(col(LedgerAccount.id)))


def scope(user: User, entity: Entity, statement: S) -> S:
    """Narrows a select of `entity` rows to what `user` may read."""
    role, org = user.role, user.org_id
    if entity == Entity.notification:  # private to its user, superusers included
        return statement.where(col(Notification.user_id) == user.id)
    if role == Role.superuser:
        return statement.where(col(User.role) == Role.member) if entity == Entity.member else statement
    staff = role in ORG_STAFF and org is not None
    member = role == Role.member
    if entity == Entity.account:
        return statement.where(
            col(LedgerAccount.owner_id) == user.id if member else col(LedgerAccount.org_id) == org if staff else false()
        )
    if entity == Entity.external_account:
        if member:
            return statement.where(col(ExternalAccount.owner_id) == user.id)
        return statement.where(
            col(ExternalAccount.org_id) == org if role in (Role.org_admin, Role.operator) and org else false()
        )
    if entity == Entity.payment:
        if member:
            # Their accounts as one array, computed once: each side is then an index scan. (Two IN (subquery)
            # joined by OR can't become joins: Postgres would test every payment of the bank against them.)
            owned = cast(
                sa_select(func.array_agg(col(LedgerAccount.id)))
                .where(col(LedgerAccount.owner_id) == user.id)
                .scalar_subquery(),
                ARRAY(Uuid),
            )
            return statement.where(
                or_(col(Payment.from_account_id) == any_(owned), col(Payment.to_account_id) == any_(owned))
            )
        return statement.where(col(Payment.org_id) == org if staff else false())
    if entity == Entity.hold:
        return statement.where(col(Hold.account_id).in_(visible_account_ids(user)))
    if entity == Entity.statement:
        return statement.where(col(Statement.account_id).in_(visible_account_ids(user)))
    if entity == Entity.accrual:
        return statement.where(col(InterestAccrual.account_id).in_(visible_account_ids(user)))
    if entity == Entity.loan:
        return statement.where(
            col(Loan.applicant_id) == user.id if member else col(Loan.org_id) == org if staff else false()
        )
    if entity == Entity.approval_request:
        if member:  # their own application, or one they submitted: never another member's (A7)
            return statement.where(
                or_(col(ApprovalRequest.applicant_id) == user.id, col(ApprovalRequest.submitted_by) == user.id)
            )
        return statement.where(col(ApprovalRequest.org_id) == org if staff else false())
    if entity == Entity.bill:
        return statement.where(
            col(Bill.payer_id) == user.id if member else col(Bill.org_id) == org if staff else false()
        )
    if entity == Entity.gateway_payment:
        return statement.where(
            col(GatewayPayment.payer_id) == user.id
            if member
            else col(GatewayPayment.org_id) == org
            if staff
            else false()
        )
    if entity in (Entity.ach_file, Entity.interest_posting, Entity.statement_run):
        return statement if role in BANK else statement.where(false())
    if entity == Entity.bank_event:
        if role == Role.bank_operations:
            return statement
        if role in (Role.org_admin, Role.operator) and org:  # events of their organization's payments
            payments = sa_select(col(Payment.id)).where(col(Payment.org_id) == org)
            return statement.where(col(BankEvent.payment_id).in_(payments))
        return statement.where(false())
    if entity == Entity.email:
        if role == Role.bank_operations:
            return statement
        if role in (Role.org_admin, Role.operator) and org:  # emails to their organization's users
            users = sa_select(cast(col(User.id), String)).where(col(User.org_id) == org)
            return statement.where(recipient_id(col(EmailOutbox.dedupe_key)).in_(users))
        return statement.where(false())
    if entity == Entity.user:
        return statement.where(col(User.org_id) == org if role == Role.org_admin and org else col(User.id) == user.id)
    if entity == Entity.member:  # themself; their organization's members for its admins and operators
        statement = statement.where(col(User.role) == Role.member)
        if member:
            return statement.where(col(User.id) == user.id)
        return statement.where(col(User.org_id) == org if role in (Role.org_admin, Role.operator) and org else false())
    if entity == Entity.document:
        if member:  # of themself, or of a loan they applied for
            own_loans = sa_select(col(Loan.id)).where(col(Loan.applicant_id) == user.id)
            return statement.where(
                or_(
                    (col(Document.entity_type) == OwnerType.user) & (col(Document.entity_id) == user.id),
                    (col(Document.entity_type) == OwnerType.loan) & col(Document.entity_id).in_(own_loans),
                )
            )
        return statement.where(col(Document.org_id) == org if staff else false())
    if entity == Entity.organization:
        if role == Role.bank_operations:
            return statement
        return statement.where(col(Organization.id) == org if org else false())
    if entity == Entity.audit:
        return statement.where(false())
    if entity in (Entity.loan_product, Entity.savings_product):
        active = col(LoanProduct.active) if entity == Entity.loan_product else col(SavingsProduct.active)
        return statement.where(active.is_(True))
    if entity == Entity.approval_rule:
        return statement.where(false())
    if entity == Entity.api_key:
        return statement.where(col(ApiKey.org_id) == org if role == Role.org_admin and org else false())
    if entity == Entity.standing_instruction:  # the member's own; their organization's for its staff
        if role == Role.bank_operations:
            return statement
        if member:
            return statement.where(col(StandingInstruction.created_by) == user.id)
        return statement.where(
            col(StandingInstruction.org_id) == org if role in (Role.org_admin, Role.operator) and org else false()
        )
    if entity == Entity.transaction_import:  # the member's own; their organization's for its admins and operators
        if member:
            return statement.where(col(TransactionImport.user_id) == user.id)
        return statement.where(
            col(TransactionImport.org_id) == org if role in (Role.org_admin, Role.operator) and org else false()
        )
    if entity == Entity.journal_entry:  # bank-wide for the bank's roles; with a posting on their org's accounts
        if role in BANK:
            return statement
        if role in (Role.org_admin, Role.operator) and org:
            touched = (
                sa_select(col(Posting.entry_id))
                .join(LedgerAccount, col(LedgerAccount.id) == col(Posting.account_id))
                .where(col(LedgerAccount.org_id) == org)
            )
            return statement.where(col(JournalEntry.id).in_(touched))
        return statement.where(false())
    if entity in (Entity.report_run, Entity.report_definition):  # an organization's for its staff; all bank-wide
        org_col = col(ReportRun.org_id) if entity == Entity.report_run else col(ReportDefinition.org_id)
        if role in BANK:
            return statement
        return statement.where(org_col == org if role in (Role.org_admin, Role.operator) and org else false())
    if entity == Entity.maker_checker_request:  # the member's own; their organization's for its staff
        if role == Role.bank_operations:
            return statement
        if member:
            return statement.where(col(MakerCheckerRequest.requested_by) == user.id)
        return statement.where(col(MakerCheckerRequest.org_id) == org if staff else false())
    if entity == Entity.webhook_subscription:
        return statement.where(col(WebhookSubscription.org_id) == org if role == Role.org_admin and org else false())
    if entity == Entity.webhook_delivery:
        if role == Role.bank_operations:
            return statement
        if role in (Role.org_admin, Role.operator) and org:
            return statement.where(col(WebhookEvent.org_id) == org)
        return statement.where(false())
    if entity == Entity.reconciliation:  # bank-wide for the bank's roles; their organization's accounts' for its staff
        if role == Role.bank_operations:
            return statement
        if role in (Role.org_admin, Role.operator) and org:
            return statement.where(col(Reconciliation.org_id) == org)
        return statement.where(false())
    if entity == Entity.transaction_export:  # its requester's alone
        return statement.where(col(TransactionExport.requested_by) == user.id)
    if entity == Entity.reward_program:  # their organization's
        return statement.where(col(RewardProgram.org_id) == org if org and role in MONEY_READERS else false())
    if entity == Entity.reward_account:  # the member's own; their organization's for its admins and operators
        if member:
            return statement.where(col(RewardAccount.user_id) == user.id)
        return statement.where(
            col(RewardAccount.org_id) == org if role in (Role.org_admin, Role.operator) and org else false()
        )
    if entity == Entity.money_share:  # the shares a member gave or was given
        if member:
            return statement.where(or_(col(MoneyShare.owner_id) == user.id, col(MoneyShare.grantee_id) == user.id))
        return statement.where(false())
    raise ValueError(f"no scope rule for {entity}")


# --- members' money management: transactions and budgets, with sharing ----------------------------------------


def money_rows(
    user: User,
    what: ShareWhat,
    owner_col: Any,
    org_col: Any,
    amount_col: Any = None,
    category_col: Any = None,
    edit: bool = False,
) -> ColumnElement[bool]:
    """The WHERE clause over a member's money records (`what`: transactions, or budgets) that `user` may read, or with
    `edit` change. A member: their own, and another member's through a live share of theirs (`money_shares`): edit
    needs an 'edit' share; the share's scope keeps expenses only (amount < 0), income only (amount > 0), or the
    listed categories (records without an amount, budgets, pass only by 'all' or their category). An org admin or
    operator reads their organization's members' records (support) and changes none; a superuser reads and changes
    any; nobody else any (approvers and the bank-wide operations role see no member's money)."""
    if user.role == Role.superuser:
        return true()
    if user.role in (Role.org_admin, Role.operator) and user.org_id is not None:
        return false() if edit else org_col == user.org_id
    if user.role != Role.member:
        return false()
    scope_ok: list[ColumnElement[bool]] = [col(MoneyShare.scope) == ShareScope.all]
    if amount_col is not None:
        scope_ok += [
            and_(col(MoneyShare.scope) == ShareScope.expenses, amount_col < 0),
            and_(col(MoneyShare.scope) == ShareScope.income, amount_col > 0),
        ]
    if category_col is not None:
        scope_ok.append(
            and_(col(MoneyShare.scope) == ShareScope.categories, category_col == any_(col(MoneyShare.category_keys)))
        )
    shared = (
        sa_select(literal(1))
        .where(
            col(MoneyShare.grantee_id) == user.id,
            col(MoneyShare.owner_id) == owner_col,
            col(MoneyShare.what) == what,
            col(MoneyShare.revoked_at).is_(None),
            or_(*scope_ok),
            *([col(MoneyShare.access) == ShareAccess.edit] if edit else []),
        )
        .exists()
    )
    return or_(owner_col == user.id, shared)


def check_reconcile_account(user: User, account: LedgerAccount) -> None:
    """The account a bank statement is reconciled against: any for the bank-wide roles (the GL cash-at-bank account
    above all); one of their own organization's accounts for its admins and operators. Any other (a GL account,
    another organization's) is a 404 to them, as an account they cannot see. Gate first."""
    if user.role in BANK:
        return
    if account.kind == "internal" and account.org_id is not None and account.org_id == user.org_id:
        return
    raise not_visible(user, Entity.account, account.id)


def report_org(user: User, requested: uuid.UUID | None) -> uuid.UUID | None:
    """The organization whose figures (or closed periods) `user` asks for: the bank-wide roles name any, or none for
    the whole bank; org staff get their own, and naming another is a 404 (they cannot see it). Gate first."""
    if user.role in BANK:
        return requested
    if user.org_id is None or (requested is not None and requested != user.org_id):
        raise not_visible(user, Entity.organization, requested)
    return user.org_id


def recipient_id(dedupe_key: Any) -> Any:
    """The recipient's user id in an email outbox row: its dedupe key ends with it (activities/notifications.py
    email_key), 36 characters."""
    return func.right(dedupe_key, 36)


def workflow_filter(user: User) -> str:
    """The visibility-query clause narrowing the operator API's workflows to what `user` may see: none for the
    bank-wide roles, the organization's OrgId search attribute for its admin or operator (workflows without OrgId,
    such as ACH batches or interest runs, are bank-wide). Gate first: other roles never get here."""
    if user.role in BANK:
        return ""
    if user.role in OPERATORS and user.org_id is not None:
        return f"OrgId = '{uuid.UUID(str(user.org_id))}'"  # a UUID, so nothing else enters the query
    raise _denied(user, NotVisible(Entity.workflow, None))


def check_workflow_visible(user: User, workflow_id: str, org_id: str | None) -> None:
    """A workflow the operator API shows `user`: any for the bank-wide roles, their organization's (by its OrgId
    search attribute) for org staff; NotVisible (a 404, as for a workflow that does not exist) otherwise."""
    if user.role in BANK:
        return
    if user.role in OPERATORS and user.org_id is not None and org_id == str(user.org_id):
        return
    raise not_visible(user, Entity.workflow, workflow_id)


MODELS: dict[Entity, Any] = {
    Entity.account: LedgerAccount,
    Entity.external_account: ExternalAccount,
    Entity.payment: Payment,
    Entity.hold: Hold,
    Entity.loan: Loan,
    Entity.approval_request: ApprovalRequest,
    Entity.bill: Bill,
    Entity.statement: Statement,
    Entity.ach_file: AchFile,
    Entity.interest_posting: InterestPostingRun,
    Entity.user: User,
    Entity.organization: Organization,
    Entity.audit: AuditLog,
    Entity.bank_event: BankEvent,
    Entity.notification: Notification,
    Entity.loan_product: LoanProduct,
    Entity.savings_product: SavingsProduct,
    Entity.approval_rule: ApprovalRule,
    Entity.email: EmailOutbox,
    Entity.member: User,
    Entity.document: Document,
    Entity.api_key: ApiKey,
    Entity.journal_entry: JournalEntry,
    Entity.standing_instruction: StandingInstruction,
    Entity.report_run: ReportRun,
    Entity.report_definition: ReportDefinition,
    Entity.webhook_subscription: WebhookSubscription,
    Entity.webhook_delivery: WebhookEvent,
    Entity.reconciliation: Reconciliation,
    Entity.gateway_payment: GatewayPayment,
    Entity.maker_checker_request: MakerCheckerRequest,
    Entity.transaction_export: TransactionExport,
    Entity.reward_program: RewardProgram,
    Entity.reward_account: RewardAccount,
    Entity.money_share: MoneyShare,
    Entity.transaction_import: TransactionImport,
}


async def visible(
    session: Any, user: User, entity: Entity, row_id: Any, *, for_update: bool = False, called: str | None = None
) -> Any:
    """The row `row_id` of `entity` if `user` may read it; NotVisible (a 404 naming it `called`, by default the
    entity) otherwise, logged when it exists."""
    model = MODELS[entity]
    if is_super(user) and entity not in (Entity.notification, Entity.member):
        row = await session.get(model, row_id, with_for_update=for_update or None)
        if row is None:
            raise not_visible(user, called or entity, row_id, exists=False)
        return row
    # The row and its scope in one statement; whether a row out of sight exists is asked only to log it.
    pk = model.__table__.primary_key.columns.values()[0]
    statement = scope(user, entity, sa_select(model).where(pk == row_id))
    row = (await session.execute(statement.with_for_update() if for_update else statement)).scalars().first()
    if row is None:
        raise not_visible(user, called or entity, row_id, exists=await session.get(model, row_id) is not None)
    return row


# --- actions on rows the caller can see -------------------------------------------------------------------------


def can_move_money_from(user: User, account: LedgerAccount) -> bool:
    """Members move their own money, org admins their organization's; others only watch."""
    if is_super(user):
        return True
    if user.role == Role.member:
        return account.owner_id == user.id
    return user.role == Role.org_admin and account.org_id == user.org_id


def check_move_money(user: User, account: LedgerAccount) -> None:
    if not can_move_money_from(user, account):
        raise forbid(user, Entity.account, account.id, Action.move_money, "you cannot move money out of this account")


def can_pay_into(user: User, account: LedgerAccount) -> bool:
    """Money may go to any internal account of the caller's organization, not only to what the caller owns."""
    return is_super(user) or (account.org_id is not None and account.org_id == user.org_id)


def check_release_hold(user: User, hold: Hold) -> None:
    """Only a hold placed by hand is released by hand: by its operator, or a superuser. A hold a payment or an
    availability rule placed is its workflow's to release or capture (A4)."""
    gate(user, Entity.hold, Action.release)
    if hold.placed_by is None:
        raise forbid(
            user,
            Entity.hold,
            hold.id,
            Action.release,
            "this hold belongs to a payment's workflow, which releases or captures it: it cannot be released by hand",
            code="system_hold",
        )
    if not is_super(user) and hold.placed_by != user.id:
        raise forbid(user, Entity.hold, hold.id, Action.release, "operators release only the holds they placed")


def check_use_external(user: User, external: ExternalAccount, owner_id: uuid.UUID | None) -> None:
    """Naming an external bank account for money belonging to `owner_id` (a loan's applicant, a bill's payer).
    A member uses only their own bank accounts; staff acting for a member only that member's (A1). With no owner
    (the organization's own money) only an org admin or a superuser names the organization's bank accounts."""
    if owner_id is None:
        if is_super(user) or (user.role == Role.org_admin and external.org_id == user.org_id):
            return
    elif external.owner_id == owner_id and (user.id == owner_id or is_super(user) or user.org_id == external.org_id):
        return
    raise forbid(
        user,
        Entity.external_account,
        external.id,
        Action.use,
        "this bank account does not belong to the account holder: only their own can be named",
    )


def check_autopay_source(user: User, external: ExternalAccount) -> None:
    """A member sets up (or changes) a bill's auto-pay only from their own bank account; the organization's bank
    accounts are the org admin's to name."""
    if user.role == Role.member and external.owner_id != user.id:
        raise forbid(
            user,
            Entity.external_account,
            external.id,
            Action.use,
            "auto-pay from the organization's bank account is set up by an org admin",
        )


def check_acts_for(user: User, person: User | None, person_id: Any) -> User:
    """The person (a loan's applicant, a bill's payer) someone applies or pays for: themself, anyone of their own
    organization (the action's own rules then say whether they may), or anyone for a superuser; a 404 otherwise.
    A member sees no other user, so another member is a 404 for them too, like an unknown id (no existence leak)."""
    visible = person is not None and (is_super(user) or (person.org_id is not None and person.org_id == user.org_id))
    if person is None or not visible or (user.role == Role.member and person.id != user.id):
        raise not_visible(user, Entity.user, person_id, exists=person is not None)
    return person


def check_cancel_payment(user: User, payment: Payment) -> None:
    if user.role not in (Role.superuser, Role.org_admin) and payment.created_by != user.id:
        raise forbid(
            user, Entity.payment, payment.id, Action.cancel, "only its creator or an org admin can cancel a payment"
        )


def check_apply_for(user: User, applicant_id: uuid.UUID) -> None:
    if applicant_id != user.id:
        gate(user, Entity.loan, Action.apply_for_other, "only loan officers and admins apply on someone else's behalf")


def check_withdraw_loan(user: User, loan: Loan) -> None:
    if user.id not in (loan.applicant_id, loan.created_by) and user.role not in (Role.org_admin, Role.superuser):
        raise forbid(
            user, Entity.loan, loan.id, Action.withdraw, "only the applicant, the submitter or an admin can withdraw"
        )


def check_repay_loan(user: User, loan: Loan) -> None:
    if user.id != loan.applicant_id and user.role not in (Role.org_admin, Role.superuser, Role.operator):
        raise forbid(user, Entity.loan, loan.id, Action.repay, "only the borrower or staff can repay a loan")


def check_write_bill(user: User, bill_id: Any, payer_id: uuid.UUID | None, org_id: uuid.UUID | None) -> None:
    if is_super(user) or (user.role == Role.org_admin and user.org_id == org_id) or user.id == payer_id:
        return
    raise forbid(
        user,
        Entity.bill,
        bill_id,
        Action.write,
        "bills are written by their payer, an org admin of the organization or a superuser",
    )


def check_remind_bill(user: User, bill: Bill) -> None:
    """A reminder emails the payer: the payer themself, or staff who work bills (org admin, operator); approvers only
    read bills."""
    if (
        is_super(user)
        or user.id == bill.payer_id
        or (user.role in (Role.org_admin, Role.operator) and user.org_id == bill.org_id)
    ):
        return
    raise forbid(
        user,
        Entity.bill,
        bill.id,
        Action.write,
        "reminders are sent by the payer, an org admin or an operator of the organization, or a superuser",
    )


def check_upload_document(user: User, document_id: Any, org_id: uuid.UUID | None, kind: str) -> None:
    """An upload (a new document, or a version) to an owner `user` can see: staff who upload (gate) within their
    organization; a member to what they own, never a loan agreement (the loan's workflow writes it)."""
    gate(user, Entity.document, Action.create)
    if is_super(user):
        return
    if user.role == Role.member:
        if kind == DocumentKind.loan_agreement:
            raise forbid(user, Entity.document, document_id, Action.create, "a loan's agreement is written by the loan")
        return
    if org_id is None or org_id != user.org_id:
        raise forbid(user, Entity.document, document_id, Action.create, "you can act only within your own organization")


def check_grant(user: User, role: str) -> None:
    if not is_super(user) and role not in ORG_ADMIN_GRANTS:
        raise forbid(user, Entity.user, None, Action.grant, f"an org admin cannot grant the role {role}")


def check_update_user(user: User, target: User) -> None:
    if not is_super(user) and target.role not in ORG_ADMIN_GRANTS:
        raise forbid(user, Entity.user, target.id, Action.update, "an org admin cannot change an admin or a superuser")


def target_org(user: User, requested: uuid.UUID | None) -> uuid.UUID | None:
    """The organization a write goes to: a superuser names it (None when not named: the caller refuses), everyone
    else writes to their own."""
    if is_super(user):
        return requested
    if requested is not None and requested != user.org_id:
        raise forbid(
            user, Entity.organization, requested, Action.write, "you can act only within your own organization"
        )
    return user.org_id


def check_submit_kyc(user: User, member: User) -> None:
    """A KYC submission is the member's own, or made for them by an org admin or operator of their organization
    (who then may not review it: maker-checker), or by a superuser. Approvers only review."""
    if user.id == member.id or is_super(user):
        return
    if user.role in (Role.org_admin, Role.operator) and user.org_id == member.org_id:
        return
    raise forbid(user, Entity.member, member.id, Action.write, "only the member or their organization's staff submit")


def check_kyc_grant(user: User, kyc_status: str | None) -> None:
    """A user created as KYC-verified, without a review: a superuser's alone (members migrated from before KYC)."""
    if kyc_status == "verified" and not is_super(user):
        raise forbid(
            user, Entity.member, None, Action.grant, "only a superuser creates a member as KYC-verified", "kyc_grant"
        )


def see_deactivated(user: User, entity: Entity) -> None:
    """Deactivated catalogue rows (loan and savings products) are listed for a superuser only."""
    if not is_super(user):
        raise forbid(user, entity, None, Action.read, f"only a superuser sees deactivated {entity}s")
