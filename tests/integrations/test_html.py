"""Tests for the HTML report renderer (integrations._html) and the Plotly chart twins (integrations._interactive)."""

from __future__ import annotations

import base64
import inspect
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import monthly_returns
from integrations import _charts, _document, _interactive
from integrations._document import (
    CHART_KINDS,
    PARAGRAPH_STYLES,
    Chart,
    Figure,
    PageBreak,
    Paragraph,
    RenderedReport,
    ReportDocument,
    Section,
    Table,
    report_format,
    write_atomic,
)
from integrations._html import render_html

GENERATED = datetime(2019, 1, 2, 9, 30, tzinfo=UTC)
EVIL = "<script>alert(1)</script> & \"double\" 'single'"
PLOTLY_JS = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- a tiny DOM over html.parser

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        return [n for n in self.iter() if n.tag == tag and all(n.attrs.get(k) == v for k, v in attrs.items())]

    def find(self, tag: str, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def text(self) -> str:
        """Text content with <br> read back as a newline."""
        parts = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            elif child.tag == "br":
                parts.append("\n")
            else:
                parts.append(child.text())
        return "".join(parts)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        open_tags = [n.tag for n in self.stack]
        assert tag in open_tags, f"stray </{tag}>"
        while self.stack[-1].tag != tag:
            self.stack.pop()
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        children = self.stack[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


def _parse(path: Path) -> tuple[Node, str | None]:
    builder = _TreeBuilder()
    builder.feed(path.read_text(encoding="utf-8"))
    builder.close()
    assert [n.tag for n in builder.stack] == ["#document"], "unclosed elements"
    return builder.root, builder.doctype


def _cells(table: Node, part: str, cell: str) -> list[list[str]]:
    section = table.find(part)
    return [[c.text() for c in row.find_all(cell)] for row in section.find_all("tr")]


# --------------------------------------------------------------------------- inputs


def _series(n: int = 300, seed: int = 0) -> tuple[pd.DatetimeIndex, np.ndarray, list[str | None]]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-01", periods=n)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    family: list[str | None] = [None] * 20 + ["risk_on" if (i // 40) % 2 else "risk_off" for i in range(n - 20)]
    return dates, close, family


def _reliability_rows() -> list[dict[str, float]]:
    return [
        {"bin_low": i / 10, "bin_high": (i + 1) / 10, "mean_forecast": (i + 0.5) / 10,
         "observed_frequency": (i + 0.4) / 10, "count": 10 * i}
        for i in range(10)
    ]


def _all_charts() -> list[Chart]:
    """One realistic Chart of every kind, 300 business days where the chart takes dates."""
    dates, close, family = _series()
    rng = np.random.default_rng(7)
    strategy = close * np.linspace(1.0, 1.15, len(close))
    returns = np.diff(close, prepend=np.nan) / np.r_[np.nan, close[:-1]]
    var = np.r_[np.full(25, np.nan), np.full(len(close) - 25, 0.012)]
    log_ret = pd.Series(np.log(close)).diff()
    sharpe = (log_ret.rolling(60).mean() / log_ret.rolling(60).std() * math.sqrt(252)).to_numpy()
    vol = (log_ret.rolling(60).std() * math.sqrt(252)).to_numpy()
    weights = np.where(np.array([f == "risk_on" for f in family]), 1.0, 0.25)
    average = pd.Series(weights).rolling(20).mean().to_numpy()
    monthly = monthly_returns(pd.Series(returns[1:], index=dates[1:]))
    importance = {f"feature_{i}": float(rng.normal()) for i in range(20)}
    prob = np.clip(np.abs(np.sin(np.arange(len(dates)) / 30)), 0, 1)
    return [
        Chart("price_regime_chart", (dates, close, family), {"risk_off_probability": prob, "title": "Price"}),
        Chart("equity_drawdown_chart", (dates, strategy, close), {"family": family, "title": "Equity"}),
        Chart("reliability_chart", (_reliability_rows(),), {"title": "Calibration"}),
        Chart("importance_chart", (importance,), {"top": 8, "title": "Importance"}),
        Chart("var_backtest_chart", (dates, returns, var), {"title": "VaR"}),
        Chart("monthly_returns_heatmap", (monthly,), {"title": "Monthly"}),
        Chart("rolling_performance_chart", (dates, sharpe, vol),
              {"benchmark_sharpe": sharpe * 0.5, "benchmark_volatility": vol * 1.1, "title": "Rolling"}),
        Chart("exposure_chart", (dates, weights), {"average": average, "family": family, "title": "Exposure"}),
    ]


def _doc(sections: tuple[Section, ...], **kw: Any) -> ReportDocument:
    return ReportDocument(
        title=kw.pop("title", "RegimeDesk report: TEST"),
        subtitle=kw.pop("subtitle", "as of 2018-12-31"),
        cover_facts=kw.pop("cover_facts", (("Run id", "run-xyz"),)),
        sections=sections,
        generated_at=GENERATED,
        **kw,
    )


def _sig6(value: float) -> float | None:
    """``value`` rounded to 6 significant digits, None for NaN (computed independently of the product)."""
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return round(value, 5 - math.floor(math.log10(abs(value))))


# --------------------------------------------------------------------------- 1. full render


FACTS = (("Run id", "run-20181231-abc"), ("Data provenance", "arch.data.sp500"))
TABLE_ROWS = (("hurst", "0.52", "trend"), ("adf p-value", "0.031", "stationary"), ("sharpe", "-1.25", "weak"))


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> dict[str, Any]:
    charts = _all_charts()
    png = _charts.importance_chart({"a": 1.0, "b": -0.5, "c": 0.25})
    doc = _doc(
        (
            Section(
                "Overview",
                (
                    *(Paragraph(f"A {style} paragraph.", style) for style in PARAGRAPH_STYLES),
                    Table(("metric", "value", "reading"), TABLE_ROWS, numeric_cols=(1,),
                          caption="Key statistics."),
                    PageBreak(),
                    Figure(png, caption="A static PNG.", width=0.6),
                ),
            ),
            Section("Charts A", tuple(Figure(c, caption=f"{c.kind} caption") for c in charts[:4])),
            Section("Charts B", tuple(Figure(c) for c in charts[4:]), new_page=True),
        ),
        cover_facts=FACTS,
    )
    path = tmp_path_factory.mktemp("html") / "nested" / "dir" / "report.html"
    result = render_html(doc, path)
    root, doctype = _parse(path)
    return {"result": result, "root": root, "doctype": doctype, "doc": doc, "charts": charts, "png": png,
            "path": path}


def test_render_returns_html_report_metadata(full_report):
    result, path = full_report["result"], full_report["path"]
    assert isinstance(result, RenderedReport)
    assert result.path == path and path.is_file()
    assert result.format == "html"
    assert result.pages == 1
    assert result.figures == 9  # one PNG + eight charts
    assert result.bytes == path.stat().st_size
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left
    assert full_report["doctype"].lower() == "doctype html"


def test_title_cover_facts_and_timestamp(full_report):
    root = full_report["root"]
    assert root.find("title").text() == "RegimeDesk report: TEST"
    cover = root.find("header", **{"class": "cover"})
    assert cover.find("h1").text() == "RegimeDesk report: TEST"
    assert cover.find("p", **{"class": "subtitle"}).text() == "as of 2018-12-31"
    facts = cover.find("table", **{"class": "facts"})
    assert _cells(facts, "thead", "th") == [["Fact", "Value"]]
    assert _cells(facts, "tbody", "td") == [list(f) for f in FACTS]
    assert "Generated 2019-01-02 09:30 UTC" in cover.text()
    links = cover.find("nav").find_all("a")
    assert [(a.attrs["href"], a.text()) for a in links] == [
        ("#section-1", "Overview"), ("#section-2", "Charts A"), ("#section-3", "Charts B")]
    assert root.find("footer").text() == "RegimeDesk"


def test_one_section_per_section_with_numbered_heading(full_report):
    root = full_report["root"]
    sections = root.find_all("section")
    assert [s.attrs["id"] for s in sections] == ["section-1", "section-2", "section-3"]
    assert [s.find("h2").text() for s in sections] == ["1.  Overview", "2.  Charts A", "3.  Charts B"]
    assert [s.attrs.get("class") for s in sections] == [None, None, "new-page"]


def test_every_paragraph_style_is_a_classed_paragraph(full_report):
    overview = full_report["root"].find("section", id="section-1")
    paragraphs = [(p.attrs["class"], p.text()) for p in overview.find_all("p")]
    assert paragraphs == [(style, f"A {style} paragraph.") for style in PARAGRAPH_STYLES]


def test_table_cells_caption_and_numeric_columns(full_report):
    table = full_report["root"].find("section", id="section-1").find("table")
    assert _cells(table, "thead", "th") == [["metric", "value", "reading"]]
    assert _cells(table, "tbody", "td") == [list(r) for r in TABLE_ROWS]
    assert table.find("caption").text() == "Key statistics."
    assert [th.attrs.get("class") for th in table.find("thead").find_all("th")] == [None, "num", None]
    for row in table.find("tbody").find_all("tr"):
        assert [td.attrs.get("class") for td in row.find_all("td")] == [None, "num", None]


def test_png_figure_is_an_embedded_data_uri(full_report):
    root = full_report["root"]
    images = root.find_all("img")
    assert len(images) == 1
    src = images[0].attrs["src"]
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    assert base64.b64decode(src[len(prefix):]) == full_report["png"]
    assert images[0].attrs["alt"] == "A static PNG."
    assert "width:60%" in images[0].attrs["style"]
    figure = root.find("section", id="section-1").find("figure")
    assert figure.find("figcaption").text() == "A static PNG."


def test_one_chart_div_per_chart_with_matching_json(full_report):
    root, charts = full_report["root"], full_report["charts"]
    divs = root.find_all("div", **{"class": "chart"})
    assert len(divs) == len(charts) == len(CHART_KINDS)
    # figure numbers run over all figures, the PNG being figure 0
    assert [d.attrs["id"] for d in divs] == [f"chart-{k}" for k in range(1, 9)]
    for div, chart in zip(divs, charts, strict=True):
        script = root.find("script", id=f"{div.attrs['id']}-data")
        assert script.attrs["type"] == "application/json"
        spec = json.loads(script.text())
        assert spec == chart.plotly()
        assert spec["layout"]["title"]["text"] == chart.kwargs["title"]
        assert spec["data"], chart.kind
    captions = [f.find("figcaption").text() for f in root.find("section", id="section-2").find_all("figure")]
    assert captions == [f"{c.kind} caption" for c in charts[:4]]
    assert root.find("section", id="section-3").find_all("figcaption") == []


def test_chart_plotly_dispatches_to_the_interactive_twin():
    chart = _all_charts()[3]
    assert chart.plotly() == _interactive.importance_chart(*chart.args, **chart.kwargs)
    assert chart.png().startswith(b"\x89PNG")


def test_sections_can_be_unnumbered(tmp_path):
    path = tmp_path / "r.html"
    render_html(_doc((Section("Alpha", (Paragraph("x"),)),), number_sections=False), path)
    root, _ = _parse(path)
    assert root.find("h2").text() == "Alpha"


def test_cover_only_report(tmp_path):
    path = tmp_path / "cover.html"
    result = render_html(_doc((), cover_facts=(), subtitle=""), path)
    root, _ = _parse(path)
    assert result.figures == 0 and result.pages == 1
    assert root.find_all("section") == [] and root.find_all("nav") == []
    assert root.find_all("table") == [] and root.find_all("p", **{"class": "subtitle"}) == []


def test_rendering_replaces_existing_file(tmp_path):
    path = tmp_path / "r.htm"
    path.write_bytes(b"old")
    result = render_html(_doc(()), str(path))
    assert path.read_bytes().startswith(b"<!DOCTYPE html>")
    assert result.bytes == len(path.read_bytes())


# --------------------------------------------------------------------------- 2. escaping


def test_markup_in_text_is_escaped_and_newlines_are_breaks(tmp_path):
    doc = _doc(
        (
            Section(
                f"Section {EVIL}",
                (
                    Paragraph(f"first line {EVIL}\nsecond line"),
                    Table(("h & <h>",), ((EVIL,), ("a\nb",)), caption=f"cap {EVIL}"),
                    Figure(_charts.importance_chart({"a": 1.0}), caption=f"fig {EVIL}"),
                ),
            ),
        ),
        title=f"Title {EVIL}",
        subtitle=f"sub {EVIL}",
        cover_facts=((f"label {EVIL}", f"value {EVIL}"),),
        footer=f"foot {EVIL}",
    )
    path = tmp_path / "esc.html"
    render_html(doc, path)
    raw = path.read_text(encoding="utf-8")
    root, _ = _parse(path)
    assert root.find_all("script") == []  # nothing injected, and no charts
    assert "<script>alert" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;double&quot; &#x27;single&#x27;" in raw
    assert root.find("title").text() == f"Title {EVIL}"
    assert root.find("h1").text() == f"Title {EVIL}"
    assert root.find("p", **{"class": "subtitle"}).text() == f"sub {EVIL}"
    assert _cells(root.find("table", **{"class": "facts"}), "tbody", "td") == [[f"label {EVIL}", f"value {EVIL}"]]
    assert root.find("h2").text() == f"1.  Section {EVIL}"
    assert root.find("nav").find("a").text() == f"Section {EVIL}"
    paragraph = root.find("p", **{"class": "body"})
    assert paragraph.text() == f"first line {EVIL}\nsecond line"
    assert len(paragraph.find_all("br")) == 1
    table = root.find("section").find("table")
    assert _cells(table, "thead", "th") == [["h & <h>"]]
    assert _cells(table, "tbody", "td") == [[EVIL], ["a\nb"]]
    assert table.find("caption").text() == f"cap {EVIL}"
    figure = root.find("figure")
    assert figure.find("figcaption").text() == f"fig {EVIL}"
    assert figure.find("img").attrs["alt"] == f"fig {EVIL}"
    assert root.find("footer").text() == f"foot {EVIL}"


def test_chart_title_cannot_close_the_json_script(tmp_path):
    title = 'Close </script><script>alert(1)</script> & "q" </SCRIPT >'
    dates, close, family = _series(40)
    chart = Chart("price_regime_chart", (dates, close, family), {"title": title})
    path = tmp_path / "chart.html"
    render_html(_doc((Section("s", (Figure(chart, caption="c"),)),)), path)
    root, _ = _parse(path)
    scripts = root.find_all("script")
    assert len(scripts) == 3  # plotly.min.js, the init script and the chart's JSON
    spec = json.loads(root.find("script", id="chart-0-data").text())
    assert spec["layout"]["title"]["text"] == title
    assert spec == chart.plotly()


def test_json_script_escapes_comment_and_script_openers(tmp_path):
    title = "a <!-- <script> b"
    dates, close, family = _series(40)
    chart = Chart("price_regime_chart", (dates, close, family), {"title": title})
    path = tmp_path / "comment.html"
    render_html(_doc((Section("s", (Figure(chart),)),)), path)
    root, _ = _parse(path)
    body = root.find("script", id="chart-0-data").text()
    assert json.loads(body)["layout"]["title"]["text"] == title
    assert "<!--" not in body and "<script" not in body.lower()


def test_newlines_in_attribute_values_are_not_br_text(tmp_path):
    caption = "first\nsecond"
    doc = _doc((Section("s", (Figure(_charts.importance_chart({"a": 1.0}), caption=caption),)),), author="A\nB")
    path = tmp_path / "attr.html"
    render_html(doc, path)
    root, _ = _parse(path)
    alt = root.find("img").attrs["alt"]
    author = root.find("meta", name="author").attrs["content"]
    assert "<br>" not in alt and alt.split() == caption.split()
    assert "<br>" not in author and author.split() == ["A", "B"]


# --------------------------------------------------------------------------- 3. offline


def _assert_offline(root: Node, raw: str) -> None:
    for node in root.iter():
        for name in ("src", "href", "action", "data", "poster", "srcset"):
            value = (node.attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (node.tag, name, value)
        assert node.tag not in {"link", "iframe", "object", "embed", "base"}, node.tag
    for style in root.find_all("style"):
        assert "@import" not in style.text() and "url(" not in style.text()
    for script in root.find_all("script"):
        assert "src" not in script.attrs
    outside_scripts = re.sub(r"<script\b.*?</script>", "", raw, flags=re.S | re.I)
    assert not re.search(r"<link\b", outside_scripts, re.I)


def test_report_with_charts_is_offline_with_one_inlined_plotly(full_report):
    root, path = full_report["root"], full_report["path"]
    raw = path.read_text(encoding="utf-8")
    _assert_offline(root, raw)
    scripts = root.find_all("script")
    code = [s for s in scripts if s.attrs.get("type") != "application/json"]
    data = [s for s in scripts if s.attrs.get("type") == "application/json"]
    assert len(data) == 8
    assert len(code) == 2  # plotly.min.js and the init script
    assert sum(s.text() == PLOTLY_JS for s in code) == 1
    assert raw.count(PLOTLY_JS[:200]) == 1
    init = next(s.text() for s in code if s.text() != PLOTLY_JS)
    assert "Plotly.newPlot" in init


def test_report_without_charts_has_no_script(tmp_path):
    png = _charts.importance_chart({"a": 1.0})
    path = tmp_path / "png.html"
    render_html(_doc((Section("s", (Paragraph("x"), Figure(png))),)), path)
    raw = path.read_text(encoding="utf-8")
    root, _ = _parse(path)
    _assert_offline(root, raw)
    assert root.find_all("script") == []
    assert "Plotly" not in raw and len(raw) < len(PLOTLY_JS)


# --------------------------------------------------------------------------- 4. chart values


def _runs(keys: list[str | None]) -> list[tuple[int, int, str | None]]:
    runs = []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            runs.append((start, i, keys[start]))
            start = i
    return runs


def test_price_regime_values_nan_and_iso_dates():
    dates, close, family = _series()
    close[50:60] = np.nan
    prob = np.linspace(0, 1, len(dates))
    prob[:30] = np.nan
    spec = _interactive.price_regime_chart(dates, close, family, risk_off_probability=prob, title="T")
    price, probability = spec["data"][0], spec["data"][1]
    expected_x = [d.strftime("%Y-%m-%d") for d in dates]
    assert price["x"] == expected_x and probability["x"] == expected_x
    assert all(isinstance(x, str) for x in price["x"])
    assert price["y"] == [_sig6(v) for v in close]
    assert price["y"][50:60] == [None] * 10
    finite = np.isfinite(close)
    np.testing.assert_allclose(np.array(price["y"], dtype=float)[finite], close[finite], rtol=5e-6)
    assert probability["y"][:30] == [None] * 30 and probability["y"][-1] == 1.0
    assert probability["yaxis"] == "y2"
    assert spec["layout"]["yaxis"]["type"] == "log"
    json.dumps(spec, allow_nan=False)  # plain JSON values only


def test_regime_shading_runs_are_contiguous_and_coloured():
    dates, close, family = _series()
    family[19] = "sideways"  # another "other" label: same grey run as the None before it
    family[100] = float("nan")  # type: ignore[call-overload]
    spec = _interactive.price_regime_chart(dates, close, family, risk_off_probability=np.full(len(dates), 0.3))
    keys = [f if f in ("risk_on", "risk_off") else None for f in family]
    runs = _runs(keys)
    rects = [s for s in spec["layout"]["shapes"] if s["type"] == "rect"]
    assert len(rects) == len(runs) == 9  # grey, 6 alternating runs with one split by the NaN bar
    # Like the PNG: a run reaches the next bar, the last one bar interval past the last bar.
    x = [d.strftime("%Y-%m-%d") for d in dates.append(pd.DatetimeIndex([dates[-1] + (dates[-1] - dates[-2])]))]
    for rect, (start, stop, key) in zip(rects, runs, strict=True):
        assert rect["x0"] == x[start]
        assert rect["x1"] == x[stop]
        assert rect["fillcolor"] == _charts._SHADE[key][0]
        assert (rect["xref"], rect["yref"], rect["y0"], rect["y1"]) == ("x", "paper", 0, 1)
    for left, right in zip(rects, rects[1:], strict=False):
        assert left["x1"] == right["x0"]
    assert rects[0]["x0"] == x[0] and rects[-1]["x1"] == x[-1] > x[-2]
    legend = [t for t in spec["data"] if t.get("mode") == "markers"]
    assert [t["name"] for t in legend] == [_charts._SHADE[k][1] for k in ("risk_off", "risk_on", None)]
    assert [t["marker"]["color"] for t in legend] == [_charts._SHADE[k][0] for k in ("risk_off", "risk_on", None)]
    half = [s for s in spec["layout"]["shapes"] if s["type"] == "line"]
    assert len(half) == 1 and half[0]["y0"] == half[0]["y1"] == 0.5


def test_equity_drawdown_equals_hand_computed_drawdown():
    dates, close, family = _series()
    strategy = close * np.linspace(1, 1.2, len(close))
    strategy[:5] = np.nan  # the strategy starts later
    spec = _interactive.equity_drawdown_chart(dates, strategy, close, strategy_label="S", benchmark_label="B")
    by_name = {t["name"]: t for t in spec["data"]}
    for label, series in (("S", strategy), ("B", close)):
        rebased = series / series[np.isfinite(series)][0]
        peak = np.fmax.accumulate(rebased)
        drawdown = (rebased / peak - 1.0) * 100
        got = np.array([np.nan if v is None else v for v in by_name[f"{label} drawdown"]["y"]])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(drawdown))
        np.testing.assert_allclose(got, drawdown, rtol=5e-6, atol=1e-9, equal_nan=True)
        assert by_name[f"{label} drawdown"]["yaxis"] == "y2"
        curve = np.array([np.nan if v is None else v for v in by_name[label]["y"]])
        np.testing.assert_allclose(curve, rebased, rtol=5e-6, equal_nan=True)
    assert by_name["S"]["y"][:5] == [None] * 5 and by_name["S"]["y"][5] == 1.0
    assert min(v for v in by_name["B drawdown"]["y"] if v is not None) < -1.0  # percent, not a fraction
    assert max(v for v in by_name["B drawdown"]["y"] if v is not None) == 0.0
    assert spec["layout"]["shapes"] == []  # no family, no shading


def test_monthly_heatmap_z_equals_monthly_returns_in_percent():
    dates, close, _ = _series()
    returns = pd.Series(close[1:] / close[:-1] - 1, index=dates[1:])
    table = monthly_returns(returns)
    spec = _interactive.monthly_returns_heatmap(table)
    heat = spec["data"][0]
    assert heat["y"] == ["2015", "2016"]
    assert heat["x"] == ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    expected = [[_sig6(v * 100) for v in row] for row in table.to_numpy()]
    assert heat["z"] == expected
    # 300 business days from 2015-01-01 end in February 2016: March..December 2016 are blank
    assert heat["z"][1][2:] == [None] * 10 and all(v is not None for v in heat["z"][0])
    assert heat["text"][1][2:] == [""] * 10
    # January 2015 by hand: compounded daily returns of the month
    january = returns[(returns.index.year == 2015) & (returns.index.month == 1)]
    assert heat["z"][0][0] == pytest.approx((np.prod(1 + january.to_numpy()) - 1) * 100, rel=5e-6)
    assert heat["text"][0][0] == f"{heat['z'][0][0]:.1f}"
    assert heat["zmin"] == -heat["zmax"] and heat["zmid"] == 0


def test_monthly_heatmap_adds_missing_month_columns():
    table = pd.DataFrame({3: [0.021, -0.004]}, index=[2020, 2021])
    z = _interactive.monthly_returns_heatmap(table)["data"][0]["z"]
    assert z == [[None, None, 2.1] + [None] * 9, [None, None, -0.4] + [None] * 9]


def test_var_backtest_legend_counts_exceedances_by_hand():
    dates, close, _ = _series()
    returns = close[1:] / close[:-1] - 1
    returns = np.r_[np.nan, returns]
    var = np.full(len(dates), 0.012)
    var[:25] = np.nan
    hits, forecasts = 0, 0
    for r, v in zip(returns, var, strict=True):
        if math.isfinite(r) and math.isfinite(v):
            forecasts += 1
            hits += r < -v
    assert forecasts == 300 - 25 and hits > 0
    spec = _interactive.var_backtest_chart(dates, returns, var)
    marks = spec["data"][2]
    assert marks["name"] == f"exceedances: {hits} of {forecasts} ({hits / forecasts:.1%})"
    assert len(marks["x"]) == hits == len(marks["y"])
    assert all(y < -1.2 for y in marks["y"])  # percent, below -VaR
    assert spec["data"][1]["y"][25] == -1.2 and spec["data"][1]["y"][0] is None
    no_forecast = _interactive.var_backtest_chart(dates, returns, np.full(len(dates), np.nan))
    assert no_forecast["data"][2]["name"] == "exceedances: 0 of 0"


def test_importance_keeps_the_top_largest_by_absolute_value():
    importance = {f"f{i:02d}": float(i) for i in range(30)}
    importance["negative"] = -27.5
    importance["missing"] = float("nan")
    spec = _interactive.importance_chart(importance, top=5)
    bars = spec["data"][0]
    # largest at the top: Plotly draws the first category at the bottom
    assert bars["y"] == ["f26", "f27", "negative", "f28", "f29"]
    assert bars["x"] == [26.0, 27.0, -27.5, 28.0, 29.0]
    assert bars["marker"]["color"] == [_charts._NAVY] * 2 + [_charts._ORANGE] + [_charts._NAVY] * 2
    assert len(_interactive.importance_chart(importance, top=100)["data"][0]["y"]) == 31  # NaN dropped


def test_rolling_and_exposure_are_in_percent():
    dates, _, family = _series(60)
    sharpe = np.linspace(-1, 2, 60)
    vol = np.linspace(0.1, 0.3, 60)
    spec = _interactive.rolling_performance_chart(dates, sharpe, vol, strategy_label="S")
    by_name = {t["name"]: t for t in spec["data"]}
    assert by_name["S Sharpe"]["y"] == [_sig6(v) for v in sharpe]
    assert by_name["S volatility"]["y"] == [_sig6(v * 100) for v in vol]
    weights = np.r_[np.zeros(20), np.ones(20), np.full(20, -0.5)]
    exposure = _interactive.exposure_chart(dates, weights, family=family)
    held = exposure["data"][0]
    assert held["y"] == [_sig6(w * 100) for w in weights] and held["line"]["shape"] == "hv"
    assert exposure["layout"]["yaxis"]["range"] == [-55.0, 105.0]
    assert len([s for s in exposure["layout"]["shapes"] if s["type"] == "rect"]) == len(_runs(
        [f if f in ("risk_on", "risk_off") else None for f in family]))


def test_timezone_aware_dates_are_shown_in_utc():
    dates = pd.date_range("2018-11-01 16:00", periods=3, freq="D", tz="America/New_York")
    spec = _interactive.price_regime_chart(dates, [1.0, 2.0, 3.0], [None] * 3)
    assert spec["data"][0]["x"] == ["2018-11-01 20:00", "2018-11-02 20:00", "2018-11-03 20:00"]


# --------------------------------------------------------------------------- 5. validation parity


_D, _C, _F = _series(30)
_UNSORTED = _D[::-1]
_EMPTY = pd.DatetimeIndex([])
_NAT = pd.DatetimeIndex([_D[0], pd.NaT, _D[2]])
_ROWS = _reliability_rows()

BAD_INPUTS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("price_regime_chart", (_EMPTY, [], []), {}),
    ("price_regime_chart", (_D, _C[:-1], _F), {}),
    ("price_regime_chart", (_D, _C, _F[:-1]), {}),
    ("price_regime_chart", (_UNSORTED, _C, _F), {}),
    ("price_regime_chart", (_NAT, _C[:3], _F[:3]), {}),
    ("price_regime_chart", ("not dates", _C, _F), {}),
    ("price_regime_chart", (_D, np.r_[_C[:-1], 0.0], _F), {}),
    ("price_regime_chart", (_D, np.full(30, np.nan), _F), {}),
    ("price_regime_chart", (_D, ["x"] * 30, _F), {}),
    ("price_regime_chart", (_D, _C, _F), {"risk_off_probability": np.r_[np.zeros(29), 1.5]}),
    ("price_regime_chart", (_D, _C, _F), {"risk_off_probability": np.r_[np.zeros(29), -0.1]}),
    ("price_regime_chart", (_D, _C, _F), {"risk_off_probability": [0.5] * 10}),
    ("equity_drawdown_chart", (_EMPTY, [], []), {}),
    ("equity_drawdown_chart", (_D, _C, _C[:-2]), {}),
    ("equity_drawdown_chart", (_D, -_C, _C), {}),
    ("equity_drawdown_chart", (_D, np.full(30, np.nan), _C), {}),
    ("equity_drawdown_chart", (_D, _C, np.r_[0.0, _C[1:]]), {}),
    ("equity_drawdown_chart", (_UNSORTED, _C, _C), {}),
    ("equity_drawdown_chart", (_D, _C, _C), {"family": _F[:-1]}),
    ("reliability_chart", ([],), {}),
    ("reliability_chart", ([{"bin_low": 0.0}],), {}),
    ("reliability_chart", ([_ROWS[0], {k: v for k, v in _ROWS[1].items() if k != "count"}],), {}),
    ("reliability_chart", ([dict(_ROWS[0], count="many")],), {}),
    ("importance_chart", ({"a": 1.0},), {"top": 0}),
    ("importance_chart", ({"a": 1.0},), {"top": True}),
    ("importance_chart", ({"a": 1.0},), {"top": 2.5}),
    ("importance_chart", ({},), {}),
    ("importance_chart", ({"a": float("nan"), "b": None},), {}),
    ("var_backtest_chart", (_EMPTY, [], []), {}),
    ("var_backtest_chart", (_D, _C[:-1], _C), {}),
    ("var_backtest_chart", (_D, _C, _C[:-1]), {}),
    ("var_backtest_chart", (_UNSORTED, _C, _C), {}),
    ("monthly_returns_heatmap", (pd.DataFrame(),), {}),
    ("monthly_returns_heatmap", ([[0.1]],), {}),
    ("monthly_returns_heatmap", (pd.DataFrame({13: [0.1]}, index=[2020]),), {}),
    ("monthly_returns_heatmap", (pd.DataFrame({0: [0.1]}, index=[2020]),), {}),
    ("monthly_returns_heatmap", (pd.DataFrame({"Jan": [0.1]}, index=[2020]),), {}),
    ("monthly_returns_heatmap", (pd.DataFrame({1: [np.nan]}, index=[2020]),), {}),
    ("rolling_performance_chart", (_EMPTY, [], []), {}),
    ("rolling_performance_chart", (_D, _C, _C[:-1]), {}),
    ("rolling_performance_chart", (_D, _C[:-1], _C), {}),
    ("rolling_performance_chart", (_D, _C, _C), {"benchmark_sharpe": _C[:3]}),
    ("rolling_performance_chart", (_D, _C, _C), {"benchmark_volatility": _C[:3]}),
    ("rolling_performance_chart", (_UNSORTED, _C, _C), {}),
    ("exposure_chart", (_EMPTY, []), {}),
    ("exposure_chart", (_D, _C[:-1]), {}),
    ("exposure_chart", (_D, _C), {"average": _C[:-1]}),
    ("exposure_chart", (_D, _C), {"family": _F[:-1]}),
    ("exposure_chart", (_UNSORTED, _C), {}),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_INPUTS)])
def test_validation_matches_the_png_charts(case):
    kind, args, kwargs = case
    with pytest.raises(Exception) as png_error:  # noqa: B017 - the type is what we compare
        getattr(_charts, kind)(*args, **kwargs)
    with pytest.raises(Exception) as html_error:  # noqa: B017
        getattr(_interactive, kind)(*args, **kwargs)
    assert type(html_error.value) is type(png_error.value)
    assert str(html_error.value) == str(png_error.value)
    assert isinstance(png_error.value, ValueError), png_error.value


def test_every_kind_has_validation_cases_and_the_same_signature():
    assert {kind for kind, _, _ in BAD_INPUTS} == set(CHART_KINDS)
    assert set(_interactive.__all__) == set(CHART_KINDS)
    for kind in CHART_KINDS:
        assert inspect.signature(getattr(_interactive, kind)).parameters.keys() == \
            inspect.signature(getattr(_charts, kind)).parameters.keys(), kind
        png_params = inspect.signature(getattr(_charts, kind)).parameters
        html_params = inspect.signature(getattr(_interactive, kind)).parameters
        assert [(p.kind, p.default) for p in html_params.values()] == \
            [(p.kind, p.default) for p in png_params.values()], kind


def test_invalid_chart_data_fails_the_render_and_writes_nothing(tmp_path):
    chart = Chart("price_regime_chart", (_D, _C[:-1], _F))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="close has 29 values but dates has 30"):
        render_html(_doc((Section("s", (Figure(chart),)),)), out / "x.html")
    assert not out.exists()


# --------------------------------------------------------------------------- 6. atomic write and arguments


def test_failed_replace_leaves_no_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "out" / "report.html"

    def fail_replace(src, dst):
        raise OSError("replace failed")

    monkeypatch.setattr(_document.os, "replace", fail_replace)
    with pytest.raises(OSError, match="replace failed"):
        render_html(_doc((Section("s", (Paragraph("x"),)),)), path)
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_failed_replace_keeps_the_previous_report(tmp_path, monkeypatch):
    path = tmp_path / "out" / "report.html"
    path.parent.mkdir()
    path.write_bytes(b"previous report")

    def fail_replace(src, dst):
        raise OSError("replace failed")

    monkeypatch.setattr(_document.os, "replace", fail_replace)
    with pytest.raises(OSError, match="replace failed"):
        render_html(_doc(()), path)
    assert path.read_bytes() == b"previous report"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_write_atomic_creates_parents_and_replaces(tmp_path):
    path = tmp_path / "a" / "b" / "f.bin"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_directory_path_and_bad_arguments_are_rejected(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match=re.escape(str(out))):
        render_html(_doc(()), out)
    with pytest.raises(ValueError, match="directory"):
        render_html(_doc(()), "")  # the working directory
    with pytest.raises(TypeError, match="ReportDocument"):
        render_html("not a document", out / "x.html")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path"):
        render_html(_doc(()), 42)  # type: ignore[arg-type]
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- 7. report_format


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("report.html", "html"),
        ("REPORT.HTM", "html"),
        (Path("out/report.Html"), "html"),
        ("archive.tar.htm", "html"),
        ("report.pdf", "pdf"),
        ("report.PDF", "pdf"),
        ("report", "pdf"),
        ("", "pdf"),
        ("report.html.bak", "pdf"),
        (".pdf", "pdf"),
    ],
)
def test_report_format_follows_the_suffix(path, expected):
    assert report_format(path) == expected
