"""Tests for the generic PDF renderer (integrations._pdf) and report charts (integrations._charts)."""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pypdf import PdfReader
from reportlab.platypus.doctemplate import LayoutError

from analytics.errors import RegimeDeskError
from integrations import _document, _pdf
from integrations._charts import (
    equity_drawdown_chart,
    importance_chart,
    price_regime_chart,
    reliability_chart,
    var_backtest_chart,
)
from integrations._document import (
    Figure,
    PageBreak,
    Paragraph,
    RenderedReport,
    ReportDocument,
    ReportRenderError,
    Section,
    Table,
)
from integrations._pdf import render_pdf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GENERATED = datetime(2019, 1, 2, 9, 30, tzinfo=UTC)


def _series(n: int = 300, seed: int = 0) -> tuple[pd.DatetimeIndex, np.ndarray, list[str | None]]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-01", periods=n)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    family: list[str | None] = [None] * 20 + [
        "risk_on" if (i // 40) % 2 else "risk_off" for i in range(n - 20)
    ]
    return dates, close, family


def _text(page) -> str:
    return re.sub(r"\s+", " ", page.extract_text())


def _small_png() -> bytes:
    return importance_chart({"a": 1.0, "b": 0.5})


def _doc(sections: tuple[Section, ...], **kw) -> ReportDocument:
    return ReportDocument(
        title=kw.pop("title", "RegimeDesk report: TEST"),
        subtitle="as of 2018-12-31",
        cover_facts=kw.pop("cover_facts", (("Run id", "run-xyz"),)),
        sections=sections,
        generated_at=GENERATED,
        **kw,
    )


# --------------------------------------------------------------------------- full render


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[RenderedReport, PdfReader]:
    dates, close, family = _series()
    prob = np.clip(np.abs(np.sin(np.arange(len(dates)) / 30)), 0, 1)
    chart1 = price_regime_chart(dates, close, family, risk_off_probability=prob, title="Price")
    chart2 = equity_drawdown_chart(dates, close * 1.01, close, title="Equity")
    long_rows = tuple(
        (f"row-{i:03d}", f"{i * 1.5:.2f}", f"comment number {i}") for i in range(120)
    )
    doc = _doc(
        (
            Section(
                "Overview",
                (
                    Paragraph("An introduction.", "lead"),
                    Paragraph("Regular body text.\nOn a second line."),
                    Paragraph("Details", "subheading"),
                    Table(
                        ("metric", "value"),
                        (("hurst", "0.52"), ("adf p-value", "0.03")),
                        numeric_cols=(1,),
                        caption="Key statistics.",
                    ),
                    Paragraph("A note.", "note"),
                ),
            ),
            Section(
                "Charts",
                (
                    Figure(chart1, caption="Price with regimes."),
                    Figure(chart2, caption="Equity and drawdown.", width=0.8),
                ),
            ),
            Section(
                "Long table",
                (
                    Table(
                        ("identifier", "amount", "remark"),
                        long_rows,
                        col_widths=(1, 1, 3),
                        numeric_cols=(1,),
                        caption="All rows.",
                    ),
                ),
                new_page=True,
            ),
        ),
        cover_facts=(("Run id", "run-20181231-abc"), ("Data provenance", "arch.data.sp500")),
    )
    path = tmp_path_factory.mktemp("pdf") / "nested" / "dir" / "report.pdf"
    result = render_pdf(doc, path)
    return result, PdfReader(str(path))


def test_render_returns_real_page_count_and_size(full_report):
    result, reader = full_report
    assert result.path.is_file()
    assert result.pages == len(reader.pages)
    assert result.pages > 3
    assert result.bytes == result.path.stat().st_size
    assert not [p for p in result.path.parent.iterdir() if p.name != "report.pdf"]


def test_cover_shows_title_facts_and_timestamp(full_report):
    _, reader = full_report
    cover = _text(reader.pages[0])
    assert "RegimeDesk report: TEST" in cover
    assert "as of 2018-12-31" in cover
    assert "run-20181231-abc" in cover and "Data provenance" in cover
    assert "2019-01-02 09:30 UTC" in cover
    assert "page 1 of" not in cover  # no footer on the cover


def test_sections_footers_and_headers(full_report):
    result, reader = full_report
    body = " ".join(_text(p) for p in reader.pages[1:])
    for title in ("Overview", "Charts", "Long table"):
        assert title in body
    n = result.pages
    for k in range(2, n + 1):
        text = _text(reader.pages[k - 1])
        assert f"RegimeDesk · page {k} of {n}" in text
        assert "RegimeDesk report: TEST" in text  # running header


def test_outline_has_one_entry_per_section_on_the_right_page(full_report):
    _, reader = full_report
    entries = {o.title: reader.get_destination_page_number(o) for o in reader.outline}
    assert list(entries) == ["1.  Overview", "2.  Charts", "3.  Long table"]
    for title, page in entries.items():
        assert title.split("  ", 1)[1] in _text(reader.pages[page])
    assert entries["1.  Overview"] == 1  # first page after the cover


def test_images_embedded_match_figures(full_report):
    result, reader = full_report
    assert result.figures == 2
    assert sum(len(p.images) for p in reader.pages) == 2


def test_long_table_splits_and_repeats_header(full_report):
    _, reader = full_report
    texts = [_text(p) for p in reader.pages]
    header_page = next(i for i, t in enumerate(texts) if "Long table" in t and "identifier" in t)
    last_page = next(i for i, t in enumerate(texts) if "row-119" in t)
    assert last_page > header_page
    assert "identifier" in texts[last_page] and "remark" in texts[last_page]
    assert "Long table" not in texts[last_page].replace("RegimeDesk report: TEST", "")
    # Every row made it into the document exactly once.
    joined = " ".join(texts)
    assert all(joined.count(f"row-{i:03d} ") == 1 for i in range(120))


# --------------------------------------------------------------------------- text handling


def test_markup_characters_render_literally_and_non_latin1_is_replaced(tmp_path):
    doc = _doc(
        (
            Section(
                "Escaping <&>",
                (
                    Paragraph("<b> & 5 < 6"),
                    Paragraph("p ≥ 0.5 and q ≤ 0.1, x − y, 2×3 … “quoted” – ok € 中"),
                    Table(("a<b",), (("c & d",),)),
                ),
            ),
        )
    )
    render_pdf(doc, tmp_path / "esc.pdf")
    text = _text(PdfReader(str(tmp_path / "esc.pdf")).pages[1])
    assert "<b> & 5 < 6" in text
    assert "Escaping <&>" in text
    assert 'p >= 0.5 and q <= 0.1, x - y, 2x3 ... "quoted" - ok EUR ?' in text
    assert "a<b" in text and "c & d" in text
    for ch in "≥≤−…“”–€中":
        assert ch not in text


def test_to_latin1_keeps_latin1_and_folds_accents():
    assert _pdf._to_latin1("café naïve £5 ±1 °C") == "café naïve £5 ±1 °C"
    assert _pdf._to_latin1("Gödel ő ł") == "Gödel o ?"
    assert _pdf._to_latin1("a\tb\x00c\r\nd") == "a bc\nd"


def test_wide_cell_text_wraps_and_is_complete(tmp_path):
    words = " ".join(f"word{i}" for i in range(80))
    doc = _doc(
        (
            Section(
                "Wide",
                (Table(("key", "long value", "n"), (("k1", words, "1"), ("k2", "short", "2"))),),
            ),
        )
    )
    render_pdf(doc, tmp_path / "wide.pdf")
    text = _text(PdfReader(str(tmp_path / "wide.pdf")).pages[1])
    assert words in text


def test_very_tall_row_splits_instead_of_failing(tmp_path):
    huge = "\n".join(f"line {i}" for i in range(150))
    doc = _doc((Section("Tall", (Table(("a", "b"), (("x", huge),)),)),))
    result = render_pdf(doc, tmp_path / "tall.pdf")
    assert result.pages >= 3


def test_cover_only_and_explicit_page_break(tmp_path):
    result = render_pdf(_doc(()), tmp_path / "cover.pdf")
    assert result.pages == 1 and result.figures == 0
    doc = _doc((Section("A", (Paragraph("one"), PageBreak(), Paragraph("two"))),))
    result = render_pdf(doc, tmp_path / "pb.pdf")
    reader = PdfReader(str(tmp_path / "pb.pdf"))
    assert result.pages == 3
    assert "one" in _text(reader.pages[1]) and "two" in _text(reader.pages[2])


def test_rendering_replaces_existing_file(tmp_path):
    path = tmp_path / "r.pdf"
    path.write_bytes(b"old")
    render_pdf(_doc(()), path)
    assert path.read_bytes().startswith(b"%PDF")


# --------------------------------------------------------------------------- validation


def test_table_row_length_mismatch_names_row():
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        Table(("a", "b"), (("1", "2"), ("3",)))


def test_table_other_validation():
    with pytest.raises(ValueError, match="header"):
        Table((), ())
    with pytest.raises(ValueError, match="col_widths"):
        Table(("a", "b"), (), col_widths=(1.0,))
    with pytest.raises(ValueError, match="col_widths"):
        Table(("a", "b"), (), col_widths=(1.0, 0.0))
    with pytest.raises(ValueError, match="numeric_cols"):
        Table(("a",), (), numeric_cols=(1,))
    with pytest.raises(TypeError, match=r"rows\[0\]\[1\]"):
        Table(("a", "b"), (("1", 2.0),))


def test_figure_validation():
    with pytest.raises(ValueError, match="PNG"):
        Figure(b"GIF89a not a png")
    with pytest.raises(ValueError, match="width"):
        Figure(_small_png(), width=0)
    with pytest.raises(ValueError, match="width"):
        Figure(_small_png(), width=1.5)


def test_document_validation(tmp_path):
    with pytest.raises(ValueError, match="title"):
        _doc((), title="  ")
    with pytest.raises(ValueError, match="title"):
        Section("", ())
    with pytest.raises(ValueError, match="style"):
        Paragraph("x", style="huge")
    with pytest.raises(TypeError, match=r"blocks\[0\]"):
        Section("s", ("plain string",))
    with pytest.raises(ValueError, match="timezone"):
        ReportDocument("t", "s", (), (), generated_at=datetime(2019, 1, 1))
    with pytest.raises(TypeError):
        render_pdf("not a document", tmp_path / "x.pdf")


def test_directory_path_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        render_pdf(_doc(()), tmp_path)


def test_corrupt_png_body_is_value_error(tmp_path):
    bad = Figure(PNG_SIGNATURE + b"garbage")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="Figure.png"):
        render_pdf(_doc((Section("s", (bad,)),)), out / "x.pdf")
    assert not out.exists()


def test_failure_during_build_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "out" / "report.pdf"

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_pdf._NumberedCanvas, "save", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        render_pdf(_doc((Section("s", (Paragraph("x"),)),)), path)
    assert not path.exists()
    assert not path.parent.exists() or list(path.parent.iterdir()) == []


def test_failure_during_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "out" / "report.pdf"
    path.parent.mkdir()
    path.write_bytes(b"previous report")

    def fail_replace(src, dst):
        raise OSError("replace failed")

    monkeypatch.setattr(_document.os, "replace", fail_replace)
    with pytest.raises(OSError, match="replace failed"):
        render_pdf(_doc(()), path)
    assert path.read_bytes() == b"previous report"
    assert [p.name for p in path.parent.iterdir()] == ["report.pdf"]


def test_layout_error_becomes_report_render_error(tmp_path, monkeypatch):
    def layout_fails(self, *args, **kwargs):
        raise LayoutError("Flowable too large")

    monkeypatch.setattr(_pdf.SimpleDocTemplate, "build", layout_fails)
    with pytest.raises(ReportRenderError, match="does not fit") as info:
        render_pdf(_doc(()), tmp_path / "out" / "x.pdf")
    assert isinstance(info.value, RegimeDeskError)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- charts


def _assert_png(data: bytes) -> None:
    assert isinstance(data, bytes) and data.startswith(PNG_SIGNATURE)


def test_price_regime_chart_with_nan_and_probability():
    dates, close, family = _series()
    close[50:60] = np.nan
    prob = np.linspace(0, 1, len(dates))
    prob[:30] = np.nan
    family[100] = float("nan")  # type: ignore[call-overload]
    _assert_png(price_regime_chart(dates, close, family, risk_off_probability=prob))
    _assert_png(price_regime_chart(dates, close, family, title="no probability"))


def test_price_regime_chart_validation():
    dates, close, family = _series(50)
    with pytest.raises(ValueError, match="close"):
        price_regime_chart(dates, close[:-1], family)
    with pytest.raises(ValueError, match="family"):
        price_regime_chart(dates, close, family[:-1])
    with pytest.raises(ValueError, match="risk_off_probability"):
        price_regime_chart(dates, close, family, risk_off_probability=[0.5] * 10)
    with pytest.raises(ValueError, match="empty"):
        price_regime_chart(pd.DatetimeIndex([]), [], [])
    with pytest.raises(ValueError, match="finite"):
        price_regime_chart(dates, np.full(50, np.nan), family)
    with pytest.raises(ValueError, match="positive"):
        price_regime_chart(dates, -close, family)


def test_equity_drawdown_chart():
    dates, close, _ = _series()
    strategy = close * np.linspace(1, 1.2, len(close))
    strategy[:5] = np.nan  # strategy starts later
    _assert_png(equity_drawdown_chart(dates, strategy, close, title="t"))
    with pytest.raises(ValueError, match="benchmark"):
        equity_drawdown_chart(dates, close, close[:-2])
    with pytest.raises(ValueError, match="strategy"):
        equity_drawdown_chart(dates, np.full(len(close), np.nan), close)


def test_reliability_chart_skips_empty_bins():
    rows = [
        {
            "bin_low": i / 10,
            "bin_high": (i + 1) / 10,
            "mean_forecast": (i + 0.5) / 10,
            "observed_frequency": (i + 0.4) / 10,
            "count": 10 * i,
        }
        for i in range(10)
    ]
    rows[3]["mean_forecast"] = None
    rows[4]["mean_forecast"] = float("nan")
    _assert_png(reliability_chart(rows, title="calibration"))
    empty_bins = [dict(r, count=0) for r in rows]
    _assert_png(reliability_chart(empty_bins))
    with pytest.raises(ValueError, match="empty"):
        reliability_chart([])
    with pytest.raises(ValueError, match=r"rows\[0\]"):
        reliability_chart([{"bin_low": 0.0}])


def test_importance_chart():
    imp = {f"feature_{i}": float(i) for i in range(30)}
    imp["nan_feature"] = float("nan")
    imp["negative"] = -3.0
    _assert_png(importance_chart(imp, top=5, title="importance"))
    with pytest.raises(ValueError, match="empty"):
        importance_chart({})
    with pytest.raises(ValueError, match="finite"):
        importance_chart({"a": float("nan")})
    with pytest.raises(ValueError, match="top"):
        importance_chart(imp, top=0)


def test_var_backtest_chart():
    dates, close, _ = _series()
    returns = np.diff(np.log(close), prepend=np.nan)
    var = np.full(len(dates), 0.012)
    var[:25] = np.nan
    _assert_png(var_backtest_chart(dates, returns, var, title="VaR"))
    _assert_png(var_backtest_chart(dates, returns, np.full(len(dates), np.nan)))
    with pytest.raises(ValueError, match="var"):
        var_backtest_chart(dates, returns, var[:-1])
    with pytest.raises(ValueError, match="returns"):
        var_backtest_chart(dates, returns[:-1], var)


def test_charts_short_span_tz_aware_and_unsorted_dates():
    dates = pd.date_range("2018-11-01", periods=30, freq="B", tz="America/New_York")
    close = np.linspace(100, 110, 30)
    _assert_png(price_regime_chart(dates, close, ["risk_on"] * 30))
    _assert_png(price_regime_chart(dates[:1], close[:1], [None]))
    with pytest.raises(ValueError, match="sorted"):
        price_regime_chart(dates[::-1], close, ["risk_on"] * 30)


def test_charts_can_be_drawn_from_threads():
    dates, close, family = _series(120)

    def draw(seed: int) -> bytes:
        return price_regime_chart(dates, close * (1 + seed / 100), family, title=str(seed))

    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(draw, range(4)))
    assert all(img.startswith(PNG_SIGNATURE) for img in images)


def test_chart_size_is_seven_inches_at_150_dpi():
    img = Image.open(io.BytesIO(_small_png()))
    assert abs(img.size[0] - 7 * 150) <= 2
