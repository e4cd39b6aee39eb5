"""ACH return reason codes and what the back office does about each (PRODUCT.md §4.3)."""

from enum import StrEnum


class ReturnReaction(StrEnum):
    represent = "represent"  # R01, R09: try again, at most the configured number of times
    disable_account = "disable_account"  # R02, R03, R04: the external account is unusable
    block_debits = "block_debits"  # R05, R07, R10, R29: no more debits until re-authorized
    fail = "fail"  # anything else: the payment fails with the reason


REASONS = {
    "R01": "Insufficient funds",
    "R02": "Account closed",
    "R03": "No account / unable to locate account",
    "R04": "Invalid account number",
    "R05": "Unauthorized debit to consumer account using corporate SEC code",
    "R06": "Returned per ODFI's request",
    "R07": "Authorization revoked by customer",
    "R08": "Payment stopped",
    "R09": "Uncollected funds",
    "R10": "Customer advises originator is not known or not authorized",
    "R11": "Customer advises entry not in accordance with the terms of the authorization",
    "R16": "Account frozen",
    "R20": "Non-transaction account",
    "R29": "Corporate customer advises not authorized",
}

_REACTIONS = {
    "R01": ReturnReaction.represent,
    "R09": ReturnReaction.represent,
    "R02": ReturnReaction.disable_account,
    "R03": ReturnReaction.disable_account,
    "R04": ReturnReaction.disable_account,
    "R05": ReturnReaction.block_debits,
    "R07": ReturnReaction.block_debits,
    "R10": ReturnReaction.block_debits,
    "R29": ReturnReaction.block_debits,
}


def reaction(return_code: str) -> ReturnReaction:
    return _REACTIONS.get(return_code.upper(), ReturnReaction.fail)


def reason(return_code: str) -> str:
    return REASONS.get(return_code.upper(), "Returned")
