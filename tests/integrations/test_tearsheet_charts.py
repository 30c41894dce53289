"""Tearsheet charts: regime shading on the equity and exposure charts, heatmap colours, validation."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from integrations import (
    CHART_DPI,
    CHART_WIDTH_INCHES,
    equity_drawdown_chart,
    exposure_chart,
    monthly_returns_heatmap,
    rolling_performance_chart,
)

RISK_OFF = (0xF6, 0xCF, 0xCB)
RISK_ON = (0xD3, 0xEB, 0xD3)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _count(png: bytes, rgb: tuple[int, int, int]) -> int:
    return int((_pixels(png) == np.array(rgb)).all(axis=-1).sum())


def _equity(n: int = 200):
    dates = pd.bdate_range("2008-01-01", periods=n)
    rng = np.random.default_rng(3)
    eq = np.cumprod(1 + rng.normal(0, 0.01, n))
    return dates, eq, np.cumprod(1 + rng.normal(0, 0.012, n))


def test_equity_chart_is_shaded_by_regime_only_when_asked():
    dates, eq, bh = _equity()
    plain = equity_drawdown_chart(dates, eq, bh)
    half = ["risk_off"] * 100 + ["risk_on"] * 100
    shaded = equity_drawdown_chart(dates, eq, bh, family=half)
    assert _count(plain, RISK_OFF) == 0 and _count(plain, RISK_ON) == 0
    off, on = _count(shaded, RISK_OFF), _count(shaded, RISK_ON)
    # both panels shaded, each family over about half of the plot width
    assert off > 50_000 and on > 50_000 and 0.7 < off / on < 1.4
    all_on = equity_drawdown_chart(dates, eq, bh, family=["risk_on"] * 200)
    assert _count(all_on, RISK_OFF) == 0 and _count(all_on, RISK_ON) > off + on * 0.8
    with pytest.raises(ValueError, match="family"):
        equity_drawdown_chart(dates, eq, bh, family=half[:-1])


def test_exposure_chart_draws_weights_average_and_shading():
    dates, _, _ = _equity()
    w = np.r_[np.zeros(50), np.ones(100), np.full(50, 0.5)]
    avg = pd.Series(w).rolling(20).mean().to_numpy()
    png = exposure_chart(dates, w, average=avg, family=["risk_off"] * 200, title="t")
    img = Image.open(io.BytesIO(png))
    assert img.size[0] == round(CHART_WIDTH_INCHES * CHART_DPI)
    assert _count(png, RISK_OFF) > 10_000 and _count(png, RISK_ON) == 0
    assert _count(exposure_chart(dates, w), RISK_OFF) == 0
    with pytest.raises(ValueError, match="average"):
        exposure_chart(dates, w, average=avg[:-1])
    with pytest.raises(ValueError, match="weights"):
        exposure_chart(dates, w[:-1])


def test_heatmap_colours_follow_the_sign_of_the_return():
    table = pd.DataFrame({1: [0.05, -0.05], 2: [np.nan, 0.0]}, index=[2020, 2021])
    pixels = _pixels(monthly_returns_heatmap(table)).reshape(-1, 3).astype(int)
    r, g = pixels[:, 0], pixels[:, 1]
    # RdYlGn at +limit is dark green, at -limit dark red
    assert ((g - r > 60) & (g > 80)).sum() > 2000
    assert ((r - g > 120) & (r > 120)).sum() > 2000
    with pytest.raises(ValueError, match="1..12"):
        monthly_returns_heatmap(pd.DataFrame({13: [0.1]}, index=[2020]))
    with pytest.raises(ValueError, match="finite"):
        monthly_returns_heatmap(pd.DataFrame({1: [np.nan]}, index=[2020]))
    with pytest.raises(ValueError, match="non-empty"):
        monthly_returns_heatmap(pd.DataFrame())


def test_heatmap_grows_with_the_years():
    one = monthly_returns_heatmap(pd.DataFrame({m: [0.01 * m] for m in range(1, 13)}, index=[2020]))
    many = monthly_returns_heatmap(pd.DataFrame({m: [0.01] * 15 for m in range(1, 13)},
                                                index=range(2004, 2019)))
    assert Image.open(io.BytesIO(many)).size[1] > Image.open(io.BytesIO(one)).size[1] + 400


def test_rolling_chart_validates_lengths():
    dates, _, _ = _equity()
    s = np.r_[np.full(20, np.nan), np.linspace(-1, 2, 180)]
    v = np.r_[np.full(20, np.nan), np.linspace(0.1, 0.3, 180)]
    assert rolling_performance_chart(dates, s, v, benchmark_sharpe=s * 0.5,
                                     benchmark_volatility=v * 1.1).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="volatility"):
        rolling_performance_chart(dates, s, v[:-1])
    with pytest.raises(ValueError, match="benchmark_sharpe"):
        rolling_performance_chart(dates, s, v, benchmark_sharpe=s[:3])
