"""The monthly account statement PDF: header (institution, account, masked number, owner), period, a summary
(opening balance, money in, money out, interest, closing balance) and every entry with its running balance.

``render_statement(data)`` is pure and deterministic (reportlab's invariant mode), like the loan agreement:
the same ``StatementData`` renders the same bytes. Amounts are on the account's normal side, as the member
reads them: on a deposit account money in is positive; on a loan account a positive amount raises what is owed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from pydantic import BaseModel, ConfigDict, model_validator
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from documents.pages import MARGIN, PAGE_WIDTH, RULE, format_date, numbered_canvas, running_header
from finance.money import format_money, is_money

__all__ = ["StatementData", "StatementLine", "render_statement"]


class StatementLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    effective_date: date
    description: str
    amount: Decimal  # signed on the account's normal side
    balance: Decimal  # running balance after this line
    is_interest: bool = False


class StatementData(BaseModel):
    model_config = ConfigDict(frozen=True)

    institution: str
    account_name: str
    account_number: str  # masked, e.g. "****1a2b"
    account_type: str
    owner_name: str | None
    period: str  # YYYY-MM
    period_start: date
    period_end: date
    opening_balance: Decimal
    closing_balance: Decimal
    interest: Decimal
    lines: tuple[StatementLine, ...]
    generated_on: date
    currency: str = "USD"  # the account's (ISO 4217)

    @model_validator(mode="after")
    def _adds_up(self) -> StatementData:
        """A statement whose lines disagree with its own balances must never be printed."""
        amounts = [self.opening_balance, self.closing_balance, self.interest]
        if not all(is_money(a) for a in amounts + [line.amount for line in self.lines]):
            raise ValueError("statement amounts must be in cents")
        balance = self.opening_balance
        for line in self.lines:
            if not self.period_start <= line.effective_date <= self.period_end:
                raise ValueError(f"entry of {line.effective_date} is outside {self.period}")
            balance += line.amount
            if line.balance != balance:
                raise ValueError(f"running balance {line.balance} after {line.description!r} should be {balance}")
        if balance != self.closing_balance:
            raise ValueError(
                f"opening {self.opening_balance} plus the entries is {balance}, "
                f"not the closing balance {self.closing_balance}"
            )
        if sum((line.amount for line in self.lines if line.is_interest), Decimal("0.00")) != self.interest:
            raise ValueError("interest is not the sum of the interest lines")
        return self

    @property
    def money_in(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.amount > 0 and not line.is_interest), Decimal("0.00"))

    @property
    def money_out(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.amount < 0 and not line.is_interest), Decimal("0.00"))


_styles = getSampleStyleSheet()
_TITLE = ParagraphStyle("StatementTitle", parent=_styles["Title"], fontSize=17, spaceAfter=4)
_SUBTITLE = ParagraphStyle(
    "StatementSubtitle",
    parent=_styles["Normal"],
    alignment=TA_CENTER,
    fontSize=9,
    textColor=colors.HexColor("#444444"),
    spaceAfter=10,
)
_HEADING = ParagraphStyle("StatementHeading", parent=_styles["Heading2"], fontSize=11.5, spaceBefore=10, spaceAfter=4)
_BODY = ParagraphStyle("StatementBody", parent=_styles["Normal"], fontSize=9.5, leading=12.5, spaceAfter=4)
_CELL = ParagraphStyle("StatementCell", parent=_BODY, fontSize=8.5, leading=10.5, spaceAfter=0)

_FRAME_PADDING = 6
_CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
_SHADE = colors.HexColor("#e8ecf2")


_format_date = format_date


def _period_label(data: StatementData) -> str:
    return f"{_format_date(data.period_start)} to {_format_date(data.period_end)}"


_NumberedCanvas = numbered_canvas()


def _account(data: StatementData) -> list:
    rows = [
        ("Account", f"{data.account_name} ({data.account_type})"),
        ("Account number", data.account_number),
        ("Currency", data.currency),
        ("Owner", data.owner_name or "-"),
        ("Statement period", _period_label(data)),
    ]
    table = Table(
        [[Paragraph(f"<b>{label}</b>", _CELL), Paragraph(escape(value), _CELL)] for label, value in rows],
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
    return [table]


def _summary(data: StatementData) -> list:
    rows = [
        ["Opening balance", format_money(data.opening_balance, data.currency)],
        ["Money in", format_money(data.money_in, data.currency)],
        ["Money out", format_money(data.money_out, data.currency)],
        ["Interest paid", format_money(data.interest, data.currency)],
        ["Closing balance", format_money(data.closing_balance, data.currency)],
    ]
    table = Table(rows, colWidths=[2.5 * inch, 1.5 * inch], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 9.5),
                ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 9.5),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
                ("BOX", (0, 0), (-1, -1), 0.75, RULE),
                ("BACKGROUND", (0, 0), (-1, -1), _SHADE),
            ]
        )
    )
    return [Paragraph("Summary", _HEADING), table]


def _entries(data: StatementData) -> list:
    header = ["Date", "Description", "Amount", "Balance"]
    rows: list[list[Any]] = [
        header,
        [_format_date(data.period_start), "Opening balance", "", format_money(data.opening_balance, data.currency)],
    ]
    interest_rows = []
    for line in data.lines:
        if line.is_interest:
            interest_rows.append(len(rows))
        rows.append(
            [
                _format_date(line.effective_date),
                Paragraph(escape(line.description), _CELL),
                format_money(line.amount, data.currency),
                format_money(line.balance, data.currency),
            ]
        )
    rows.append(
        [_format_date(data.period_end), "Closing balance", "", format_money(data.closing_balance, data.currency)]
    )
    widths = [1.1 * inch, _CONTENT_WIDTH - 3.5 * inch, 1.2 * inch, 1.2 * inch]
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8.5),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
        ("FONT", (0, 1), (-1, 1), "Helvetica-Bold", 8.5),
        ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), _SHADE),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
        ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    style += [("BACKGROUND", (0, row), (-1, row), colors.HexColor("#f3f7ea")) for row in interest_rows]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle(style))
    note = [] if data.lines else [Paragraph("No activity this period.", _BODY)]
    return [Paragraph("Activity", _HEADING), table, *note]


def render_statement(data: StatementData) -> bytes:
    """The statement as a PDF document (bytes); identical bytes for identical data."""
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN - _FRAME_PADDING,
        rightMargin=MARGIN - _FRAME_PADDING,
        topMargin=0.8 * inch,
        bottomMargin=0.8 * inch,
        title=f"Statement {data.period} {data.account_number}",
        author=data.institution,
        subject=f"Account statement for {data.period}",
        creator="backoffice",
        invariant=1,
    )
    story = [
        Paragraph("Account Statement", _TITLE),
        Paragraph(
            f"{escape(data.institution)} &middot; {escape(_period_label(data))} &middot; "
            f"Prepared {_format_date(data.generated_on)}",
            _SUBTITLE,
        ),
        *_account(data),
        Spacer(0, 4),
        *_summary(data),
        *_entries(data),
    ]
    header = running_header(f"{data.institution} - Statement {data.period}", f"Account {data.account_number}")
    doc.build(story, onFirstPage=header, onLaterPages=header, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()
