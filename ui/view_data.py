"""What the trace and risk views show, computed from the journal's tables (pure).

Tables come in as JournalReader gives them (time-ordered, the run_tables schemas); a `time`
argument is a tick of the run (see `tick_times`), an aware datetime. A condition's *headroom*
is how far it is from changing its result, in its operand's unit: positive by how much it
holds, negative by how much it fails. It is computed from the condition's text and operand
values (`a <= b`: b - a; `a >= b`: a - b; a chain: its tightest pair; `or`: its best part;
`and`: its worst), so it is known for conditions that hold too; where the text cannot be read
that way, a failed condition's trace `distance` gives its size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.dsl.trace import fmt_value
from ui.conditions import Operand, margin

Arr = npt.NDArray[Any]
TIME = pa.timestamp("us", tz="UTC")
WIDE = ("portfolio", "market")  # subjects that are no symbol or position
POSITION_COLUMNS = [
    "position_id", "symbol", "strategy", "quantity", "opened_at", "entry_credit", "mark", "pnl",
    "pnl_pct_of_credit", "high_water_pnl_pct", "max_loss", "dte", "days_held", "delta", "gamma",
    "vega", "theta", "entry_regime", "entry_iv", "adjustments", "legs", "flags",
]  # fmt: skip


class ViewDataError(ValueError):
    """A time or a journal value the views cannot use; the message names what and where."""


@dataclass(frozen=True, slots=True)
class CondView:
    text: str
    location: str  # file:line:col
    result: bool | None  # None: unknown (missing data)
    operands: tuple[Operand, ...]
    distance: float | None  # the trace's: right minus left of a failed comparison


@dataclass(frozen=True, slots=True)
class RuleView:
    rule_id: str
    kind: str  # rule, limit, breaker, hedge or regime
    phase: str
    subject: str  # a symbol, a position id, 'portfolio' or 'market'
    status: str  # fired, not_fired, unknown or skipped (a limit: its check's result)
    fired: bool  # a limit: breached
    location: str
    action: str | None
    reason: str | None
    outcome: str | None
    failed_condition: str | None
    conditions: tuple[CondView, ...]
    lets: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class NearMiss:
    rule_id: str
    kind: str
    phase: str
    subject: str
    status: str  # not_fired or unknown
    condition: str | None  # the first condition that failed (or was unknown)
    location: str | None  # its file:line:col
    operands: tuple[Operand, ...]
    distance: float | None  # >= 0: how far from holding, in `unit`; None: not numeric
    scaled: float | None  # distance / |threshold|: what the list is ranked by
    unit: str


@dataclass(frozen=True, slots=True)
class LimitView:
    limit_id: str
    breached: bool
    check: str | None  # the check's source text (None: the run kept no trace)
    location: str
    operands: tuple[Operand, ...]
    value: float | None
    threshold: float | None
    headroom: float | None  # + room left, - beyond the limit; in `unit`
    used_fraction: float | None  # 1 - headroom / |threshold|: 1 at the limit, > 1 beyond it
    unit: str
    outcome: str | None


@dataclass(frozen=True, slots=True, eq=False)
class DecisionLinks:
    orders: pd.DataFrame  # the orders the decision produced (blocked ones too)
    fills: pd.DataFrame  # their legs traded
    positions: pd.DataFrame  # each position's row at the tick (an open: its first row)


class TrippedBreaker(NamedTuple):
    breaker: str
    wants: str | None  # the trading state it asks for
    since: datetime  # UTC


class RiskEvent(NamedTuple):
    time: datetime
    kind: str  # trip, reset, command or transition
    state_before: str
    state_after: str
    cause: str
    detail: str
    values: tuple[dict[str, Any], ...]  # {rule, text, value, unit} behind it


@dataclass(frozen=True, slots=True)
class StateView:
    time: datetime | None  # the equity tick shown (the last at or before the time asked)
    state: str | None  # the trading state: ACTIVE, REDUCING or HALTED
    regime: str | None
    net_liq: float | None  # USD
    drawdown_pct: float | None  # fraction below the peak
    tripped: tuple[TrippedBreaker, ...]  # in order of tripping
    events: tuple[RiskEvent, ...]  # the latest risk events up to the time, newest first


# ----------------------------------------------------------------------------- helpers


def _stamp(time: datetime) -> pa.Scalar:
    if time.utcoffset() is None:
        raise ViewDataError(f"time {time.isoformat()} has no time zone: pass an aware datetime")
    return pa.scalar(time.astimezone(UTC), TIME)


def _at(table: pa.Table, time: datetime) -> pa.Table:
    return table.filter(pc.equal(table.column("time"), _stamp(time)))


def _json(text: str | None, where: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ViewDataError(f"{where}: not valid JSON at column {exc.colno}: {exc.msg}") from None


def _operands(items: Sequence[dict[str, Any]]) -> tuple[Operand, ...]:
    return tuple(Operand(str(o["text"]), o.get("value"), str(o.get("unit", ""))) for o in items)


def _trace(row: dict[str, Any]) -> tuple[tuple[CondView, ...], tuple[Operand, ...]]:
    where = f"decisions, {row['rule_id']} on {row['subject']} at {row['time']}, column 'trace'"
    data = _json(row["trace"], where) or {}
    try:
        conds = tuple(
            CondView(c["text"], c["location"], c["result"], _operands(c["operands"]),
                     c.get("distance"))
            for c in data.get("conditions", [])
        )  # fmt: skip
        return conds, _operands(data.get("lets", []))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ViewDataError(f"{where}: not a condition trace ({exc!r} missing or wrong)") from None


# ----------------------------------------------------------------------------- trace views


def tick_times(decisions: pa.Table) -> list[datetime]:
    """Every tick of the run with decisions, ascending (UTC)."""
    times = pc.unique(decisions.column("time"))
    return [t.astimezone(UTC) for t in times.take(pc.sort_indices(times)).to_pylist()]


def _label(rule: str, subject: str) -> str:
    return rule if subject in WIDE else f"{rule} {subject}"


def timeline(decisions: pa.Table, orders: pa.Table) -> pd.DataFrame:
    """Per tick: time, rules_fired (regimes and limits that hold left out), fired (their
    labels), orders_sent (to the broker) and orders_blocked (by the risk gate)."""
    fired = pc.and_(decisions.column("fired"), pc.not_equal(decisions.column("kind"), "regime"))
    rows = decisions.filter(fired).select(["time", "rule_id", "subject"]).to_pandas()
    rows["label"] = [_label(r, s) for r, s in zip(rows["rule_id"], rows["subject"], strict=True)]
    out = pd.DataFrame({"time": pd.Series(tick_times(decisions), dtype="datetime64[us, UTC]")})
    out["rules_fired"] = out["time"].map(rows.groupby("time").size()).fillna(0).astype(int)
    out["fired"] = out["time"].map(rows.groupby("time")["label"].agg(", ".join)).fillna("")
    sent = orders.select(["time", "status"]).to_pandas()
    for column, blocked in (("orders_sent", False), ("orders_blocked", True)):
        counts = sent[(sent["status"] == "blocked") == blocked].groupby("time").size()
        out[column] = out["time"].map(counts).fillna(0).astype(int)
    return out


def rules_at(decisions: pa.Table, time: datetime) -> list[RuleView]:
    """Every rule, limit, breaker, hedge and regime evaluated at tick `time`, in evaluation
    order, with each condition's text, location, result and operand values."""
    out = []
    for row in _at(decisions, time).to_pylist():
        conds, lets = _trace(row)
        out.append(
            RuleView(
                row["rule_id"], row["kind"], row["phase"], row["subject"], row["status"],
                row["fired"], row["location"], row["action"], row["reason"], row["outcome"],
                row["failed_condition"], conds, lets,
            )
        )  # fmt: skip
    return out


def why_not(decisions: pa.Table, time: datetime, n: int = 20) -> list[NearMiss]:
    """The `n` rules (regimes, breakers and hedges too; not limits) that did not fire at
    `time` and came nearest: by their first failing condition's distance to its threshold,
    scaled by |threshold|; rules failing without a distance (unknown data, `in`, `not`) last."""
    misses = []
    for r in rules_at(decisions, time):
        if r.fired or r.kind == "limit" or r.status not in ("not_fired", "unknown"):
            continue
        cond = next((c for c in r.conditions if c.result is not True), None)
        m = None if cond is None or cond.result is None else margin(cond.text, cond.operands)
        dist = scaled = None
        if m is not None:
            dist, scaled = max(-m.headroom, 0.0), max(-m.scaled, 0.0)
        elif cond is not None and cond.distance is not None:
            dist = abs(cond.distance)
        unit = m.unit if m else (cond.operands[0].unit if cond and cond.operands else "")
        misses.append(
            NearMiss(
                r.rule_id, r.kind, r.phase, r.subject, r.status,
                cond.text if cond else r.failed_condition, cond.location if cond else None,
                cond.operands if cond else (), dist, scaled, unit,
            )
        )  # fmt: skip
    ranked = sorted(enumerate(misses), key=lambda p: (p[1].scaled is None, p[1].scaled or 0, p[0]))
    return [m for _, m in ranked[: max(n, 0)]]


def limits_at(decisions: pa.Table, time: datetime) -> list[LimitView]:
    """Every portfolio limit at `time`: its check, operand values and headroom."""
    out = []
    for r in rules_at(decisions, time):
        if r.kind != "limit":
            continue
        scored = [(c, margin(c.text, c.operands)) for c in r.conditions]
        # Several checks: the tightest shows; a check without a margin only if none has one.
        scored.sort(key=lambda cm: (cm[1] is None, cm[1].scaled if cm[1] else 0))
        cond, m = scored[0] if scored else (None, None)
        headroom = m.headroom if m else None
        if m is None and cond is not None and cond.distance is not None:
            headroom = -abs(cond.distance) if r.fired else abs(cond.distance)
        used = 1.0 - m.headroom / abs(m.threshold) if m and m.threshold else None
        unit = m.unit if m else (cond.operands[0].unit if cond and cond.operands else "")
        out.append(
            LimitView(
                r.rule_id, r.fired, cond.text if cond else r.failed_condition,
                cond.location if cond else r.location, cond.operands if cond else (),
                m.value if m else None, m.threshold if m else None, headroom, used, unit,
                r.outcome,
            )
        )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- book views


def links(
    orders: pa.Table,
    fills: pa.Table,
    positions: pa.Table,
    time: datetime,
    rule_id: str,
    subject: str,
) -> DecisionLinks:
    """The orders rule `rule_id` produced for `subject` at `time` (matched on the position id
    or the symbol; any for 'portfolio' and 'market'), their fills, and each position's row at
    the tick — or, where it has none there, its next row."""
    at = _at(orders, time)
    mine = at.filter(pc.equal(at.column("rule_id"), rule_id))
    if subject not in WIDE:
        same = pc.or_kleene(pc.equal(mine.column("position_id"), subject),
                            pc.equal(mine.column("symbol"), subject))  # fmt: skip
        mine = mine.filter(same)
    legs = fills.filter(pc.is_in(fills.column("order_id"), value_set=mine.column("order_id")))
    ids = pc.unique(pc.drop_null(mine.column("position_id")))
    held = positions.filter(pc.is_in(positions.column("position_id"), value_set=ids))
    t = _stamp(time)
    rows = held.filter(pc.greater_equal(held.column("time"), t)).to_pandas()
    rows = rows.sort_values("time", kind="stable").groupby("position_id", sort=False).head(1)
    return DecisionLinks(mine.to_pandas(), legs.to_pandas(), rows.reset_index(drop=True))


def positions_at(positions: pa.Table, time: datetime) -> pd.DataFrame:
    """The positions open after tick `time`: legs (parsed), Greeks, P&L, high-water mark,
    dte, days held and entry regime (units as in the positions table)."""
    rows = _at(positions, time)
    rows = rows.filter(pc.equal(rows.column("status"), "open")).select(POSITION_COLUMNS)
    out = rows.to_pandas()
    out["legs"] = [_json(t, f"positions, {p} at {time}, column 'legs'")
                   for t, p in zip(out["legs"], out["position_id"], strict=True)]  # fmt: skip
    return out


def exit_levels(decisions: pa.Table, time: datetime) -> dict[str, str]:
    """Per position evaluated at `time`: each exit and take-profit rule's compared value and
    threshold (`stop_vol_adjusted: -35% vs -150%`), from the first condition that has one."""
    out: dict[str, list[str]] = {}
    for r in rules_at(decisions, time):
        if r.phase not in ("exit", "take_profit"):
            continue
        for c in r.conditions:
            m = margin(c.text, c.operands)
            if m is not None:
                value, threshold = fmt_value(m.value, m.unit), fmt_value(m.threshold, m.unit)
                out.setdefault(r.subject, []).append(f"{r.rule_id}: {value} vs {threshold}")
                break
    return {pid: "; ".join(levels) for pid, levels in out.items()}


def state_at(
    equity: pa.Table, risk_events: pa.Table, time: datetime, recent: int = 10
) -> StateView:
    """The trading state after tick `time`, the breakers tripped then, and the `recent` last
    risk events up to it."""
    t = _stamp(time)
    before = equity.filter(pc.less_equal(equity.column("time"), t))
    last = before.slice(before.num_rows - 1).to_pylist()[0] if before.num_rows else {}
    events = risk_events.filter(pc.less_equal(risk_events.column("time"), t)).to_pylist()
    tripped: dict[str, TrippedBreaker] = {}
    for e in events:
        if e["kind"] == "trip":
            wants = e["detail"].removeprefix("wants ") if e["detail"].startswith("wants ") else None
            tripped.setdefault(e["cause"], TrippedBreaker(e["cause"], wants, e["time"]))
        elif e["kind"] == "reset":
            tripped.pop(e["cause"], None)
    shown = [
        RiskEvent(e["time"], e["kind"], e["state_before"], e["state_after"], e["cause"],
                  e["detail"], tuple(_json(e["values"], f"risk_events at {e['time']}") or ()))
        for e in reversed(events[-recent:] if recent > 0 else [])
    ]  # fmt: skip
    return StateView(
        last.get("time"), last.get("risk_state"), last.get("regime"), last.get("net_liq"),
        last.get("drawdown_pct"), tuple(tripped.values()), tuple(shown),
    )  # fmt: skip
