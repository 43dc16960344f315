"""Positions and risk at the chosen tick: open positions with legs, Greeks, P&L and high-water
mark; every limit with its headroom; the trading state and the breaker history."""

from __future__ import annotations

import html
from datetime import datetime

import pandas as pd
import panel as pn

from engine.dsl.trace import fmt_value
from engine.state.snapshot import EXCHANGE_TZ
from ui import view_data as vd
from ui.journal_reader import JournalReader
from ui.tables import table
from ui.trace_tab import TickPicker


def risk_tab(reader: JournalReader, picker: TickPicker) -> pn.viewable.Viewable:
    @pn.depends(picker.param.tick)
    def positions(tick: datetime | None) -> pn.viewable.Viewable:
        if tick is None:
            return pn.pane.Markdown("No tick yet.")
        df = vd.positions_at(reader.table("positions"), tick)
        levels = vd.exit_levels(reader.table("decisions"), tick)
        df.insert(1, "exit levels", [levels.get(p, "") for p in df["position_id"]])
        return table(df, "v6-positions", "No open position at this tick.")

    @pn.depends(picker.param.tick)
    def limits(tick: datetime | None) -> pn.viewable.Viewable:
        if tick is None:
            return pn.pane.Markdown("")
        views = vd.limits_at(reader.table("decisions"), tick)
        if not views:
            return pn.pane.Markdown("No limit was evaluated at this tick.")
        return pn.pane.HTML(_limit_bars(views), css_classes=["v6-limits"])

    @pn.depends(picker.param.tick)
    def state(tick: datetime | None) -> pn.viewable.Viewable:
        if tick is None:
            return pn.pane.Markdown("")
        st = vd.state_at(reader.table("equity"), reader.table("risk_events"), tick)
        tripped = ", ".join(f"{b.breaker} (since {b.since:%Y-%m-%d})" for b in st.tripped)
        events = pd.DataFrame(
            [{"time": f"{e.time.astimezone(EXCHANGE_TZ):%Y-%m-%d %H:%M} ET", "kind": e.kind,
              "before": e.state_before, "after": e.state_after, "cause": e.cause,
              "detail": e.detail} for e in st.events]
        )  # fmt: skip
        head = pn.pane.Markdown(
            f"**Trading state: {st.state or 'unknown'}** · regime {st.regime or '—'} · "
            f"breakers tripped: {tripped or 'none'}",
            css_classes=["v6-state"],
        )
        return pn.Column(head, _events(events))

    return pn.Column(
        pn.Row(picker.widget, picker.busy_only),
        pn.pane.Markdown("### Trading state and breaker history"),
        state,
        pn.pane.Markdown("### Limits: headroom at this tick"),
        limits,
        pn.pane.Markdown("### Open positions"),
        positions,
    )


def _events(df: pd.DataFrame) -> pn.viewable.Viewable:
    return table(df, "v6-events", "No risk event up to this tick.", max_height=300)


def _limit_bars(views: list[vd.LimitView]) -> str:
    """One bar per limit: how much of the room to its threshold is used; red when breached."""
    rows = []
    for v in views:
        used = None if v.used_fraction is None else max(0.0, min(1.0, v.used_fraction))
        width = 100 if v.breached or used is None else max(2, round(100 * used))
        color = (
            "#d62728"
            if v.breached
            else ("#ff9800" if used is not None and used > 0.8 else "#4caf50")
        )
        if v.breached:
            head = "breached" if v.headroom is None else f"beyond by {-v.headroom:,.4g}"
        else:
            head = "unknown" if v.headroom is None else f"room {v.headroom:,.4g}"
        values = ", ".join(
            f"{html.escape(o.text)} = {html.escape(fmt_value(o.value, o.unit))}" for o in v.operands
        )
        rows.append(
            f'<tr class="v6-limit"><td><b>{html.escape(v.limit_id)}</b></td><td><code>'
            f'{html.escape(v.check or "")}</code></td><td style="width:30%"><div '
            f'style="background:#eee;width:100%"><div style="background:{color};width:{width}%;'
            f'height:12px"></div></div></td><td>{head}</td><td>{values}</td></tr>'
        )
    return (
        '<table class="v6-limits-table"><thead><tr><th>limit</th><th>check</th>'
        "<th>room used</th><th></th><th>values</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
