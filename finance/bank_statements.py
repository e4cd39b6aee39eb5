"""Bank statements as the bank sends them, parsed into one shape for reconciliation (PRODUCT.md §4.8). Pure: no I/O.

Formats:

* **CSV**: a header row naming the columns `date` (YYYY-MM-DD), `amount` (signed: positive money in, negative money
  out, at most 2 decimals), and optionally `description`, `reference` (the ACH trace number or the bank's reference)
  and `counterparty`, in any order, case-insensitive. The statement's identity is a hash of its content (line
  endings and a byte-order mark aside), so the same file imported twice is the same statement.
* **ISO 20022 camt.053** (any version 001.02 to 001.13): exactly one `Stmt`, whose `Id` is the statement's identity.
  Each booked `Ntry` (status BOOK) is one line: its amount signed by `CdtDbtInd` (CRDT in, DBIT out), its value date
  (else its booking date), the reference of its first `TxDtls` (`ClrSysRef`, `TxId`, `EndToEndId`, else the entry's
  `AcctSvcrRef`), the counterparty (the debtor of a credit, the creditor of a debit) and the remittance text. Pending
  and information-only entries are not booked and are skipped.
  Bank XML is hostile input: it is parsed by defusedxml, which refuses DTDs, entity expansion and external
  references (the billion-laughs and XXE attacks) before a single element is built.
* **BAI2** (version 2), read by the `bai2` package with its integrity checks (record counts, control totals): one
  account in one group. The identity is the sender, the file's creation date and its file id (a file id is unique
  per sender and day). Each transaction detail (16) is a line: its amount in cents signed by its type code's
  credit/debit, its value date (value-dated funds) else the group's as-of date, the customer reference else the
  bank reference, and its text. The account's 010 and 015 summaries are the opening and closing ledger balances.

Every refusal is a StatementError with a code the API answers as a 422, and a line number where there is one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from bai2 import bai2 as bai2_parser
from bai2.constants import FundsType, TypeCodeTransaction
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from pydantic import BaseModel

MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2199, 12, 31)
MAX_INTEGER_DIGITS = 13  # NUMERIC(15, 2)
DESCRIPTION_MAX, REFERENCE_MAX, COUNTERPARTY_MAX, STATEMENT_ID_MAX = 500, 140, 200, 140
CAMT053 = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(0[2-9]|1[0-3])$")
CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]+")
AMOUNT = re.compile(r"^[+-]?[0-9]{1,13}(\.[0-9]{1,2})?$", re.ASCII)
NOT_PROVIDED = "NOTPROVIDED"  # ISO 20022's placeholder for a reference the payer did not give


class StatementFormat(StrEnum):
    csv = "csv"
    camt053 = "camt053"
    bai2 = "bai2"


class StatementError(ValueError):
    """The file is not a statement we can reconcile; nothing is written."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


class StatementLine(BaseModel):
    line_no: int  # 1-based, in the statement's order
    value_date: date
    amount: Decimal  # signed as the bank sees the account: positive money in, negative money out
    description: str = ""
    reference: str = ""
    counterparty: str = ""


class ParsedStatement(BaseModel):
    statement_id: str  # the statement's own identity: camt.053 Stmt/Id, or a hash of a CSV's content
    format: StatementFormat
    currency: str | None = None  # camt.053 says it; a CSV does not
    account_identifier: str | None = None  # the bank's account id (IBAN or other), when the file says it
    opening_balance: Decimal | None = None
    closing_balance: Decimal | None = None
    period_start: date | None = None
    period_end: date | None = None
    lines: list[StatementLine]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))


def parse(content: str, fmt: StatementFormat, max_lines: int) -> ParsedStatement:
    """The statement in `content`, or a StatementError saying why not."""
    parsed = PARSERS[fmt](content)
    if not parsed.lines:
        raise StatementError("statement_empty", "the statement has no booked lines")
    if len(parsed.lines) > max_lines:
        raise StatementError(
            "too_many_lines",
            f"the statement has {len(parsed.lines)} lines; at most {max_lines} are reconciled at once",
            {"lines": len(parsed.lines), "max_lines": max_lines},
        )
    if parsed.opening_balance is not None and parsed.closing_balance is not None:
        expected = parsed.opening_balance + parsed.total
        if expected != parsed.closing_balance:
            raise StatementError(
                "balances_do_not_add_up",
                "the opening balance plus the booked lines is not the closing balance: the file is incomplete",
                {
                    "opening": str(parsed.opening_balance),
                    "lines_total": str(parsed.total),
                    "closing": str(parsed.closing_balance),
                },
            )
    return parsed


def clean(text: str | None, limit: int) -> str:
    """One line of at most `limit` characters, without control characters (Postgres stores no NUL)."""
    return " ".join(CONTROL.sub(" ", text or "").split())[:limit]


def decimal(text: str | None, where: dict, signed: bool = True) -> Decimal:
    raw = (text or "").strip()
    if not AMOUNT.fullmatch(raw) or (not signed and raw[:1] in "+-"):
        raise StatementError("invalid_amount", f"not an amount with at most 2 decimals: {raw[:40]!r}", where)
    return Decimal(raw)  # the pattern admits only plain decimals


def money(text: str | None, where: dict, signed: bool = True) -> Decimal:
    value = decimal(text, where, signed)
    if value == 0:
        raise StatementError("invalid_amount", "a line of zero moves no money", where)
    return value


def business_date(text: str | None, where: dict) -> date:
    """A YYYY-MM-DD date, or the date of an ISO date-time (camt.053 DtTm), in the business range."""
    raw = (text or "").strip()
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw[:10], re.ASCII):
            raise ValueError(raw)
        value = date.fromisoformat(raw[:10])
        if len(raw) > 10:
            datetime.fromisoformat(raw)
    except ValueError:
        raise StatementError("invalid_date", f"not a date (YYYY-MM-DD): {raw[:40]!r}", where) from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise StatementError("invalid_date", f"a date out of range ({MIN_DATE} to {MAX_DATE}): {value}", where)
    return value


# --- CSV --------------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("date", "amount", "description", "reference", "counterparty")
CSV_REQUIRED = ("date", "amount")


def csv_identity(content: str) -> str:
    normalized = content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").strip()
    return "csv-" + hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def parse_csv(content: str) -> ParsedStatement:
    text = content.lstrip("\ufeff")
    if "\x00" in text:
        raise StatementError("invalid_csv", "the file holds NUL bytes: not a text CSV")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise StatementError("invalid_csv", f"not a CSV file: {exc}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise StatementError("statement_empty", "the file is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [name for name in CSV_REQUIRED if name not in header]
    if missing:
        raise StatementError(
            "missing_columns",
            f"the header row must name the columns {', '.join(missing)}",
            {"missing": missing, "columns": list(CSV_COLUMNS)},
        )
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown or len(set(header)) != len(header):
        raise StatementError(
            "unknown_columns",
            "the header row names unknown or repeated columns",
            {"unknown": [u[:40] for u in unknown[:10]], "columns": list(CSV_COLUMNS)},
        )
    position = {name: header.index(name) for name in header}
    lines = []
    for number, row in enumerate(rows[1:], start=1):
        where = {"line": number}
        if len(row) != len(header):
            raise StatementError("invalid_csv", f"line {number} has {len(row)} fields, the header {len(header)}", where)

        def cell(name: str, row: list[str] = row) -> str:
            return row[position[name]] if name in position else ""

        lines.append(
            StatementLine(
                line_no=number,
                value_date=business_date(cell("date"), where),
                amount=money(cell("amount"), where),
                description=clean(cell("description"), DESCRIPTION_MAX),
                reference=clean(cell("reference"), REFERENCE_MAX),
                counterparty=clean(cell("counterparty"), COUNTERPARTY_MAX),
            )
        )
    dates = [line.value_date for line in lines]
    return ParsedStatement(
        statement_id=csv_identity(content),
        format=StatementFormat.csv,
        period_start=min(dates, default=None),
        period_end=max(dates, default=None),
        lines=lines,
    )


# --- camt.053 ---------------------------------------------------------------------------------------------------


class _Camt:
    """Namespace-qualified lookups in one camt.053 document."""

    def __init__(self, namespace: str):
        self.ns = namespace

    def path(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{step}" for step in path.split("/"))

    def find(self, node: ET.Element | None, path: str) -> ET.Element | None:
        return None if node is None else node.find(self.path(path))

    def text(self, node: ET.Element | None, *paths: str) -> str:
        """The text of the first of `paths` present under `node`, stripped ("" if none)."""
        for path in paths:
            found = self.find(node, path)
            if found is not None and (found.text or "").strip():
                return (found.text or "").strip()
        return ""

    def all(self, node: ET.Element | None, path: str) -> list[ET.Element]:
        return [] if node is None else node.findall(self.path(path))


def parse_camt053(content: str) -> ParsedStatement:
    try:
        root = safe_fromstring(content.encode("utf-8", "surrogatepass"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise StatementError(
            "unsafe_xml", f"the XML uses a DTD or entities, which are refused: {type(exc).__name__}"
        ) from None
    except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: an encoding Python does not know
        raise StatementError("invalid_xml", f"not well-formed XML: {exc}"[:300]) from None
    namespace, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local != "Document" or not CAMT053.fullmatch(namespace):
        raise StatementError(
            "not_camt053",
            "not an ISO 20022 camt.053 (BankToCustomerStatement) document",
            {"root": root.tag[:200]},
        )
    camt = _Camt(namespace)
    statements = camt.all(camt.find(root, "BkToCstmrStmt"), "Stmt")
    if len(statements) != 1:
        raise StatementError(
            "one_statement_per_file",
            f"the document holds {len(statements)} statements: import exactly one (one account, one period)",
            {"statements": len(statements)},
        )
    stmt = statements[0]
    statement_id = clean(camt.text(stmt, "Id"), STATEMENT_ID_MAX)
    if not statement_id:
        raise StatementError("missing_statement_id", "the statement has no Id")
    currency = camt.text(stmt, "Acct/Ccy") or None
    lines: list[StatementLine] = []
    for index, entry in enumerate(camt.all(stmt, "Ntry"), start=1):
        status = camt.text(entry, "Sts/Cd", "Sts")
        if status and status != "BOOK":
            continue  # pending or information only: not booked, nothing to reconcile yet
        where = {"entry": index}
        amount_node = camt.find(entry, "Amt")
        amount = money(amount_node.text if amount_node is not None else "", where, signed=False)
        entry_currency = amount_node.get("Ccy") if amount_node is not None else None
        if currency is None:
            currency = entry_currency
        elif entry_currency and entry_currency != currency:
            raise StatementError(
                "mixed_currencies", f"entry {index} is in {entry_currency[:3]!r}, the statement in {currency}", where
            )
        sign = camt.text(entry, "CdtDbtInd")
        if sign not in ("CRDT", "DBIT"):
            raise StatementError("invalid_entry", f"entry {index} is neither CRDT nor DBIT", where)
        details = camt.find(entry, "NtryDtls/TxDtls")
        reference = camt.text(details, "Refs/ClrSysRef", "Refs/TxId", "Refs/EndToEndId")
        if reference == NOT_PROVIDED:
            reference = ""
        party = "Dbtr" if sign == "CRDT" else "Cdtr"
        counterparty = camt.text(details, f"RltdPties/{party}/Nm", f"RltdPties/{party}/Pty/Nm")
        remittance = " ".join((node.text or "").strip() for node in camt.all(details, "RmtInf/Ustrd"))
        description = remittance or camt.text(details, "AddtlTxInf") or camt.text(entry, "AddtlNtryInf")
        lines.append(
            StatementLine(
                line_no=len(lines) + 1,
                value_date=business_date(
                    camt.text(entry, "ValDt/Dt", "ValDt/DtTm", "BookgDt/Dt", "BookgDt/DtTm"), where
                ),
                amount=amount if sign == "CRDT" else -amount,
                description=clean(description, DESCRIPTION_MAX),
                reference=clean(reference or camt.text(entry, "AcctSvcrRef"), REFERENCE_MAX),
                counterparty=clean(counterparty, COUNTERPARTY_MAX),
            )
        )
    opening, closing = _balance(camt, stmt, ("OPBD", "PRCD")), _balance(camt, stmt, ("CLBD",))
    period = camt.find(stmt, "FrToDt")
    return ParsedStatement(
        statement_id=statement_id,
        format=StatementFormat.camt053,
        currency=(currency or "")[:3] or None,
        account_identifier=clean(camt.text(stmt, "Acct/Id/IBAN", "Acct/Id/Othr/Id"), 70) or None,
        opening_balance=opening,
        closing_balance=closing,
        period_start=business_date(camt.text(period, "FrDtTm"), {"field": "FrDtTm"}) if period is not None else None,
        period_end=business_date(camt.text(period, "ToDtTm"), {"field": "ToDtTm"}) if period is not None else None,
        lines=lines,
    )


def _balance(camt: _Camt, stmt: ET.Element, codes: tuple[str, ...]) -> Decimal | None:
    """The statement's balance of the first of `codes` it has (OPBD opening booked, CLBD closing booked)."""
    for code in codes:
        for balance in camt.all(stmt, "Bal"):
            if camt.text(balance, "Tp/CdOrPrtry/Cd") == code:
                value = decimal(camt.text(balance, "Amt"), {"balance": code}, signed=False)
                return -value if camt.text(balance, "CdtDbtInd") == "DBIT" else value
    return None


WORKFLOW_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def workflow_key(statement_id: str) -> str:
    """The statement's identity as a piece of a workflow id: kept as it is when it is plain and short, otherwise a
    readable prefix and a hash of the whole (so two identities that differ only in what was replaced stay apart)."""
    plain = WORKFLOW_SAFE.sub("_", statement_id)
    if plain == statement_id and len(plain) <= 100:
        return plain
    return f"{plain[:60]}-{hashlib.sha256(statement_id.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


# --- BAI2 -------------------------------------------------------------------------------------------------------

MAX_CENTS = 10**15  # NUMERIC(15, 2) in cents


def parse_bai2(content: str) -> ParsedStatement:
    if "\x00" in content:
        raise StatementError("invalid_bai2", "the file holds NUL bytes: not a BAI2 text file")
    try:
        document = bai2_parser.parse_from_string(content, check_integrity=True)
    except Exception as exc:
        # Hostile input: the library raises whatever its parsing meets (ValueError, IndexError, KeyError, its own
        # ParsingException and IntegrityException...); each is a file we refuse, none a server error.
        raise StatementError("invalid_bai2", f"not a valid BAI2 file: {type(exc).__name__}: {exc}"[:300]) from None
    accounts = [(group, account) for group in document.children for account in group.children]
    if len(accounts) != 1:
        raise StatementError(
            "one_statement_per_file",
            f"the file holds {len(accounts)} accounts: import exactly one (one account, one period)",
            {"accounts": len(accounts)},
        )
    group, account = accounts[0]
    header = document.header
    created = header.creation_date.isoformat().replace("-", "") if header.creation_date else ""
    statement_id = clean(f"bai2-{header.sender_id or ''}-{created}-{header.file_id or ''}", STATEMENT_ID_MAX)
    if not header.file_id:
        raise StatementError("missing_statement_id", "the file header has no file id")
    as_of = group.header.as_of_date
    lines = []
    for index, detail in enumerate(account.children, start=1):
        where = {"transaction": index}
        cents = detail.amount
        if cents is None or not 0 < cents < MAX_CENTS:
            raise StatementError("invalid_amount", f"transaction {index} has no amount, or one out of range", where)
        direction = detail.type_code.transaction
        if direction not in (TypeCodeTransaction.credit, TypeCodeTransaction.debit):
            raise StatementError(
                "invalid_entry", f"transaction {index}'s type code is neither a credit nor a debit", where
            )
        value_date = as_of
        if detail.funds_type == FundsType.value_dated and (detail.availability or {}).get("date"):
            value_date = detail.availability["date"]
        if value_date is None:
            raise StatementError(
                "invalid_date", f"transaction {index} has no date (the group has no as-of date)", where
            )
        amount = Decimal(cents).scaleb(-2)  # cents to dollars, exactly: 12537 -> 125.37
        lines.append(
            StatementLine(
                line_no=index,
                value_date=business_date(value_date.isoformat(), where),
                amount=amount if direction == TypeCodeTransaction.credit else -amount,
                description=clean(detail.text, DESCRIPTION_MAX),
                reference=clean(detail.customer_reference or detail.bank_reference, REFERENCE_MAX),
            )
        )
    balances = {item.type_code.code: item.amount for item in account.header.summary_items if item.amount is not None}

    def balance(code: str) -> Decimal | None:
        cents = balances.get(code)
        if cents is None:
            return None
        if abs(cents) >= MAX_CENTS:
            raise StatementError("invalid_amount", f"the balance {code} is out of range", {"balance": code})
        return Decimal(cents).scaleb(-2)

    return ParsedStatement(
        statement_id=statement_id,
        format=StatementFormat.bai2,
        currency=clean(account.header.currency or group.header.currency, 3) or None,
        account_identifier=clean(account.header.customer_account_number, 70) or None,
        opening_balance=balance("010"),
        closing_balance=balance("015"),
        period_start=as_of,
        period_end=as_of,
        lines=lines,
    )


PARSERS = {StatementFormat.csv: parse_csv, StatementFormat.camt053: parse_camt053, StatementFormat.bai2: parse_bai2}
