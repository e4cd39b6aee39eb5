"""Internal accounts as the endpoints of several routers see them (accounts, statements, interest, savings
products, payments)."""

import uuid

from core import access
from core.access import Entity
from models.ledger import LedgerAccount
from models.users import User


async def visible_account(session, user: User, account_id: uuid.UUID) -> LedgerAccount:
    """The account if the access policy lets `user` read it; a 404 (not a 403: no hint that it exists) otherwise."""
    account: LedgerAccount = await access.visible(session, user, Entity.account, account_id)
    return account
