"""NACHA ACH files: a writer and a parser for 94-character records.

Pure code (no I/O, no clock): creation date and time are arguments, so it is safe in Temporal workflows.

Records: 1 file header, 5 batch header, 6 entry detail, 7 addenda (05 payment related information,
98 notification of change, 99 return), 8 batch control, 9 file control, then records of 94 '9's up to a multiple of 10 (blocking
factor 10). Field positions below are 1-based and inclusive, as in the NACHA Operating Rules.

Input policy, so that `parse(write(f)) == f` always holds:
  - The dataclasses normalize on construction. Display text (names, descriptions, company discretionary
    data, addenda text, reference code) is transliterated to ASCII, uppercased, stripped of characters
    outside NACHA's set (printable ASCII), trimmed, and TRUNCATED to the field width.
  - Identifiers (routing, account number, individual id, company id, immediate origin, trace,
    discretionary data, return code) are uppercased but never altered otherwise: too long or a bad
    character is REJECTED with NachaError, because a silently changed identifier moves money wrongly.
  - Money is Decimal only (float and int rejected), at most 2 decimal places, stored quantized to cents.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, Literal, overload

from finance.aba import check_digit, is_valid_routing_number

RECORD_LENGTH = 94
BLOCKING_FACTOR = 10
PADDING_RECORD = "9" * RECORD_LENGTH
MAX_AMOUNT = Decimal("99999999.99")  # 10-digit amount field, in cents
_CENT = Decimal("0.01")
_HASH_MODULUS = 10**10  # entry hash keeps the last 10 digits of the sum
_MAX_SEQUENCE = 9_999_999  # 7-digit trace sequence and batch number


class NachaError(ValueError):
    """Invalid NACHA data. `line_number` (1-based) is set when the error comes from parsing a file."""

    def __init__(self, message: str, line_number: int | None = None):
        super().__init__(f"line {line_number}: {message}" if line_number else message)
        self.message = message
        self.line_number = line_number


class TransactionCode(IntEnum):
    CHECKING_RETURN_CREDIT = 21  # automated return of a 22/23
    CHECKING_CREDIT = 22
    CHECKING_PRENOTE_CREDIT = 23
    CHECKING_RETURN_DEBIT = 26  # automated return of a 27/28
    CHECKING_DEBIT = 27
    CHECKING_PRENOTE_DEBIT = 28
    SAVINGS_RETURN_CREDIT = 31
    SAVINGS_CREDIT = 32
    SAVINGS_PRENOTE_CREDIT = 33
    SAVINGS_RETURN_DEBIT = 36
    SAVINGS_DEBIT = 37
    SAVINGS_PRENOTE_DEBIT = 38

    @property
    def is_credit(self) -> bool:
        return self % 10 <= 4  # NACHA: last digit 1-4 credit, 6-9 debit

    @property
    def is_debit(self) -> bool:
        return not self.is_credit

    @property
    def is_prenote(self) -> bool:
        return self % 10 in (3, 8)

    @property
    def is_return(self) -> bool:
        return self % 10 in (1, 6)

    @property
    def return_code(self) -> TransactionCode:
        """The code an RDFI uses to return an entry with this code (22 -> 21, 27 -> 26, ...)."""
        return TransactionCode(self // 10 * 10 + (1 if self.is_credit else 6))


class SecCode(StrEnum):
    PPD = "PPD"  # consumer, prearranged
    CCD = "CCD"  # corporate
    WEB = "WEB"  # consumer, authorized online
    COR = "COR"  # notification of change (an RDFI's correction of an entry we sent)


class ServiceClass(IntEnum):
    MIXED = 200
    CREDITS_ONLY = 220
    DEBITS_ONLY = 225


class WebPaymentType(StrEnum):
    """WEB debits carry this in the entry's discretionary data (positions 77-78)."""

    RECURRING = "R"
    SINGLE = "S"


# --- normalization and validation helpers -----------------------------------------------------------


def _text(value: str, width: int) -> str:
    """Display text: ASCII, uppercase, printable only, trimmed, truncated to `width`."""
    if not isinstance(value, str):
        raise NachaError(f"expected text, got {type(value).__name__}")
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    ascii_text = re.sub(r"\s", " ", ascii_text).upper()
    printable = "".join(c for c in ascii_text if " " <= c <= "~")
    return printable.strip()[:width].rstrip()


def _identifier(value: str, width: int, what: str, *, required: bool = True) -> str:
    """Identifier: uppercased and trimmed, otherwise kept exactly; rejected rather than altered."""
    if not isinstance(value, str):
        raise NachaError(f"{what} must be text, got {type(value).__name__}")
    cleaned = value.strip().upper()
    if required and not cleaned:
        raise NachaError(f"{what} is required")
    if len(cleaned) > width:
        raise NachaError(f"{what} {cleaned!r} is longer than {width} characters")
    if not all(" " <= c <= "~" for c in cleaned):
        raise NachaError(f"{what} {cleaned!r} has characters outside the NACHA character set")
    return cleaned


def _routing(value: str, what: str) -> str:
    if not (isinstance(value, str) and is_valid_routing_number(value)):
        raise NachaError(f"{what} {value!r} is not a valid 9-digit ABA routing number")
    return value


def _digits(value: str, width: int, what: str) -> str:
    if not (isinstance(value, str) and len(value) == width and value.isascii() and value.isdigit()):
        raise NachaError(f"{what} must be {width} digits, got {value!r}")
    return value


def _amount(value: Decimal) -> Decimal:
    # bool/int/float are refused on purpose: money is Decimal end to end.
    if not isinstance(value, Decimal):
        raise NachaError(f"amount must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise NachaError(f"amount must be a finite non-negative Decimal, got {value}")
    cents = value.quantize(_CENT)
    if cents != value:
        raise NachaError(f"amount {value} has more than 2 decimal places")
    if cents > MAX_AMOUNT:
        raise NachaError(f"amount {value} exceeds {MAX_AMOUNT}")
    return cents


def _ach_date(value: date, what: str) -> date:
    # YYMMDD fields: only 2000-2099 survive a round trip.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise NachaError(f"{what} must be a date, got {type(value).__name__}")
    if not 2000 <= value.year <= 2099:
        raise NachaError(f"{what} {value} is outside 2000-2099")
    return value


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # normalizing a frozen dataclass in __post_init__


# --- data model -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReturnAddenda:
    """Addenda type 99, carried by a return entry."""

    return_code: str  # R01, R02, ...
    original_trace: str  # trace number of the entry being returned
    original_rdfi: str  # first 8 digits of the original entry's RDFI routing number
    trace_number: str  # the return entry's own trace number
    date_of_death: date | None = None  # R14/R15 only
    addenda_information: str = ""

    def __post_init__(self) -> None:
        code = _identifier(self.return_code, 3, "return code")
        if not re.fullmatch(r"R\d\d", code):
            raise NachaError(f"return code must look like R01, got {code!r}")
        _set(self, "return_code", code)
        _digits(self.original_trace, 15, "original trace number")
        _digits(self.original_rdfi, 8, "original RDFI identification")
        _digits(self.trace_number, 15, "trace number")
        if self.date_of_death is not None:
            _ach_date(self.date_of_death, "date of death")
        _set(self, "addenda_information", _text(self.addenda_information, 44))


@dataclass(frozen=True, kw_only=True)
class ChangeAddenda:
    """Addenda type 98, carried by a notification of change (COR entry): what to correct, by change code."""

    change_code: str  # C01 ... C13
    original_trace: str  # trace number of the entry being corrected
    original_rdfi: str  # first 8 digits of the original entry's RDFI routing number
    corrected_data: str  # 29 characters, laid out by the change code (finance/ach_corrections.py)
    trace_number: str  # the COR entry's own trace number

    def __post_init__(self) -> None:
        code = _identifier(self.change_code, 3, "change code")
        if not re.fullmatch(r"C(0[1-9]|1[0-4])", code):
            raise NachaError(f"change code must be C01..C14, got {code!r}")
        _set(self, "change_code", code)
        _digits(self.original_trace, 15, "original trace number")
        _digits(self.original_rdfi, 8, "original RDFI identification")
        _digits(self.trace_number, 15, "trace number")
        # An identifier field (account numbers, routing): kept as is, only trailing blanks dropped.
        _set(self, "corrected_data", _identifier(self.corrected_data.rstrip(), 29, "corrected data", required=False))


@dataclass(frozen=True, kw_only=True)
class Entry:
    transaction_code: TransactionCode
    rdfi_routing: str  # 9 digits including the check digit
    account_number: str
    amount: Decimal
    individual_id: str  # CCD: identification number
    individual_name: str  # CCD: receiving company name
    discretionary_data: str  # WEB debits: payment type code R/S
    trace_number: str  # 15 digits: ODFI routing prefix (8) + sequence (7)
    addenda: tuple[str, ...] = ()  # type 05 payment related information, 80 chars each
    return_addenda: ReturnAddenda | None = None  # type 99, only on return entries (21/26/31/36)
    change_addenda: ChangeAddenda | None = None  # type 98, only on COR entries (21/26/31/36, zero amount)

    def __post_init__(self) -> None:
        try:
            code = TransactionCode(self.transaction_code)
        except ValueError:
            raise NachaError(f"unsupported transaction code {self.transaction_code!r}") from None
        _set(self, "transaction_code", code)
        _routing(self.rdfi_routing, "RDFI routing number")
        _set(self, "account_number", _identifier(self.account_number, 17, "account number"))
        amount = _amount(self.amount)
        if code.is_prenote and amount != 0:
            raise NachaError(f"prenote (transaction code {code.value}) must have a zero amount")
        if not code.is_prenote and not code.is_return and amount == 0:
            raise NachaError("amount must be greater than zero")
        _set(self, "amount", amount)
        _set(self, "individual_id", _identifier(self.individual_id, 15, "individual id", required=False))
        _set(self, "individual_name", _text(self.individual_name, 22))
        _set(self, "discretionary_data", _identifier(self.discretionary_data, 2, "discretionary data", required=False))
        _digits(self.trace_number, 15, "trace number")
        _set(self, "addenda", tuple(_text(info, 80) for info in self.addenda))
        if self.return_addenda is not None and self.change_addenda is not None:
            raise NachaError("an entry is a return or a notification of change, not both")
        if code.is_return != (self.return_addenda is not None or self.change_addenda is not None):
            raise NachaError(
                f"return entries (21/26/31/36) need a return addenda (or, a notification of change, a change addenda) and only they may carry one; "
                f"transaction code {code.value}"
            )
        if self.change_addenda is not None:
            if self.addenda:
                raise NachaError("a notification of change carries only its type 98 addenda")
            if amount != 0:
                raise NachaError("a notification of change has a zero amount")
            if self.change_addenda.trace_number != self.trace_number:
                raise NachaError("change addenda trace number must equal the entry's trace number")
        if self.return_addenda is not None:
            if self.addenda:
                raise NachaError("a return entry carries only its type 99 addenda")
            if self.return_addenda.trace_number != self.trace_number:
                raise NachaError("return addenda trace number must equal the entry's trace number")

    @property
    def addenda_count(self) -> int:
        return len(self.addenda) + (self.return_addenda is not None) + (self.change_addenda is not None)


@dataclass(frozen=True, kw_only=True)
class Batch:
    company_name: str
    company_id: str
    sec_code: SecCode
    entry_description: str
    effective_entry_date: date
    odfi_routing: str  # 9 digits; the header carries the first 8
    batch_number: int
    entries: tuple[Entry, ...]
    company_discretionary_data: str = ""
    descriptive_date: str = ""  # free text shown to the receiver, e.g. "MAR 26"
    settlement_day: str = ""  # Julian day filled by the ACH operator; blank in files we originate
    originator_status_code: str = "1"

    def __post_init__(self) -> None:
        _set(self, "company_name", _text(self.company_name, 16))
        _set(self, "company_id", _identifier(self.company_id, 10, "company id"))
        try:
            _set(self, "sec_code", SecCode(_identifier(self.sec_code, 3, "SEC code")))
        except ValueError:
            raise NachaError(f"unsupported SEC code {self.sec_code!r} (PPD, CCD, WEB)") from None
        _set(self, "entry_description", _text(self.entry_description, 10))
        _ach_date(self.effective_entry_date, "effective entry date")
        _routing(self.odfi_routing, "ODFI routing number")
        if not (isinstance(self.batch_number, int) and 1 <= self.batch_number <= _MAX_SEQUENCE):
            raise NachaError(f"batch number must be 1..{_MAX_SEQUENCE}, got {self.batch_number!r}")
        _set(self, "company_discretionary_data", _text(self.company_discretionary_data, 20))
        _set(self, "descriptive_date", _text(self.descriptive_date, 6))
        if self.settlement_day and not re.fullmatch(r"\d{3}", self.settlement_day):
            raise NachaError(f"settlement day must be a 3-digit Julian day or blank, got {self.settlement_day!r}")
        if self.originator_status_code not in ("0", "1", "2"):
            raise NachaError(f"originator status code must be 0, 1 or 2, got {self.originator_status_code!r}")
        entries = tuple(self.entries)
        _set(self, "entries", entries)
        if not entries:
            raise NachaError("a batch needs at least one entry")
        odfi_prefix = self.odfi_routing[:8]
        for previous, entry in zip((None, *entries), entries, strict=False):
            if not isinstance(entry, Entry):
                raise NachaError(f"batch entries must be Entry, got {type(entry).__name__}")
            if entry.trace_number[:8] != odfi_prefix:
                raise NachaError(f"trace number {entry.trace_number} does not start with ODFI id {odfi_prefix}")
            if previous is not None and entry.trace_number <= previous.trace_number:
                raise NachaError(f"trace numbers must ascend within a batch: {entry.trace_number}")
            if len(entry.addenda) > 1:  # PPD, CCD and WEB allow one addenda record per entry
                raise NachaError(f"{self.sec_code} entries carry at most one addenda record")
            if (
                self.sec_code is SecCode.WEB
                and entry.transaction_code.is_debit
                and entry.discretionary_data not in tuple(WebPaymentType)
            ):
                raise NachaError(f"WEB debit {entry.trace_number} needs payment type 'R' or 'S' in discretionary data")

    @property
    def service_class_code(self) -> ServiceClass:
        credits = any(e.transaction_code.is_credit for e in self.entries)
        debits = any(e.transaction_code.is_debit for e in self.entries)
        if credits and debits:
            return ServiceClass.MIXED
        return ServiceClass.CREDITS_ONLY if credits else ServiceClass.DEBITS_ONLY

    @property
    def entry_addenda_count(self) -> int:
        return len(self.entries) + sum(e.addenda_count for e in self.entries)

    @property
    def entry_hash(self) -> int:
        return sum(int(e.rdfi_routing[:8]) for e in self.entries) % _HASH_MODULUS

    @property
    def total_debit(self) -> Decimal:
        return sum((e.amount for e in self.entries if e.transaction_code.is_debit), Decimal("0.00"))

    @property
    def total_credit(self) -> Decimal:
        return sum((e.amount for e in self.entries if e.transaction_code.is_credit), Decimal("0.00"))


@dataclass(frozen=True, kw_only=True)
class NachaFile:
    immediate_destination: str  # 9-digit routing number of the ODFI (or ACH operator) receiving the file
    immediate_origin: str  # up to 10 characters, usually the company id; written right-justified
    creation_date: date
    creation_time: time | None  # hours and minutes only; None writes blanks
    file_id_modifier: str  # A-Z or 0-9, distinguishes files created the same day
    destination_name: str
    origin_name: str
    batches: tuple[Batch, ...]
    reference_code: str = ""

    def __post_init__(self) -> None:
        _routing(self.immediate_destination, "immediate destination")
        _set(self, "immediate_origin", _identifier(self.immediate_origin, 10, "immediate origin"))
        _ach_date(self.creation_date, "file creation date")
        if self.creation_time is not None:
            if not isinstance(self.creation_time, time):
                raise NachaError(f"creation time must be a time, got {type(self.creation_time).__name__}")
            _set(self, "creation_time", time(self.creation_time.hour, self.creation_time.minute))
        modifier = _identifier(self.file_id_modifier, 1, "file id modifier")
        if not re.fullmatch(r"[A-Z0-9]", modifier):
            raise NachaError(f"file id modifier must be A-Z or 0-9, got {modifier!r}")
        _set(self, "file_id_modifier", modifier)
        _set(self, "destination_name", _text(self.destination_name, 23))
        _set(self, "origin_name", _text(self.origin_name, 23))
        _set(self, "reference_code", _text(self.reference_code, 8))
        batches = tuple(self.batches)
        _set(self, "batches", batches)
        if not batches:
            raise NachaError("a file needs at least one batch")
        for previous, batch in zip((None, *batches), batches, strict=False):
            if not isinstance(batch, Batch):
                raise NachaError(f"file batches must be Batch, got {type(batch).__name__}")
            if previous is not None and batch.batch_number <= previous.batch_number:
                raise NachaError(f"batch numbers must ascend within a file: {batch.batch_number}")
        traces = [e.trace_number for b in batches for e in b.entries]
        if len(set(traces)) != len(traces):
            raise NachaError("trace numbers must be unique within a file")

    @property
    def entry_addenda_count(self) -> int:
        return sum(b.entry_addenda_count for b in self.batches)

    @property
    def entry_hash(self) -> int:
        return sum(b.entry_hash for b in self.batches) % _HASH_MODULUS

    @property
    def total_debit(self) -> Decimal:
        return sum((b.total_debit for b in self.batches), Decimal("0.00"))

    @property
    def total_credit(self) -> Decimal:
        return sum((b.total_credit for b in self.batches), Decimal("0.00"))

    def iter_entries(self) -> Iterator[tuple[Batch, Entry]]:
        """Every entry of the file with its batch, in file order."""
        for batch in self.batches:
            for entry in batch.entries:
                yield batch, entry


# --- builder ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EntrySpec:
    transaction_code: TransactionCode
    rdfi_routing: str
    account_number: str
    amount: Decimal
    individual_name: str
    individual_id: str = ""
    discretionary_data: str = ""  # WEB debits: WebPaymentType
    addenda_info: str | None = None  # one type 05 addenda with this text


@dataclass(frozen=True, kw_only=True)
class BatchSpec:
    sec_code: SecCode
    entry_description: str
    effective_entry_date: date
    entries: Sequence[EntrySpec]
    company_discretionary_data: str = ""
    descriptive_date: str = ""


def make_trace_number(routing: str, sequence: int) -> str:
    """First 8 digits of `routing` + the 7-digit sequence."""
    if not 1 <= sequence <= _MAX_SEQUENCE:
        raise NachaError(f"trace sequence must be 1..{_MAX_SEQUENCE}, got {sequence}")
    return f"{routing[:8]}{sequence:07d}"


def build_file(
    *,
    odfi_routing: str,
    odfi_name: str,
    company_id: str,
    company_name: str,
    creation_date: date,
    creation_time: time | None,
    batches: Sequence[BatchSpec],
    file_id_modifier: str = "A",
    reference_code: str = "",
    first_batch_number: int = 1,
    first_trace_sequence: int = 1,
) -> NachaFile:
    """A file for one originator: batch numbers count up from `first_batch_number`, trace sequences
    from `first_trace_sequence` across the whole file, in the order given (deterministic)."""
    built: list[Batch] = []
    sequence = first_trace_sequence
    for batch_number, spec in enumerate(batches, start=first_batch_number):
        entries = []
        for e in spec.entries:
            entries.append(
                Entry(
                    transaction_code=e.transaction_code,
                    rdfi_routing=e.rdfi_routing,
                    account_number=e.account_number,
                    amount=e.amount,
                    individual_id=e.individual_id,
                    individual_name=e.individual_name,
                    discretionary_data=e.discretionary_data,
                    trace_number=make_trace_number(odfi_routing, sequence),
                    addenda=() if e.addenda_info is None else (e.addenda_info,),
                )
            )
            sequence += 1
        built.append(
            Batch(
                company_name=company_name,
                company_id=company_id,
                sec_code=spec.sec_code,
                entry_description=spec.entry_description,
                effective_entry_date=spec.effective_entry_date,
                odfi_routing=odfi_routing,
                batch_number=batch_number,
                entries=tuple(entries),
                company_discretionary_data=spec.company_discretionary_data,
                descriptive_date=spec.descriptive_date,
            )
        )
    return NachaFile(
        immediate_destination=odfi_routing,
        immediate_origin=company_id,
        creation_date=creation_date,
        creation_time=creation_time,
        file_id_modifier=file_id_modifier,
        destination_name=odfi_name,
        origin_name=company_name,
        batches=tuple(built),
        reference_code=reference_code,
    )


@dataclass(frozen=True, kw_only=True)
class ReturnSpec:
    original_trace: str
    return_code: str
    date_of_death: date | None = None
    addenda_information: str = ""


def build_return_file(
    original: NachaFile,
    returns: Sequence[ReturnSpec],
    *,
    returning_dfi_routing: str,
    returning_dfi_name: str,
    effective_entry_date: date,
    creation_date: date,
    creation_time: time | None,
    file_id_modifier: str = "A",
    first_batch_number: int = 1,
    first_trace_sequence: int = 1,
) -> NachaFile:
    """The returns file an RDFI (or the sandbox bank) sends back for entries of `original`: one return
    batch per original batch that has returned entries, in file order, each return entry addressed to
    the original ODFI with the reversed transaction code and a type 99 addenda."""
    by_trace = {s.original_trace: s for s in returns}
    if len(by_trace) != len(returns):
        raise NachaError("an entry can be returned only once")
    known = {e.trace_number for _, e in original.iter_entries()}
    unknown = sorted(set(by_trace) - known)
    if unknown:
        raise NachaError(f"no entry with trace number {unknown[0]} in the original file")

    batches: list[Batch] = []
    sequence = first_trace_sequence
    for source in original.batches:
        entries = []
        for e in source.entries:
            spec = by_trace.get(e.trace_number)
            if spec is None:
                continue
            trace = make_trace_number(returning_dfi_routing, sequence)
            sequence += 1
            entries.append(
                Entry(
                    transaction_code=e.transaction_code.return_code,
                    rdfi_routing=source.odfi_routing,  # a return travels back to the ODFI
                    account_number=e.account_number,
                    amount=e.amount,
                    individual_id=e.individual_id,
                    individual_name=e.individual_name,
                    discretionary_data=e.discretionary_data,
                    trace_number=trace,
                    return_addenda=ReturnAddenda(
                        return_code=spec.return_code,
                        original_trace=e.trace_number,
                        original_rdfi=e.rdfi_routing[:8],
                        trace_number=trace,
                        date_of_death=spec.date_of_death,
                        addenda_information=spec.addenda_information,
                    ),
                )
            )
        if entries:
            batches.append(
                Batch(
                    company_name=source.company_name,
                    company_id=source.company_id,
                    sec_code=source.sec_code,
                    entry_description=source.entry_description,
                    effective_entry_date=effective_entry_date,
                    odfi_routing=returning_dfi_routing,
                    batch_number=first_batch_number + len(batches),
                    entries=tuple(entries),
                    company_discretionary_data=source.company_discretionary_data,
                    descriptive_date=source.descriptive_date,
                )
            )
    return NachaFile(
        immediate_destination=original.immediate_destination,
        immediate_origin=returning_dfi_routing,
        creation_date=creation_date,
        creation_time=creation_time,
        file_id_modifier=file_id_modifier,
        destination_name=original.destination_name,
        origin_name=returning_dfi_name,
        batches=tuple(batches),
    )


# --- writer -----------------------------------------------------------------------------------------


def _alpha(value: str, width: int) -> str:
    if len(value) > width:  # the model already enforces widths; this guards the record layout
        raise NachaError(f"{value!r} does not fit in {width} characters")
    return value.ljust(width)


def _num(value: int, width: int, what: str) -> str:
    text = str(value)
    if value < 0 or len(text) > width:
        raise NachaError(f"{what} {value} does not fit in {width} digits")
    return text.zfill(width)


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


def _yymmdd(d: date | None) -> str:
    return "      " if d is None else d.strftime("%y%m%d")


def _record(*fields: str) -> str:
    record = "".join(fields)
    if len(record) != RECORD_LENGTH:  # a layout bug, never bad input: the model enforces field widths
        raise AssertionError(f"record of {len(record)} characters: {record!r}")
    return record


def _file_header(f: NachaFile) -> str:
    return _record(
        "1",  # 1 record type
        "01",  # 2-3 priority code
        " " + f.immediate_destination,  # 4-13 immediate destination, right-justified
        f.immediate_origin.rjust(10),  # 14-23 immediate origin
        _yymmdd(f.creation_date),  # 24-29
        "    " if f.creation_time is None else f.creation_time.strftime("%H%M"),  # 30-33
        f.file_id_modifier,  # 34
        "094",  # 35-37 record size
        "10",  # 38-39 blocking factor
        "1",  # 40 format code
        _alpha(f.destination_name, 23),  # 41-63
        _alpha(f.origin_name, 23),  # 64-86
        _alpha(f.reference_code, 8),  # 87-94
    )


def _batch_header(b: Batch) -> str:
    return _record(
        "5",  # 1
        str(b.service_class_code.value),  # 2-4
        _alpha(b.company_name, 16),  # 5-20
        _alpha(b.company_discretionary_data, 20),  # 21-40
        _alpha(b.company_id, 10),  # 41-50
        b.sec_code.value,  # 51-53
        _alpha(b.entry_description, 10),  # 54-63
        _alpha(b.descriptive_date, 6),  # 64-69
        _yymmdd(b.effective_entry_date),  # 70-75
        _alpha(b.settlement_day, 3),  # 76-78 settlement date, filled by the ACH operator
        b.originator_status_code,  # 79
        b.odfi_routing[:8],  # 80-87
        _num(b.batch_number, 7, "batch number"),  # 88-94
    )


def _entry_detail(e: Entry) -> str:
    return _record(
        "6",  # 1
        str(e.transaction_code.value),  # 2-3
        e.rdfi_routing,  # 4-11 RDFI id, 12 check digit
        _alpha(e.account_number, 17),  # 13-29
        _num(_cents(e.amount), 10, "amount"),  # 30-39
        _alpha(e.individual_id, 15),  # 40-54
        _alpha(e.individual_name, 22),  # 55-76
        _alpha(e.discretionary_data, 2),  # 77-78
        "1" if e.addenda_count else "0",  # 79 addenda record indicator
        e.trace_number,  # 80-94
    )


def _payment_addenda(info: str, sequence: int, entry_trace: str) -> str:
    return _record(
        "7",  # 1
        "05",  # 2-3 addenda type
        _alpha(info, 80),  # 4-83 payment related information
        _num(sequence, 4, "addenda sequence number"),  # 84-87
        entry_trace[-7:],  # 88-94 entry detail sequence number
    )


def write_return_addenda(r: ReturnAddenda) -> str:
    """The 94-character type 99 addenda record."""
    return _record(
        "7",  # 1
        "99",  # 2-3
        r.return_code,  # 4-6
        r.original_trace,  # 7-21
        _yymmdd(r.date_of_death),  # 22-27
        r.original_rdfi,  # 28-35
        _alpha(r.addenda_information, 44),  # 36-79
        r.trace_number,  # 80-94
    )


def write_change_addenda(c: ChangeAddenda) -> str:
    """The 94-character type 98 addenda record of a notification of change."""
    return _record(
        "7",  # 1
        "98",  # 2-3
        c.change_code,  # 4-6
        c.original_trace,  # 7-21
        " " * 6,  # 22-27 reserved
        c.original_rdfi,  # 28-35
        _alpha(c.corrected_data, 29),  # 36-64
        " " * 15,  # 65-79 reserved
        c.trace_number,  # 80-94
    )


def _addenda_records(e: Entry) -> list[str]:
    if e.change_addenda is not None:
        return [write_change_addenda(e.change_addenda)]
    if e.return_addenda is not None:
        return [write_return_addenda(e.return_addenda)]
    return [_payment_addenda(info, i, e.trace_number) for i, info in enumerate(e.addenda, start=1)]


def _batch_control(b: Batch) -> str:
    return _record(
        "8",  # 1
        str(b.service_class_code.value),  # 2-4
        _num(b.entry_addenda_count, 6, "batch entry/addenda count"),  # 5-10
        _num(b.entry_hash, 10, "entry hash"),  # 11-20
        _num(_cents(b.total_debit), 12, "batch total debit"),  # 21-32
        _num(_cents(b.total_credit), 12, "batch total credit"),  # 33-44
        _alpha(b.company_id, 10),  # 45-54
        " " * 19,  # 55-73 message authentication code
        " " * 6,  # 74-79 reserved
        b.odfi_routing[:8],  # 80-87
        _num(b.batch_number, 7, "batch number"),  # 88-94
    )


def _file_control(f: NachaFile, block_count: int) -> str:
    return _record(
        "9",  # 1
        _num(len(f.batches), 6, "batch count"),  # 2-7
        _num(block_count, 6, "block count"),  # 8-13
        _num(f.entry_addenda_count, 8, "file entry/addenda count"),  # 14-21
        _num(f.entry_hash, 10, "entry hash"),  # 22-31
        _num(_cents(f.total_debit), 12, "file total debit"),  # 32-43
        _num(_cents(f.total_credit), 12, "file total credit"),  # 44-55
        " " * 39,  # 56-94 reserved
    )


def write(f: NachaFile) -> str:
    """The file's text: 94-character records, each ended by "\\n", padded to a multiple of 10 records."""
    records = [_file_header(f)]
    for b in f.batches:
        records.append(_batch_header(b))
        for e in b.entries:
            records.append(_entry_detail(e))
            records.extend(_addenda_records(e))
        records.append(_batch_control(b))
    padding = -(len(records) + 1) % BLOCKING_FACTOR
    block_count = (len(records) + 1 + padding) // BLOCKING_FACTOR
    records.append(_file_control(f, block_count))
    records.extend([PADDING_RECORD] * padding)
    return "".join(r + "\n" for r in records)


# --- parser -----------------------------------------------------------------------------------------


def _field(record: str, start: int, end: int) -> str:
    """Positions `start`..`end`, 1-based and inclusive as NACHA documents them."""
    return record[start - 1 : end]


def _int_field(record: str, start: int, end: int, what: str) -> int:
    value = _field(record, start, end)
    if not (value.isascii() and value.isdigit()):
        raise NachaError(f"{what} (positions {start}-{end}) must be digits, got {value!r}")
    return int(value)


@overload
def _date_field(record: str, start: int, end: int, what: str, *, blank_ok: Literal[False] = False) -> date: ...
@overload
def _date_field(record: str, start: int, end: int, what: str, *, blank_ok: bool) -> date | None: ...
def _date_field(record: str, start: int, end: int, what: str, *, blank_ok: bool = False) -> date | None:
    value = _field(record, start, end)
    if blank_ok and not value.strip():
        return None
    try:
        if not (value.isascii() and value.isdigit()):
            raise ValueError
        # Not strptime: its %y maps 69-99 to the 1900s, and we only write 2000-2099.
        return date(2000 + int(value[0:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        raise NachaError(f"{what} (positions {start}-{end}) is not a YYMMDD date: {value!r}") from None


def _expect(record: str, start: int, end: int, expected: str, what: str) -> None:
    if _field(record, start, end) != expected:
        raise NachaError(f"{what} (positions {start}-{end}) must be {expected!r}, got {_field(record, start, end)!r}")


def _split_records(text: str) -> list[str]:
    if "\n" not in text and text and len(text) % RECORD_LENGTH == 0:
        # Some systems send records without line breaks.
        return [text[i : i + RECORD_LENGTH] for i in range(0, len(text), RECORD_LENGTH)]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line break
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@contextmanager
def _at(line_number: int) -> Iterator[None]:
    """Attach the line number to errors raised while reading one record."""
    try:
        yield
    except NachaError as e:
        raise NachaError(e.message, e.line_number or line_number) from None


def parse_return_addenda(record: str) -> ReturnAddenda:
    """Read a type 99 addenda record (94 characters, no line break)."""
    if len(record) != RECORD_LENGTH:
        raise NachaError(f"record is {len(record)} characters, expected {RECORD_LENGTH}")
    _expect(record, 1, 3, "799", "return addenda record type and addenda type")
    return ReturnAddenda(
        return_code=_field(record, 4, 6),
        original_trace=_field(record, 7, 21),
        date_of_death=_date_field(record, 22, 27, "date of death", blank_ok=True),
        original_rdfi=_field(record, 28, 35),
        addenda_information=_field(record, 36, 79),
        trace_number=_field(record, 80, 94),
    )


def parse_change_addenda(record: str) -> ChangeAddenda:
    """Read a type 98 addenda record (94 characters, no line break)."""
    if len(record) != RECORD_LENGTH:
        raise NachaError(f"record is {len(record)} characters, expected {RECORD_LENGTH}")
    _expect(record, 1, 3, "798", "change addenda record type and addenda type")
    return ChangeAddenda(
        change_code=_field(record, 4, 6),
        original_trace=_field(record, 7, 21),
        original_rdfi=_field(record, 28, 35),
        corrected_data=_field(record, 36, 64),
        trace_number=_field(record, 80, 94),
    )


def _record_type(record: str) -> str:
    return record[:1]


class _Reader:
    def __init__(self, records: list[str]):
        self.records = records
        self.index = 0

    @property
    def line_number(self) -> int:
        return self.index + 1

    def peek_type(self) -> str | None:
        return _record_type(self.records[self.index]) if self.index < len(self.records) else None

    def take(self, record_type: str, what: str) -> str:
        found = self.peek_type()
        if found != record_type:
            got = "end of file" if found is None else f"record type {found!r}"
            raise NachaError(f"expected {what} (record type {record_type}), got {got}", self.line_number)
        record = self.records[self.index]
        self.index += 1
        return record


def parse(text: str) -> NachaFile:
    """Read and fully validate a NACHA file; raise NachaError(message, line_number) on bad input.
    Accepts LF or CRLF line endings (or none), with or without a final line break."""
    records = _split_records(text)
    if not records:
        raise NachaError("empty file", 1)
    for number, record in enumerate(records, start=1):
        if len(record) != RECORD_LENGTH:
            raise NachaError(f"record is {len(record)} characters, expected {RECORD_LENGTH}", number)

    reader = _Reader(records)
    header_line = reader.line_number
    header = reader.take("1", "file header")
    with _at(header_line):
        _expect(header, 2, 3, "01", "priority code")
        _expect(header, 35, 37, "094", "record size")
        _expect(header, 38, 39, "10", "blocking factor")
        _expect(header, 40, 40, "1", "format code")
        raw_time = _field(header, 30, 33)
        if raw_time.strip():
            hhmm = _int_field(header, 30, 33, "file creation time")
            if hhmm // 100 > 23 or hhmm % 100 > 59:
                raise NachaError(f"file creation time (positions 30-33) is not HHMM: {raw_time!r}")
            creation_time: time | None = time(hhmm // 100, hhmm % 100)
        else:
            creation_time = None
        destination = _field(header, 4, 13)
        if destination[0] != " ":
            raise NachaError(f"immediate destination (positions 4-13) must be ' ' + 9 digits, got {destination!r}")
        header_fields: dict[str, Any] = dict(
            immediate_destination=destination[1:],
            immediate_origin=_field(header, 14, 23),
            creation_date=_date_field(header, 24, 29, "file creation date"),
            creation_time=creation_time,
            file_id_modifier=_field(header, 34, 34),
            destination_name=_field(header, 41, 63),
            origin_name=_field(header, 64, 86),
            reference_code=_field(header, 87, 94),
        )

    batches: list[Batch] = []
    batch_lines: list[int] = []
    while reader.peek_type() == "5":
        batch_lines.append(reader.line_number)
        batches.append(_parse_batch(reader))

    control_line = reader.line_number
    control = reader.take("9", "batch header or file control")
    padding = records[reader.index :]
    for offset, record in enumerate(padding):
        if record != PADDING_RECORD:
            raise NachaError("only padding records of 94 '9's may follow the file control", reader.line_number + offset)
    if len(records) % BLOCKING_FACTOR or len(padding) >= BLOCKING_FACTOR:
        raise NachaError(
            f"file has {len(records)} records; it must be padded with '9' records to the next multiple of "
            f"{BLOCKING_FACTOR}",
            len(records),
        )

    with _at(header_line):
        if not batches:
            raise NachaError("a file needs at least one batch")
        nacha_file = NachaFile(**header_fields, batches=tuple(batches))

    with _at(control_line):
        _check(control, 2, 7, len(batches), "batch count")
        _check(control, 8, 13, len(records) // BLOCKING_FACTOR, "block count")
        _check(control, 14, 21, nacha_file.entry_addenda_count, "entry/addenda count")
        _check(control, 22, 31, nacha_file.entry_hash, "entry hash")
        _check(control, 32, 43, _cents(nacha_file.total_debit), "total debit")
        _check(control, 44, 55, _cents(nacha_file.total_credit), "total credit")
        _expect(control, 56, 94, " " * 39, "reserved")
    return nacha_file


def _check(record: str, start: int, end: int, computed: int, what: str) -> None:
    declared = _int_field(record, start, end, what)
    if declared != computed:
        raise NachaError(f"{what} (positions {start}-{end}) is {declared}, but the records give {computed}")


def _parse_batch(reader: _Reader) -> Batch:
    header_line = reader.line_number
    header = reader.take("5", "batch header")
    entries: list[Entry] = []
    while reader.peek_type() == "6":
        entries.append(_parse_entry(reader))

    control_line = reader.line_number
    control = reader.take("8", "entry detail or batch control")

    with _at(header_line):
        try:
            declared_class = ServiceClass(_int_field(header, 2, 4, "service class code"))
        except ValueError:
            raise NachaError(f"unsupported service class code {_field(header, 2, 4)!r}") from None
        odfi_id = _field(header, 80, 87)
        _digits(odfi_id, 8, "ODFI identification")
        batch = Batch(
            company_name=_field(header, 5, 20),
            company_discretionary_data=_field(header, 21, 40),
            company_id=_field(header, 41, 50),
            sec_code=_field(header, 51, 53),  # type: ignore[arg-type]  # Batch checks it and makes it a SecCode
            entry_description=_field(header, 54, 63),
            descriptive_date=_field(header, 64, 69),
            effective_entry_date=_date_field(header, 70, 75, "effective entry date"),
            settlement_day=_field(header, 76, 78).strip(),
            originator_status_code=_field(header, 79, 79),
            odfi_routing=odfi_id + check_digit(odfi_id),  # the header drops the check digit
            batch_number=_int_field(header, 88, 94, "batch number"),
            entries=tuple(entries),
        )
        if declared_class != batch.service_class_code:
            raise NachaError(
                f"service class code {declared_class.value} does not match the entries "
                f"({batch.service_class_code.value}: 200 mixed, 220 credits only, 225 debits only)"
            )

    with _at(control_line):
        _check(control, 2, 4, batch.service_class_code.value, "service class code")
        _check(control, 5, 10, batch.entry_addenda_count, "entry/addenda count")
        _check(control, 11, 20, batch.entry_hash, "entry hash")
        _check(control, 21, 32, _cents(batch.total_debit), "total debit")
        _check(control, 33, 44, _cents(batch.total_credit), "total credit")
        if _field(control, 45, 54).strip().upper() != batch.company_id:
            raise NachaError(f"company id {_field(control, 45, 54)!r} differs from the batch header's")
        _expect(control, 80, 87, odfi_id, "ODFI identification")
        _check(control, 88, 94, batch.batch_number, "batch number")
    return batch


def _parse_entry(reader: _Reader) -> Entry:
    entry_line = reader.line_number
    record = reader.take("6", "entry detail")
    with _at(entry_line):
        indicator = _field(record, 79, 79)
        if indicator not in ("0", "1"):
            raise NachaError(f"addenda record indicator (position 79) must be 0 or 1, got {indicator!r}")
        trace = _field(record, 80, 94)
        _digits(trace, 15, "trace number")
        code = _int_field(record, 2, 3, "transaction code")

    addenda: list[str] = []
    return_addenda: ReturnAddenda | None = None
    change_addenda: ChangeAddenda | None = None
    while reader.peek_type() == "7":
        addenda_line = reader.line_number
        line = reader.take("7", "addenda")
        with _at(addenda_line):
            addenda_type = _field(line, 2, 3)
            if addenda_type == "05":
                _check(line, 84, 87, len(addenda) + 1, "addenda sequence number")
                _expect(line, 88, 94, trace[-7:], "entry detail sequence number")
                addenda.append(_field(line, 4, 83))
            elif addenda_type == "99":
                if return_addenda is not None or change_addenda is not None or addenda:
                    raise NachaError("a return entry carries exactly one type 99 addenda")
                return_addenda = parse_return_addenda(line)
            elif addenda_type == "98":
                if return_addenda is not None or change_addenda is not None or addenda:
                    raise NachaError("a notification of change carries exactly one type 98 addenda")
                change_addenda = parse_change_addenda(line)
            else:
                raise NachaError(f"unsupported addenda type {addenda_type!r} (05, 98 and 99 are supported)")

    with _at(entry_line):
        count = len(addenda) + (return_addenda is not None) + (change_addenda is not None)
        if (indicator == "1") != bool(count):
            raise NachaError(f"addenda record indicator is {indicator} but the entry has {count} addenda records")
        return Entry(
            transaction_code=code,  # type: ignore[arg-type]  # Entry checks it and makes it a TransactionCode
            rdfi_routing=_field(record, 4, 12),
            account_number=_field(record, 13, 29),
            amount=Decimal(_int_field(record, 30, 39, "amount")).scaleb(-2),
            individual_id=_field(record, 40, 54),
            individual_name=_field(record, 55, 76),
            discretionary_data=_field(record, 77, 78),
            trace_number=trace,
            addenda=tuple(addenda),
            return_addenda=return_addenda,
            change_addenda=change_addenda,
        )
