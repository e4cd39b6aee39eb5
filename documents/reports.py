"""A financial report's table (finance/reports.py ReportTable) as CSV, XLSX or PDF bytes. Pure: no I/O but the
returned bytes. Amounts stay exact: plain decimal strings in CSV; in XLSX the Decimal is written as its decimal text (a number
cell with a two-decimal format), never through a Python float."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Font
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from documents.pages import MARGIN, PAGE_WIDTH, numbered_canvas
from finance.money import format_usd
from finance.reports import ReportTable

__all__ = ["CONTENT_TYPES", "render"]

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def _plain(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def to_csv(table: ReportTable) -> bytes:
    """A title line, a subtitle line, a header row (Line, the value columns, Style) and one row per table row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([table.title])
    writer.writerow([table.subtitle])
    writer.writerow(["Line", *table.columns, "Style"])
    for row in table.rows:
        writer.writerow([row.label, *(_plain(v) for v in row.values), row.style])
    return out.getvalue().encode()


def to_xlsx(table: ReportTable) -> bytes:
    book = Workbook()
    sheet: Any = book.active
    sheet.title = table.title[:31]  # Excel's limit on a sheet name
    bold = Font(bold=True)
    sheet.append([table.title])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([table.subtitle])
    sheet.append(["Line", *table.columns])
    for cell in sheet[3]:
        cell.font = bold
    for row in table.rows:
        sheet.append([row.label, *row.values])
        cells = sheet[sheet.max_row]
        for cell in cells[1:]:
            cell.number_format = "#,##0.00;-#,##0.00"
        if row.style in ("heading", "total"):
            for cell in cells:
                cell.font = bold
    sheet.column_dimensions["A"].width = 55
    for letter in "BCDEFG"[: len(table.columns)]:
        sheet.column_dimensions[letter].width = 18
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_styles = getSampleStyleSheet()
_TITLE = ParagraphStyle("ReportTitle", parent=_styles["Title"], fontSize=16, spaceAfter=2)
_SUBTITLE = ParagraphStyle("ReportSubtitle", parent=_styles["Normal"], alignment=1, fontSize=9, spaceAfter=10)
_CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN


def to_pdf(table: ReportTable) -> bytes:
    """Deterministic (reportlab's invariant mode): the same table renders the same bytes."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        title=f"{table.title}: {table.subtitle}",
        creator="backoffice",
        invariant=1,
    )
    value_width = min(1.4 * inch, _CONTENT_WIDTH * 0.62 / max(1, len(table.columns)))  # six columns still fit
    rows: list[list[Any]] = [["", *table.columns]]
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
    ]
    for row in table.rows:
        rows.append([row.label, *("" if v is None else format_usd(v) for v in row.values)])
        at = len(rows) - 1
        if row.style == "heading":
            style.append(("FONT", (0, at), (-1, at), "Helvetica-Bold", 10))
        elif row.style == "total":
            style += [
                ("FONT", (0, at), (-1, at), "Helvetica-Bold", 9),
                ("LINEABOVE", (1, at), (-1, at), 0.5, colors.black),
            ]
    widths = [_CONTENT_WIDTH - value_width * len(table.columns)] + [value_width] * len(table.columns)
    grid = Table(rows, colWidths=widths, repeatRows=1)
    grid.setStyle(TableStyle(style))
    story = [Paragraph(escape(table.title), _TITLE), Paragraph(escape(table.subtitle), _SUBTITLE), grid]
    doc.build(story, canvasmaker=numbered_canvas(table.title))
    return buffer.getvalue()


RENDERERS = {"csv": to_csv, "xlsx": to_xlsx, "pdf": to_pdf}


def render(table: ReportTable, fmt: str) -> bytes:
    return RENDERERS[fmt](table)
