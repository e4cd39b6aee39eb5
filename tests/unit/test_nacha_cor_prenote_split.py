"""NACHA additions: notifications of change (COR entries, type 98 addenda) and their corrected data, prenote
entries, and a window's entries split into files at the record and dollar limits, each file valid."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest

from finance.ach_corrections import corrected_data, read_correction
from finance.ach_file_plan import FileLimits, build_files, split_batches
from finance.nacha import (
    RECORD_LENGTH,
    Batch,
    BatchSpec,
    ChangeAddenda,
    Entry,
    EntrySpec,
    NachaError,
    NachaFile,
    SecCode,
    ServiceClass,
    TransactionCode,
    parse,
    parse_change_addenda,
    write,
    write_change_addenda,
)

ODFI = "091000019"
RDFI = "021000021"
TC = TransactionCode


def _cor_file(code: str, data: str, transaction_code: TransactionCode = TC.CHECKING_RETURN_DEBIT) -> NachaFile:
    trace = "021000020000001"
    entry = Entry(
        transaction_code=transaction_code,
        rdfi_routing=ODFI,
        account_number="12345678",
        amount=Decimal("0.00"),
        individual_id="ABC123",
        individual_name="Jane Doe",
        discretionary_data="",
        trace_number=trace,
        change_addenda=ChangeAddenda(
            change_code=code,
            original_trace="091000010000042",
            original_rdfi="02100002",
            corrected_data=data,
            trace_number=trace,
        ),
    )
    batch = Batch(
        company_name="BACKOFFICE CU",
        company_id="1234567890",
        sec_code=SecCode.COR,
        entry_description="PAYMENT",
        effective_entry_date=date(2026, 12, 3),
        odfi_routing=RDFI,
        batch_number=1,
        entries=(entry,),
    )
    return NachaFile(
        immediate_destination=ODFI,
        immediate_origin="021000021",
        creation_date=date(2026, 12, 2),
        creation_time=time(7, 0),
        file_id_modifier="A",
        destination_name="SANDBOX ODFI",
        origin_name="RDFI",
        batches=(batch,),
    )


def test_change_addenda_fields_at_their_positions() -> None:
    record = write_change_addenda(
        ChangeAddenda(
            change_code="C03",
            original_trace="091000010000042",
            original_rdfi="02100002",
            corrected_data=corrected_data("C03", routing_number="011000015", account_number="987654321"),
            trace_number="021000020000001",
        )
    )
    assert len(record) == RECORD_LENGTH
    assert record[0:3] == "798"
    assert record[3:6] == "C03"
    assert record[6:21] == "091000010000042"
    assert record[21:27] == " " * 6
    assert record[27:35] == "02100002"
    assert record[35:64] == "011000015   987654321        "
    assert record[64:79] == " " * 15
    assert record[79:94] == "021000020000001"
    assert parse_change_addenda(record).corrected_data == "011000015   987654321"


@pytest.mark.parametrize(
    ("code", "data", "expected"),
    [
        ("C01", corrected_data("C01", account_number="55501234"), {"account_number": "55501234"}),
        ("C02", corrected_data("C02", routing_number="011000015"), {"routing_number": "011000015"}),
        (
            "C03",
            corrected_data("C03", routing_number="011000015", account_number="77712"),
            {"routing_number": "011000015", "account_number": "77712"},
        ),
        ("C05", corrected_data("C05", transaction_code=TC.SAVINGS_DEBIT), {"account_type": "savings"}),
        (
            "C06",
            corrected_data("C06", account_number="4444", transaction_code=TC.CHECKING_CREDIT),
            {"account_number": "4444", "account_type": "checking"},
        ),
        (
            "C07",
            corrected_data("C07", routing_number="011000015", account_number="9", transaction_code=TC.SAVINGS_CREDIT),
            {"routing_number": "011000015", "account_number": "9", "account_type": "savings"},
        ),
        ("C04", corrected_data("C04", text="JOHN Q PUBLIC"), {"text": "JOHN Q PUBLIC"}),
        ("C13", "", {"text": ""}),
    ],
)
def test_cor_round_trip_and_corrected_data(code: str, data: str, expected: dict) -> None:
    text = write(_cor_file(code, data))
    parsed = parse(text)
    assert parsed == _cor_file(code, data)
    (_, entry), *_ = parsed.iter_entries()
    assert entry.change_addenda is not None and entry.change_addenda.change_code == code
    correction = read_correction(code, entry.change_addenda.corrected_data)
    fields = ("account_number", "routing_number", "account_type", "text")
    assert {k: getattr(correction, k) for k in fields if getattr(correction, k) is not None} == expected
    assert correction.corrects_account == (code in ("C01", "C02", "C03", "C05", "C06", "C07"))


def test_cor_rules() -> None:
    with pytest.raises(NachaError, match="change code"):
        _cor_file("C99", "1")
    with pytest.raises(NachaError, match="return addenda"):
        _cor_file("C01", "1", TC.CHECKING_PRENOTE_DEBIT)  # a change addenda only on 21/26/31/36
    with pytest.raises(NachaError, match="routing"):
        read_correction("C02", "123456789")  # bad check digit
    with pytest.raises(NachaError, match="transaction code"):
        read_correction("C05", "99")
    with pytest.raises(NachaError, match="account number"):
        read_correction("C01", "")


def test_parse_refuses_a_second_addenda_on_a_cor_entry() -> None:
    lines = write(_cor_file("C01", "1234")).splitlines()
    addenda = next(i for i, line in enumerate(lines) if line.startswith("798"))
    lines.insert(addenda + 1, lines[addenda])
    lines.pop()  # keep the padding to a multiple of 10
    with pytest.raises(NachaError, match="exactly one type 98"):
        parse("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "code", [TC.CHECKING_PRENOTE_CREDIT, TC.CHECKING_PRENOTE_DEBIT, TC.SAVINGS_PRENOTE_CREDIT, TC.SAVINGS_PRENOTE_DEBIT]
)
def test_prenote_codes_carry_zero_and_round_trip(code: TransactionCode) -> None:
    files = build_files(**_file_args([_batch([_spec(Decimal("0.00"), code)])]), limits=FileLimits())
    (parsed,) = [parse(write(f)) for f in files]
    (_, entry), *_ = parsed.iter_entries()
    assert entry.transaction_code is code and entry.amount == 0 and code.is_prenote
    with pytest.raises(NachaError, match="zero amount"):
        build_files(**_file_args([_batch([_spec(Decimal("1.00"), code)])]), limits=FileLimits())


def _spec(amount: Decimal, code: TransactionCode = TC.CHECKING_DEBIT, n: int = 0) -> EntrySpec:
    return EntrySpec(
        transaction_code=code,
        rdfi_routing=RDFI if n % 2 else "011000015",
        account_number=f"{n:010d}",
        amount=amount,
        individual_name=f"Holder {n}",
        individual_id=f"ID{n}",
    )


def _batch(entries: list[EntrySpec], description: str = "PAYMENT") -> BatchSpec:
    return BatchSpec(
        sec_code=SecCode.PPD, entry_description=description, effective_entry_date=date(2026, 12, 3), entries=entries
    )


def _file_args(batches: list[BatchSpec]) -> dict:
    return dict(
        odfi_routing=ODFI,
        odfi_name="SANDBOX ODFI",
        company_id="1234567890",
        company_name="BACKOFFICE CU",
        creation_date=date(2026, 12, 2),
        creation_time=time(7, 0),
        batches=batches,
    )


def _check_valid(text: str) -> NachaFile:
    """Parsed (the parser checks every control total, hash and count); plus the layout itself."""
    lines = text.splitlines()
    assert all(len(line) == RECORD_LENGTH for line in lines)
    assert len(lines) % 10 == 0
    return parse(text)


def test_25000_entries_split_at_10000_records_into_valid_files() -> None:
    debits = [_spec(Decimal("10.01") + n % 7, TC.CHECKING_DEBIT, n) for n in range(15_000)]
    credits = [_spec(Decimal("3.50"), TC.SAVINGS_CREDIT, n) for n in range(10_000)]
    batches = [_batch(credits, "PAYOUT"), _batch(debits)]
    files = build_files(**_file_args(batches), limits=FileLimits(max_records=10_000), first_trace_sequence=1_000)
    parsed = [_check_valid(write(f)) for f in files]
    assert [p.entry_addenda_count for p in parsed] == [10_000, 10_000, 5_000]
    assert [p.file_id_modifier for p in parsed] == ["A", "B", "C"]
    # Every entry once, in order, with its own trace; totals kept across the files.
    entries = [e for p in parsed for _, e in p.iter_entries()]
    assert [e.individual_id for e in entries] == [e.individual_id for b in batches for e in b.entries]
    assert len({e.trace_number for e in entries}) == 25_000
    assert sum(p.total_debit for p in parsed) == sum(e.amount for e in debits)
    assert sum(p.total_credit for p in parsed) == Decimal("35000.00")
    # Debits and credits never share a batch.
    for p in parsed:
        for batch in p.batches:
            assert batch.service_class_code in (ServiceClass.CREDITS_ONLY, ServiceClass.DEBITS_ONLY)
            assert [b.batch_number for b in p.batches] == list(range(1, len(p.batches) + 1))


def test_split_at_the_dollar_limit() -> None:
    entries = [_spec(Decimal("400.00"), n=n) for n in range(10)] + [_spec(Decimal("2500.00"), n=10)]
    limits = FileLimits(max_records=10_000, max_amount=Decimal("1000.00"))
    planned = split_batches([_batch(entries)], limits)
    sums = [sum(e.amount for b in f for e in b.entries) for f in planned]
    # Two 400s a file; the entry above the limit goes alone (it cannot be split).
    assert sums == [Decimal("800.00")] * 5 + [Decimal("2500.00")]
    files = build_files(**_file_args([_batch(entries)]), limits=limits)
    assert [f.total_debit for f in (_check_valid(write(f)) for f in files)] == sums


def test_split_counts_addenda_records_and_keeps_batches_whole_when_they_fit() -> None:
    with_addenda = [
        EntrySpec(
            transaction_code=TC.CHECKING_CREDIT,
            rdfi_routing=RDFI,
            account_number="1",
            amount=Decimal("1.00"),
            individual_name="A",
            addenda_info="INVOICE",
        )
        for _ in range(3)
    ]
    planned = split_batches([_batch(with_addenda), _batch([_spec(Decimal("1.00"))])], FileLimits(max_records=4))
    assert [[len(b.entries) for b in f] for f in planned] == [[2], [1, 1]]
    with pytest.raises(NachaError):
        FileLimits(max_records=1)
