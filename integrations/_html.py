"""The HTML twin of :func:`integrations.render_pdf`: one self-contained page with interactive charts.

It renders the same :class:`~integrations._document.ReportDocument` as the PDF: a cover block
(title, subtitle, the cover facts, the generation time and a linked list of sections), then
every section with a numbered heading. A figure whose image is a
:class:`~integrations._document.Chart` becomes an interactive Plotly chart (zoom, pan, hover
values, legend toggles; :mod:`integrations._interactive`); a figure given as PNG bytes is
embedded as an image. ``plotly.min.js`` is copied from the installed ``plotly`` package into
the page, so the file opens offline, from disk or an e-mail attachment, with no request to
any server. Printing from the browser gives one section per page.

Text is escaped (plain text, never markup) and ``"\\n"`` is a line break. The file is written
to a temporary file next to ``path`` and moved into place, so ``path`` never holds a partial
report.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

from integrations._document import (
    Chart,
    Figure,
    Paragraph,
    RenderedReport,
    ReportDocument,
    Section,
    Table,
    render_target,
    write_atomic,
)

__all__ = ["render_html"]

_CSS = """
:root { --ink:#1A1A1A; --navy:#1F3A5F; --accent:#2E6DA4; --muted:#5F6B7A; --rule:#B8C2CC;
        --zebra:#F2F5F9; --grid:#C9D1DA; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 Helvetica, Arial, sans-serif; color: var(--ink); background: #F7F8FA; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
header.cover { border-bottom: 2px solid var(--accent); padding-bottom: 12px; margin-bottom: 16px; }
h1 { color: var(--navy); font-size: 30px; margin: 8px 0 4px; }
.subtitle { color: var(--muted); font-size: 17px; margin: 0 0 12px; }
h2 { color: var(--navy); font-size: 21px; border-bottom: 1px solid var(--rule); padding-bottom: 4px;
     margin: 36px 0 12px; }
p { margin: 0 0 10px; }
p.lead { font-size: 16.5px; }
p.small { font-size: 13.5px; }
p.note, figcaption, caption { font-size: 12.5px; font-style: italic; color: var(--muted); }
p.subheading { font-weight: bold; color: var(--navy); margin-top: 14px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 16px; font-size: 13px; }
caption { caption-side: bottom; text-align: left; padding-top: 4px; }
th { background: var(--navy); color: white; text-align: left; padding: 5px 8px; font-weight: bold; }
td { padding: 4px 8px; border-bottom: 1px solid var(--grid); vertical-align: top; }
tbody tr:nth-child(even) { background: var(--zebra); }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts { width: auto; min-width: 60%; }
table.facts th { background: none; color: var(--ink); border-bottom: 1px solid var(--grid); }
figure { margin: 8px 0 20px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
.chart { width: 100%; }
nav.contents ol { margin: 4px 0; padding-left: 22px; }
nav.contents a, footer a { color: var(--accent); text-decoration: none; }
footer { margin-top: 40px; border-top: 1px solid var(--rule); padding-top: 8px; color: var(--muted);
         font-size: 12.5px; }
@media print {
  body { background: white; }
  main { max-width: none; padding: 0; }
  section.new-page { break-before: page; }
  figure, table { break-inside: avoid; }
}
"""

# Draw every chart from its JSON when the page loads; charts resize with the window.
_INIT_JS = """
(function () {
  var config = {responsive: true, displaylogo: false, toImageButtonOptions: {format: "png", scale: 2}};
  document.querySelectorAll("div.chart").forEach(function (div) {
    var spec = JSON.parse(document.getElementById(div.id + "-data").textContent);
    Plotly.newPlot(div, spec.data, spec.layout, config);
  });
})();
"""


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    """``plotly.min.js`` as shipped inside the installed ``plotly`` package."""
    return resources.files("plotly").joinpath("package_data", "plotly.min.js").read_text(encoding="utf-8")


def _text(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _attr(text: str) -> str:
    """Text for an attribute value: escaped, quotes included, on one line."""
    return html.escape(" ".join(text.split()))


def _script_json(value: object) -> str:
    # Inside <script>, "</script", "<!--" and "<script" change how the browser reads the element;
    # JSON strings may spell every "<" as \u003c, so no "<" is left at all.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _table(table: Table, css: str = "") -> str:
    numeric = set(table.numeric_cols)

    def cls(j: int) -> str:
        return ' class="num"' if j in numeric else ""

    head = "".join(f"<th{cls(j)}>{_text(h)}</th>" for j, h in enumerate(table.header))
    body = "".join("<tr>" + "".join(f"<td{cls(j)}>{_text(c)}</td>" for j, c in enumerate(row)) + "</tr>"
                   for row in table.rows)
    caption = f"<caption>{_text(table.caption)}</caption>" if table.caption else ""
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(fig: Figure, number: int) -> str:
    caption = f"<figcaption>{_text(fig.caption)}</figcaption>" if fig.caption else ""
    if isinstance(fig.image, Chart):
        spec = fig.image.plotly()
        chart_id = f"chart-{number}"
        body = (f'<div class="chart" id="{chart_id}"></div>'
                f'<script type="application/json" id="{chart_id}-data">{_script_json(spec)}</script>')
    else:
        data = base64.b64encode(fig.png).decode("ascii")
        body = f'<img src="data:image/png;base64,{data}" style="width:{fig.width:.0%}" alt="{_attr(fig.caption)}">'
    return f"<figure>{body}{caption}</figure>"


def _section(doc: ReportDocument, index: int, section: Section, first_figure: int) -> tuple[str, int]:
    title = f"{index + 1}.  {section.title}" if doc.number_sections else section.title
    klass = ' class="new-page"' if section.new_page else ""
    parts = [f'<section id="section-{index + 1}"{klass}>', f"<h2>{_text(title)}</h2>"]
    figures = 0
    for block in section.blocks:
        if isinstance(block, Paragraph):
            parts.append(f'<p class="{block.style}">{_text(block.text)}</p>')
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Figure):
            parts.append(_figure(block, first_figure + figures))
            figures += 1
        # A PageBreak only matters on paper: sections already start new pages when printed.
    parts.append("</section>")
    return "\n".join(parts), figures


def _page(doc: ReportDocument, generated: datetime) -> tuple[str, int]:
    stamp = generated.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = Table(("Fact", "Value"), doc.cover_facts) if doc.cover_facts else None
    contents = "".join(
        f'<li><a href="#section-{i}">{_text(s.title)}</a></li>' for i, s in enumerate(doc.sections, start=1))
    sections: list[str] = []
    figures = 0
    for index, section in enumerate(doc.sections):
        text, n = _section(doc, index, section, figures)
        sections.append(text)
        figures += n
    charts = sum(isinstance(b, Figure) and isinstance(b.image, Chart) for s in doc.sections for b in s.blocks)
    scripts = f"<script>{_plotly_js()}</script>\n<script>{_INIT_JS}</script>" if charts else ""
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="RegimeDesk">
<meta name="author" content="{_attr(doc.author)}">
<title>{_text(doc.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header class="cover">
<h1>{_text(doc.title)}</h1>
{f'<p class="subtitle">{_text(doc.subtitle)}</p>' if doc.subtitle else ''}
{_table(facts, "facts") if facts else ''}
<p class="note">Generated {stamp}</p>
{f'<nav class="contents"><p class="subheading">Contents</p><ol>{contents}</ol></nav>' if doc.sections else ''}
</header>
{chr(10).join(sections)}
<footer>{_text(doc.footer)}</footer>
</main>
{scripts}
</body>
</html>
"""
    return page, figures


def render_html(doc: ReportDocument, path: str | Path) -> RenderedReport:
    """Render a report to one self-contained HTML file, atomically.

    Parameters
    ----------
    doc : ReportDocument
        What to render (the same document :func:`integrations.render_pdf` takes).
    path : str or Path
        Destination file. Missing parent directories are created; an existing file is
        replaced only once the new page is complete.

    Returns
    -------
    RenderedReport
        The path, ``pages=1``, the number of figures and the file size, ``format="html"``.

    Raises
    ------
    TypeError
        If ``doc`` is not a :class:`ReportDocument` or ``path`` not a str or Path.
    ValueError
        If ``path`` is an existing directory, or a chart's data is invalid.
    OSError
        If the file cannot be written; no partial file is left at ``path``.
    """
    target = render_target(doc, path, "HTML report")
    page, figures = _page(doc, doc.generated_at or datetime.now(UTC))
    data = page.encode("utf-8")
    write_atomic(target, data)
    return RenderedReport(path=target, pages=1, figures=figures, bytes=len(data), format="html")
