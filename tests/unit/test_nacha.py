"""NACHA writer/parser: golden files checked field by field at the documented positions, round trips,
rejected inputs and corrupt files.

Regenerate the golden files (then re-check them by hand against the field tests below):
    .venv/bin/python -m tests.unit.test_nacha
"""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance.aba import check_digit
from finance.nacha import (
    PADDING_RECORD,
    Batch,
    BatchSpec,
    Entry,
    EntrySpec,
    NachaError,
    NachaFile,
    ReturnAddenda,
    ReturnSpec,
    SecCode,
    ServiceClass,
    TransactionCode,
    build_file,
    build_return_file,
    parse,
    parse_return_addenda,
    write,
    write_return_addenda,
)

GOLDEN = Path(__file__).parent / "golden"
ODFI = "091000019"
COMPANY_ID = "1410012345"
COMPANY_NAME = "Acme Credit Union"  # 17 characters: truncated to 16 in the batch header
TC = TransactionCode


def f(record: str, start: int, end: int) -> str:
    """Positions start..end, 1-based inclusive, as the NACHA rules number them."""
    return record[start - 1 : end]


def records_of(text: str) -> list[str]:
    return text.splitlines()


def _file(batches: list[BatchSpec], *, created: time, modifier: str) -> NachaFile:
    return build_file(
        odfi_routing=ODFI,
        odfi_name="Sandbox Bank",
        company_id=COMPANY_ID,
        company_name=COMPANY_NAME,
        creation_date=date(2026, 3, 2),
        creation_time=created,
        file_id_modifier=modifier,
        batches=batches,
    )


def ppd_file() -> NachaFile:
    return _file(
        [
            BatchSpec(
                sec_code=SecCode.PPD,
                entry_description="Loan pmt",
                effective_entry_date=date(2026, 3, 3),
                entries=[
                    EntrySpec(
                        transaction_code=TC.CHECKING_DEBIT,
                        rdfi_routing="011000015",
                        account_number="12345678",
                        amount=Decimal("125.50"),
                        individual_id="LN-000042",
                        individual_name="María López",
                        addenda_info="Loan 42 installment 3",
                    ),
                    EntrySpec(
                        transaction_code=TC.SAVINGS_DEBIT,
                        rdfi_routing="021000021",
                        account_number="0099887766",
                        amount=Decimal("1000.00"),
                        individual_id="LN-000043",
                        individual_name="Bob Smith",
                    ),
                    EntrySpec(
                        transaction_code=TC.CHECKING_CREDIT,
                        rdfi_routing="026009593",
                        account_number="55-1234",
                        amount=Decimal("42.07"),
                        individual_id="RF-000001",
                        individual_name="Carol Jones",
                    ),
                ],
            ),
            BatchSpec(
                sec_code=SecCode.PPD,
                entry_description="Refund",
                effective_entry_date=date(2026, 3, 3),
                entries=[
                    EntrySpec(
                        transaction_code=TC.SAVINGS_CREDIT,
                        rdfi_routing="111000025",
                        account_number="7788",
                        amount=Decimal("0.01"),
                        individual_name="Dan Brown",
                    ),
                    EntrySpec(
                        transaction_code=TC.CHECKING_PRENOTE_CREDIT,
                        rdfi_routing="122000661",
                        account_number="314159",
                        amount=Decimal("0"),
                        individual_name="Eve Adams",
                    ),
                ],
            ),
        ],
        created=time(9, 30),
        modifier="A",
    )


def ccd_file() -> NachaFile:
    return _file(
        [
            BatchSpec(
                sec_code=SecCode.CCD,
                entry_description="Vendor pay",
                effective_entry_date=date(2026, 3, 3),
                entries=[
                    EntrySpec(
                        transaction_code=TC.CHECKING_CREDIT,
                        rdfi_routing="071000013",
                        account_number="4455667788",
                        amount=Decimal("15250.00"),
                        individual_id="INV-2026-0042",
                        individual_name="Widget Supply LLC",
                        addenda_info="RMR*IV*0042*15250.00\\",
                    ),
                ],
            )
        ],
        created=time(14, 15),
        modifier="B",
    )


def web_file() -> NachaFile:
    return _file(
        [
            BatchSpec(
                sec_code=SecCode.WEB,
                entry_description="Subscribe",
                effective_entry_date=date(2026, 3, 3),
                entries=[
                    EntrySpec(
                        transaction_code=TC.CHECKING_DEBIT,
                        rdfi_routing="322271627",
                        account_number="998877",
                        amount=Decimal("49.99"),
                        individual_id="WEB-1",
                        individual_name="Frank Miller",
                        discretionary_data="S",
                    ),
                    EntrySpec(
                        transaction_code=TC.SAVINGS_DEBIT,
                        rdfi_routing="011000015",
                        account_number="123123123",
                        amount=Decimal("15.00"),
                        individual_name="Grace Lee",
                        discretionary_data="R",
                    ),
                ],
            )
        ],
        created=time(16, 0),
        modifier="C",
    )


def return_file() -> NachaFile:
    return build_return_file(
        ppd_file(),
        [ReturnSpec(original_trace="091000010000001", return_code="R01")],
        returning_dfi_routing="011000015",
        returning_dfi_name="Sandbox RDFI",
        effective_entry_date=date(2026, 3, 5),
        creation_date=date(2026, 3, 4),
        creation_time=time(8, 0),
    )


GOLDEN_FILES = {
    "ppd_debits_credits.ach": ppd_file,
    "ccd_credit.ach": ccd_file,
    "web_debit.ach": web_file,
    "return_r01.ach": return_file,
}


# --- golden files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN_FILES))
def test_writer_reproduces_golden_file(name: str) -> None:
    golden = (GOLDEN / name).read_text()
    assert write(GOLDEN_FILES[name]()) == golden
    lines = records_of(golden)
    assert all(len(line) == 94 for line in lines)
    assert len(lines) % 10 == 0
    assert parse(golden) == GOLDEN_FILES[name]()


def test_ppd_file_header_fields() -> None:
    header = records_of((GOLDEN / "ppd_debits_credits.ach").read_text())[0]
    assert f(header, 1, 1) == "1"
    assert f(header, 2, 3) == "01"
    assert f(header, 4, 13) == " 091000019"
    assert f(header, 14, 23) == "1410012345"
    assert f(header, 24, 29) == "260302"
    assert f(header, 30, 33) == "0930"
    assert f(header, 34, 34) == "A"
    assert f(header, 35, 37) == "094"
    assert f(header, 38, 39) == "10"
    assert f(header, 40, 40) == "1"
    assert f(header, 41, 63) == "SANDBOX BANK           "
    assert f(header, 64, 86) == "ACME CREDIT UNION      "
    assert f(header, 87, 94) == " " * 8


def test_ppd_batch_records_fields() -> None:
    lines = records_of((GOLDEN / "ppd_debits_credits.ach").read_text())
    header, debit, addenda, savings_debit, credit, control = lines[1:7]

    assert f(header, 1, 1) == "5"
    assert f(header, 2, 4) == "200"  # debits and credits
    assert f(header, 5, 20) == "ACME CREDIT UNIO"  # truncated to 16
    assert f(header, 21, 40) == " " * 20
    assert f(header, 41, 50) == "1410012345"
    assert f(header, 51, 53) == "PPD"
    assert f(header, 54, 63) == "LOAN PMT  "
    assert f(header, 64, 69) == " " * 6
    assert f(header, 70, 75) == "260303"
    assert f(header, 76, 78) == "   "  # settlement date: the ACH operator fills it
    assert f(header, 79, 79) == "1"
    assert f(header, 80, 87) == "09100001"
    assert f(header, 88, 94) == "0000001"

    assert f(debit, 1, 1) == "6"
    assert f(debit, 2, 3) == "27"
    assert f(debit, 4, 11) == "01100001"
    assert f(debit, 12, 12) == "5"
    assert f(debit, 13, 29) == "12345678         "
    assert f(debit, 30, 39) == "0000012550"
    assert f(debit, 40, 54) == "LN-000042      "
    assert f(debit, 55, 76) == "MARIA LOPEZ           "  # accents transliterated, uppercased
    assert f(debit, 77, 78) == "  "
    assert f(debit, 79, 79) == "1"
    assert f(debit, 80, 94) == "091000010000001"

    assert f(addenda, 1, 1) == "7"
    assert f(addenda, 2, 3) == "05"
    assert f(addenda, 4, 83) == "LOAN 42 INSTALLMENT 3".ljust(80)
    assert f(addenda, 84, 87) == "0001"
    assert f(addenda, 88, 94) == "0000001"  # last 7 digits of the entry's trace number

    assert (f(savings_debit, 2, 3), f(savings_debit, 4, 12), f(savings_debit, 30, 39)) == (
        "37",
        "021000021",
        "0000100000",
    )
    assert (f(savings_debit, 79, 79), f(savings_debit, 80, 94)) == ("0", "091000010000002")
    assert (f(credit, 2, 3), f(credit, 4, 12), f(credit, 13, 29)) == ("22", "026009593", "55-1234          ")
    assert (f(credit, 30, 39), f(credit, 80, 94)) == ("0000004207", "091000010000003")

    assert f(control, 1, 1) == "8"
    assert f(control, 2, 4) == "200"
    assert f(control, 5, 10) == "000004"  # 3 entries + 1 addenda
    assert f(control, 11, 20) == "0005800962"  # 01100001 + 02100002 + 02600959
    assert f(control, 21, 32) == "000000112550"  # 125.50 + 1000.00
    assert f(control, 33, 44) == "000000004207"
    assert f(control, 45, 54) == "1410012345"
    assert f(control, 55, 73) == " " * 19
    assert f(control, 74, 79) == " " * 6
    assert f(control, 80, 87) == "09100001"
    assert f(control, 88, 94) == "0000001"


def test_ppd_second_batch_and_file_control_fields() -> None:
    lines = records_of((GOLDEN / "ppd_debits_credits.ach").read_text())
    header, savings_credit, prenote, control, file_control = lines[7:12]
    assert (f(header, 2, 4), f(header, 54, 63), f(header, 88, 94)) == ("220", "REFUND    ", "0000002")
    assert (f(savings_credit, 2, 3), f(savings_credit, 30, 39), f(savings_credit, 80, 94)) == (
        "32",
        "0000000001",
        "091000010000004",
    )
    assert f(savings_credit, 40, 54) == " " * 15
    assert (f(prenote, 2, 3), f(prenote, 30, 39), f(prenote, 80, 94)) == ("23", "0000000000", "091000010000005")
    assert f(control, 2, 4) == "220"
    assert f(control, 5, 10) == "000002"
    assert f(control, 11, 20) == "0023300068"  # 11100002 + 12200066
    assert f(control, 21, 32) == "000000000000"
    assert f(control, 33, 44) == "000000000001"
    assert f(control, 88, 94) == "0000002"

    assert f(file_control, 1, 1) == "9"
    assert f(file_control, 2, 7) == "000002"  # batches
    assert f(file_control, 8, 13) == "000002"  # 12 records -> 2 blocks of 10
    assert f(file_control, 14, 21) == "00000006"
    assert f(file_control, 22, 31) == "0029101030"  # 5800962 + 23300068
    assert f(file_control, 32, 43) == "000000112550"
    assert f(file_control, 44, 55) == "000000004208"
    assert f(file_control, 56, 94) == " " * 39
    assert lines[12:] == [PADDING_RECORD] * 8


def test_ccd_fields() -> None:
    lines = records_of((GOLDEN / "ccd_credit.ach").read_text())
    assert len(lines) == 10
    header, batch_header, entry, addenda, control, file_control = lines[:6]
    assert (f(header, 30, 33), f(header, 34, 34)) == ("1415", "B")
    assert (f(batch_header, 2, 4), f(batch_header, 51, 53), f(batch_header, 54, 63)) == ("220", "CCD", "VENDOR PAY")
    assert f(entry, 2, 3) == "22"
    assert f(entry, 4, 12) == "071000013"
    assert f(entry, 13, 29) == "4455667788       "
    assert f(entry, 30, 39) == "0001525000"
    assert f(entry, 40, 54) == "INV-2026-0042  "  # identification number
    assert f(entry, 55, 76) == "WIDGET SUPPLY LLC     "  # receiving company name
    assert f(entry, 79, 79) == "1"
    assert f(addenda, 1, 3) == "705"
    assert f(addenda, 4, 83) == "RMR*IV*0042*15250.00\\".ljust(80)
    assert (f(addenda, 84, 87), f(addenda, 88, 94)) == ("0001", "0000001")
    assert (f(control, 5, 10), f(control, 11, 20), f(control, 33, 44)) == ("000002", "0007100001", "000001525000")
    assert (f(file_control, 2, 7), f(file_control, 8, 13), f(file_control, 14, 21)) == ("000001", "000001", "00000002")
    assert lines[6:] == [PADDING_RECORD] * 4


def test_web_fields() -> None:
    lines = records_of((GOLDEN / "web_debit.ach").read_text())
    batch_header, single, recurring, control = lines[1:5]
    assert (f(batch_header, 2, 4), f(batch_header, 51, 53)) == ("225", "WEB")
    assert f(single, 77, 78) == "S "  # payment type code: single
    assert f(recurring, 77, 78) == "R "  # recurring
    assert (f(single, 2, 3), f(recurring, 2, 3)) == ("27", "37")
    assert (f(control, 2, 4), f(control, 11, 20), f(control, 21, 32), f(control, 33, 44)) == (
        "225",
        "0033327163",
        "000000006499",
        "000000000000",
    )


def test_return_fields() -> None:
    lines = records_of((GOLDEN / "return_r01.ach").read_text())
    header, batch_header, entry, addenda, control, file_control = lines[:6]
    assert (f(header, 4, 13), f(header, 14, 23), f(header, 24, 33)) == (" 091000019", " 011000015", "2603040800")
    assert f(header, 64, 86) == "SANDBOX RDFI".ljust(23)
    assert f(batch_header, 2, 4) == "225"
    assert (f(batch_header, 5, 20), f(batch_header, 41, 50)) == ("ACME CREDIT UNIO", "1410012345")
    assert (f(batch_header, 70, 75), f(batch_header, 80, 87)) == ("260305", "01100001")  # the RDFI originates it
    assert f(entry, 2, 3) == "26"  # return of a checking debit (27)
    assert f(entry, 4, 12) == "091000019"  # back to the original ODFI
    assert (f(entry, 13, 29), f(entry, 30, 39)) == ("12345678         ", "0000012550")
    assert (f(entry, 79, 79), f(entry, 80, 94)) == ("1", "011000010000001")
    assert f(addenda, 1, 3) == "799"
    assert f(addenda, 4, 6) == "R01"
    assert f(addenda, 7, 21) == "091000010000001"  # original trace
    assert f(addenda, 22, 27) == " " * 6  # date of death
    assert f(addenda, 28, 35) == "01100001"  # original RDFI
    assert f(addenda, 36, 79) == " " * 44
    assert f(addenda, 80, 94) == "011000010000001"
    assert (f(control, 5, 10), f(control, 11, 20), f(control, 21, 32)) == ("000002", "0009100001", "000000012550")
    assert (f(file_control, 2, 7), f(file_control, 14, 21)) == ("000001", "00000002")

    ra = parse_return_addenda(addenda)
    assert ra == ReturnAddenda(
        return_code="R01", original_trace="091000010000001", original_rdfi="01100001", trace_number="011000010000001"
    )
    returned = parse(Path(GOLDEN / "return_r01.ach").read_text())
    assert returned.batches[0].entries[0].return_addenda == ra


# --- returns ------------------------------------------------------------------------------------------


def test_return_addenda_round_trip_with_date_of_death() -> None:
    ra = ReturnAddenda(
        return_code="r15",
        original_trace="091000010000042",
        original_rdfi="02100002",
        trace_number="021000020000007",
        date_of_death=date(2026, 1, 31),
        addenda_information="beneficiary deceased",
    )
    record = write_return_addenda(ra)
    assert len(record) == 94
    assert (f(record, 4, 6), f(record, 22, 27)) == ("R15", "260131")
    assert f(record, 36, 79) == "BENEFICIARY DECEASED".ljust(44)
    assert parse_return_addenda(record) == ra


def test_return_codes_map_each_transaction_code() -> None:
    assert [TC(c).return_code for c in (22, 23, 27, 28, 32, 33, 37, 38)] == [21, 21, 26, 26, 31, 31, 36, 36]


def test_build_return_file_rejects_unknown_and_duplicate_traces() -> None:
    kwargs: dict[str, Any] = dict(
        returning_dfi_routing="011000015",
        returning_dfi_name="RDFI",
        effective_entry_date=date(2026, 3, 5),
        creation_date=date(2026, 3, 4),
        creation_time=None,
    )
    with pytest.raises(NachaError, match="no entry"):
        build_return_file(ppd_file(), [ReturnSpec(original_trace="091000019999999", return_code="R01")], **kwargs)
    twice = [ReturnSpec(original_trace="091000010000001", return_code="R01")] * 2
    with pytest.raises(NachaError, match="only once"):
        build_return_file(ppd_file(), twice, **kwargs)
    with pytest.raises(NachaError, match="R01"):
        build_return_file(ppd_file(), [ReturnSpec(original_trace="091000010000001", return_code="X1")], **kwargs)


def test_parse_rejects_return_entry_without_addenda() -> None:
    lines = records_of((GOLDEN / "return_r01.ach").read_text())
    lines[2] = lines[2][:78] + "0" + lines[2][79:]  # clear the addenda indicator
    del lines[3]
    with pytest.raises(NachaError):
        parse("\n".join(lines))


# --- entry hash, service class ------------------------------------------------------------------------


def test_entry_hash_keeps_last_ten_digits() -> None:
    routing = "99999999" + check_digit("99999999")
    entries = [
        EntrySpec(
            transaction_code=TC.CHECKING_CREDIT,
            rdfi_routing=routing,
            account_number=str(i),
            amount=Decimal("1.00"),
            individual_name="X",
        )
        for i in range(101)
    ]
    nacha = _file(
        [
            BatchSpec(
                sec_code=SecCode.PPD, entry_description="HASH", effective_entry_date=date(2026, 3, 3), entries=entries
            )
        ],
        created=time(0, 0),
        modifier="Z",
    )
    lines = records_of(write(nacha))
    # 101 * 99999999 = 10_099_999_899: only the last 10 digits are kept
    batch_control, file_control = lines[103], lines[104]
    assert f(batch_control, 11, 20) == "0099999899"
    assert f(file_control, 22, 31) == "0099999899"
    assert f(file_control, 8, 13) == "000011"  # 105 records -> 11 blocks
    assert parse(write(nacha)) == nacha


def test_service_class_follows_the_entries() -> None:
    assert [b.service_class_code for b in ppd_file().batches] == [ServiceClass.MIXED, ServiceClass.CREDITS_ONLY]
    assert web_file().batches[0].service_class_code == ServiceClass.DEBITS_ONLY


# --- rejected inputs ----------------------------------------------------------------------------------


def entry(**changes) -> Entry:
    fields: dict[str, Any] = dict(
        transaction_code=TC.CHECKING_DEBIT,
        rdfi_routing="011000015",
        account_number="12345678",
        amount=Decimal("10.00"),
        individual_id="ID1",
        individual_name="Name",
        discretionary_data="",
        trace_number="091000010000001",
    )
    return Entry(**(fields | changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": 10.5}, "Decimal"),
        ({"amount": 10}, "Decimal"),
        ({"amount": Decimal("1.005")}, "2 decimal places"),
        ({"amount": Decimal("0")}, "greater than zero"),
        ({"amount": Decimal("-1.00")}, "non-negative"),
        ({"amount": Decimal("NaN")}, "finite"),
        ({"amount": Decimal("100000000.00")}, "exceeds"),
        ({"rdfi_routing": "011000016"}, "routing"),
        ({"rdfi_routing": "01100001"}, "routing"),
        ({"transaction_code": 24}, "transaction code"),
        ({"transaction_code": TC.CHECKING_PRENOTE_DEBIT}, "zero amount"),
        ({"account_number": "1" * 18}, "account number"),
        ({"account_number": ""}, "account number"),
        ({"individual_id": "X" * 16}, "individual id"),
        ({"discretionary_data": "ABC"}, "discretionary"),
        ({"trace_number": "12345"}, "trace number"),
        ({"transaction_code": TC.CHECKING_RETURN_DEBIT}, "return addenda"),
    ],
)
def test_entry_rejects_bad_input(changes: dict, message: str) -> None:
    with pytest.raises(NachaError, match=message):
        entry(**changes)


def test_amount_is_stored_in_cents_and_text_is_normalized() -> None:
    e = entry(
        amount=Decimal("7.1"),
        individual_name="  Zoë  O'Brien-Ångström the Third ",
        account_number=" ab-12 ",
        addenda=("tab\there ✓",),
    )
    assert str(e.amount) == "7.10"
    # Names longer than their field are truncated (display text); identifiers are rejected instead.
    assert e.individual_name == "ZOE  O'BRIEN-ANGSTROM"
    assert e.account_number == "AB-12"
    assert e.addenda == ("TAB HERE",)


def batch(*entries: Entry, **changes) -> Batch:
    fields: dict[str, Any] = dict(
        company_name="Acme",
        company_id=COMPANY_ID,
        sec_code="PPD",
        entry_description="TEST",
        effective_entry_date=date(2026, 3, 3),
        odfi_routing=ODFI,
        batch_number=1,
        entries=entries or (entry(),),
    )
    return Batch(**(fields | changes))


def test_batch_rules() -> None:
    with pytest.raises(NachaError, match="payment type"):
        batch(sec_code="WEB")
    assert batch(entry(discretionary_data="r"), sec_code="web").entries[0].discretionary_data == "R"
    batch(entry(transaction_code=TC.CHECKING_CREDIT), sec_code="WEB")  # WEB credits need no payment type
    with pytest.raises(NachaError, match="SEC code"):
        batch(sec_code="CTX")
    with pytest.raises(NachaError, match="ODFI"):
        batch(entry(trace_number="011000010000001"))
    with pytest.raises(NachaError, match="ascend"):
        batch(entry(trace_number="091000010000002"), entry(trace_number="091000010000001"))
    with pytest.raises(NachaError, match="at least one"):
        batch(entries=())
    with pytest.raises(NachaError, match="at most one addenda"):
        batch(entry(addenda=("A", "B")))
    with pytest.raises(NachaError, match="batch number"):
        batch(batch_number=0)
    with pytest.raises(NachaError, match="2000-2099"):
        batch(effective_entry_date=date(1999, 12, 31))


def test_file_rules() -> None:
    good = ppd_file()
    with pytest.raises(NachaError, match="modifier"):
        replace(good, file_id_modifier="a1")
    with pytest.raises(NachaError, match="modifier"):
        replace(good, file_id_modifier="*")
    with pytest.raises(NachaError, match="immediate destination"):
        replace(good, immediate_destination="091000018")
    with pytest.raises(NachaError, match="immediate origin"):
        replace(good, immediate_origin="12345678901")
    with pytest.raises(NachaError, match="batch numbers"):
        replace(good, batches=(good.batches[1], good.batches[0]))
    with pytest.raises(NachaError, match="unique"):
        replace(good, batches=(good.batches[0], replace(good.batches[0], batch_number=2)))
    assert replace(good, file_id_modifier="b").file_id_modifier == "B"
    assert replace(good, creation_time=time(9, 30, 59)).creation_time == time(9, 30)


# --- corrupt files ------------------------------------------------------------------------------------


def golden_lines() -> list[str]:
    return records_of((GOLDEN / "ppd_debits_credits.ach").read_text())


def with_field(lines: list[str], line_number: int, start: int, end: int, value: str) -> str:
    lines = list(lines)
    line = lines[line_number - 1]
    assert len(value) == end - start + 1
    lines[line_number - 1] = line[: start - 1] + value + line[end:]
    return "\n".join(lines) + "\n"


def parse_error(text: str) -> NachaError:
    with pytest.raises(NachaError) as caught:
        parse(text)
    return caught.value


def test_parse_accepts_crlf_no_final_newline_and_no_line_breaks() -> None:
    lines = golden_lines()
    expected = ppd_file()
    assert parse("\r\n".join(lines) + "\r\n") == expected
    assert parse("\n".join(lines)) == expected
    assert parse("".join(lines)) == expected


def test_parse_errors_name_the_line() -> None:
    lines = golden_lines()

    short = list(lines)
    short[3] = short[3][:-1]
    error = parse_error("\n".join(short))
    assert error.line_number == 4 and "93 characters" in error.message

    error = parse_error(with_field(lines, 7, 33, 44, "000000004208"))  # batch total credit
    assert error.line_number == 7 and "total credit" in error.message

    error = parse_error(with_field(lines, 7, 21, 32, "000000112551"))
    assert error.line_number == 7 and "total debit" in error.message

    error = parse_error(with_field(lines, 7, 11, 20, "0005800963"))
    assert error.line_number == 7 and "entry hash" in error.message

    error = parse_error(with_field(lines, 12, 22, 31, "0029101031"))
    assert error.line_number == 12 and "entry hash" in error.message

    error = parse_error(with_field(lines, 12, 44, 55, "000000004209"))
    assert error.line_number == 12 and "total credit" in error.message

    error = parse_error(with_field(lines, 12, 8, 13, "000003"))
    assert error.line_number == 12 and "block count" in error.message

    error = parse_error(with_field(lines, 7, 5, 10, "000005"))
    assert error.line_number == 7 and "count" in error.message

    error = parse_error(with_field(lines, 2, 2, 4, "220"))  # debits in a credits-only batch
    assert error.line_number == 2 and "service class" in error.message

    error = parse_error(with_field(lines, 3, 4, 12, "011000016"))  # bad check digit
    assert error.line_number == 3 and "routing" in error.message

    error = parse_error(with_field(lines, 3, 30, 39, "00000125X0"))
    assert error.line_number == 3 and "amount" in error.message

    error = parse_error(with_field(lines, 4, 84, 87, "0002"))
    assert error.line_number == 4 and "addenda sequence" in error.message

    error = parse_error(with_field(lines, 4, 2, 3, "02"))
    assert error.line_number == 4 and "addenda type" in error.message

    error = parse_error(with_field(lines, 5, 79, 79, "1"))  # says addenda, has none
    assert error.line_number == 5 and "addenda record indicator" in error.message

    error = parse_error(with_field(lines, 1, 35, 37, "095"))
    assert error.line_number == 1 and "record size" in error.message

    error = parse_error(with_field(lines, 2, 70, 75, "261301"))
    assert error.line_number == 2 and "effective entry date" in error.message


def test_parse_rejects_missing_or_wrong_padding() -> None:
    lines = golden_lines()
    error = parse_error("\n".join(lines[:12]))  # padding dropped
    assert "multiple of 10" in error.message
    error = parse_error("\n".join(lines[:-1]))  # one padding record short
    assert "multiple of 10" in error.message
    error = parse_error("\n".join(lines + [PADDING_RECORD] * 10))  # a whole block of padding too many
    assert "multiple of 10" in error.message
    broken = list(lines)
    broken[15] = "9" * 93 + "8"
    assert parse_error("\n".join(broken)).line_number == 16


def test_parse_rejects_records_out_of_order() -> None:
    lines = golden_lines()
    swapped = [lines[0], lines[2], lines[1], *lines[3:]]
    error = parse_error("\n".join(swapped))
    assert error.line_number == 2 and "record type" in error.message
    no_control = [line for i, line in enumerate(lines) if i != 6] + [PADDING_RECORD]
    error = parse_error("\n".join(no_control))
    assert error.line_number == 7 and "batch control" in error.message
    assert parse_error("").line_number == 1


# --- property: round trip -----------------------------------------------------------------------------

LIVE_CODES = [c for c in TC if not c.is_prenote and not c.is_return]
PRENOTE_CODES = [c for c in TC if c.is_prenote]

routings = st.text(string.digits, min_size=8, max_size=8).map(lambda p: p + check_digit(p))
amounts = st.integers(1, 9_999_999_999).map(lambda cents: Decimal(cents).scaleb(-2))
free_text = st.text(max_size=30)
identifiers = st.text(string.ascii_letters + string.digits + "-/ ", max_size=15)


@st.composite
def entry_specs(draw, sec_code: SecCode) -> EntrySpec:
    prenote = draw(st.integers(0, 9)) == 0  # about one entry in ten
    code = draw(st.sampled_from(PRENOTE_CODES if prenote else LIVE_CODES))
    if sec_code is SecCode.WEB and code.is_debit:
        discretionary = draw(st.sampled_from(["R", "S"]))
    else:
        discretionary = draw(st.text(string.ascii_uppercase + string.digits, max_size=2))
    return EntrySpec(
        transaction_code=code,
        rdfi_routing=draw(routings),
        account_number=draw(st.text(string.ascii_uppercase + string.digits + "-", min_size=1, max_size=17)),
        amount=Decimal("0.00") if prenote else draw(amounts),
        individual_id=draw(identifiers),
        individual_name=draw(free_text),
        discretionary_data=discretionary,
        addenda_info=draw(st.none() | st.text(max_size=100)),
    )


@st.composite
def batch_specs(draw) -> BatchSpec:
    sec_code = draw(st.sampled_from(list(SecCode)))
    return BatchSpec(
        sec_code=sec_code,
        entry_description=draw(free_text),
        effective_entry_date=draw(st.dates(date(2000, 1, 1), date(2099, 12, 31))),
        entries=draw(st.lists(entry_specs(sec_code), min_size=1, max_size=30)),
        company_discretionary_data=draw(free_text),
        descriptive_date=draw(st.text(max_size=8)),
    )


@st.composite
def nacha_files(draw) -> NachaFile:
    return build_file(
        odfi_routing=draw(routings),
        odfi_name=draw(free_text),
        company_id=draw(st.text(string.digits + string.ascii_uppercase, min_size=1, max_size=10)),
        company_name=draw(free_text),
        creation_date=draw(st.dates(date(2000, 1, 1), date(2099, 12, 31))),
        creation_time=draw(st.none() | st.times()),
        batches=draw(st.lists(batch_specs(), min_size=1, max_size=5)),
        file_id_modifier=draw(st.sampled_from(string.ascii_uppercase + string.digits)),
        reference_code=draw(st.text(max_size=10)),
        first_batch_number=draw(st.integers(1, 1000)),
        first_trace_sequence=draw(st.integers(1, 9_000_000)),
    )


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(nacha_files())
def test_round_trip(nacha: NachaFile) -> None:
    text = write(nacha)
    lines = records_of(text)
    assert all(len(line) == 94 for line in lines)
    assert len(lines) % 10 == 0
    assert parse(text) == nacha
    # Control totals, computed independently of the model's properties.
    control = next(line for line in lines if line[0] == "9")
    entries = [e for b in nacha.batches for e in b.entries]
    assert int(f(control, 32, 43)) == sum(int(e.amount * 100) for e in entries if e.transaction_code % 10 >= 6)
    assert int(f(control, 44, 55)) == sum(int(e.amount * 100) for e in entries if e.transaction_code % 10 <= 4)
    assert int(f(control, 22, 31)) == sum(int(e.rdfi_routing[:8]) for e in entries) % 10**10


@PROPERTY
@given(nacha_files(), st.data())
def test_return_file_round_trip(nacha: NachaFile, data) -> None:
    traces = [e.trace_number for b in nacha.batches for e in b.entries]
    chosen = data.draw(st.lists(st.sampled_from(traces), min_size=1, unique=True))
    specs = [
        ReturnSpec(original_trace=t, return_code=data.draw(st.from_regex(r"R[0-9]{2}", fullmatch=True))) for t in chosen
    ]
    returns = build_return_file(
        nacha,
        specs,
        returning_dfi_routing=data.draw(routings),
        returning_dfi_name="RDFI",
        effective_entry_date=date(2030, 1, 2),
        creation_date=date(2030, 1, 2),
        creation_time=time(6, 0),
    )
    assert parse(write(returns)) == returns
    returned = {e.return_addenda.original_trace: e for b in returns.batches for e in b.entries}  # type: ignore[union-attr]  # a return file's entries all have one
    assert set(returned) == set(chosen)
    for _, original in nacha.iter_entries():
        if original.trace_number in returned:
            back = returned[original.trace_number]
            assert back.amount == original.amount
            assert back.transaction_code == original.transaction_code.return_code


def _regenerate() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, make in GOLDEN_FILES.items():
        (GOLDEN / name).write_text(write(make()))
        print("wrote", GOLDEN / name)


if __name__ == "__main__":
    _regenerate()
