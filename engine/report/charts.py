"""Equity and drawdown charts of one run, or two overlaid, as standalone HTML and PNG files.

The charts are built with hvplot on pandas frames. HTML: the bokeh rendering in one
self-contained file (bokeh's JavaScript inline, nothing fetched from a CDN, so it opens
offline; holoviews' own `hv.save` would add favicon links to panel's CDN). PNG: the same chart
through holoviews' matplotlib backend (no browser needed). hvplot's options target bokeh, so
the matplotlib ones (size, title, labels, date ticks) are set here too. Each file is written to
a temporary name and renamed: a failure leaves no half file. The plotting libraries take
seconds to import, so they are imported when a chart is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.report.metrics import drawdown_series

CHART_FILES = ("equity.html", "equity.png", "drawdown.html", "drawdown.png")
WIDTH_PX, EQUITY_HEIGHT_PX, DRAWDOWN_HEIGHT_PX = 900, 380, 280
PNG_DPI = 100


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """One run's daily equity curve, as a chart draws it."""

    label: str
    dates: npt.NDArray[np.datetime64]  # datetime64[D]
    equity: npt.NDArray[np.float64]  # USD


def _frame(series: Sequence[Series]) -> Any:
    import pandas as pd

    parts = [
        pd.DataFrame(
            {
                "date": s.dates.astype("datetime64[ns]"),
                "run": s.label,
                "equity": s.equity,
                "drawdown_pct": drawdown_series(s.equity) * 100.0,
            }
        )
        for s in series
    ]
    return pd.concat(parts, ignore_index=True)


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_html(obj: Any, path: Path, title: str) -> None:
    import holoviews as hv  # type: ignore[import-untyped]
    from bokeh.embed import file_html
    from panel.io.resources import Resources

    # Panel's resources, not bokeh's INLINE: hvplot imports panel, whose models then add a
    # script tag with a relative URL to bokeh's bundle; panel's inline resources leave it out.
    inline = Resources(mode="inline")  # type: ignore[no-untyped-call]
    html = file_html(hv.render(obj, backend="bokeh"), inline, title=title)
    _atomic(path, lambda p: p.write_text(html, encoding="utf-8"))


def _save_png(obj: Any, path: Path) -> None:
    import holoviews as hv

    _atomic(path, lambda p: hv.save(obj, str(p), backend="matplotlib", fmt="png", dpi=PNG_DPI))


def _charts(series: Sequence[Series]) -> tuple[Any, Any]:
    """(equity, drawdown) charts carrying both bokeh and matplotlib options."""
    import matplotlib

    # Files only: a headless backend, whatever the environment asks for.
    matplotlib.use("Agg")
    import holoviews as hv
    import holoviews.plotting.mpl  # type: ignore[import-untyped]  # registers its options
    import hvplot.pandas  # noqa: F401  (adds .hvplot to pandas frames)
    from matplotlib.dates import DateFormatter

    df = _frame(series)
    year_month = DateFormatter("%Y-%m")  # type: ignore[no-untyped-call]
    opts = hv.opts
    mpl = "matplotlib"
    equity = df.hvplot.line(
        x="date", y="equity", by="run", title="Equity", xlabel="",
        ylabel="net liquidation (USD)", yformatter="%.0f", legend="top_left",
        width=WIDTH_PX, height=EQUITY_HEIGHT_PX, line_width=1.5,
    ).opts(
        opts.NdOverlay(fig_inches=(10, 4), aspect=2.5, title="Equity",
                       legend_position="top_left", backend=mpl),
        opts.Curve(xlabel="", ylabel="net liquidation (USD)", yformatter="%.0f",
                   xformatter=year_month, linewidth=1.2, backend=mpl),
        clone=True,
    )  # fmt: skip
    drawdown = df.hvplot.area(
        x="date", y="drawdown_pct", by="run", stacked=False, alpha=0.35, title="Drawdown",
        xlabel="", ylabel="drawdown (%)", legend="bottom_left",
        width=WIDTH_PX, height=DRAWDOWN_HEIGHT_PX,
    ).opts(
        opts.NdOverlay(fig_inches=(10, 3.2), aspect=3, title="Drawdown", show_legend=True,
                       legend_position="bottom_left", backend=mpl),
        opts.Area(xlabel="", ylabel="drawdown (%)", alpha=0.35, linewidth=0,
                  xformatter=year_month, show_legend=True, backend=mpl),
        clone=True,
    )  # fmt: skip
    return equity, drawdown


def write_charts(series: Sequence[Series], out_dir: Path) -> list[Path]:
    """Write equity.html/.png and drawdown.html/.png for `series` (one run, or several
    overlaid) into `out_dir`; returns the files written."""
    if not series:
        raise ValueError("write_charts: no series to draw")
    out_dir.mkdir(parents=True, exist_ok=True)
    equity, drawdown = _charts(series)
    title = " vs ".join(s.label for s in series)
    files = [out_dir / name for name in CHART_FILES]
    _save_html(equity, files[0], f"Equity — {title}")
    _save_png(equity, files[1])
    _save_html(drawdown, files[2], f"Drawdown — {title}")
    _save_png(drawdown, files[3])
    return files
