"""A small, generic PDF report renderer built on reportlab platypus.

It renders the document model of :mod:`integrations._document` (:class:`ReportDocument` and
its blocks). The renderer knows nothing about regimes or agents: it lays out
a cover page (title, subtitle, a table of facts, the generation time) followed by the
sections, with a running header (the document title) and a footer reading
``"<footer>  ·  page X of Y"`` on every page but the cover.

Text is plain text, never markup: ``&``, ``<`` and ``>`` are escaped here and ``"\\n"`` is a
line break. The document uses the base-14 Helvetica family only, which covers Latin-1; other
characters are replaced by ASCII look-alikes (``"≥"`` becomes ``">="``, a minus sign ``"-"``,
...) or ``"?"``, so a PDF viewer never shows a missing-glyph box.

The PDF is rendered in memory, written to a temporary file next to ``path`` and moved into
place with :func:`os.replace`, so ``path`` never holds a partial report.
"""

from __future__ import annotations

import functools
import html
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, SimpleDocTemplate, Spacer
from reportlab.platypus import Image as RLImage
from reportlab.platypus import PageBreak as RLPageBreak
from reportlab.platypus import Paragraph as RLParagraph
from reportlab.platypus import Table as RLTable
from reportlab.platypus import TableStyle as RLTableStyle
from reportlab.platypus.doctemplate import LayoutError
from reportlab.platypus.flowables import HRFlowable, PageBreakIfNotEmpty

from integrations._document import (
    Figure,
    Paragraph,
    RenderedReport,
    ReportDocument,
    ReportRenderError,
    Section,
    Table,
    render_target,
    write_atomic,
)

__all__ = ["render_pdf"]

# Letter portrait, 0.75 inch side margins: a 7-inch-wide frame, which is what the chart
# helpers in integrations._charts are sized for.
_PAGE_SIZE = LETTER
_LEFT_MARGIN = _RIGHT_MARGIN = 0.75 * inch
_TOP_MARGIN = 0.85 * inch
_BOTTOM_MARGIN = 0.8 * inch
_FRAME_WIDTH = _PAGE_SIZE[0] - _LEFT_MARGIN - _RIGHT_MARGIN
# SimpleDocTemplate's frame has 6pt padding on every side.
_FRAME_PADDING = 6.0
_USABLE_WIDTH = _FRAME_WIDTH - 2 * _FRAME_PADDING
_USABLE_HEIGHT = _PAGE_SIZE[1] - _TOP_MARGIN - _BOTTOM_MARGIN - 2 * _FRAME_PADDING

_FONT = "Helvetica"
_FONT_BOLD = "Helvetica-Bold"
_FONT_ITALIC = "Helvetica-Oblique"

_INK = colors.HexColor("#1A1A1A")
_NAVY = colors.HexColor("#1F3A5F")
_ACCENT = colors.HexColor("#2E6DA4")
_MUTED = colors.HexColor("#5F6B7A")
_RULE = colors.HexColor("#B8C2CC")
_ZEBRA = colors.HexColor("#F2F5F9")
_GRID = colors.HexColor("#C9D1DA")


# --------------------------------------------------------------------------- text handling

_REPLACEMENTS: dict[str, str] = {
    "\u2212": "-",  # minus sign
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u2026": "...",
    "\u2265": ">=",
    "\u2264": "<=",
    "\u2260": "!=",
    "\u2248": "~",
    "\u223c": "~",
    "\u00d7": "x",
    "\u2022": "\u00b7",
    "\u2219": "\u00b7",
    "\u2192": "->",
    "\u2190": "<-",
    "\u2194": "<->",
    "\u21d2": "=>",
    "\u2191": "^",
    "\u2193": "v",
    "\u221e": "inf",
    "\u20ac": "EUR",
    "\u2713": "yes",
    "\u2714": "yes",
    "\u2717": "no",
    "\u2718": "no",
    "\u2030": " per mille",
    "\u0394": "Delta",
    "\u03b1": "alpha",
    "\u03b2": "beta",
    "\u03b3": "gamma",
    "\u03b4": "delta",
    "\u03b5": "epsilon",
    "\u03bb": "lambda",
    "\u03bc": "mu",
    "\u03c0": "pi",
    "\u03c1": "rho",
    "\u03c3": "sigma",
    "\u03a3": "Sigma",
    "\u03c6": "phi",
    "\u03b8": "theta",
    "\u2009": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2007": " ",
    "\u202f": " ",
    "\u200b": "",
    "\u200c": "",
    "\u200d": "",
    "\ufeff": "",
    "\t": " ",
}


def _latin1_char(ch: str) -> str:
    if ch in _REPLACEMENTS:
        return _REPLACEMENTS[ch]
    code = ord(ch)
    if ch == "\n":
        return ch
    if code < 0x20 or 0x7F <= code < 0xA0:
        return ""  # control characters: nothing sensible to draw
    if code < 0x100:
        return ch
    # Letters with accents outside Latin-1 (e.g. "ő", "ł" has none): keep the base letter.
    base = "".join(
        c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
    )
    if base and all(ord(c) < 0x100 and ord(c) >= 0x20 for c in base):
        return base
    return "?"


def _to_latin1(text: str) -> str:
    """Replace every character the base-14 fonts cannot draw."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if all(0x20 <= ord(c) < 0x7F or c == "\n" for c in text):
        return text
    return "".join(_latin1_char(c) for c in text)


def _markup(text: str) -> str:
    """Plain text to reportlab paragraph markup."""
    escaped = html.escape(_to_latin1(text), quote=False)
    return escaped.replace("\n", "<br/>")


# --------------------------------------------------------------------------- styles


def _style(name: str, **kw: Any) -> ParagraphStyle:
    base: dict[str, Any] = {
        "fontName": _FONT,
        "fontSize": 9.5,
        "leading": 13,
        "textColor": _INK,
        "spaceBefore": 0,
        "spaceAfter": 6,
    }
    base.update(kw)
    return ParagraphStyle(name, **base)


_STYLES: dict[str, ParagraphStyle] = {
    "body": _style("body"),
    "small": _style("small", fontSize=8.5, leading=11, spaceAfter=5),
    "lead": _style("lead", fontSize=11.5, leading=15.5, spaceAfter=8),
    "note": _style(
        "note", fontName=_FONT_ITALIC, fontSize=8, leading=10.5, textColor=_MUTED, spaceAfter=8
    ),
    "subheading": _style(
        "subheading",
        fontName=_FONT_BOLD,
        fontSize=10.5,
        leading=13.5,
        textColor=_NAVY,
        spaceBefore=6,
        spaceAfter=4,
        keepWithNext=1,
    ),
    "heading": _style(
        "heading",
        fontName=_FONT_BOLD,
        fontSize=14,
        leading=18,
        textColor=_NAVY,
        spaceBefore=10,
        spaceAfter=8,
        keepWithNext=1,
    ),
    "cover_title": _style(
        "cover_title", fontName=_FONT_BOLD, fontSize=24, leading=29, textColor=_NAVY,
        spaceAfter=8,
    ),
    "cover_subtitle": _style(
        "cover_subtitle", fontSize=13, leading=17, textColor=_MUTED, spaceAfter=14
    ),
    "cover_label": _style("cover_label", fontName=_FONT_BOLD, fontSize=9, leading=11.5,
                          spaceAfter=0),
    "cover_value": _style("cover_value", fontSize=9, leading=11.5, spaceAfter=0),
    "contents": _style("contents", fontSize=10, leading=15, spaceAfter=0),
    "contents_title": _style(
        "contents_title", fontName=_FONT_BOLD, fontSize=11, leading=14, textColor=_NAVY,
        spaceBefore=18, spaceAfter=4,
    ),
    "cell": _style("cell", fontSize=8, leading=10, spaceAfter=0),
    "cell_right": _style("cell_right", fontSize=8, leading=10, spaceAfter=0,
                         alignment=TA_RIGHT),
    "head": _style("head", fontName=_FONT_BOLD, fontSize=8, leading=10, spaceAfter=0,
                   textColor=colors.white, alignment=TA_LEFT),
    "head_right": _style("head_right", fontName=_FONT_BOLD, fontSize=8, leading=10,
                         spaceAfter=0, textColor=colors.white, alignment=TA_RIGHT),
}


# --------------------------------------------------------------------------- flowables


class _SectionHeading(RLParagraph):
    """A section heading that registers a PDF bookmark and outline entry where it is drawn."""

    def __init__(self, markup: str, outline_title: str, key: str) -> None:
        super().__init__(markup, _STYLES["heading"])
        self._outline_title = outline_title
        self._key = key
        self._registered = False

    def draw(self) -> None:
        if not self._registered:
            self._registered = True
            # Jump target: the top of the heading, keeping the reader's zoom.
            self.canv.bookmarkHorizontal(self._key, 0, self.height + 6)
            self.canv.addOutlineEntry(self._outline_title, self._key, level=0, closed=False)
        super().draw()


def _column_weights(table: Table) -> list[float]:
    if table.col_widths is not None:
        return list(table.col_widths)
    weights = []
    for j, head in enumerate(table.header):
        longest_word = max((len(w) for w in head.split()), default=1)
        longest_cell = max((len(row[j]) for row in table.rows[:300]), default=0)
        weights.append(float(min(max(longest_word, longest_cell, 4), 40)))
    return weights


def _table_flowables(table: Table) -> list[Flowable]:
    weights = _column_weights(table)
    total = sum(weights)
    widths = [_USABLE_WIDTH * w / total for w in weights]
    numeric = set(table.numeric_cols)
    data = [
        [
            RLParagraph(_markup(h), _STYLES["head_right" if j in numeric else "head"])
            for j, h in enumerate(table.header)
        ]
    ]
    for row in table.rows:
        data.append(
            [
                RLParagraph(_markup(c), _STYLES["cell_right" if j in numeric else "cell"])
                for j, c in enumerate(row)
            ]
        )
    commands: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), _NAVY),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, _ZEBRA]),
        ("GRID", (0, 0), (-1, -1), 0.25, _GRID),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, _NAVY),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    # splitInRow lets a single very tall row continue on the next page instead of failing.
    rl_table = RLTable(
        data,
        colWidths=widths,
        repeatRows=1,
        splitInRow=1,
        hAlign="LEFT",
        style=RLTableStyle(commands),
        spaceBefore=2,
        spaceAfter=4 if table.caption else 10,
    )
    out: list[Flowable] = [rl_table]
    if table.caption:
        out.append(RLParagraph(_markup(table.caption), _STYLES["note"]))
    return out


def _figure_flowable(fig: Figure) -> Flowable:
    try:
        px_w, px_h = ImageReader(io.BytesIO(fig.png)).getSize()
    except Exception as exc:  # reportlab/PIL raise a variety of types for corrupt data
        raise ValueError(f"Figure.png could not be read as an image: {exc}") from exc
    if px_w <= 0 or px_h <= 0:
        raise ValueError("Figure.png has zero size")
    width = fig.width * _USABLE_WIDTH
    height = width * px_h / px_w
    # Leave room for a caption on the same page.
    max_height = _USABLE_HEIGHT - (48 if fig.caption else 12)
    if height > max_height:
        width *= max_height / height
        height = max_height
    image = RLImage(io.BytesIO(fig.png), width=width, height=height)
    image.hAlign = "CENTER"
    parts: list[Flowable] = [Spacer(1, 2), image]
    if fig.caption:
        parts.append(Spacer(1, 3))
        parts.append(RLParagraph(_markup(fig.caption), _STYLES["note"]))
    else:
        parts.append(Spacer(1, 8))
    return KeepTogether(parts)


def _cover_flowables(doc: ReportDocument, generated: datetime) -> list[Flowable]:
    out: list[Flowable] = [
        Spacer(1, 1.3 * inch),
        RLParagraph(_markup(doc.title), _STYLES["cover_title"]),
    ]
    if doc.subtitle:
        out.append(RLParagraph(_markup(doc.subtitle), _STYLES["cover_subtitle"]))
    out.append(HRFlowable(width="100%", thickness=1.5, color=_ACCENT, spaceBefore=2,
                          spaceAfter=16))
    if doc.cover_facts:
        data = [
            [
                RLParagraph(_markup(label), _STYLES["cover_label"]),
                RLParagraph(_markup(value), _STYLES["cover_value"]),
            ]
            for label, value in doc.cover_facts
        ]
        facts = RLTable(
            data,
            colWidths=[_USABLE_WIDTH * 0.3, _USABLE_WIDTH * 0.7],
            hAlign="LEFT",
            splitInRow=1,
            style=RLTableStyle(
                [
                    ("ROWBACKGROUNDS", (0, 0), (-1, -1), [_ZEBRA, colors.white]),
                    ("LINEABOVE", (0, 0), (-1, 0), 0.6, _NAVY),
                    ("LINEBELOW", (0, -1), (-1, -1), 0.6, _NAVY),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.25, _GRID),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("TOPPADDING", (0, 0), (-1, -1), 4),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                    ("LEFTPADDING", (0, 0), (-1, -1), 6),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ]
            ),
        )
        out.append(facts)
    out.append(Spacer(1, 10))
    stamp = generated.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.append(RLParagraph(_markup(f"Generated {stamp}"), _STYLES["note"]))
    if doc.sections:
        out.append(RLParagraph("Contents", _STYLES["contents_title"]))
        for i, section in enumerate(doc.sections, start=1):
            label = f"{i}.  {section.title}" if doc.number_sections else section.title
            out.append(RLParagraph(_markup(label), _STYLES["contents"]))
    return out


def _section_flowables(
    doc: ReportDocument, index: int, section: Section
) -> tuple[list[Flowable], int]:
    out: list[Flowable] = []
    # The first section already starts on a fresh page after the cover.
    if section.new_page and index > 0:
        out.append(PageBreakIfNotEmpty())
    title = f"{index + 1}.  {section.title}" if doc.number_sections else section.title
    out.append(_SectionHeading(_markup(title), _to_latin1(title), f"section-{index + 1}"))
    figures = 0
    for block in section.blocks:
        if isinstance(block, Paragraph):
            out.append(RLParagraph(_markup(block.text), _STYLES[block.style]))
        elif isinstance(block, Table):
            out.extend(_table_flowables(block))
        elif isinstance(block, Figure):
            out.append(_figure_flowable(block))
            figures += 1
        else:
            out.append(PageBreakIfNotEmpty())
    out.append(Spacer(1, 6))
    return out, figures


# --------------------------------------------------------------------------- canvas


@dataclass
class _PageStats:
    pages: int = 0
    bookmarks: dict[str, int] = field(default_factory=dict)


class _NumberedCanvas(Canvas):
    """Holds every page back until the end so each can say "page X of Y".

    Pages are kept as canvas states and emitted in :meth:`save`, once the total is known.
    Bookmarks must point at the page object that is finally emitted, so they are recorded
    per page and registered during that second pass.
    """

    def __init__(
        self, *args: Any, header: str, header_right: str, footer: str, stats: _PageStats,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._rd_header = header
        self._rd_header_right = header_right
        self._rd_footer = footer
        self._rd_stats = stats
        self._rd_pages: list[dict[str, Any]] = []
        self._rd_bookmarks: list[tuple[str, dict[str, Any]]] = []

    def bookmarkPage(self, key: str, **kwargs: Any) -> None:  # noqa: N802 - reportlab API
        self._rd_bookmarks.append((key, kwargs))

    def showPage(self) -> None:  # noqa: N802 - reportlab API
        self._rd_pages.append(dict(self.__dict__))
        self._rd_bookmarks = []
        self._startPage()

    def save(self) -> None:
        total = len(self._rd_pages)
        for number, state in enumerate(self._rd_pages, start=1):
            self.__dict__.update(state)
            for key, kwargs in state["_rd_bookmarks"]:
                Canvas.bookmarkPage(self, key, **kwargs)
                self._rd_stats.bookmarks[key] = number
            if number > 1:
                self._decorate(number, total)
            Canvas.showPage(self)
        self._rd_stats.pages = total
        Canvas.save(self)

    def _decorate(self, number: int, total: int) -> None:
        width, height = self._pagesize
        left, right = _LEFT_MARGIN, width - _RIGHT_MARGIN
        self.saveState()
        self.setFont(_FONT, 7.5)
        self.setFillColor(_MUTED)
        header_y = height - _TOP_MARGIN + 14
        self.drawString(left, header_y, self._rd_header)
        if self._rd_header_right:
            self.drawRightString(right, header_y, self._rd_header_right)
        self.setStrokeColor(_RULE)
        self.setLineWidth(0.5)
        self.line(left, header_y - 4, right, header_y - 4)
        footer_y = _BOTTOM_MARGIN - 26
        self.line(left, footer_y + 10, right, footer_y + 10)
        self.drawString(left, footer_y, f"{self._rd_footer}  \u00b7  page {number} of {total}")
        self.restoreState()


def _fit(text: str, font: str, size: float, max_width: float) -> str:
    if stringWidth(text, font, size) <= max_width:
        return text
    while text and stringWidth(text + "...", font, size) > max_width:
        text = text[:-1]
    return text + "..."


# --------------------------------------------------------------------------- entry point


def _flowables(doc: ReportDocument, generated: datetime) -> tuple[list[Flowable], int]:
    story = _cover_flowables(doc, generated)
    story.append(RLPageBreak())
    figures = 0
    for index, section in enumerate(doc.sections):
        parts, n = _section_flowables(doc, index, section)
        story.extend(parts)
        figures += n
    return story, figures


def _build(doc: ReportDocument, story: Iterable[Flowable]) -> tuple[bytes, int]:
    buffer = io.BytesIO()
    stats = _PageStats()
    header = _to_latin1(doc.title).replace("\n", " ")
    header_right = _to_latin1(doc.subtitle).replace("\n", " ")
    # Keep the running header on one line: title left, subtitle right.
    header = _fit(header, _FONT, 7.5, _FRAME_WIDTH * 0.62)
    header_right = _fit(header_right, _FONT, 7.5, _FRAME_WIDTH * 0.35)
    maker = functools.partial(
        _NumberedCanvas,
        header=header,
        header_right=header_right,
        footer=_to_latin1(doc.footer).replace("\n", " "),
        stats=stats,
    )
    template = SimpleDocTemplate(
        buffer,
        pagesize=_PAGE_SIZE,
        leftMargin=_LEFT_MARGIN,
        rightMargin=_RIGHT_MARGIN,
        topMargin=_TOP_MARGIN,
        bottomMargin=_BOTTOM_MARGIN,
        title=_to_latin1(doc.title),
        subject=_to_latin1(doc.subtitle),
        author=_to_latin1(doc.author),
        creator="RegimeDesk",
        showOutline=0,
    )
    template.build(list(story), canvasmaker=maker)
    return buffer.getvalue(), stats.pages


def render_pdf(doc: ReportDocument, path: str | Path) -> RenderedReport:
    """Render a report to a PDF file, atomically.

    The layout is US Letter portrait: a cover page (title, subtitle, the ``cover_facts``
    table, the generation time in UTC and a list of sections), then every section with a
    numbered heading and a PDF outline entry. All pages but the cover carry a running header
    with the title and a footer ``"<footer>  ·  page X of Y"``.

    Parameters
    ----------
    doc : ReportDocument
        What to render.
    path : str or Path
        Destination file. Missing parent directories are created; an existing file is
        replaced only once the new PDF is complete.

    Returns
    -------
    RenderedReport
        The path, page count (cover included), number of figures embedded and file size.

    Raises
    ------
    TypeError
        If ``doc`` is not a :class:`ReportDocument`.
    ValueError
        If ``path`` is an existing directory, or a figure's PNG cannot be decoded.
    ReportRenderError
        If reportlab cannot lay the content out (e.g. an element larger than a page).
    OSError
        If the file cannot be written; no partial file is left at ``path``.
    """
    target = render_target(doc, path, "PDF")
    generated = doc.generated_at or datetime.now(UTC)

    story, figures = _flowables(doc, generated)
    try:
        data, pages = _build(doc, story)
    except LayoutError as exc:
        raise ReportRenderError(
            f"could not lay out report {doc.title!r}: an element does not fit on a page "
            f"({exc})"
        ) from exc

    write_atomic(target, data)
    return RenderedReport(path=target, pages=pages, figures=figures, bytes=len(data), format="pdf")
