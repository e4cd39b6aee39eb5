"""A transaction import's CSV, parsed and checked a chunk of lines at a time (pure: no I/O), into the rows that
Postgres COPY loads and the lines rejected with their reason.

The header names the columns, in any order and case: `date` (yyyy-mm-dd or mm/dd/yyyy), `amount` (signed, money in
positive, at most two decimals, not zero), `description`, and optionally `merchant`, `currency` (ISO 4217, default
USD) and `category` (a known category key; otherwise the rules decide). Other columns are ignored. One record per
line: a quoted field holding a line break is not supported (its lines are rejected).

Each good line carries `tuple_hash`, the sha256 of what makes two lines the same transaction (the external account,
date, amount, currency, description and merchant, normalised); the loader numbers identical lines within the file
and hashes that number in too (the dedup key), so the same file twice adds nothing while two identical coffees on
one day are both kept."""

import csv
import hashlib
import io
import re
from dataclasses import dataclass
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
    copy_rows: str = ""  # CSV for COPY: line_no, posted_on, amount, currency, merchant, description, category, hash
    rejections: str = ""  # CSV for COPY: line_no, reason
    rows_read: int = 0
    rows_rejected: int = 0


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


def parse_chunk(
    text: str, first_line_no: int, columns: list[str], external_account_id: str, known_categories: frozenset[str]
) -> ParsedChunk:
    """The lines of `text` (the first being line `first_line_no` of the file; no header), checked."""
    width = len(columns)
    at = {name: columns.index(name) for name in REQUIRED + OPTIONAL if name in columns}
    i_date, i_amount, i_description = at["date"], at["amount"], at["description"]
    i_merchant, i_currency, i_category = at.get("merchant"), at.get("currency"), at.get("category")
    good, bad = io.StringIO(), io.StringIO()
    write_good, write_bad = (
        csv.writer(good, lineterminator="\n").writerow,
        csv.writer(bad, lineterminator="\n").writerow,
    )
    sha = hashlib.sha256
    reader = csv.reader(io.StringIO(text))
    read = rejected = consumed = 0
    try:
        for record in reader:
            line_no = first_line_no + consumed
            consumed = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # a blank line
            read += 1
            reason = None
            try:
                if len(record) < width:
                    raise ValueError(f"{len(record)} fields where the header names {width}")
                try:
                    posted_on = parse_date(record[i_date].strip())
                except ValueError:
                    raise ValueError("date is not yyyy-mm-dd or mm/dd/yyyy") from None
                amount = parse_amount(record[i_amount].strip())
                description = record[i_description].strip()
                if not description:
                    raise ValueError("description is empty")
                if len(description) > MAX_DESCRIPTION:
                    raise ValueError(f"description is longer than {MAX_DESCRIPTION} characters")
                merchant = record[i_merchant].strip() if i_merchant is not None else ""
                if len(merchant) > MAX_MERCHANT:
                    raise ValueError(f"merchant is longer than {MAX_MERCHANT} characters")
                currency = (record[i_currency].strip().upper() if i_currency is not None else "") or "USD"
                if not CURRENCY.fullmatch(currency):
                    raise ValueError("currency is not a 3-letter ISO 4217 code")
                category = record[i_category].strip().lower() if i_category is not None else ""
            except ValueError as error:
                reason = str(error)
            if reason is not None:
                rejected += 1
                write_bad((line_no, reason[:300]))
                continue
            identity = "|".join(
                (
                    external_account_id,
                    posted_on,
                    amount,
                    currency,
                    " ".join(description.split()).lower(),
                    " ".join(merchant.split()).lower(),
                )
            )
            write_good(
                (
                    line_no,
                    posted_on,
                    amount,
                    currency,
                    merchant,
                    description,
                    category if category in known_categories else "",
                    sha(identity.encode()).hexdigest(),
                )
            )
    except csv.Error as error:  # e.g. a NUL byte, or a quote left open at the chunk's end: the rest of it is bad
        read += 1
        rejected += 1
        write_bad((first_line_no + consumed, f"not CSV: {error}"[:300]))
    return ParsedChunk(copy_rows=good.getvalue(), rejections=bad.getvalue(), rows_read=read, rows_rejected=rejected)
