"""A transaction import's CSV, parsed and checked a chunk of lines at a time (pure: no I/O), into the rows that
Postgres COPY loads and the lines rejected with their reason.

The header names the columns, in any order and case: `date` (yyyy-mm-dd or mm/dd/yyyy), `amount` (signed, money in
positive, at most two decimals, not zero), `description`, and optionally `merchant`, `currency` (ISO 4217, default
USD) and `category` (a known category key; otherwise the rules decide). Other columns are ignored. One record per
line: a quoted field holding a line break is not supported (its lines are rejected).

Each good line carries `tuple_hash`, the sha256 of what makes two lines the same transaction (the external account,
date, amount, currency, description and merchant, normalised), and its rank among the chunk's identical lines; the
loader adds the count of the earlier chunks' (the occurrence within the file), and the dedup key is the sha256 of the
tuple's hash (32 bytes), ":" and that occurrence, so the same file twice adds nothing while two identical coffees on
one day are both kept."""

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date

REQUIRED = ("date", "amount", "description")
OPTIONAL = ("merchant", "currency", "category")
AMOUNT = re.compile(r"([+-]?)(\d{1,15})(?:\.(\d*))?")
CURRENCY = re.compile(r"[A-Z]{3}")
MAX_DESCRIPTION, MAX_MERCHANT = 500, 200


class HeaderError(ValueError):
    """The file's first line does not name the columns an import needs: the whole import fails with this."""


def header_columns(line: str) -> list[str]:
    """The header's column names, lower-cased, in their order; HeaderError when one we need is missing."""
    line = line.lstrip("\ufeff").rstrip("\r\n")
    if not line.strip():
        raise HeaderError("the file is empty: its first line must be a header naming date, amount, description")
    names = [name.strip().lower() for name in next(csv.reader([line]))]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise HeaderError(
            f"the header lacks {', '.join(missing)}: it must name date, amount and description "
            f"(and may name merchant, currency, category); found: {', '.join(names)[:200]}"
        )
    twice = sorted({name for name in names if name in REQUIRED + OPTIONAL and names.count(name) > 1})
    if twice:
        raise HeaderError(f"the header names {', '.join(twice)} more than once")
    return names


@dataclass
class ParsedChunk:
    # COPY text: line_no, posted_on, amount, currency, merchant, description, category, tuple hash, and the line's
    # rank among the chunk's lines of the same tuple (1, 2, ...)
    copy_rows: str = ""
    rejections: str = ""  # CSV for COPY: line_no, reason
    rows_read: int = 0
    rows_rejected: int = 0
    # how many of the chunk's lines each tuple hash (hex) has: the chunk's set of occurrence counts
    tuple_counts: dict[str, int] = field(default_factory=dict)


def parse_date(text: str) -> str:
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return date.fromisoformat(text).isoformat()
    parts = text.split("/")
    if len(parts) == 3 and len(parts[2]) == 4:
        return date(int(parts[2]), int(parts[0]), int(parts[1])).isoformat()
    raise ValueError(text)


def parse_amount(text: str) -> str:
    """The amount as a canonical decimal string (so 5, 5.0 and +5.00 are the same transaction); ValueError naming
    what is wrong."""
    match = AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError("amount is not a number")
    sign, whole, cents = match.groups()
    if cents is not None and len(cents) > 2:
        raise ValueError("amount has more than 2 decimal places")
    cents = (cents or "").ljust(2, "0")
    if int(whole) == 0 and cents == "00":
        raise ValueError("amount is zero")
    return f"{'-' if sign == '-' else ''}{int(whole)}.{cents}"


# Already canonical (the common case, checked by one regex): a sign only if negative, no leading zero, two decimals.
CANONICAL_AMOUNT = re.compile(r"-?(?:[1-9]\d{0,14}\.\d\d|0\.(?:0[1-9]|[1-9]\d))")
NULL = "\\N"  # COPY text format's NULL
COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def copy_text(value: str) -> str:
    """A value in COPY's text format: its backslashes, tabs and line breaks escaped."""
    if COPY_SPECIAL.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def check(
    record: list[str], width: int, at: dict[str, int], dates: dict[str, str]
) -> tuple[str, str, str, str, str, str]:
    """(date, amount, currency, description, merchant, category) of a line, or ValueError with the reason."""
    if len(record) < width:
        raise ValueError(f"{len(record)} fields where the header names {width}")
    raw_date = record[at["date"]].strip()
    posted_on = dates.get(raw_date)
    if posted_on is None:
        try:
            posted_on = dates[raw_date] = parse_date(raw_date)
        except ValueError:
            raise ValueError("date is not yyyy-mm-dd or mm/dd/yyyy") from None
    amount = record[at["amount"]].strip()
    if CANONICAL_AMOUNT.fullmatch(amount) is None:
        amount = parse_amount(amount)
    description = record[at["description"]].strip()
    if not description:
        raise ValueError("description is empty")
    if len(description) > MAX_DESCRIPTION:
        raise ValueError(f"description is longer than {MAX_DESCRIPTION} characters")
    merchant = record[at["merchant"]].strip() if "merchant" in at else ""
    if len(merchant) > MAX_MERCHANT:
        raise ValueError(f"merchant is longer than {MAX_MERCHANT} characters")
    currency = "USD"
    if "currency" in at:
        currency = record[at["currency"]].strip().upper() or "USD"
        if currency != "USD" and not CURRENCY.fullmatch(currency):
            raise ValueError("currency is not a 3-letter ISO 4217 code")
    category = record[at["category"]].strip().lower() if "category" in at else ""
    return posted_on, amount, currency, description, merchant, category


def parse_chunk(
    text: str, first_line_no: int, columns: list[str], external_account_id: str, known_categories: frozenset[str]
) -> ParsedChunk:
    """The lines of `text` (the first being line `first_line_no` of the file; no header), checked."""
    width = len(columns)
    at = {name: columns.index(name) for name in REQUIRED + OPTIONAL if name in columns}
    good: list[str] = []
    bad = io.StringIO()
    write_bad = csv.writer(bad, lineterminator="\n").writerow
    sha = hashlib.sha256
    dates: dict[str, str] = {}  # a file has few distinct dates: each parsed once
    ranks: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    read = rejected = consumed = 0
    try:
        for record in reader:
            line_no = first_line_no + consumed
            consumed = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # a blank line
            read += 1
            try:
                posted_on, amount, currency, description, merchant, category = check(record, width, at, dates)
            except ValueError as error:
                rejected += 1
                write_bad((line_no, str(error)[:300]))
                continue
            identity = f"{external_account_id}|{posted_on}|{amount}|{currency}|{' '.join(description.split()).lower()}|{' '.join(merchant.split()).lower()}"
            tuple_hash = sha(identity.encode()).hexdigest()  # bytea in COPY's text format: \\x and hex
            rank = ranks[tuple_hash] = ranks.get(tuple_hash, 0) + 1
            good.append(
                f"{line_no}\t{posted_on}\t{amount}\t{currency}\t{copy_text(merchant) if merchant else NULL}\t"
                f"{copy_text(description)}\t{category if category in known_categories else NULL}\t"
                f"\\\\x{tuple_hash}\t{rank}\n"
            )
    except csv.Error as error:  # e.g. a NUL byte, or a quote left open at the chunk's end: the rest of it is bad
        read += 1
        rejected += 1
        write_bad((first_line_no + consumed, f"not CSV: {error}"[:300]))
    return ParsedChunk(
        copy_rows="".join(good),
        rejections=bad.getvalue(),
        rows_read=read,
        rows_rejected=rejected,
        tuple_counts=ranks,
    )
