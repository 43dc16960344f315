"""Run overview: equity and drawdown with linked zoom, regime bands, breaker trips and hedges
as markers, and the run's metrics; a second run side by side when one is given."""

from __future__ import annotations

from typing import Any

import holoviews as hv  # type: ignore[import-untyped]
import pandas as pd
import panel as pn

from ui.journal_reader import JournalReader
from ui.overview_data import Overview, overview

REGIME_COLORS = {"crash": "#d62728", "high_vol": "#ff7f0e", "normal": "#cfd8dc",
                 "low_vol": "#2ca02c"}  # fmt: skip


def overview_tab(reader: JournalReader, other: JournalReader | None) -> pn.viewable.Viewable:
    hv.extension("bokeh")
    ov = overview(reader.state.run_dir, reader)
    cmp = overview(other.state.run_dir, other) if other is not None else None
    names = (ov.name, cmp.name if cmp is not None else "")
    if names[0] == names[1]:
        names = (f"{names[0]} (A)", f"{names[1]} (B)")
    equity = _curve(ov, "equity", "net liq (USD)", cmp, names)
    drawdown = _curve(ov, "drawdown", "drawdown", cmp, names)
    # One shared time axis: zooming either plot zooms both (holoviews links shared dims).
    layout = (equity + drawdown).cols(1).opts(shared_axes=True)
    notes = [pn.pane.Alert(n, alert_type="info") for n in ov.notes]
    return pn.Column(
        pn.pane.Markdown("### Equity and drawdown"),
        pn.pane.Markdown(
            "Shaded: crash (red), high vol (orange) and low vol (green) regimes; "
            "dashed red lines: breaker trips; triangles: hedge orders."
        ),
        *notes,
        pn.pane.HoloViews(layout, css_classes=["v6-overview-plot"]),
        pn.pane.Markdown("### Metrics"),
        _metrics(ov, cmp, names),
    )


def _curve(ov: Overview, what: str, label: str, cmp: Overview | None,
           names: tuple[str, str]) -> hv.Overlay:  # fmt: skip
    def curve(o: Overview, name: str) -> hv.Curve:
        series: pd.Series = getattr(o, what)
        return hv.Curve((series.index, series.values), "date", label, label=name)

    # One element per regime colour and one for all trips: a 13-year run has hundreds of
    # bands, and one bokeh glyph each would take seconds to build and draw.
    parts: list[Any] = [curve(ov, names[0]), *_bands(ov)]
    if cmp is not None:
        parts.insert(1, curve(cmp, names[1]))
    trips = pd.DataFrame({"date": pd.to_datetime([m.date for m in ov.markers
                                                  if m.kind == "trip"])})  # fmt: skip
    if len(trips):
        # Datetime columns, not Python objects: the linked-zoom hook compares axis ranges.
        parts.append(hv.VLines(trips, "date").opts(color="red", line_dash="dashed",
                                                   line_width=1))  # fmt: skip
    hedges = [m for m in ov.markers if m.kind == "hedge"]
    if hedges and what == "equity" and len(ov.equity):
        xs = [m.date for m in hedges]
        ys = [float(ov.equity.asof(x)) for x in xs]
        parts.append(
            hv.Scatter((xs, ys), "date", label).opts(marker="triangle", size=8, color="black")
        )
    return hv.Overlay(parts).opts(responsive=True, height=260, legend_position="top_left",
                                  xlabel="", ylabel=label)  # fmt: skip


def _bands(ov: Overview) -> list[hv.VSpans]:
    out = []
    for regime, color in REGIME_COLORS.items():
        bands = [b for b in ov.regimes if b.regime == regime]
        if bands and regime != "normal" and len(ov.equity):
            # Clipped to the curve's days: a band reaching past the last day widens the axis,
            # and Panel's linked-axes hook then fails comparing its mixed range types.
            last = ov.equity.index[-1]
            starts = pd.to_datetime([b.start for b in bands])
            ends = pd.to_datetime([min(b.end, last) for b in bands])
            spans = pd.DataFrame({"start": starts, "end": ends})
            out.append(hv.VSpans(spans, ["start", "end"]).opts(color=color, alpha=0.15))
    return out


def _metrics(ov: Overview, cmp: Overview | None, names: tuple[str, str]) -> Any:
    df = pd.DataFrame(
        {"metric": list(ov.metrics), names[0]: [_fmt(v) for v in ov.metrics.values()]}
    )
    if cmp is not None:
        df[names[1]] = [_fmt(cmp.metrics.get(k)) for k in ov.metrics]
    return pn.widgets.Tabulator(
        df, disabled=True, show_index=False, layout="fit_data_table", css_classes=["v6-metrics"]
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    return "—" if v is None else str(v)
