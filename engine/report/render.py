"""A run report as text tables (rich) or as one JSON-ready dict; side by side with --vs.

Every rendering states the run's fill model and costs (from run.json) in its header, so an
optimistic fill model is never mistaken for a result, and shows a warning banner for a run that
is still running or was left partial. The Risk section (engine.report.risk_summary) follows
the metrics: its counts and costs side by side with --vs, its lists one run after the other.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from engine.report.breakdown import RunReport, SegmentMetrics
from engine.report.metrics import TRADING_DAYS, Metrics
from engine.report.risk_summary import RISK_ROWS, UNKNOWN, RiskSummary, summarize

NONE = "—"
# (key in Metrics.to_dict(), label, format): the rows of the metrics table, in order.
METRIC_ROWS = (
    ("start", "Start", "date"),
    ("end", "End", "date"),
    ("days", "Trading days", "int"),
    ("start_equity", "Start equity", "usd"),
    ("end_equity", "End equity", "usd"),
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("volatility", "Volatility (annualised)", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_peak", "  peak", "date"),
    ("max_drawdown_trough", "  trough", "date"),
    ("max_drawdown_recovery", "  recovery", "date"),
    ("calmar", "Calmar", "ratio"),
    ("trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("avg_win", "Average win", "usd"),
    ("avg_loss", "Average loss", "usd"),
    ("profit_factor", "Profit factor", "ratio"),
    ("trade_pnl", "Trade P&L", "usd"),
    ("exposure", "Exposure", "pct"),
)
# (key in SegmentMetrics, header, format): the columns of the regime and year tables.
SEGMENT_COLUMNS = (
    ("days", "Days", "int"),
    ("total_return", "Return", "pct"),
    ("mean_return", "Mean/day", "bp"),
    ("cagr", "CAGR", "pct"),
    ("volatility", "Vol", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("max_drawdown", "Max DD", "pct"),
    ("pnl", "P&L", "usd"),
    ("trades", "Trades", "int"),
    ("win_rate", "Win", "pct"),
)
# The columns compared side by side per regime and per year with --vs.
COMPARED = (("sharpe", "Sharpe", "ratio"), ("max_drawdown", "Max DD", "pct"),
            ("total_return", "Return", "pct"))  # fmt: skip
TOP_KEYS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
            "calmar", "trades", "win_rate", "avg_win", "avg_loss", "profit_factor",
            "exposure")  # fmt: skip


def fmt(value: Any, kind: str) -> str:
    """One value for a table cell; undefined values are a dash."""
    if value is None:
        return NONE
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "bp":  # a daily mean return: basis points read better than 0.01%
        return f"{value * 1e4:.1f}bp"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "usd":
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value):,.0f}" if abs(value) >= 1000 else f"{sign}${abs(value):,.2f}"
    if kind == "date":
        return value.isoformat() if isinstance(value, date) else str(value)
    return str(value)


def fmt_diff(a: Any, b: Any, kind: str) -> str:
    """B − A for a numeric cell; percentages as percentage points."""
    if a is None or b is None or kind == "date":
        return ""
    d = b - a
    if kind == "pct":
        return f"{d * 100:+.2f}pp"
    if kind == "bp":
        return f"{d * 1e4:+.1f}bp"
    if kind == "ratio":
        return f"{d:+.2f}"
    if kind == "usd":
        return fmt(d, kind) if d < 0 else "+" + fmt(d, kind)
    return f"{d:+d}"


def _fmt_money(value: Any) -> str:
    return f"${value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, int | float) else "?"


def describe_fill_model(fill: Mapping[str, Any] | None) -> str:
    """'mid_minus (fraction 0.25, partial fills on)' from run.json's fill_model."""
    if not fill:
        return "fill model not stated"
    if isinstance(fill.get("label"), str):  # SimBroker states its model in words
        return str(fill["label"])
    extra = [f"{k} {v}" for k, v in fill.items() if k not in ("name", "partial")]
    if "partial" in fill:
        extra.append(f"partial fills {'on' if fill['partial'] else 'off'}")
    return f"{fill.get('name', '?')}" + (f" ({', '.join(extra)})" if extra else "")


def describe_costs(costs: Mapping[str, Any] | None) -> str:
    """'$0.65/contract, min $1/order, fees $0.02/contract, $0.005/share, $2.25/future'."""
    if not costs:
        return "costs not stated"
    if isinstance(costs.get("label"), str):
        return str(costs["label"])
    known = {
        "per_contract": "{}/contract",
        "min_per_order": "min {}/order",
        "fees_per_contract": "fees {}/contract",
        "per_share": "{}/share",
        "per_future": "{}/future",
    }
    parts = [known[k].format(_fmt_money(costs[k])) for k in known if k in costs]
    parts += [f"{k} {v}" for k, v in costs.items() if k not in known]
    return ", ".join(parts)


def header_lines(report: RunReport, tag: str = "") -> list[str]:
    """What was run and how it was filled: the lines above every table."""
    meta = report.data.meta
    rs = meta.get("ruleset") or {}
    return [
        f"{tag}run {report.data.name} [{meta.get('status')}]  ruleset {rs.get('name', '?')} "
        f"({rs.get('hash', '?')})  feed {meta.get('feed', '?')}  "
        f"{meta.get('from', '?')} → {meta.get('to', '?')}  "
        f"initial cash {_fmt_money(meta.get('initial_cash'))}",
        f"{tag}  fill model: {describe_fill_model(meta.get('fill_model'))}",
        f"{tag}  costs: {describe_costs(meta.get('costs'))}",
    ]


def conventions_line(rate: float) -> str:
    return (
        f"metrics: simple daily returns, {TRADING_DAYS} trading days a year, "
        f"risk-free rate {rate * 100:.2f}% a year"
    )


def _banner(reports: Sequence[RunReport]) -> Panel | None:
    lines = [w for r in reports for w in (f"{r.data.name}: {x}" for x in r.data.warnings)]
    if not lines:
        return None
    return Panel(Text("\n".join(lines)), title="⚠ warning", box=box.HEAVY, expand=False)


def metric_cells(metrics: Metrics | None) -> list[str]:
    """The cells of one column of a metrics table, in METRIC_ROWS order."""
    values = metrics.to_dict() if metrics else {}
    cells = [fmt(values.get(key), kind) for key, _, kind in METRIC_ROWS]
    if values.get("max_drawdown") and values["max_drawdown_recovery"] is None:
        cells[[k for k, _, _ in METRIC_ROWS].index("max_drawdown_recovery")] = "not recovered"
    return cells


def _metrics_columns(title: str, headers: Sequence[str], columns: Sequence[list[str]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("metric")
    for header in headers:
        table.add_column(header, justify="right")
    for i, (_, label, _) in enumerate(METRIC_ROWS):
        table.add_row(label, *(col[i] for col in columns))
    return table


def metrics_table(metrics: Metrics, title: str = "Metrics") -> Table:
    return _metrics_columns(title, ["value"], [metric_cells(metrics)])


def compare_table(
    a: Metrics, b: Metrics, names: tuple[str, str], title: str = "Metrics, side by side"
) -> Table:
    """The metrics side by side: A, B and B − A."""
    va, vb = a.to_dict(), b.to_dict()
    diff = [fmt_diff(va[key], vb[key], kind) for key, _, kind in METRIC_ROWS]
    headers = [f"A: {names[0]}", f"B: {names[1]}", "B − A"]
    columns = [metric_cells(a), metric_cells(b), diff]
    return _metrics_columns(title, headers, columns)


def segment_table(segments: Sequence[SegmentMetrics], title: str, first: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column(first)
    for _, header, _ in SEGMENT_COLUMNS:
        table.add_column(header, justify="right")
    for seg in segments:
        table.add_row(seg.label, *(fmt(getattr(seg, k), kind) for k, _, kind in SEGMENT_COLUMNS))
    return table


def compare_segments(
    a: Sequence[SegmentMetrics], b: Sequence[SegmentMetrics], title: str, first: str
) -> Table:
    """Per regime (or year) in either run: days, and Sharpe, max drawdown, return as A, B, B − A."""
    table = Table(title=f"{title} (Δ = B − A)", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column(first)
    table.add_column("Days A/B", justify="right")
    for _, header, _ in COMPARED:
        for suffix in ("A", "B", "Δ"):
            table.add_column(f"{header} {suffix}", justify="right")
    by_a, by_b = {s.label: s for s in a}, {s.label: s for s in b}
    labels = list(by_a) + [k for k in by_b if k not in by_a]
    for label in labels:
        sa, sb = by_a.get(label), by_b.get(label)
        row = [label, f"{sa.days if sa else 0}/{sb.days if sb else 0}"]
        for key, _, kind in COMPARED:
            x, y = getattr(sa, key, None), getattr(sb, key, None)
            row += [fmt(x, kind), fmt(y, kind), fmt_diff(x, y, kind)]
        table.add_row(*row)
    return table


def split_table(report: RunReport) -> Table:
    at = report.split_at
    headers = [f"before {at}", f"from {at}"]
    columns = [metric_cells(report.in_sample), metric_cells(report.out_of_sample)]
    return _metrics_columns(f"In-sample / out-of-sample (split at {at})", headers, columns)


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """A table whose first column is text and the others right-aligned."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _risk_rows(*summaries: RiskSummary) -> list[tuple[str, str, str]]:
    """RISK_ROWS, without the unknown-state row when no run has such a day."""
    unknown = any(s.state == UNKNOWN for r in summaries for s in r.states)
    return [row for row in RISK_ROWS if unknown or row[0] != "days_unknown"]


def risk_lists(risk: RiskSummary, tag: str = "") -> list[RenderableType]:
    """One run's trips, trips per breaker, operator commands (those it has) and notes."""
    parts: list[RenderableType] = []
    if risk.trips:
        rows = [[t.breaker, t.wants or NONE, t.tripped.isoformat(),
                 t.reset.isoformat() if t.reset else "still tripped", t.reset_by or NONE,
                 str(t.days)] for t in risk.trips]  # fmt: skip
        heads = ["breaker", "wants", "tripped", "reset", "reset by", "days"]
        parts.append(_table(f"{tag}Breaker trips", heads, rows))
        rows = [[b.breaker, str(b.trips), str(b.days), "yes" if b.still_tripped else "no"]
                for b in risk.breakers]  # fmt: skip
        heads = ["breaker", "trips", "days tripped", "tripped at the end"]
        parts.append(_table(f"{tag}Trips per breaker", heads, rows))
    if risk.commands:
        rows = [[c.day.isoformat(), c.command] for c in risk.commands]
        parts.append(_table(f"{tag}Operator commands", ["date", "command"], rows))
    if risk.notes:
        parts.append(Text("\n".join(f"{tag}risk: {n}" for n in risk.notes)))
    return parts


def risk_parts(risk: RiskSummary) -> list[RenderableType]:
    """The Risk section of one run: its figures (days with their share), lists, blocked orders."""
    values, rows = risk.headline(), []
    for key, label, kind in _risk_rows(risk):
        share = f" ({values[key] / risk.days:.1%})" if key.startswith("days_") and risk.days else ""
        rows.append([label, fmt(values.get(key), kind) + share])
    parts: list[RenderableType] = [_table("Risk", ["figure", "value"], rows)]
    if risk.blocked:
        rows = [[b.reason, str(b.orders), str(b.entries)] for b in risk.blocked]
        parts.append(_table("Orders blocked by the risk gate", ["reason", "orders", "entries"],
                            rows))  # fmt: skip
    return parts + risk_lists(risk)


def compare_risk(a: RiskSummary, b: RiskSummary, names: tuple[str, str]) -> list[RenderableType]:
    """Counts and costs side by side (A, B, B − A); each run's lists one after the other."""
    va, vb = a.headline(), b.headline()
    rows = [[label, fmt(va.get(k), kind), fmt(vb.get(k), kind), fmt_diff(va.get(k), vb.get(k),
             kind)] for k, label, kind in _risk_rows(a, b)]  # fmt: skip
    heads = ["figure", f"A: {names[0]}", f"B: {names[1]}", "B − A"]
    parts: list[RenderableType] = [_table("Risk, side by side", heads, rows)]
    ba, bb = {x.reason: x.orders for x in a.blocked}, {x.reason: x.orders for x in b.blocked}
    if ba or bb:
        rows = [[k, str(ba.get(k, 0)), str(bb.get(k, 0))] for k in {**ba, **bb}]
        title = "Orders blocked by the risk gate, side by side"
        parts.append(_table(title, ["reason", "A", "B"], rows))
    return parts + risk_lists(a, "A: ") + risk_lists(b, "B: ")


def render_text(report: RunReport, vs: RunReport | None = None, width: int = 120) -> str:
    """The report as plain text tables (no colour codes), ready to print."""
    parts: list[RenderableType] = []
    reports = [report] if vs is None else [report, vs]
    banner = _banner(reports)
    if banner:
        parts.append(banner)
    tags = [""] if vs is None else ["A: ", "B: "]
    lines = [line for r, t in zip(reports, tags, strict=True) for line in header_lines(r, t)]
    lines.append(conventions_line(report.metrics.risk_free_rate))
    parts.append(Text("\n".join(lines)))
    if vs is None:
        parts += [
            metrics_table(report.metrics),
            segment_table(report.by_regime, "By regime", "regime"),
            segment_table(report.by_year, "By year", "year"),
        ]
        if report.split_at:
            parts.append(split_table(report))
        parts += risk_parts(summarize(report.data))
    else:
        names = (report.data.name, vs.data.name)
        parts += [
            compare_table(report.metrics, vs.metrics, names),
            compare_segments(report.by_regime, vs.by_regime, "By regime, side by side", "regime"),
            compare_segments(report.by_year, vs.by_year, "By year, side by side", "year"),
        ]
        at = report.split_at
        samples = (report.in_sample, vs.in_sample, report.out_of_sample, vs.out_of_sample)
        if at and all(s is not None for s in samples):
            a_in, b_in, a_out, b_out = samples
            assert a_in and b_in and a_out and b_out
            parts.append(compare_table(a_in, b_in, names, f"In-sample: before {at}"))
            parts.append(compare_table(a_out, b_out, names, f"Out-of-sample: from {at}"))
        parts += compare_risk(summarize(report.data), summarize(vs.data), names)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False,
                      force_terminal=False, emoji=False)  # fmt: skip
    console.print(Group(*parts))
    # rich pads every line to the table's width: trailing blanks are noise in a terminal or file
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip().splitlines()) + "\n"


def _segments_json(segments: Sequence[SegmentMetrics]) -> dict[str, Any]:
    return {s.label: {k: v for k, v in s.to_dict().items() if k != "label"} for s in segments}


def to_json(report: RunReport, vs: RunReport | None = None) -> dict[str, Any]:
    """The report as one JSON-ready dict: the headline metrics at the top level (total_return,
    cagr, volatility, sharpe, sortino, max_drawdown, calmar, trades, win_rate, …), then the
    run, its fill model and costs, by_regime, by_year, the split if any, the Risk section under
    "risk", and with `vs` the other run's report under "vs" and B − A of the headline metrics
    under "diff"."""
    meta = report.data.meta
    out: dict[str, Any] = report.metrics.to_dict()
    out["status"] = report.data.status
    out["run"] = {
        "dir": str(report.data.run_dir),
        "name": report.data.name,
        **{k: meta.get(k) for k in ("ruleset", "feed", "from", "to", "initial_cash",
                                    "trace_level", "ticks_done", "last_tick")},
    }  # fmt: skip
    out["fill_model"] = meta.get("fill_model")
    out["costs"] = meta.get("costs")
    out["conventions"] = {"returns": "simple daily", "days_per_year": TRADING_DAYS,
                          "risk_free_rate": report.metrics.risk_free_rate}  # fmt: skip
    out["warnings"] = list(report.data.warnings)
    out["by_regime"] = _segments_json(report.by_regime)
    out["by_year"] = _segments_json(report.by_year)
    if report.split_at:
        out["split"] = {
            "at": report.split_at.isoformat(),
            "in_sample": report.in_sample.to_dict() if report.in_sample else None,
            "out_of_sample": report.out_of_sample.to_dict() if report.out_of_sample else None,
        }
    out["risk"] = summarize(report.data).to_dict()
    if vs is not None:
        other = to_json(vs)
        out["vs"] = other
        out["diff"] = {
            k: None if out[k] is None or other[k] is None else other[k] - out[k] for k in TOP_KEYS
        }
    return out
