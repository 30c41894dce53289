"""The report document model, shared by the PDF and HTML renderers.

Callers describe a report with a handful of frozen dataclasses (:class:`ReportDocument`,
:class:`Section`, :class:`Paragraph`, :class:`Table`, :class:`Figure`, :class:`PageBreak`) and
hand it to :func:`integrations.render_pdf` or :func:`integrations.render_html`. A figure holds
either PNG bytes or a :class:`Chart`: the name of a chart of :mod:`integrations._charts` with
its data, which the PDF renderer draws as a PNG and the HTML renderer as an interactive
Plotly chart (:mod:`integrations._interactive`), so both formats show the same charts.

Text is plain text, never markup; each renderer escapes it for its format.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from analytics.errors import RegimeDeskError

__all__ = [
    "Paragraph",
    "Table",
    "Chart",
    "Figure",
    "PageBreak",
    "Block",
    "Section",
    "ReportDocument",
    "RenderedReport",
    "ReportRenderError",
    "PARAGRAPH_STYLES",
    "CHART_KINDS",
    "PORTFOLIO_CHART_KINDS",
    "write_atomic",
    "render_target",
    "REPORT_FORMATS",
    "report_format",
]

#: Paragraph styles a caller may ask for.
PARAGRAPH_STYLES: tuple[str, ...] = ("body", "small", "lead", "note", "subheading")

#: Charts a :class:`Chart` may name: functions of :mod:`integrations._charts` (PNG) with a
#: same-named twin in :mod:`integrations._interactive` (Plotly).
CHART_KINDS: tuple[str, ...] = (
    "price_regime_chart",
    "equity_drawdown_chart",
    "reliability_chart",
    "importance_chart",
    "var_backtest_chart",
    "monthly_returns_heatmap",
    "rolling_performance_chart",
    "exposure_chart",
)

#: Charts of the portfolio report a :class:`Chart` may also name: functions of
#: :mod:`integrations._portfolio_charts` (PNG) with a same-named twin in
#: :mod:`integrations._interactive_portfolio` (Plotly).
PORTFOLIO_CHART_KINDS: tuple[str, ...] = (
    "weights_area_chart",
    "risk_contribution_chart",
    "drawdown_comparison_chart",
)

#: Report file formats and the file-name suffixes that choose each (the first is the default).
REPORT_FORMATS: dict[str, tuple[str, ...]] = {"pdf": (".pdf",), "html": (".html", ".htm")}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

class ReportRenderError(RegimeDeskError):
    """The report could not be laid out or written (e.g. content too large for a page)."""


# --------------------------------------------------------------------------- document model


@dataclass(frozen=True)
class Paragraph:
    """A block of plain text.

    Parameters
    ----------
    text : str
        Plain text, not markup: ``&``, ``<`` and ``>`` appear literally; ``"\\n"`` starts a
        new line. In the PDF, characters outside Latin-1 are replaced by ASCII look-alikes.
    style : {"body", "small", "lead", "note", "subheading"}, default "body"
        ``"lead"`` is larger introductory text, ``"note"`` small grey italics,
        ``"subheading"`` a bold heading inside a section.

    Raises
    ------
    TypeError
        If ``text`` is not a string.
    ValueError
        If ``style`` is not one of :data:`PARAGRAPH_STYLES`.
    """

    text: str
    style: str = "body"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Paragraph.text must be str, got {type(self.text).__name__}")
        if self.style not in PARAGRAPH_STYLES:
            raise ValueError(
                f"Paragraph.style must be one of {PARAGRAPH_STYLES}, got {self.style!r}"
            )


@dataclass(frozen=True)
class Table:
    """A table of text cells with a header row.

    Every cell is wrapped, so long text flows onto several lines; the header row is
    repeated when the table splits across pages.

    Parameters
    ----------
    header : tuple of str
        Column titles; at least one.
    rows : tuple of tuple of str
        Body rows, each as long as ``header``. May be empty. Cells must be strings (format
        numbers before building the table).
    col_widths : tuple of float, optional
        Relative column weights (positive), normalised to the page width. By default the
        weights follow the length of each column's text.
    caption : str, default ""
        Shown under the table in the ``"note"`` style.
    numeric_cols : tuple of int, default ()
        Indices of right-aligned columns.

    Raises
    ------
    ValueError
        If a row's length differs from the header's (the message names the row index), the
        header is empty, ``col_widths`` has the wrong length or a non-positive weight, or a
        ``numeric_cols`` index is out of range.
    TypeError
        If a header or body cell is not a string.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    col_widths: tuple[float, ...] | None = None
    caption: str = ""
    numeric_cols: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        header = tuple(self.header)
        if not header:
            raise ValueError("Table.header must name at least one column")
        for j, cell in enumerate(header):
            if not isinstance(cell, str):
                raise TypeError(f"Table.header[{j}] must be str, got {type(cell).__name__}")
        ncol = len(header)
        rows = tuple(tuple(row) for row in self.rows)
        for i, row in enumerate(rows):
            if len(row) != ncol:
                raise ValueError(
                    f"Table.rows[{i}] has {len(row)} cells but the header has {ncol}"
                )
            for j, cell in enumerate(row):
                if not isinstance(cell, str):
                    raise TypeError(
                        f"Table.rows[{i}][{j}] must be str, got {type(cell).__name__}"
                    )
        widths = None
        if self.col_widths is not None:
            widths = tuple(float(w) for w in self.col_widths)
            if len(widths) != ncol:
                raise ValueError(
                    f"Table.col_widths has {len(widths)} weights but the header has {ncol}"
                )
            if not all(math.isfinite(w) and w > 0 for w in widths):
                raise ValueError(f"Table.col_widths must be positive and finite, got {widths}")
        numeric = tuple(int(c) for c in self.numeric_cols)
        for c in numeric:
            if not 0 <= c < ncol:
                raise ValueError(f"Table.numeric_cols index {c} is outside 0..{ncol - 1}")
        if not isinstance(self.caption, str):
            raise TypeError("Table.caption must be str")
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "col_widths", widths)
        object.__setattr__(self, "numeric_cols", numeric)


@dataclass(frozen=True)
class Chart:
    """A chart named by kind with its data, drawn by whichever renderer needs it.

    Parameters
    ----------
    kind : str
        One of :data:`CHART_KINDS`: the name of the function of :mod:`integrations._charts`
        that draws it as a PNG, and of its twin in :mod:`integrations._interactive` that
        describes it as a Plotly figure; or one of :data:`PORTFOLIO_CHART_KINDS`, drawn by
        :mod:`integrations._portfolio_charts` and :mod:`integrations._interactive_portfolio`.
    args : tuple
        Positional arguments of that function (dates, values, ...).
    kwargs : mapping
        Keyword arguments of that function (title, labels, ...).

    Raises
    ------
    ValueError
        If ``kind`` is not a known chart.
    """

    kind: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in CHART_KINDS + PORTFOLIO_CHART_KINDS:
            raise ValueError(f"Chart.kind must be one of {CHART_KINDS + PORTFOLIO_CHART_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    def png(self) -> bytes:
        """The chart as PNG bytes (:mod:`integrations._charts` or :mod:`integrations._portfolio_charts`)."""
        from integrations import _charts, _portfolio_charts

        module = _portfolio_charts if self.kind in PORTFOLIO_CHART_KINDS else _charts
        return getattr(module, self.kind)(*self.args, **self.kwargs)

    def plotly(self) -> dict[str, Any]:
        """The chart as a Plotly figure (``{"data": [...], "layout": {...}}``, plain JSON values)."""
        from integrations import _interactive, _interactive_portfolio

        module = _interactive_portfolio if self.kind in PORTFOLIO_CHART_KINDS else _interactive
        return getattr(module, self.kind)(*self.args, **self.kwargs)


@dataclass(frozen=True)
class Figure:
    """An image scaled to a fraction of the page width, with an optional caption.

    Parameters
    ----------
    image : bytes or Chart
        PNG image bytes (e.g. from :mod:`integrations._charts`), or a :class:`Chart`, which
        the PDF renderer draws as a PNG and the HTML renderer as an interactive chart.
    caption : str, default ""
        Shown under the image in the ``"note"`` style; kept on the same page as the image.
    width : float, default 1.0
        Fraction of the text width, in (0, 1]. The height follows the image's aspect ratio
        and is capped to fit a page.

    Raises
    ------
    ValueError
        If ``image`` is bytes that do not start with the PNG signature, or ``width`` is
        outside (0, 1].
    """

    image: bytes | Chart
    caption: str = ""
    width: float = 1.0

    def __post_init__(self) -> None:
        image = self.image
        if isinstance(image, bytes | bytearray | memoryview):
            image = bytes(image)
            if not image.startswith(_PNG_SIGNATURE):
                raise ValueError("Figure.image is not a PNG image (bad signature)")
        elif not isinstance(image, Chart):
            raise ValueError(f"Figure.image must be PNG bytes or a Chart, got {type(image).__name__}")
        width = float(self.width)
        if not (math.isfinite(width) and 0.0 < width <= 1.0):
            raise ValueError(f"Figure.width must be in (0, 1], got {self.width!r}")
        if not isinstance(self.caption, str):
            raise TypeError("Figure.caption must be str")
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "width", width)

    @cached_property
    def png(self) -> bytes:
        """The PNG bytes: the image itself, or the chart drawn once (then cached)."""
        return self.image if isinstance(self.image, bytes) else self.image.png()


@dataclass(frozen=True)
class PageBreak:
    """Start a new page (ignored when the current page is still empty)."""


#: Anything a :class:`Section` may contain.
Block = Paragraph | Table | Figure | PageBreak


@dataclass(frozen=True)
class Section:
    """A titled part of the report.

    Parameters
    ----------
    title : str
        Heading text; also the PDF outline (bookmark) entry. Must not be empty.
    blocks : tuple of Block
        Content in reading order.
    new_page : bool, default False
        Start the section on a new page rather than flowing after the previous one.

    Raises
    ------
    ValueError
        If ``title`` is empty.
    TypeError
        If a block is not a :data:`Block`.
    """

    title: str
    blocks: tuple[Block, ...]
    new_page: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError("Section.title must be a non-empty string")
        blocks = tuple(self.blocks)
        for k, block in enumerate(blocks):
            if not isinstance(block, Paragraph | Table | Figure | PageBreak):
                raise TypeError(
                    f"Section {self.title!r} blocks[{k}] must be a Paragraph, Table, Figure "
                    f"or PageBreak, got {type(block).__name__}"
                )
        object.__setattr__(self, "blocks", blocks)


@dataclass(frozen=True)
class ReportDocument:
    """A whole report: cover page plus sections.

    Parameters
    ----------
    title : str
        Report title, e.g. ``"RegimeDesk report: SP500"``; shown on the cover and in the
        running header of every other page. Must not be empty.
    subtitle : str
        E.g. ``"as of 2018-12-31"``.
    cover_facts : tuple of (str, str)
        Label/value pairs shown as a table on the cover (run id, data provenance, ...).
    sections : tuple of Section
        The body of the report.
    footer : str, default "RegimeDesk"
        Left part of every page footer.
    author : str, default "RegimeDesk"
        PDF author metadata.
    generated_at : datetime, optional
        Timezone-aware generation time printed on the cover; defaults to now (UTC).
    number_sections : bool, default True
        Prefix section headings with ``"1"``, ``"2"``, ...

    Raises
    ------
    ValueError
        If ``title`` is empty, a cover fact is not a pair, or ``generated_at`` is naive.
    TypeError
        If a section is not a :class:`Section`.
    """

    title: str
    subtitle: str
    cover_facts: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]
    footer: str = "RegimeDesk"
    author: str = "RegimeDesk"
    generated_at: datetime | None = None
    number_sections: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError("ReportDocument.title must be a non-empty string")
        if not isinstance(self.subtitle, str):
            raise TypeError("ReportDocument.subtitle must be str")
        facts = tuple(tuple(fact) for fact in self.cover_facts)
        for i, fact in enumerate(facts):
            if len(fact) != 2 or not all(isinstance(x, str) for x in fact):
                raise ValueError(
                    f"ReportDocument.cover_facts[{i}] must be a (label, value) pair of str"
                )
        sections = tuple(self.sections)
        for i, section in enumerate(sections):
            if not isinstance(section, Section):
                raise TypeError(
                    f"ReportDocument.sections[{i}] must be a Section, "
                    f"got {type(section).__name__}"
                )
        if self.generated_at is not None and self.generated_at.utcoffset() is None:
            raise ValueError("ReportDocument.generated_at must be timezone-aware")
        object.__setattr__(self, "cover_facts", facts)
        object.__setattr__(self, "sections", sections)


@dataclass(frozen=True)
class RenderedReport:
    """What :func:`integrations.render_pdf` or :func:`integrations.render_html` wrote.

    Attributes
    ----------
    path : Path
        The report file.
    pages : int
        Number of pages, cover included (1 for an HTML report).
    figures : int
        Number of images embedded.
    bytes : int
        File size.
    format : {"pdf", "html"}
        The file's format. An HTML report is one page.
    """

    path: Path
    pages: int
    figures: int
    bytes: int
    format: str = "pdf"


def render_target(doc: object, path: object, what: str) -> Path:
    """Check a renderer's arguments: ``doc`` a :class:`ReportDocument`, ``path`` a file path.

    Raises
    ------
    TypeError
        ``doc`` or ``path`` of the wrong type.
    ValueError
        ``path`` empty or an existing directory (``what`` names the file in the message).
    """
    if not isinstance(doc, ReportDocument):
        raise TypeError(f"doc must be a ReportDocument, got {type(doc).__name__}")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory; give a file name for the {what}")
    return target


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    Missing parent directories are created; ``path`` never holds a partial file and the
    temporary file is removed on failure.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def report_format(path: str | os.PathLike[str]) -> str:
    """The report format a file name asks for: ``"html"`` for ``.html``/``.htm``, else ``"pdf"``."""
    suffix = Path(path).suffix.lower()
    return next((fmt for fmt, suffixes in REPORT_FORMATS.items() if suffix in suffixes), "pdf")
