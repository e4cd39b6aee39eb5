"""Notifications of change (NOC, COR entries with a type 98 addenda): what each change code corrects, read from
and written to the 29-character corrected-data field (NACHA Operating Rules, Appendix Five).

Pure code. The codes that correct an external account we debit or credit are C01 (account number), C02 (routing),
C03 (routing and account), C05 (transaction code: the account's type), C06 (account and type), C07 (routing,
account and type); the others (C04 name, C08-C13 identification, format) carry text an operator reads."""

from __future__ import annotations

from dataclasses import dataclass

from finance.aba import is_valid_routing_number
from finance.nacha import NachaError, TransactionCode

CHANGE_REASONS = {
    "C01": "Incorrect DFI account number",
    "C02": "Incorrect routing number",
    "C03": "Incorrect routing number and incorrect DFI account number",
    "C04": "Incorrect individual name / receiving company name",
    "C05": "Incorrect transaction code",
    "C06": "Incorrect DFI account number and incorrect transaction code",
    "C07": "Incorrect routing number, incorrect DFI account number, and incorrect transaction code",
    "C08": "Incorrect receiving DFI identification (IAT only)",
    "C09": "Incorrect individual identification number",
    "C10": "Incorrect company name",
    "C11": "Incorrect company identification",
    "C12": "Incorrect company name and company identification",
    "C13": "Addenda format error",
    "C14": "Incorrect SEC code for outbound international payment",
}
ACCOUNT_CHANGE_CODES = frozenset({"C01", "C02", "C03", "C05", "C06", "C07"})


@dataclass(frozen=True)
class Correction:
    """What a NOC says is right; None where the code does not correct that part."""

    change_code: str
    account_number: str | None = None
    routing_number: str | None = None
    account_type: str | None = None  # checking | savings, from a corrected transaction code
    text: str | None = None  # the codes that correct no account field: their corrected data as sent

    @property
    def corrects_account(self) -> bool:
        return self.change_code in ACCOUNT_CHANGE_CODES


def _account(value: str) -> str:
    account = value.strip()
    if not account or len(account) > 17 or not all("!" <= c <= "~" for c in account):
        raise NachaError(f"corrected account number {value!r} is not 1-17 printable characters")
    return account


def _routing(value: str) -> str:
    if not is_valid_routing_number(value):
        raise NachaError(f"corrected routing number {value!r} is not a valid ABA routing number")
    return value


def _account_type(value: str) -> str:
    try:
        code = TransactionCode(int(value))
    except ValueError:
        raise NachaError(f"corrected transaction code {value!r} is not one we know") from None
    return "checking" if code // 10 == 2 else "savings"


def read_correction(change_code: str, corrected_data: str) -> Correction:
    """The correction a change code's corrected data carries; NachaError when the data does not fit the code."""
    data = corrected_data.ljust(29)
    if change_code not in CHANGE_REASONS:
        raise NachaError(f"unknown change code {change_code!r}")
    if change_code == "C01":
        return Correction(change_code, account_number=_account(data[0:17]))
    if change_code == "C02":
        return Correction(change_code, routing_number=_routing(data[0:9]))
    if change_code == "C03":  # routing, 3 blanks, account
        return Correction(change_code, routing_number=_routing(data[0:9]), account_number=_account(data[12:29]))
    if change_code == "C05":
        return Correction(change_code, account_type=_account_type(data[0:2]))
    if change_code == "C06":  # account, 3 blanks, transaction code
        return Correction(change_code, account_number=_account(data[0:17]), account_type=_account_type(data[20:22]))
    if change_code == "C07":  # routing, account, transaction code
        return Correction(
            change_code,
            routing_number=_routing(data[0:9]),
            account_number=_account(data[9:26]),
            account_type=_account_type(data[26:28]),
        )
    return Correction(change_code, text=corrected_data.strip())


def corrected_data(
    change_code: str,
    *,
    account_number: str = "",
    routing_number: str = "",
    transaction_code: TransactionCode | None = None,
    text: str = "",
) -> str:
    """The corrected-data field a bank writes for a change code (the sandbox's side; the inverse of read_correction)."""
    code = f"{int(transaction_code):02d}" if transaction_code is not None else ""
    layouts = {
        "C01": account_number.ljust(17),
        "C02": routing_number,
        "C03": routing_number.ljust(9) + "   " + account_number.ljust(17),
        "C05": code,
        "C06": account_number.ljust(17) + "   " + code,
        "C07": routing_number.ljust(9) + account_number.ljust(17) + code,
    }
    data = layouts.get(change_code, text).rstrip()
    if len(data) > 29:
        raise NachaError(f"corrected data for {change_code} is longer than 29 characters")
    return data
