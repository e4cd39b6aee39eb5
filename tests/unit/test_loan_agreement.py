import io
import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from pydantic import ValidationError
from pypdf import PdfReader

from documents.loan_agreement import AgreementData, render_loan_agreement
from finance.amortization import AmortizationMethod, Frequency, LoanTerms, build_schedule

SCHEDULE_HEADER = "No. Due date Payment Interest Principal Balance"


def agreement(principal="12000.00", rate="0.065", months=36, method=AmortizationMethod.DECLINING_BALANCE, **overrides):
    terms = LoanTerms(D(principal), D(rate), months, method, Frequency.MONTHLY, date(2026, 3, 31))
    schedule = build_schedule(terms)
    fields = dict(
        lender_name="Riverbend Credit Union",
        borrower_name="Jane O'Brien & <Sons>",
        borrower_id="M-000123",
        loan_id="LN-2026-000042",
        product_name="Personal loan",
        principal=terms.principal,
        annual_rate=terms.annual_rate,
        term_periods=months,
        frequency=terms.frequency,
        method=terms.method,
        day_count=None,
        first_due_date=terms.first_due_date,
        grace_days=10,
        late_fee=D("25.00"),
        disbursement_account="****6789",
        schedule=schedule.installments,
        total_interest=schedule.total_interest,
        total_of_payments=schedule.total_payments,
        generated_on=date(2026, 2, 27),
        approvals=["Level 1 loan officer: approved by Ann Lee on Feb 25, 2026"],
    )
    return AgreementData(**(fields | overrides))


def page_texts(pdf: bytes) -> list[str]:
    """Each page's text with all whitespace collapsed to single spaces (table cells come out one per line)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_agreement_shows_parties_disclosures_terms_schedule_and_clauses():
    text = " ".join(page_texts(render_loan_agreement(agreement())))

    assert "Riverbend Credit Union" in text
    assert "Jane O'Brien & <Sons> (member id M-000123)" in text
    assert "LN-2026-000042" in text
    # Truth-in-Lending box: APR, finance charge, amount financed, total of payments
    assert "6.500% $1,240.36 $12,000.00 $13,240.36" in text
    assert (
        "35 payments of $367.79 due monthly from Mar 31, 2026 to Jan 31, 2029; 1 payment of $367.71 due Feb 28, 2029"
        in text
    )
    assert "Principal $12,000.00" in text
    assert "Interest rate 6.500% a year" in text
    assert "Term 36 monthly installments" in text
    assert "Late fee $25.00" in text
    assert "****6789" in text
    assert SCHEDULE_HEADER in text
    assert "1 Mar 31, 2026 $367.79 $65.00 $302.79 $11,697.21" in text
    assert "36 Feb 28, 2029 $367.71 $1.98 $365.73 $0.00" in text
    assert "Total $13,240.36 $1,240.36 $12,000.00" in text
    assert "within 10 days after its due date, you will be charged a late fee of $25.00" in text
    assert "There is no penalty for prepayment." in text
    assert "Level 1 loan officer: approved by Ann Lee on Feb 25, 2026" in text
    assert "Signature Signature (authorized officer) Jane O'Brien & <Sons> Riverbend Credit Union Date Date" in text


def test_long_schedule_spans_pages_and_repeats_the_table_header():
    data = agreement(principal="200000.00", months=360)
    pages = page_texts(render_loan_agreement(data))

    assert len(pages) > 5
    schedule_pages = [text for text in pages if "$1,264.14" in text]  # the regular installment
    assert len(schedule_pages) > 5
    assert all(SCHEDULE_HEADER in text for text in schedule_pages)
    assert all(f"Page {number} of {len(pages)}" in text for number, text in enumerate(pages, start=1))
    assert "360 Feb 29, 2056 $1,259.56" in pages[-2] + pages[-1]


def test_same_data_renders_identical_bytes_even_after_a_round_trip_and_in_another_process():
    data = agreement()
    pdf = render_loan_agreement(data)

    assert render_loan_agreement(data) == pdf
    assert render_loan_agreement(AgreementData.model_validate_json(data.model_dump_json())) == pdf
    script = (
        "import sys; from documents.loan_agreement import AgreementData, render_loan_agreement; "
        "sys.stdout.buffer.write(render_loan_agreement(AgreementData.model_validate_json(sys.stdin.read())))"
    )
    other_process = subprocess.run(
        [sys.executable, "-c", script],
        input=data.model_dump_json().encode(),
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert other_process.stdout == pdf


def test_different_data_renders_different_bytes():
    assert render_loan_agreement(agreement()) != render_loan_agreement(agreement(borrower_name="John Roe"))


def test_output_is_a_valid_pdf():
    pdf = render_loan_agreement(agreement())

    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    assert len(reader.pages) >= 2
    assert reader.metadata.title == "Loan agreement LN-2026-000042"


def present_value(payments, periodic_rate):
    return sum(float(p) / (1 + periodic_rate) ** k for k, p in enumerate(payments, start=1))


@pytest.mark.parametrize("method", list(AmortizationMethod))
def test_apr_is_the_actuarial_rate_of_the_schedule(method):
    data = agreement(method=method)
    apr = data.annual_percentage_rate
    payments = [i.payment for i in data.schedule]

    # Discounting the payments at the APR gives back the amount financed (to the disclosed precision).
    assert present_value(payments, float(apr) / 12) == pytest.approx(12000, abs=1.0)
    if method is AmortizationMethod.FLAT:
        assert apr == D("0.11958")  # flat interest on the original principal costs far more than 6.5 %
        assert "11.958%" in page_texts(render_loan_agreement(data))[0]
    else:
        assert apr == D("0.06500")


def test_interest_free_loan_discloses_a_zero_apr():
    data = agreement(rate="0")
    assert data.annual_percentage_rate == 0
    assert "0.000% $0.00 $12,000.00 $12,000.00" in page_texts(render_loan_agreement(data))[0]


def test_totals_that_disagree_with_the_schedule_are_refused():
    with pytest.raises(ValidationError, match="total_interest"):
        agreement(total_interest=D("1240.35"))
    with pytest.raises(ValidationError, match="total_of_payments"):
        agreement(total_of_payments=D("13240.00"))
    with pytest.raises(ValidationError, match="repay the principal"):
        AgreementData(**(agreement().model_dump() | {"principal": D("12500.00")}))


def test_an_unmasked_disbursement_account_is_refused():
    with pytest.raises(ValidationError, match="masked"):
        agreement(disbursement_account="123456789")
