"""Masking of account numbers in every response: only the last four digits ever leave the service."""


def last4(account_number: str) -> str:
    return account_number[-4:]


def mask_account_number(account_number: str) -> str:
    """'123456789' -> '*****6789'; numbers of four digits or fewer are masked whole."""
    if len(account_number) <= 4:
        return "*" * len(account_number)
    return "*" * (len(account_number) - 4) + account_number[-4:]


def mask_from_last4(last4_digits: str) -> str:
    """What a response shows when only the last four digits are stored in clear."""
    return "****" + last4_digits
