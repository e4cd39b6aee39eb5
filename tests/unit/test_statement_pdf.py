import io
from datetime import date
from decimal import Decimal as D

import pytest
from pydantic import ValidationError
from pypdf import PdfReader

from documents.statement import StatementData, StatementLine, render_statement
from models.statements import period_bounds


def statement(**overrides) -> StatementData:
    lines = (
        StatementLine(
            effective_date=date(2026, 10, 3),
            description="Payroll <ACME & Co>",
            amount=D("2500.00"),
            balance=D("3500.00"),
        ),
        StatementLine(effective_date=date(2026, 10, 9), description="Rent", amount=D("-1200.50"), balance=D("2299.50")),
        StatementLine(
            effective_date=date(2026, 10, 31),
            description="Interest for 2026-10",
            amount=D("4.11"),
            balance=D("2303.61"),
            is_interest=True,
        ),
    )
    fields = dict(
        institution="Riverbend Credit Union",
        account_name="Everyday checking",
        account_number="****1a2b",
        account_type="checking",
        owner_name="Jane O'Brien",
        period="2026-10",
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        opening_balance=D("1000.00"),
        closing_balance=D("2303.61"),
        interest=D("4.11"),
        lines=lines,
        generated_on=date(2026, 11, 1),
    )
    return StatementData(**(fields | overrides))


def text_of(pdf: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)


def test_statement_shows_header_summary_entries_and_running_balances():
    text = text_of(render_statement(statement()))
    assert "Riverbend Credit Union" in text
    assert "Everyday checking (checking)" in text
    assert "Account number ****1a2b" in text
    assert "Owner Jane O'Brien" in text
    assert "Statement period Oct 1, 2026 to Oct 31, 2026" in text
    assert "Opening balance $1,000.00" in text
    assert "Money in $2,500.00" in text
    assert "Money out -$1,200.50" in text
    assert "Interest paid $4.11" in text
    assert "Closing balance $2,303.61" in text
    assert "Oct 3, 2026 Payroll <ACME & Co> $2,500.00 $3,500.00" in text
    assert "Oct 9, 2026 Rent -$1,200.50 $2,299.50" in text
    assert "Oct 31, 2026 Interest for 2026-10 $4.11 $2,303.61" in text
    assert "Oct 31, 2026 Closing balance $2,303.61" in text


def test_same_data_renders_the_same_bytes():
    assert render_statement(statement()) == render_statement(statement())


def test_many_entries_run_over_pages():
    lines, balance = [], D("0.00")
    for i in range(120):
        balance += D("1.00")
        lines.append(
            StatementLine(
                effective_date=date(2026, 10, 1 + i % 28), description=f"Entry {i}", amount=D("1.00"), balance=balance
            )
        )
    pdf = render_statement(
        statement(opening_balance=D("0.00"), closing_balance=D("120.00"), interest=D("0.00"), lines=tuple(lines))
    )
    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 3
    assert "Page 1 of" in text_of(pdf)


def test_a_statement_that_does_not_add_up_is_refused():
    with pytest.raises(ValidationError, match="not the closing balance"):
        statement(closing_balance=D("2303.60"))
    with pytest.raises(ValidationError, match="running balance"):
        statement(opening_balance=D("999.00"), closing_balance=D("2302.61"))
    with pytest.raises(ValidationError, match="interest"):
        statement(interest=D("0.00"))
    with pytest.raises(ValidationError, match="outside"):
        statement(period_end=date(2026, 10, 30))


def test_empty_period_prints_no_activity():
    text = text_of(render_statement(statement(closing_balance=D("1000.00"), interest=D("0.00"), lines=())))
    assert "No activity this period." in text
    assert "Closing balance $1,000.00" in text


@pytest.mark.parametrize(
    "period,bounds",
    [
        ("2026-02", (date(2026, 2, 1), date(2026, 2, 28))),
        ("2028-02", (date(2028, 2, 1), date(2028, 2, 29))),
        ("2026-12", (date(2026, 12, 1), date(2026, 12, 31))),
    ],
)
def test_period_bounds(period, bounds):
    assert period_bounds(period) == bounds


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "2026-1", "26-01", "2026-01-01", "abcd-ef", "0000-01"])
def test_malformed_periods(period):
    with pytest.raises(ValueError):
        period_bounds(period)


def test_an_account_in_another_currency_prints_its_amounts_in_it():
    text = text_of(render_statement(statement(currency="EUR")))
    assert "Currency EUR" in text
    assert "Opening balance 1,000.00 EUR" in text
    assert "Money out -1,200.50 EUR" in text
    assert "$" not in text
