"""The bank statement parsers (finance/bank_statements.py): CSV and camt.053 into one shape, the statement's identity,
and every refusal a clear code (hostile XML above all)."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.bank_statements import (
    StatementError,
    StatementFormat,
    csv_identity,
    parse,
    parse_bai2,
    parse_camt053,
    parse_csv,
    workflow_key,
)
from tests.bank_statement_files import Entry, bai2_statement, camt053, csv_statement

DAY = date(2026, 11, 30)
ENTRIES = [
    Entry(Decimal("125.00"), DAY, "ACH debit PPD", "091000010000042", "First Platypus Bank"),
    Entry(Decimal("-15.00"), DAY, "Monthly service fee", "", "The Bank"),
    Entry(Decimal("310.17"), date(2026, 12, 1), "Cash deposit branch 7", "", "ACME"),
]


def refused(code: str, fn, *args) -> StatementError:
    with pytest.raises(StatementError) as caught:
        fn(*args)
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_camt053_lines_are_signed_dated_and_referenced():
    statement = parse(camt053("STMT-2026-11-30-001", ENTRIES, opening=Decimal("1000.00")), StatementFormat.camt053, 100)
    assert statement.statement_id == "STMT-2026-11-30-001" and statement.currency == "USD"
    assert statement.opening_balance == Decimal("1000.00") and statement.closing_balance == Decimal("1420.17")
    assert (statement.period_start, statement.period_end) == (DAY, date(2026, 12, 1))
    assert statement.account_identifier == "123456789"
    first, fee, deposit = statement.lines
    assert (first.line_no, first.amount, first.reference, first.counterparty) == (
        1,
        Decimal("125.00"),
        "091000010000042",
        "First Platypus Bank",
    )
    assert first.description == "ACH debit PPD" and first.value_date == DAY
    # A debit without a clearing reference keeps the bank's own reference; its counterparty is the creditor.
    assert fee.amount == Decimal("-15.00") and fee.reference.startswith("BANKREF-") and fee.counterparty == "The Bank"
    assert deposit.amount == Decimal("310.17") and deposit.value_date == date(2026, 12, 1)


def test_camt053_skips_entries_not_booked_and_reads_every_version():
    entries = [*ENTRIES, Entry(Decimal("99.99"), DAY, "pending", status="PDNG")]
    for version in ("02", "08", "13"):
        document = camt053("S1", entries, namespace=f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}")
        assert [line.amount for line in parse_camt053(document).lines] == [e.amount for e in ENTRIES]


def test_camt053_refusals():
    refused(
        "not_camt053", parse_camt053, camt053("S", ENTRIES, namespace="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08")
    )
    refused("invalid_xml", parse_camt053, "<Document><unclosed></Document>")
    refused("invalid_xml", parse_camt053, "not xml at all")
    refused("invalid_xml", parse_camt053, '<?xml version="1.0" encoding="no-such"?><Document/>')
    two = camt053("S", ENTRIES).replace("</Stmt>", "</Stmt><Stmt><Id>T</Id></Stmt>", 1)
    refused("one_statement_per_file", parse_camt053, two)
    refused("missing_statement_id", parse_camt053, camt053("S", ENTRIES).replace("<Id>S</Id>", "<Id></Id>", 1))
    refused("invalid_amount", parse_camt053, camt053("S", ENTRIES).replace(">125.00<", ">12,5<"))
    refused("invalid_amount", parse_camt053, camt053("S", ENTRIES).replace(">125.00<", ">-125.00<"))
    refused("invalid_date", parse_camt053, camt053("S", ENTRIES).replace("2026-12-01", "2026-13-01"))
    refused(
        "invalid_entry",
        parse_camt053,
        camt053("S", ENTRIES).replace("<CdtDbtInd>CRDT</CdtDbtInd><Sts>", "<CdtDbtInd>X</CdtDbtInd><Sts>", 1),
    )
    mixed = camt053("S", ENTRIES).replace('<Amt Ccy="USD">15.00', '<Amt Ccy="EUR">15.00')
    refused("mixed_currencies", parse_camt053, mixed)
    unbalanced = camt053("S", ENTRIES).replace(">420.17<", ">420.18<")  # the closing balance a cent off
    assert ">420.18<" in unbalanced
    refused("balances_do_not_add_up", parse, unbalanced, StatementFormat.camt053, 100)
    refused("statement_empty", parse, camt053("S", []), StatementFormat.camt053, 100)
    refused("too_many_lines", parse, camt053("S", ENTRIES), StatementFormat.camt053, 2)


def test_hostile_xml_is_refused_before_anything_is_built():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt><Id>&lol2;</Id>'
        "</Stmt></BkToCstmrStmt></Document>"
    )
    refused("unsafe_xml", parse_camt053, laughs)
    external = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><x>&xxe;</x></Document>'
    )
    refused("unsafe_xml", parse_camt053, external)


def test_csv_columns_in_any_order_and_identity_by_content():
    text = csv_statement(ENTRIES)
    statement = parse(text, StatementFormat.csv, 100)
    assert [(line.amount, line.reference) for line in statement.lines] == [(e.amount, e.reference) for e in ENTRIES]
    assert statement.lines[2].description == "Cash deposit branch 7" and statement.lines[0].counterparty
    assert statement.statement_id == csv_identity(text.replace("\r\n", "\n")) == csv_identity("\ufeff" + text)
    assert statement.statement_id != csv_identity(text.replace("310.17", "310.18"))
    reordered = "Amount,Date\n-1.50,2026-11-30\n"
    assert parse_csv(reordered).lines[0].amount == Decimal("-1.50")


def test_csv_refusals():
    refused("missing_columns", parse_csv, "date,description\n2026-11-30,x\n")
    refused("unknown_columns", parse_csv, "date,amount,colour\n2026-11-30,1.00,red\n")
    refused("unknown_columns", parse_csv, "date,amount,amount\n2026-11-30,1.00,2.00\n")
    refused("invalid_csv", parse_csv, "date,amount\n2026-11-30\n")
    refused("invalid_csv", parse_csv, "date,amount\n2026-11-30,1\x00.00\n")
    error = refused("invalid_amount", parse_csv, "date,amount\n2026-11-30,1.00\n2026-11-30,1.005\n")
    assert error.details == {"line": 2}
    refused("invalid_amount", parse_csv, "date,amount\n2026-11-30,0.00\n")
    refused("invalid_amount", parse_csv, "date,amount\n2026-11-30,1e3\n")
    refused("invalid_date", parse_csv, "date,amount\n30/11/2026,1.00\n")
    refused("invalid_date", parse_csv, "date,amount\n1899-12-31,1.00\n")
    refused("statement_empty", parse_csv, "")
    refused("statement_empty", parse, "date,amount\n", StatementFormat.csv, 10)


def test_text_is_one_clean_bounded_line():
    line = parse_csv('date,amount,description\n2026-11-30,1.00,"a\tb  c' + "x" * 600 + '"\n').lines[0]
    assert line.description.startswith("a b c") and len(line.description) == 500


def test_bai2_lines_in_cents_signed_by_type_code_and_identified_by_sender_day_and_file_id():
    text = bai2_statement("F42", ENTRIES, opening=Decimal("1000.00"))
    statement = parse(text, StatementFormat.bai2, 100)
    assert statement.statement_id == "bai2-121000248-20261130-F42" and statement.currency == "USD"
    assert (statement.opening_balance, statement.closing_balance) == (Decimal("1000.00"), Decimal("1420.17"))
    assert [(line.amount, line.reference) for line in statement.lines] == [
        (Decimal("125.00"), "091000010000042"),
        (Decimal("-15.00"), "BANKREF2"),  # no customer reference: the bank's
        (Decimal("310.17"), "BANKREF3"),
    ]
    assert str(statement.lines[0].amount) == "125.00" and statement.lines[1].description == "Monthly service fee"
    assert statement.lines[2].value_date == DAY  # the group's as-of date


def test_bai2_refusals():
    text = bai2_statement("F42", ENTRIES)
    refused("invalid_bai2", parse_bai2, text.replace("49,", "49,1", 1))  # an account control total off
    refused("invalid_bai2", parse_bai2, text.replace("99,", "99,7", 1))  # a file control total off
    refused("invalid_bai2", parse_bai2, text.replace(",2/\n02", ",3/\n02", 1))  # BAI version 3
    refused("invalid_bai2", parse_bai2, "01,only a header/\n")
    refused("invalid_bai2", parse_bai2, "no records at all")
    refused("invalid_bai2", parse_bai2, "")
    lines = text.splitlines()
    account = [line for line in lines if line[:2] in ("03", "16", "49")]
    total = int(lines[-1].split(",")[1])
    two = [lines[0], lines[1], *account, *account, f"98,{2 * total},2,{2 * len(account) + 2}/"]
    two.append(f"99,{2 * total},1,{len(two) + 1}/")
    refused("one_statement_per_file", parse_bai2, "\n".join(two))
    refused("missing_statement_id", parse_bai2, text.replace(",F42,", ",,", 1))


def test_workflow_key_keeps_plain_ids_and_hashes_the_rest():
    assert workflow_key("STMT-2026-11-30.001_a") == "STMT-2026-11-30.001_a"
    odd, other = workflow_key("STMT/2026 11"), workflow_key("STMT 2026/11")
    assert odd.startswith("STMT_2026_11-") and odd != other
    assert len(workflow_key("x" * 140)) <= 100


def outcome(fn, *args):
    """(the result, None) or (None, the StatementError): anything else escapes and fails the test."""
    try:
        return fn(*args), None
    except StatementError as error:
        return None, error


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.sampled_from(list(StatementFormat)))
def test_any_text_parses_or_is_refused_with_a_code(content, fmt):
    """Whatever a client sends, the parser answers a statement or a StatementError (the API's 422), never a crash."""
    statement, error = outcome(parse, content, fmt, 100)
    assert (statement is not None and statement.lines) or (error is not None and error.code and error.message)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=5))
def test_csv_rows_of_any_cells_parse_or_are_refused(rows):
    statement, error = outcome(parse_csv, "date,amount\n" + "\n".join(",".join(row) for row in rows))
    assert statement is not None or (error is not None and error.code)
