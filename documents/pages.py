"""What the PDFs share: letter pages with 0.75-inch margins, a "Page n of N" footer, locale-independent dates."""

from collections.abc import Callable
from datetime import date

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas

PAGE_WIDTH, PAGE_HEIGHT = LETTER
MARGIN = 0.75 * inch  # where text starts
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(day: date) -> str:
    """'Oct 31, 2026' whatever the worker's locale, so the bytes never depend on its environment."""
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def numbered_canvas(footer_left: str = "") -> type[Canvas]:
    """A canvas class (reportlab's `canvasmaker`) that holds every page back until the end, so the footer can
    say "Page n of N"; `footer_left` is printed at the left of every footer."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]  # reportlab's own (undocumented) page reset

        def save(self):
            for number, page in enumerate(self._pages, start=1):
                self.__dict__.update(page)
                self.setFont("Helvetica", 8)
                self.setFillColor(colors.HexColor("#555555"))
                self.drawRightString(PAGE_WIDTH - MARGIN, 0.45 * inch, f"Page {number} of {len(self._pages)}")
                if footer_left:
                    self.drawString(MARGIN, 0.45 * inch, footer_left)
                super().showPage()
            super().save()

    return NumberedCanvas


RULE = colors.HexColor("#999999")


def running_header(left: str, right: str) -> Callable[[Canvas, object], None]:
    """A page callback (reportlab's onFirstPage / onLaterPages) drawing a small header line with a rule under it."""

    def draw(canvas: Canvas, _doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(colors.HexColor("#555555"))
        top = PAGE_HEIGHT - 0.5 * inch
        canvas.drawString(MARGIN, top, left)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, top, right)
        canvas.setStrokeColor(RULE)
        canvas.line(MARGIN, top - 4, PAGE_WIDTH - MARGIN, top - 4)
        canvas.restoreState()

    return draw
