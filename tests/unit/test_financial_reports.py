"""The financial statements' assembly (finance/reports.py), the format choice of the API, and the renderers
(documents/reports.py): CSV and XLSX read back, the PDF opens."""

import csv
import io
import uuid
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from pypdf import PdfReader

from api.routers.reports import Format, chosen_format
from documents.reports import CONTENT_TYPES, render
from finance import reports as fin

D = Decimal
BANK = fin.Scope(org_id=None, name="All organizations (bank-wide)")
ORG = fin.Scope(org_id=uuid.UUID(int=7), name="Acme Credit Union")
DAY = date(2026, 11, 30)


def gl(code: str, kind: str, amount: str) -> fin.Line:
    return fin.classify("gl", code, kind, code.title(), D(amount))


def member(account_type: str, amount: str) -> fin.Line:
    return fin.classify("internal", None, account_type, "ignored", D(amount))


def ledger() -> list[fin.Line]:
    """Balances after: a 1,000.00 cash deposit; a 5,000.00 loan disbursed into checking; a repayment of 300.00
    (250.00 principal, 50.00 interest) from checking; 12.00 of savings interest paid; 100.00 moved to savings;
    an ACH debit of 400.00 pulled into checking, still in clearing."""
    return [
        gl("GL-CASH", "asset", "1000.00"),
        gl("GL-ACH-CLEARING", "asset", "400.00"),
        member("loan", "4750.00"),
        member("checking", "-6000.00"),  # 1000 + 5000 - 300 - 100 + 400, a credit balance
        member("savings", "-112.00"),
        gl("GL-INTEREST-INCOME", "income", "-50.00"),
        gl("GL-INTEREST-EXPENSE", "expense", "12.00"),
        member("savings", "0.00"),
    ]


def test_member_accounts_are_control_lines_and_gl_accounts_stand_for_themselves():
    assert member("checking", "-1.00").model_dump() == {
        "key": "MEMBER-CHECKING",
        "name": "Member deposits: checking",
        "category": fin.Category.liability,
        "amount": D("-1.00"),
    }
    assert member("loan", "1.00").category == fin.Category.asset
    assert gl("GL-FEE-INCOME", "income", "-2.00").category == fin.Category.income
    assert fin.classify("INTER-ORG", None, "inter_org", "x", D("3.00")).category == fin.Category.inter_org
    with pytest.raises(ValueError):
        fin.classify("gl", "GL-ODD", "suspense", "Odd", D(1))  # a GL type the statements do not know


def test_trial_balance_debits_equal_credits_and_leaves_out_zero_lines():
    report = fin.trial_balance(BANK, DAY, ledger())
    assert report.balanced and report.total_debit == report.total_credit == D("6162.00")
    assert [r.key for r in report.rows] == [
        "GL-ACH-CLEARING",
        "GL-CASH",
        "MEMBER-LOAN",
        "MEMBER-CHECKING",
        "MEMBER-SAVINGS",
        "GL-INTEREST-INCOME",
        "GL-INTEREST-EXPENSE",
    ]
    checking = next(r for r in report.rows if r.key == "MEMBER-CHECKING")
    assert (checking.debit, checking.credit) == (D("0.00"), D("6000.00"))
    unbalanced = fin.trial_balance(BANK, DAY, [*ledger(), gl("GL-CASH", "asset", "0.01")])
    assert not unbalanced.balanced


def test_balance_sheet_balances_with_net_income_in_equity():
    report = fin.balance_sheet(BANK, DAY, ledger(), current_year_income=D("30.00"))
    assert report.total_assets == D("6150.00")
    assert report.total_liabilities == D("6112.00")
    # 38.00 earned in all (50 - 12): 30.00 of it this year, 8.00 before.
    assert [(r.key, r.amount) for r in report.equity] == [
        (fin.RETAINED_EARNINGS, D("8.00")),
        (fin.CURRENT_EARNINGS, D("30.00")),
    ]
    assert report.balanced and report.total_assets == report.total_liabilities + report.total_equity


def test_an_organizations_inter_org_balance_is_an_asset_or_a_liability_by_its_side():
    owed_to_others = [member("checking", "-100.00"), fin.classify("INTER-ORG", None, "inter_org", "", D("100.00"))]
    report = fin.balance_sheet(ORG, DAY, owed_to_others, D(0))
    assert [r.key for r in report.assets] == ["INTER-ORG"] and report.balanced
    owed_by_others = [member("loan", "100.00"), fin.classify("INTER-ORG", None, "inter_org", "", D("-100.00"))]
    report = fin.balance_sheet(ORG, DAY, owed_by_others, D(0))
    assert [(r.key, r.amount) for r in report.liabilities] == [("INTER-ORG", D("100.00"))] and report.balanced


def test_income_statement_shows_income_and_expenses_positive():
    report = fin.income_statement(BANK, date(2026, 1, 1), DAY, ledger())
    assert [(r.key, r.amount) for r in report.income] == [("GL-INTEREST-INCOME", D("50.00"))]
    assert [(r.key, r.amount) for r in report.expenses] == [("GL-INTEREST-EXPENSE", D("12.00"))]
    assert report.net_income == D("38.00")


def test_cash_flow_by_the_indirect_method_reconciles_to_the_change_in_cash():
    report = fin.cash_flow(BANK, date(2026, 1, 1), DAY, ledger(), opening_cash=D("250.00"))
    assert report.net_income == D("38.00")
    assert [(r.key, r.amount) for r in report.operating] == [("GL-ACH-CLEARING", D("-400.00"))]
    assert [(r.key, r.amount) for r in report.investing] == [("MEMBER-LOAN", D("-4750.00"))]
    assert report.investing[0].name == "Loans to members: disbursed, net"
    assert [(r.key, r.amount) for r in report.financing] == [
        ("MEMBER-CHECKING", D("6000.00")),
        ("MEMBER-SAVINGS", D("112.00")),
    ]
    assert report.financing[0].name == "Member deposits: checking: increase"
    assert report.net_change == D("1000.00") and report.reconciles
    assert (report.opening_cash, report.closing_cash) == (D("250.00"), D("1250.00"))
    broken = fin.cash_flow(BANK, date(2026, 1, 1), DAY, ledger()[:-2], opening_cash=D(0))  # an unbalanced input
    assert not broken.reconciles


def test_the_format_is_the_parameter_then_the_accept_header_then_json():
    assert chosen_format(Format.pdf, "text/csv") == Format.pdf
    assert chosen_format(None, "text/html, text/csv;q=0.9") == Format.csv
    assert chosen_format(None, CONTENT_TYPES["xlsx"]) == Format.xlsx
    assert chosen_format(None, "application/json") == chosen_format(None, None) == Format.json


def table() -> fin.ReportTable:
    return fin.balance_sheet_table(fin.balance_sheet(ORG, DAY, ledger(), D("30.00")))


def test_csv_reads_back_with_exact_amounts():
    rows = list(csv.reader(io.StringIO(render(table(), "csv").decode())))
    assert rows[0] == ["Balance sheet"] and rows[1] == ["Acme Credit Union, as of 2026-11-30"]
    assert rows[2] == ["Line", "Amount", "Style"]
    by_label = {row[0]: row[1:] for row in rows[3:]}
    assert by_label["Assets"] == ["", "heading"]
    assert by_label["Total assets"] == ["6150.00", "total"]
    assert by_label["Total liabilities and equity"] == ["6150.00", "total"]
    assert by_label["Member deposits: checking (MEMBER-CHECKING)"] == ["6000.00", "line"]


def test_xlsx_reads_back():
    book = openpyxl.load_workbook(io.BytesIO(render(table(), "xlsx")))
    sheet = book.active
    assert sheet is not None and sheet.title == "Balance sheet"
    values = {row[0]: row[1] for row in sheet.iter_rows(min_row=4, values_only=True)}
    assert D(str(values["Total assets"])) == D("6150.00")
    assert D(str(values["Net income of 2026 to date (CURRENT-EARNINGS)"])) == D("30.00")
    assert sheet["B5"].number_format == "#,##0.00;-#,##0.00"


def test_pdf_opens_and_shows_the_totals():
    pdf = render(table(), "pdf")
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Balance sheet" in text and "Acme Credit Union" in text
    assert "Total assets" in text and "$6,150.00" in text
    assert render(table(), "pdf") == pdf  # deterministic


async def test_loan_budget_and_forecast_reports_refuse_another_currency_before_reading_anything():
    from domain import reports

    for kind in reports.USD_ONLY:
        with pytest.raises(reports.CurrencyNotSupported):
            await reports.build(None, BANK, kind, reports.ReportParams(currency="eur"), date(2026, 10, 31))  # type: ignore[arg-type]
