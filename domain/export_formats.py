"""A transactions export's file in each format. CSV and JSON are produced row by row (streamed as they are read);
XLSX through openpyxl's write-only workbook; the PDF statement (reportlab) carries the period, the opening and
closing totals, the rows and the totals per category. Amounts stay Decimal and are written as their exact text."""

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from domain.export_filters import COLUMNS

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "zip": "application/zip",
}


def plain(value: Any) -> Any:
    """A JSON/CSV value: Decimal as its exact text, dates ISO, UUIDs as text."""
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def record(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: plain(row[name]) for name in COLUMNS}


def csv_line(values: Iterable[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(["" if v is None else v for v in values])
    return out.getvalue().encode()


async def csv_stream(rows: AsyncIterator[Mapping[Any, Any]]) -> AsyncIterator[bytes]:
    yield csv_line(COLUMNS)
    async for row in rows:
        yield csv_line(record(row).values())


async def json_stream(rows: AsyncIterator[Mapping[Any, Any]]) -> AsyncIterator[bytes]:
    yield b"["
    first = True
    async for row in rows:
        yield (b"" if first else b",") + b"\n" + json.dumps(record(row)).encode()
        first = False
    yield b"\n]\n"


class XlsxSheet:
    """A write-only workbook of one sheet, filled row by row (openpyxl keeps its rows in a temporary file)."""

    def __init__(self) -> None:
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("transactions")
        self.sheet.append(list(COLUMNS))

    def append(self, row: Mapping[Any, Any]) -> None:
        # amounts as numbers a spreadsheet sums (Decimal is written exactly), the rest as text
        self.sheet.append([row[n] if n == "amount" else plain(row[n]) for n in COLUMNS])

    def save(self, target: Any) -> None:
        self.book.save(target)


def xlsx_bytes(rows: Iterable[Mapping[Any, Any]]) -> bytes:
    sheet = XlsxSheet()
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    sheet.save(out)
    return out.getvalue()


@dataclass
class Statement:
    """What the PDF statement shows besides the rows."""

    date_from: date | None
    date_to: date | None
    opening: Decimal
    rows: Sequence[Mapping[Any, Any]] = field(default_factory=list)

    @property
    def closing(self) -> Decimal:
        return self.opening + sum((r["amount"] for r in self.rows), Decimal("0"))

    def by_category(self) -> list[tuple[str, Decimal]]:
        totals: dict[str, Decimal] = {}
        for r in self.rows:
            totals[r["category_key"]] = totals.get(r["category_key"], Decimal("0")) + r["amount"]
        return sorted(totals.items())


def pdf_bytes(statement: Statement) -> bytes:
    styles = getSampleStyleSheet()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), title="Transactions statement")
    period = f"{statement.date_from or 'the beginning'} to {statement.date_to or 'today'}"
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("FONTSIZE", (0, 0), (-1, -1), 8)])
    rows = [["Date", "Amount", "Currency", "Category", "Merchant", "Description"]] + [
        [
            plain(r["posted_on"]),
            str(r["amount"]),
            r["currency"],
            r["category_key"],
            (r["merchant"] or "")[:40],
            (r["description"] or "")[:60],
        ]
        for r in statement.rows
    ]
    story: list[Any] = [
        Paragraph("Transactions statement", styles["Title"]),
        Paragraph(f"Period: {period}", styles["Normal"]),
        Paragraph(f"Opening total: {statement.opening}", styles["Normal"]),
        Paragraph(f"Closing total: {statement.closing}", styles["Normal"]),
        Spacer(1, 12),
        Table(rows, repeatRows=1, style=grid),
        Spacer(1, 12),
        Paragraph("Totals by category", styles["Heading2"]),
        Table([["Category", "Total"], *[[k, str(v)] for k, v in statement.by_category()]], style=grid),
    ]
    doc.build(story)
    return out.getvalue()
