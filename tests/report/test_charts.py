"""Equity and drawdown charts: standalone HTML (bokeh inline, no CDN) and real PNG files."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import bokeh
import numpy as np
import pytest

from engine.report.charts import CHART_FILES, Series, write_charts

from .conftest import weekdays

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def series(label: str, seed: int, n: int = 300) -> Series:
    rng = np.random.default_rng(seed)
    days = np.array(weekdays(date(2018, 1, 1), n), dtype="datetime64[D]")
    return Series(label, days, 1e5 * np.cumprod(1 + rng.normal(0.0003, 0.01, n)))


def test_two_runs_overlaid_as_html_and_png(tmp_path: Path) -> None:
    out = tmp_path / "report"
    files = write_charts([series("A: v5-baseline", 1), series("B: v6", 2, n=250)], out)
    assert [f.name for f in files] == list(CHART_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(CHART_FILES)  # no temporary left
    for png in (out / "equity.png", out / "drawdown.png"):
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 10_000  # a drawn chart, not an empty canvas
    for name, title in (("equity.html", "Equity"), ("drawdown.html", "Drawdown")):
        html = (out / name).read_text(encoding="utf-8")
        assert f"<title>{title} — A: v5-baseline vs B: v6</title>" in html
        # the bokeh document, and bokeh's own library inline (megabytes of JavaScript)
        assert "Bokeh.embed.embed_items" in html and 'type="application/json"' in html
        assert f'version="{bokeh.__version__}"' in html and len(html) > 1_000_000
        assert "A: v5-baseline" in html and "B: v6" in html  # both runs' legends
        # self-contained: no script or stylesheet fetched from anywhere
        assert not re.search(r"<script[^>]+src=", html)
        assert not re.search(r"<link[^>]+href=[\"']https?:", html)


def test_nothing_to_draw(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no series"):
        write_charts([], tmp_path)
