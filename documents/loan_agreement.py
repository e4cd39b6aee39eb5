"""The loan agreement PDF: parties, Truth-in-Lending disclosure box, terms, the full repayment schedule,
late-fee and prepayment clauses, approvals and signature lines.

``render_loan_agreement(data)`` is pure and deterministic: the same ``AgreementData`` always renders the
same bytes (reportlab's invariant mode fixes the creation date and document id), so a Temporal activity
that re-runs it stores an identical document. ``AgreementData`` is a frozen pydantic model, so it crosses
the activity boundary through the pydantic data converter unchanged.

The annual percentage rate is computed from the schedule by the actuarial method of Regulation Z,
Appendix J, with every installment one unit period apart and the first one a full period after
disbursement (the amount financed is the principal: no prepaid finance charges). On an equal-installment
or equal-principal loan it is the note rate; on a flat-interest loan it is much higher, as it must be.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from documents.pages import MARGIN, PAGE_WIDTH, RULE, format_date, numbered_canvas, running_header
from finance.amortization import AmortizationMethod, Frequency, Installment
from finance.daycount import DayCount
from finance.money import format_usd, is_money

__all__ = ["AgreementData", "annual_percentage_rate", "format_rate", "render_loan_agreement"]


class AgreementData(BaseModel):
    model_config = ConfigDict(frozen=True)

    lender_name: str
    borrower_name: str
    borrower_id: str
    loan_id: str
    product_name: str
    principal: Decimal
    annual_rate: Decimal  # a fraction: Decimal("0.065") is 6.5 % a year
    term_periods: int
    frequency: Frequency
    method: AmortizationMethod
    day_count: DayCount | None  # None: periodic rate = annual rate / periods per year
    first_due_date: date
    grace_days: int
    late_fee: Decimal
    disbursement_account: str  # masked, e.g. "****6789"
    schedule: tuple[Installment, ...]
    total_interest: Decimal
    total_of_payments: Decimal
    generated_on: date
    approvals: tuple[str, ...] = ()  # e.g. "Level 1 loan officer: approved by Ann Lee on Mar 2, 2026"

    @field_validator("principal", "late_fee", "total_interest", "total_of_payments")
    @classmethod
    def _non_negative_money(cls, amount: Decimal) -> Decimal:
        if not is_money(amount) or amount < 0:
            raise ValueError(f"must be a non-negative amount in cents, got {amount}")
        return amount

    @field_validator("annual_rate")
    @classmethod
    def _non_negative_rate(cls, rate: Decimal) -> Decimal:
        if not rate.is_finite() or rate < 0:
            raise ValueError(f"must be a non-negative fraction such as 0.065, got {rate}")
        return rate

    @field_validator("term_periods", "grace_days")
    @classmethod
    def _non_negative_count(cls, count: int) -> int:
        if count < 0:
            raise ValueError(f"must not be negative, got {count}")
        return count

    @field_validator("disbursement_account")
    @classmethod
    def _masked(cls, account: str) -> str:
        if len(re.findall(r"\d", account)) > 4:
            raise ValueError("the disbursement account must be masked: at most the last four digits in clear")
        return account

    @model_validator(mode="after")
    def _schedule_adds_up(self) -> AgreementData:
        """A disclosure whose figures disagree with its own schedule must never be printed."""
        if not self.schedule:
            raise ValueError("the repayment schedule is empty")
        if sum(i.principal for i in self.schedule) != self.principal or self.schedule[-1].balance != 0:
            raise ValueError("the schedule does not repay the principal")
        if sum(i.interest for i in self.schedule) != self.total_interest:
            raise ValueError("total_interest is not the sum of the schedule's interest")
        if sum(i.payment for i in self.schedule) != self.total_of_payments:
            raise ValueError("total_of_payments is not the sum of the schedule's payments")
        return self

    @property
    def annual_percentage_rate(self) -> Decimal:
        return annual_percentage_rate(
            self.principal, [i.payment for i in self.schedule], self.frequency.periods_per_year
        )


def annual_percentage_rate(amount_financed: Decimal, payments: list[Decimal], periods_per_year: int) -> Decimal:
    """Actuarial APR (Reg Z Appendix J, unit periods) as a fraction to 5 places (0.06500 = 6.500 %).

    Finds the periodic rate at which the present value of ``payments`` (the k-th discounted k periods)
    equals ``amount_financed``, by bisection in 40-digit decimal arithmetic, and annualizes it.
    """
    if sum(payments) <= amount_financed:
        return Decimal("0.00000")
    ctx = Context(prec=40)

    def present_value(periodic_rate: Decimal) -> Decimal:
        discount = ctx.divide(1, ctx.add(1, periodic_rate))
        factor, total = Decimal(1), Decimal(0)
        for payment in payments:
            factor = ctx.multiply(factor, discount)
            total = ctx.add(total, ctx.multiply(payment, factor))
        return total

    low, high = Decimal(0), Decimal(1)
    while present_value(high) > amount_financed:
        high *= 2
    for _ in range(64):
        middle = ctx.divide(ctx.add(low, high), 2)
        low, high = (middle, high) if present_value(middle) > amount_financed else (low, middle)
    return (low * periods_per_year).quantize(Decimal("0.00001"), ROUND_HALF_UP)


def format_rate(rate: Decimal) -> str:
    """Decimal("0.065") -> "6.500%"."""
    return f"{(rate * 100).quantize(Decimal('0.001'), ROUND_HALF_UP)}%"


_format_date = format_date


_METHOD_LABELS = {
    AmortizationMethod.DECLINING_BALANCE: "Equal installments, interest on the declining balance",
    AmortizationMethod.EQUAL_PRINCIPAL: "Equal principal, interest on the declining balance",
    AmortizationMethod.FLAT: "Flat interest on the original principal",
}
_FREQUENCY_ADVERBS = {Frequency.MONTHLY: "monthly", Frequency.BIWEEKLY: "every two weeks", Frequency.WEEKLY: "weekly"}
_FREQUENCY_ADJECTIVES = {Frequency.MONTHLY: "monthly", Frequency.BIWEEKLY: "biweekly", Frequency.WEEKLY: "weekly"}

_styles = getSampleStyleSheet()
_TITLE = ParagraphStyle("AgreementTitle", parent=_styles["Title"], fontSize=17, spaceAfter=4)
_SUBTITLE = ParagraphStyle(
    "AgreementSubtitle",
    parent=_styles["Normal"],
    alignment=TA_CENTER,
    fontSize=9,
    textColor=colors.HexColor("#444444"),
    spaceAfter=10,
)
_HEADING = ParagraphStyle("AgreementHeading", parent=_styles["Heading2"], fontSize=11.5, spaceBefore=10, spaceAfter=4)
_BODY = ParagraphStyle("AgreementBody", parent=_styles["Normal"], fontSize=9.5, leading=12.5, spaceAfter=4)
_BOX_HEAD = ParagraphStyle(
    "BoxHead", parent=_BODY, fontName="Helvetica-Bold", fontSize=9, alignment=TA_CENTER, spaceAfter=0
)
_BOX_NOTE = ParagraphStyle("BoxNote", parent=_BODY, fontSize=7.5, leading=9, alignment=TA_CENTER, spaceAfter=0)
_BOX_FIGURE = ParagraphStyle(
    "BoxFigure", parent=_BODY, fontName="Helvetica-Bold", fontSize=13, leading=16, alignment=TA_CENTER, spaceAfter=0
)
_BULLET = ParagraphStyle("AgreementBullet", parent=_BODY, leftIndent=12, bulletIndent=2)
_CELL = ParagraphStyle("Cell", parent=_BODY, fontSize=9, leading=11, spaceAfter=0)

_FRAME_PADDING = 6
_CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
_SHADE = colors.HexColor("#e8ecf2")


def _text(value: str) -> str:
    """Escape user data (names, ids) for reportlab's paragraph markup."""
    return escape(value)


_NumberedCanvas = numbered_canvas("Borrower's initials: ________")


def _labelled_rows(rows: list[tuple[str, str]]) -> Table:
    table = Table(
        [[Paragraph(f"<b>{label}</b>", _CELL), Paragraph(_text(value), _CELL)] for label, value in rows],
        colWidths=[1.9 * inch, _CONTENT_WIDTH - 1.9 * inch],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def _parties(data: AgreementData) -> list:
    return [
        Paragraph("1. Parties", _HEADING),
        _labelled_rows(
            [
                ("Lender", data.lender_name),
                ("Borrower", f"{data.borrower_name} (member id {data.borrower_id})"),
                ("Loan", f"{data.loan_id} - {data.product_name}"),
            ]
        ),
        Spacer(0, 4),
        Paragraph(
            '"You" and "your" mean the borrower; "we", "us" and "our" mean the lender. In exchange for the '
            f"loan, you promise to pay us {_text(format_usd(data.principal))} plus interest at the rate and "
            "on the schedule set out in this agreement.",
            _BODY,
        ),
    ]


def _truth_in_lending_box(data: AgreementData) -> list:
    boxes = [
        (
            "ANNUAL PERCENTAGE RATE",
            "The cost of your credit as a yearly rate.",
            format_rate(data.annual_percentage_rate),
        ),
        ("FINANCE CHARGE", "The dollar amount the credit will cost you.", format_usd(data.total_interest)),
        ("Amount Financed", "The amount of credit provided to you or on your behalf.", format_usd(data.principal)),
        (
            "Total of Payments",
            "The amount you will have paid after you have made all payments as scheduled.",
            format_usd(data.total_of_payments),
        ),
    ]
    table = Table(
        [
            [Paragraph(head, _BOX_HEAD) for head, _, _ in boxes],
            [Paragraph(note, _BOX_NOTE) for _, note, _ in boxes],
            [Paragraph(figure, _BOX_FIGURE) for _, _, figure in boxes],
        ],
        colWidths=[_CONTENT_WIDTH / 4] * 4,
    )
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, colors.black),
                ("LINEAFTER", (0, 0), (-2, -1), 0.75, colors.black),
                ("BOX", (0, 0), (1, -1), 1.5, colors.black),  # APR and finance charge stand out (Reg Z 1026.17)
                ("BACKGROUND", (0, 0), (1, -1), _SHADE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 8),
            ]
        )
    )
    return [
        Paragraph("2. Truth-in-Lending disclosures", _HEADING),
        KeepTogether([table]),
        Spacer(0, 6),
        Paragraph(f"<b>Your payment schedule will be:</b> {_text(_payment_summary(data))}", _BODY),
    ]


def _payment_summary(data: AgreementData) -> str:
    """Runs of equal payments: "35 payments of $367.78 due monthly from ... to ...; 1 payment of ..."."""
    runs: list[list[Installment]] = []
    for installment in data.schedule:
        if runs and runs[-1][0].payment == installment.payment:
            runs[-1].append(installment)
        else:
            runs.append([installment])
    parts = []
    for run in runs:
        if len(run) == 1:
            parts.append(f"1 payment of {format_usd(run[0].payment)} due {_format_date(run[0].due_date)}")
        else:
            parts.append(
                f"{len(run)} payments of {format_usd(run[0].payment)} due "
                f"{_FREQUENCY_ADVERBS[data.frequency]} from {_format_date(run[0].due_date)} "
                f"to {_format_date(run[-1].due_date)}"
            )
    return "; ".join(parts) + "."


def _day_count_label(data: AgreementData) -> str:
    if data.method is AmortizationMethod.FLAT:
        return "Not applicable (flat interest)"
    if data.day_count is None:
        return f"None: each period's rate is the annual rate / {data.frequency.periods_per_year}"
    return str(data.day_count)


def _terms(data: AgreementData) -> list:
    return [
        Paragraph("3. Loan terms", _HEADING),
        _labelled_rows(
            [
                ("Product", data.product_name),
                ("Principal", format_usd(data.principal)),
                ("Interest rate", f"{format_rate(data.annual_rate)} a year (fixed)"),
                ("Term", f"{data.term_periods} {_FREQUENCY_ADJECTIVES[data.frequency]} installments"),
                ("Repayment method", _METHOD_LABELS[data.method]),
                ("Day-count convention", _day_count_label(data)),
                ("First payment due", _format_date(data.first_due_date)),
                ("Final payment due", _format_date(data.schedule[-1].due_date)),
                ("Grace period", f"{data.grace_days} days after each due date"),
                ("Late fee", format_usd(data.late_fee)),
                ("Disbursement account", data.disbursement_account),
            ]
        ),
        Spacer(0, 4),
        Paragraph(
            f"We will credit the principal to your account {_text(data.disbursement_account)} once this "
            "agreement is signed. Each payment is applied to the oldest installment first: to its late fee, if "
            "any, then to its interest, then to its principal.",
            _BODY,
        ),
    ]


_SCHEDULE_HEADER = ["No.", "Due date", "Payment", "Interest", "Principal", "Balance"]


def _repayment_schedule(data: AgreementData) -> list:
    rows = [_SCHEDULE_HEADER] + [
        [
            str(i.number),
            _format_date(i.due_date),
            format_usd(i.payment),
            format_usd(i.interest),
            format_usd(i.principal),
            format_usd(i.balance),
        ]
        for i in data.schedule
    ]
    rows.append(
        [
            "",
            "Total",
            format_usd(data.total_of_payments),
            format_usd(data.total_interest),
            format_usd(data.principal),
            "",
        ]
    )
    widths = [0.55 * inch, 1.25 * inch] + [(_CONTENT_WIDTH - 1.8 * inch) / 4] * 4
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 8.5),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
                ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8.5),
                ("BACKGROUND", (0, 0), (-1, 0), _SHADE),
                ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f6f6f6")]),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
                ("ALIGN", (0, 0), (0, -1), "RIGHT"),
                ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return [Paragraph("4. Repayment schedule", _HEADING), table]


def _clauses(data: AgreementData) -> list:
    late_fee = format_usd(data.late_fee)
    return [
        Paragraph("5. Late payment", _HEADING),
        Paragraph(
            f"If any installment is not paid in full within {data.grace_days} days after its due date, you "
            f"will be charged a late fee of {late_fee} for that installment. Unpaid installments remain due "
            "and the loan is reported as in arrears until they are paid.",
            _BODY,
        ),
        Paragraph("6. Prepayment", _HEADING),
        Paragraph(
            "You may prepay all or part of the principal at any time. <b>There is no penalty for "
            "prepayment.</b> If you pay off the loan early you pay interest only up to the payoff date. A "
            "partial prepayment is applied to principal, and your installments not yet due (nor paid in part) "
            "are recalculated over the remaining term, keeping the same due dates.",
            _BODY,
        ),
    ]


def _approvals(data: AgreementData) -> list:
    lines = data.approvals or ("No approval recorded.",)
    bullets = [Paragraph(_text(line), _BULLET, bulletText="\u2022") for line in lines]
    return [Paragraph("7. Approvals", _HEADING), *bullets]


def _signatures(data: AgreementData) -> list:
    gap = 0.5 * inch
    column = (_CONTENT_WIDTH - gap) / 2
    rows: list[list[Any]] = [
        [Paragraph("<b>Borrower</b>", _CELL), "", Paragraph("<b>Lender</b>", _CELL)],
        ["", "", ""],
        ["Signature", "", "Signature (authorized officer)"],
        [Paragraph(_text(data.borrower_name), _CELL), "", Paragraph(_text(data.lender_name), _CELL)],
        ["", "", ""],
        ["Date", "", "Date"],
    ]
    table = Table(rows, colWidths=[column, gap, column], rowHeights=[None, 30, None, None, 24, None])
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 2), (-1, -1), "Helvetica", 8),
                ("TEXTCOLOR", (0, 2), (-1, -1), colors.HexColor("#444444")),
                ("LINEABOVE", (0, 2), (0, 2), 0.75, colors.black),
                ("LINEABOVE", (2, 2), (2, 2), 0.75, colors.black),
                ("LINEABOVE", (0, 5), (0, 5), 0.75, colors.black),
                ("LINEABOVE", (2, 5), (2, 5), 0.75, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return [
        KeepTogether(
            [
                Paragraph("8. Signatures", _HEADING),
                Paragraph(
                    "By signing, you agree to the terms of this agreement and acknowledge that you received a "
                    "completed copy of it, including the disclosures above.",
                    _BODY,
                ),
                Spacer(0, 10),
                table,
            ]
        )
    ]


def render_loan_agreement(data: AgreementData) -> bytes:
    """The agreement as a PDF document (bytes); identical bytes for identical data."""
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN - _FRAME_PADDING,
        rightMargin=MARGIN - _FRAME_PADDING,
        topMargin=0.8 * inch,
        bottomMargin=0.8 * inch,
        title=f"Loan agreement {data.loan_id}",
        author=data.lender_name,
        subject=f"Loan agreement between {data.lender_name} and {data.borrower_name}",
        creator="backoffice",
        invariant=1,
    )
    story = [
        Paragraph("Loan Agreement", _TITLE),
        Paragraph(
            f"{_text(data.lender_name)} &middot; Loan {_text(data.loan_id)} &middot; "
            f"Prepared {_format_date(data.generated_on)}",
            _SUBTITLE,
        ),
        *_parties(data),
        *_truth_in_lending_box(data),
        *_terms(data),
        *_repayment_schedule(data),
        *_clauses(data),
        *_approvals(data),
        Spacer(0, 8),
        *_signatures(data),
    ]
    header = running_header(f"{data.lender_name} - Loan agreement {data.loan_id}", f"Borrower: {data.borrower_name}")
    doc.build(story, onFirstPage=header, onLaterPages=header, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()
