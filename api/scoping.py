"""Who sees what: a superuser everything; organization staff their organization; a member what they own."""

import uuid

from sqlalchemy import false

from api.errors import AppError, forbidden
from models.ledger import LedgerAccount
from models.users import Role, User


def is_super(user: User) -> bool:
    return user.role == Role.superuser


def scope_accounts(statement, user: User):
    if is_super(user):
        return statement
    if user.role == Role.member:
        return statement.where(LedgerAccount.owner_id == user.id)
    return statement.where(LedgerAccount.org_id == user.org_id)


def can_see_account(user: User, account: LedgerAccount) -> bool:
    if is_super(user):
        return True
    if user.role == Role.member:
        return account.owner_id == user.id
    return account.org_id is not None and account.org_id == user.org_id


def can_move_money_from(user: User, account: LedgerAccount) -> bool:
    """Members move their own money, org admins their organization's; others only watch."""
    if is_super(user):
        return True
    if user.role == Role.member:
        return account.owner_id == user.id
    return user.role == Role.org_admin and account.org_id == user.org_id


def scope_by_org(statement, user: User, org_column):
    if is_super(user):
        return statement
    return statement.where(org_column == user.org_id) if user.org_id else statement.where(false())


def target_org(user: User, requested: uuid.UUID | None) -> uuid.UUID:
    """The organization a write goes to: a superuser names it, everyone else writes to their own."""
    if is_super(user):
        if requested is None:
            raise AppError(422, "org_required", "a superuser must say which organization (org_id)")
        return requested
    if requested is not None and requested != user.org_id:
        raise forbidden("you can act only within your own organization")
    return user.org_id
