"""The rule trace explorer: every rule at a chosen tick, why not, and what the engine did.

A tick is chosen in `TickPicker` (shared with the risk tab). For that tick the page lists every
rule of every phase, in evaluation order, with fired / not fired / unknown, and for each
condition its source text, file:line, operand values and result; the "why not" view ranks the
rules that nearly fired by their first failing condition's distance to threshold. Choosing a
rule shows the orders it produced, their fills and the resulting position.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import pandas as pd
import panel as pn
import param

from engine.dsl.trace import fmt_value
from engine.state.snapshot import EXCHANGE_TZ
from ui import view_data as vd
from ui.journal_reader import JournalReader
from ui.tables import table

_MARK = {"fired": "✔", "not_fired": "✘", "unknown": "?", "skipped": "–"}


class TickPicker(param.Parameterized):
    """The tick every tick-dependent view shows; ticks with activity are offered first."""

    tick: Any = param.Selector(objects=[], doc="the tick shown")

    def __init__(self, reader: JournalReader, **kw: Any) -> None:
        super().__init__(**kw)
        self.reader = reader
        self.widget = pn.widgets.Select(name="Tick", css_classes=["v6-tick"], width=280)
        self.busy_only = pn.widgets.Checkbox(name="only ticks where a rule acted", value=True)
        self.busy_only.param.watch(lambda _: self.reload(), "value")
        self.widget.param.watch(self._chosen, "value")
        self.reload()

    def reload(self) -> None:
        decisions, orders = self.reader.table("decisions"), self.reader.table("orders")
        tl = vd.timeline(decisions, orders)
        if self.busy_only.value and len(tl):
            acted = tl[["rules_fired", "orders_sent", "orders_blocked"]].sum(axis=1) > 0
            busy = tl[acted]
            tl = busy if len(busy) else tl
        times = [t.to_pydatetime() if hasattr(t, "to_pydatetime") else t for t in tl["time"]]
        labels = {_label(t): t for t in times}
        keep = self.widget.value
        self.widget.options = labels
        self.param.tick.objects = list(labels.values())
        if keep in labels.values():
            self.widget.value = keep
        elif times:
            self.widget.value = times[-1]

    def _chosen(self, event: Any) -> None:
        if event.new is not None:
            self.tick = event.new


def _label(t: datetime) -> str:
    """New York time, as the exchange and the trader read it."""
    return f"{t.astimezone(EXCHANGE_TZ):%Y-%m-%d %H:%M} ET"


def trace_tab(reader: JournalReader, picker: TickPicker) -> pn.viewable.Viewable:
    show = pn.widgets.RadioButtonGroup(
        name="Show",
        options=["all rules", "fired", "why not"],
        value="all rules",
        css_classes=["v6-trace-filter"],
    )
    rule_pick = pn.widgets.Select(name="Rule (orders, fills, position)", options=[], width=360)

    @pn.depends(picker.param.tick, show.param.value)
    def rules(tick: datetime | None, mode: str) -> pn.viewable.Viewable:
        if tick is None:
            return pn.pane.Markdown("No tick in this journal yet.")
        decisions = reader.table("decisions")
        if mode == "why not":
            near = vd.why_not(decisions, tick)
            rule_pick.options = []
            return pn.pane.HTML(_near_html(near), css_classes=["v6-why-not"])
        views = vd.rules_at(decisions, tick)
        if mode == "fired":
            views = [r for r in views if r.fired]
        rule_pick.options = {
            f"{r.rule_id} on {r.subject}": (r.rule_id, r.subject)
            for r in views
            if r.fired and r.action
        }
        return pn.pane.HTML(_rules_html(views), css_classes=["v6-trace-table"])

    @pn.depends(picker.param.tick, rule_pick.param.value)
    def linked(tick: datetime | None, chosen: tuple[str, str] | None) -> pn.viewable.Viewable:
        if tick is None or chosen is None:
            return pn.pane.Markdown(
                "Choose a rule that acted to see its orders, fills and position."
            )
        lk = vd.links(
            reader.table("orders"), reader.table("fills"), reader.table("positions"), tick, *chosen
        )
        return pn.Column(
            pn.pane.Markdown("**Orders**"),
            table(lk.orders, "v6-links-orders", max_height=260),
            pn.pane.Markdown("**Fills**"),
            table(lk.fills, "v6-links-fills", max_height=260),
            pn.pane.Markdown("**Position**"),
            table(lk.positions, "v6-links-position", max_height=260),
        )

    decisions, orders = reader.table("decisions"), reader.table("orders")
    timeline = vd.timeline(decisions, orders)
    plot = _timeline_plot(timeline)
    return pn.Column(
        pn.pane.Markdown("### Decisions over time"),
        plot,
        pn.Row(picker.widget, picker.busy_only, show),
        rules,
        pn.pane.Markdown("### What the engine did"),
        rule_pick,
        linked,
    )


def _timeline_plot(tl: pd.DataFrame) -> pn.viewable.Viewable:
    if tl.empty:
        return pn.pane.Markdown("No decisions yet.")
    import hvplot.pandas  # noqa: F401  (registers .hvplot)

    df = tl.set_index("time")[["rules_fired", "orders_sent", "orders_blocked"]]
    return pn.pane.HoloViews(
        df.hvplot.line(height=220, responsive=True, ylabel="per tick", xlabel=""),
        css_classes=["v6-timeline"],
    )


def _rules_html(views: list[vd.RuleView]) -> str:
    rows = []
    for r in views:
        cls = f"v6-rule v6-{r.status}"
        head = (
            f"<td>{_MARK.get(r.status, r.status)} {r.status}</td><td><b>{_e(r.rule_id)}</b>"
            f"</td><td>{_e(r.kind)}/{_e(r.phase)}</td><td>{_e(r.subject)}</td>"
            f"<td>{_e(r.action or '')}</td><td>{_e(r.outcome or '')}</td>"
            f"<td><code>{_e(r.location)}</code></td>"
        )
        rows.append(f'<tr class="{cls}">{head}</tr>')
        for c in r.conditions:
            ops = ", ".join(f"{_e(t)} = <b>{_e(fmt_value(v, u))}</b>" for t, v, u in c.operands)
            dist = "" if c.distance is None else f" · distance {c.distance:+.4g}"
            mark = {True: "✔", False: "✘", None: "?"}[c.result]
            rows.append(
                f'<tr class="v6-condition"><td></td><td colspan="3">{mark} <code>{_e(c.text)}'
                f'</code></td><td colspan="2">{ops}{dist}</td><td><code>{_e(c.location)}'
                "</code></td></tr>"
            )
    return (
        '<table class="v6-rules"><thead><tr><th>status</th><th>rule</th><th>kind</th>'
        "<th>subject</th><th>action</th><th>outcome</th><th>where</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _near_html(near: list[vd.NearMiss]) -> str:
    if not near:
        return "<p>Every rule fired or could not be evaluated.</p>"
    rows = "".join(
        f"<tr><td><b>{_e(n.rule_id)}</b></td><td>{_e(n.subject)}</td><td><code>"
        f"{_e(n.condition)}</code></td><td>{'' if n.distance is None else f'{n.distance:+.4g}'}"
        f"</td><td><code>{_e(n.location)}</code></td></tr>"
        for n in near
    )
    return (
        '<table class="v6-rules"><thead><tr><th>rule</th><th>subject</th><th>first failing'
        " condition</th><th>distance to threshold</th><th>where</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _e(text: object) -> str:
    return html.escape(str(text))
