"""The dashboard's view data: hand-made journal rows where the figures matter, and a real
dry run (half a year of the synthetic market, --trace full) checked against its own tables."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine.dsl.trace import Level
from engine.journal.delta_table import DeltaAppender
from engine.journal.run_tables import PARTITION_BY, TABLES, json_text
from engine.report.breakdown import run_metrics
from engine.report.run_data import load_run
from engine.runtime.dry_run import DryRunSpec
from engine.runtime.session import run_dry_run
from ui.conditions import Margin, Operand, margin
from ui.journal_reader import JournalError, JournalReader
from ui.overview_data import overview
from ui.view_data import (
    TrippedBreaker,
    ViewDataError,
    exit_levels,
    limits_at,
    links,
    positions_at,
    rules_at,
    state_at,
    tick_times,
    timeline,
    why_not,
)

NY = ZoneInfo("America/New_York")
T0 = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)
T1, T2, T3 = (T0 + timedelta(days=d) for d in (3, 4, 5))


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of journal table `name`: the given values, null elsewhere, date/year from time."""
    full = []
    for r in rows:
        day = r["time"].astimezone(NY).date()
        full.append({**dict.fromkeys(TABLES[name].names), "date": day, "year": day.year, **r})
    return pa.Table.from_pylist(full, schema=TABLES[name])


def cond(text: str, result: bool | None, *ops: tuple[str, Any, str], distance: float | None = None
         ) -> dict[str, Any]:  # fmt: skip
    operands = [{"text": t, "value": v, "unit": u} for t, v, u in ops]
    return {"text": text, "location": f"p.v6:{len(text)}:3", "result": result,
            "operands": operands, "distance": distance}  # fmt: skip


def decision(
    time: datetime,
    rule_id: str,
    kind: str,
    subject: str,
    status: str,
    *conds: dict[str, Any],
    fired: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    trace = None
    if conds or extra.get("lets"):
        lets = [{"text": t, "value": v, "unit": u} for t, v, u in extra.pop("lets", [])]
        trace = json_text({"conditions": list(conds), **({"lets": lets} if lets else {})})
    phase = extra.pop("phase", kind)
    fired = status == "fired" if fired is None else fired
    return {
        "time": time, "ruleset": "abc", "rule_id": rule_id, "kind": kind, "phase": phase,
        "subject": subject, "status": status, "fired": fired, "location": f"{kind}.v6:1:1",
        "trace": trace, **extra,
    }  # fmt: skip


IV_RANK = "underlying.iv_rank >= iv_rank_min"
NOT_HELD = cond("not has_position(symbol = underlying.symbol)", False,
                ("has_position(symbol = underlying.symbol)", True, "bool"))  # fmt: skip
DECISIONS = table("decisions", [
    decision(T0, "normal", "regime", "market", "fired", cond("true", True)),
    decision(T0, "max_positions", "limit", "portfolio", "fired",
             cond("portfolio.open_positions <= max_positions", True,
                  ("portfolio.open_positions", 3, "count"), ("max_positions", 6.0, "count")),
             fired=False),
    decision(T0, "bw_delta", "limit", "portfolio", "not_fired",
             cond("-bw_delta_band <= portfolio.bw_delta_spy <= bw_delta_band", False,
                  ("-bw_delta_band", -250.0, "delta"), ("portfolio.bw_delta_spy", 295.5, "delta"),
                  ("bw_delta_band", 250.0, "delta"), distance=-45.5),
             fired=True, outcome="trading state REDUCING"),
    decision(T0, "min_cash", "limit", "portfolio", "not_fired",
             cond("portfolio.cash >= $5,000", False, ("portfolio.cash", 3000.0, "money"),
                  distance=2000.0), fired=True),
    decision(T0, "buying_power", "limit", "portfolio", "fired",
             cond("portfolio.margin_used_pct <= 50%", True,
                  ("portfolio.margin_used_pct", 0.2, "percent")), fired=False),
    decision(T0, "vix_spike", "breaker", "portfolio", "not_fired",
             cond("market.vix >= 40 or market.vix_change_pct >= 30%", False,
                  ("market.vix", 39.0, "level"), ("market.vix_change_pct", 0.05, "percent"))),
    decision(T0, "dte_exit", "rule", "P1", "not_fired",
             cond("position.dte <= dte_exit", False, ("position.dte", 43.0, "days"),
                  ("dte_exit", 21.0, "days"), distance=-22.0), phase="exit"),
    decision(T0, "ic_entry", "rule", "SPY", "not_fired",
             cond("market.regime in [normal, high_vol]", True,
                  ("market.regime", "normal", "regime")),
             cond(IV_RANK, False, ("underlying.iv_rank", 0.25, "percent"),
                  ("iv_rank_min", 0.30, "percent"), distance=0.05),
             cond("underlying.iv_premium > 0%", True, ("underlying.iv_premium", 0.02, "percent")),
             lets=[("width", 5.0, "money")], phase="entry", failed_condition=IV_RANK),
    decision(T0, "stop_loss", "rule", "P1", "unknown",
             cond("position.pnl_pct_of_credit <= stop", None,
                  ("position.pnl_pct_of_credit", None, "percent"), ("stop", -2.0, "percent")),
             phase="exit"),
    decision(T0, "pcs_entry", "rule", "SPY", "fired",
             cond("underlying.iv_rank >= 20%", True, ("underlying.iv_rank", 0.25, "percent")),
             phase="entry", action="open put_credit_spread(short_delta=0.25)",
             reason="rich put skew", outcome="order o1 filled"),
    decision(T0, "ic_entry", "rule", "QQQ", "skipped", phase="entry",
             reason="'pcs_entry' matched first"),
    decision(T0, "unwind_when_flat", "hedge", "portfolio", "not_fired",
             cond("portfolio.open_positions == 0", False,
                  ("portfolio.open_positions", 3, "count"))),
    decision(T0, "pcs_entry", "rule", "QQQ", "not_fired", NOT_HELD, phase="entry"),
    decision(T0, "daily_loss", "breaker", "portfolio", "fired",
             cond("portfolio.day_pnl_pct <= -3%", True,
                  ("portfolio.day_pnl_pct", -0.04, "percent")), action="halt"),
    decision(T1, "normal", "regime", "market", "fired", cond("true", True)),
    decision(T1, "pcs_entry", "rule", "SPY", "not_fired", NOT_HELD, phase="entry"),
])  # fmt: skip


def order(time: datetime, order_id: str, rule_id: str, symbol: str, position_id: str,
          intent: str, status: str, **extra: Any) -> dict[str, Any]:  # fmt: skip
    filled = 0 if status == "blocked" else 2
    return {"time": time, "order_id": order_id, "intent": intent, "symbol": symbol,
            "position_id": position_id, "rule_id": rule_id, "quantity": 2, "filled": filled,
            "legs": "[]", "status": status, **extra}  # fmt: skip


ORDERS = table("orders", [
    order(T0, "o1", "pcs_entry", "SPY", "P2", "open", "filled"),
    order(T0, "o2", "pcs_entry", "QQQ", "P3", "open", "blocked", status_reason="limit"),
    order(T0, "o3", "dte_exit", "SPY", "P1", "close", "rejected"),
    order(T0, "o4", "bw_delta_hedge", "SPY", "H1", "hedge", "filled", strategy="hedge"),
    order(T1, "o5", "pcs_entry", "SPY", "P4", "open", "filled"),
])  # fmt: skip


def fill(time: datetime, order_id: str, contract: str, ratio: int) -> dict[str, Any]:
    return {"time": time, "order_id": order_id, "source": "order", "contract": contract,
            "symbol": contract.split(maxsplit=1)[0], "kind": "option", "ratio": ratio,
            "quantity": 2 * ratio, "price": 1.0, "commission": 1.3, "fees": 0.1,
            "cash_flow": -100.0}  # fmt: skip


FILLS = table("fills", [
    fill(T0, "o1", "SPY 2024-04-19 480P", -1), fill(T0, "o1", "SPY 2024-04-19 470P", 1),
    fill(T0, "o4", "SPY", 1), fill(T1, "o5", "SPY 2024-04-19 470P", 1),
])  # fmt: skip


def position(time: datetime, position_id: str, status: str, **extra: Any) -> dict[str, Any]:
    legs = json_text([{"contract": "SPY 2024-04-19 480P", "per_unit": -1, "role": "short_put"}])
    return {"time": time, "position_id": position_id, "symbol": "SPY", "strategy": "pcs",
            "status": status, "quantity": 2, "opened_at": T0, "adjustments": 0, "legs": legs,
            **extra}  # fmt: skip


POSITIONS = table("positions", [
    position(T0 - timedelta(days=1), "P1", "open", pnl=10.0),
    position(T0, "P1", "closed", realized_pnl=25.0), position(T0, "H1", "open", delta=-40.0),
    position(T1, "H1", "open"), position(T1, "P2", "open", pnl=12.5, high_water_pnl_pct=0.3,
                                         dte=44.0, entry_regime="normal"),
    position(T1, "P4", "open"), position(T2, "P2", "open", pnl=20.0),
])  # fmt: skip


# ----------------------------------------------------------------------------- hand-made


def test_margin_of_conditions() -> None:
    x = (Operand("x", 4.0, "count"), Operand("y", 7, "count"), Operand("max(a, b)", 2.0, "delta"))
    assert margin("x <= 10", x) == Margin(4.0, 10.0, 6.0, "count")
    assert margin("x > 5.5", x) == Margin(4.0, 5.5, -1.5, "count")
    assert margin("x >= $1,000.50", x) == Margin(4.0, 1000.5, -996.5, "count")
    assert margin("x <= 45d", x) == Margin(4.0, 45.0, 41.0, "count")
    assert margin("x <= 2.5e1", x) == Margin(4.0, 25.0, 21.0, "count")
    assert margin("max(a, b) < -3", x) == Margin(2.0, -3.0, -5.0, "delta")
    assert margin("3 <= x <= y", x) == Margin(4.0, 3.0, 1.0, "count")  # the tighter bound
    assert margin("x > 1 and y < 5", x) == Margin(7.0, 5.0, -2.0, "count")  # worst part
    assert margin("x >= 40 or y >= 30%", x) == Margin(7.0, 0.3, 6.7, "count")  # best part
    assert margin("x == 4", x) == Margin(4.0, 4.0, 0.0, "count")
    for text in ("x in [1, 2]", "not x", "x != 3", "x <= z", "x <= match r { a => 1  else => 2 }",
                 'x == "a < b"', "x <= 1 and z > 2"):  # fmt: skip
        assert margin(text, x) is None, text
    assert margin("u <= 3", (Operand("u", None, "count"),)) is None  # unknown value
    assert margin("b >= 1", (Operand("b", True, "bool"),)) is None
    assert Margin(0.0, 0.0, -2.0, "").scaled == -2.0 and Margin(4.0, 0.0, -4.0, "").scaled == -1.0


def test_rules_at_keeps_evaluation_order_and_every_condition() -> None:
    rules = rules_at(DECISIONS, T0)
    assert [r.rule_id for r in rules] == DECISIONS.filter(
        pc.equal(DECISIONS.column("time"), T0)).column("rule_id").to_pylist()  # fmt: skip
    ic = rules[7]
    assert (ic.rule_id, ic.kind, ic.phase, ic.subject, ic.status, ic.fired) == (
        "ic_entry", "rule", "entry", "SPY", "not_fired", False)  # fmt: skip
    assert ic.failed_condition == "underlying.iv_rank >= iv_rank_min"
    assert [(c.text, c.result, c.distance) for c in ic.conditions] == [
        ("market.regime in [normal, high_vol]", True, None),
        ("underlying.iv_rank >= iv_rank_min", False, 0.05),
        ("underlying.iv_premium > 0%", True, None),
    ]
    assert ic.conditions[1].operands == (
        Operand("underlying.iv_rank", 0.25, "percent"),
        Operand("iv_rank_min", 0.30, "percent"),
    )
    assert ic.conditions[1].location == "p.v6:33:3" and ic.lets == (Operand("width", 5.0, "money"),)
    fired = rules[9]
    assert (fired.status, fired.fired, fired.action, fired.reason, fired.outcome) == (
        "fired", True, "open put_credit_spread(short_delta=0.25)", "rich put skew",
        "order o1 filled")  # fmt: skip
    skipped = rules[10]
    assert (skipped.status, skipped.conditions, skipped.reason) == (
        "skipped", (), "'pcs_entry' matched first")  # fmt: skip
    assert [r.rule_id for r in rules_at(DECISIONS, T1)] == ["normal", "pcs_entry"]
    assert rules_at(DECISIONS, T2) == []


def test_why_not_ranks_by_scaled_distance_unknowns_last() -> None:
    misses = why_not(DECISIONS, T0)
    got = [(m.rule_id, m.subject, m.distance, m.scaled, m.unit) for m in misses]
    assert got == [
        ("vix_spike", "portfolio", 1.0, 1.0 / 40.0, "level"),  # "VIX 39 vs 40"
        ("ic_entry", "SPY", pytest.approx(0.05), pytest.approx(1 / 6), "percent"),
        ("unwind_when_flat", "portfolio", 3.0, 1.0, "count"),  # threshold 0: scaled by 3
        ("dte_exit", "P1", 22.0, 22.0 / 21.0, "days"),
        ("stop_loss", "P1", None, None, "percent"),  # unknown data: no distance
        ("pcs_entry", "QQQ", None, None, "bool"),  # `not ...`: no distance
    ]
    ic = misses[1]
    assert (ic.condition, ic.location, ic.status) == (
        "underlying.iv_rank >= iv_rank_min", "p.v6:33:3", "not_fired")  # fmt: skip
    assert ic.operands[0] == Operand("underlying.iv_rank", 0.25, "percent")
    assert misses[4].status == "unknown"
    assert [m.rule_id for m in why_not(DECISIONS, T0, n=2)] == ["vix_spike", "ic_entry"]


def test_limits_at_gives_headroom_from_values_and_trace() -> None:
    got = [(v.limit_id, v.breached, v.value, v.threshold, v.headroom, v.used_fraction, v.unit)
           for v in limits_at(DECISIONS, T0)]  # fmt: skip
    assert got == [
        ("max_positions", False, 3.0, 6.0, 3.0, 0.5, "count"),
        ("bw_delta", True, 295.5, 250.0, -45.5, 1.182, "delta"),  # headroom = trace distance
        ("min_cash", True, 3000.0, 5000.0, -2000.0, 1.4, "money"),  # `>=`: -distance
        ("buying_power", False, 0.2, 0.5, 0.3, pytest.approx(0.4), "percent"),
    ]
    bw = limits_at(DECISIONS, T0)[1]
    assert bw.check == "-bw_delta_band <= portfolio.bw_delta_spy <= bw_delta_band"
    assert bw.outcome == "trading state REDUCING" and len(bw.operands) == 3


def test_timeline_counts_fired_rules_and_orders_per_tick() -> None:
    tl = timeline(DECISIONS, ORDERS)
    assert tl["time"].tolist() == [pd.Timestamp(T0), pd.Timestamp(T1)]
    assert tl["rules_fired"].tolist() == [4, 0]  # not the regime, nor the limits that hold
    assert tl["fired"].tolist() == ["bw_delta, min_cash, pcs_entry SPY, daily_loss", ""]
    assert tl["orders_sent"].tolist() == [3, 1]  # filled, rejected and the hedge; o5
    assert tl["orders_blocked"].tolist() == [1, 0]
    assert tick_times(DECISIONS) == [T0, T1]


def test_links_from_a_decision_to_orders_fills_and_positions() -> None:
    def ids(frame: pd.DataFrame, column: str) -> list[Any]:
        return list(frame[column])

    opened = links(ORDERS, FILLS, POSITIONS, T0, "pcs_entry", "SPY")
    assert ids(opened.orders, "order_id") == ["o1"]
    assert ids(opened.fills, "contract") == ["SPY 2024-04-19 480P", "SPY 2024-04-19 470P"]
    # no row at the tick of the opening order: the position's next row
    assert ids(opened.positions, "position_id") == ["P2"]
    assert ids(opened.positions, "time") == [pd.Timestamp(T1)]
    blocked = links(ORDERS, FILLS, POSITIONS, T0, "pcs_entry", "QQQ")
    assert ids(blocked.orders, "status") == ["blocked"]
    assert blocked.fills.empty and blocked.positions.empty
    closed = links(ORDERS, FILLS, POSITIONS, T0, "dte_exit", "P1")
    assert ids(closed.orders, "order_id") == ["o3"] and closed.fills.empty
    assert ids(closed.positions, "status") == ["closed"]
    assert ids(closed.positions, "realized_pnl") == [25.0]
    hedge = links(ORDERS, FILLS, POSITIONS, T0, "bw_delta_hedge", "portfolio")
    assert ids(hedge.orders, "order_id") == ["o4"] and ids(hedge.fills, "contract") == ["SPY"]
    assert ids(hedge.positions, "time") == [pd.Timestamp(T0)]
    assert links(ORDERS, FILLS, POSITIONS, T2, "pcs_entry", "SPY").orders.empty


def test_positions_at_shows_the_open_positions_with_parsed_legs() -> None:
    assert positions_at(POSITIONS, T0)["position_id"].tolist() == ["H1"]  # P1 closed there
    at = positions_at(POSITIONS, T1)
    assert at["position_id"].tolist() == ["H1", "P2", "P4"]
    p2 = at.iloc[1]
    assert (p2["pnl"], p2["high_water_pnl_pct"], p2["dte"], p2["entry_regime"]) == (
        12.5, 0.3, 44.0, "normal")  # fmt: skip
    assert p2["legs"] == [{"contract": "SPY 2024-04-19 480P", "per_unit": -1, "role": "short_put"}]


def test_state_at_replays_trips_and_resets() -> None:
    equity = table("equity", [
        {"time": t, "net_liq": 1e5 - i, "cash": 1e5, "pnl": -i, "drawdown_pct": i / 1e5,
         "peak_net_liq": 1e5, "open_positions": 0, "risk_state": s, "commissions": 0.0,
         "regime": "normal"}
        for i, (t, s) in enumerate(zip((T0, T1, T2, T3),
                                       ("ACTIVE", "REDUCING", "HALTED", "HALTED"), strict=True))
    ])  # fmt: skip
    values = json_text([{"rule": "vix_spike", "text": "market.vix", "unit": "level", "value": 41}])
    events = table("risk_events", [
        {"time": T1, "kind": "trip", "state_before": "ACTIVE", "state_after": "ACTIVE",
         "cause": "vix_spike", "detail": "wants REDUCING", "values": values},
        {"time": T1, "kind": "transition", "state_before": "ACTIVE", "state_after": "REDUCING",
         "cause": "vix_spike", "detail": "vix_spike: REDUCING"},
        {"time": T2, "kind": "trip", "state_before": "REDUCING", "state_after": "REDUCING",
         "cause": "daily_loss", "detail": "wants HALTED"},
        {"time": T3, "kind": "reset", "state_before": "HALTED", "state_after": "HALTED",
         "cause": "vix_spike", "detail": "tripped 2024-03-04 16:00"},
    ])  # fmt: skip
    calm = state_at(equity, events, T0)
    assert (calm.time, calm.state, calm.tripped, calm.events) == (T0, "ACTIVE", (), ())
    halted = state_at(equity, events, T2)
    assert (halted.state, halted.net_liq, halted.drawdown_pct) == ("HALTED", 1e5 - 2, 2e-5)
    assert halted.tripped == (TrippedBreaker("vix_spike", "REDUCING", T1),
                              TrippedBreaker("daily_loss", "HALTED", T2))  # fmt: skip
    assert [(e.time, e.kind) for e in halted.events] == [
        (T2, "trip"), (T1, "transition"), (T1, "trip")]  # fmt: skip
    assert halted.events[2].values == ({"rule": "vix_spike", "text": "market.vix",
                                        "unit": "level", "value": 41},)  # fmt: skip
    later = state_at(equity, events, T3, recent=2)
    assert later.tripped == (TrippedBreaker("daily_loss", "HALTED", T2),)
    assert [e.kind for e in later.events] == ["reset", "trip"]
    between = state_at(equity, events, T1 + timedelta(hours=5))  # the last tick before
    assert (between.time, between.state, between.regime) == (T1, "REDUCING", "normal")


def test_bad_times_and_traces_are_named() -> None:
    with pytest.raises(ViewDataError, match=r"time 2024-03-01T21:00:00 has no time zone"):
        rules_at(DECISIONS, T0.replace(tzinfo=None))
    bad = DECISIONS.set_column(
        DECISIONS.schema.get_field_index("trace"), TABLES["decisions"].field("trace"),
        pa.array(["{oops"] * DECISIONS.num_rows))  # fmt: skip
    where = f"decisions, normal on market at {T0}, column 'trace'"
    with pytest.raises(ViewDataError, match=re.escape(f"{where}: not valid JSON at column 2")):
        rules_at(bad, T0)


# ----------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dry") / "run"
    spec = DryRunSpec("v6", date(2018, 1, 1), date(2018, 6, 30), out, synthetic=7,
                      trace=Level.FULL)  # fmt: skip
    run_dry_run(spec, progress=False)
    return out


@pytest.fixture(scope="module")
def reader(run: Path) -> JournalReader:
    return JournalReader(run)


def test_real_run_timeline(reader: JournalReader) -> None:
    d, o = reader.table("decisions"), reader.table("orders")
    ticks = tick_times(d)
    assert ticks == reader.table("equity").column("time").to_pylist()
    assert len(ticks) == reader.state.ticks_done == reader.info["ticks_done"]
    tl = timeline(d, o)
    frame = d.select(["time", "kind", "fired"]).to_pandas()
    fired = frame[frame["fired"] & (frame["kind"] != "regime")].groupby("time").size()
    assert tl.set_index("time")["rules_fired"].to_dict() == fired.reindex(
        tl["time"], fill_value=0).to_dict()  # fmt: skip
    status = o.column("status").to_pylist()
    assert tl["orders_blocked"].sum() == status.count("blocked") > 0
    assert tl["orders_sent"].sum() == len(status) - status.count("blocked") > 0


def filled_decisions(reader: JournalReader, phase: str) -> list[dict[str, Any]]:
    d = reader.table("decisions")
    rows = d.filter(pc.equal(d.column("phase"), phase)).to_pylist()
    return [r for r in rows if r["fired"] and (r["outcome"] or "").endswith(" filled")]


def test_real_run_a_fired_entry_links_to_its_order_fills_and_position(
    reader: JournalReader,
) -> None:
    first = filled_decisions(reader, "entry")[0]
    time, rule, subject = first["time"], first["rule_id"], first["subject"]
    view = next(r for r in rules_at(reader.table("decisions"), time)
                if (r.rule_id, r.subject) == (rule, subject))  # fmt: skip
    assert view.status == "fired" and view.conditions
    assert all(c.result is True and c.operands for c in view.conditions)
    assert all(o.value is not None for c in view.conditions for o in c.operands)
    order_id = first["outcome"].split()[1]  # "order <id> filled"
    got = links(reader.table("orders"), reader.table("fills"), reader.table("positions"),
                time, rule, subject)  # fmt: skip
    assert got.orders["order_id"].tolist() == [order_id]
    legs = json.loads(got.orders["legs"].iloc[0])
    assert sorted(got.fills["contract"]) == sorted(leg["contract"] for leg in legs)
    pid = got.orders["position_id"].iloc[0]
    assert got.positions["position_id"].tolist() == [pid]
    assert got.positions["status"].tolist() == ["open"]
    assert got.positions["time"].iloc[0] == pd.Timestamp(time)
    assert pid in positions_at(reader.table("positions"), time)["position_id"].tolist()


def test_real_run_a_close_links_to_the_closed_row(reader: JournalReader) -> None:
    exit_ = filled_decisions(reader, "exit")[0]
    got = links(reader.table("orders"), reader.table("fills"), reader.table("positions"),
                exit_["time"], exit_["rule_id"], exit_["subject"])  # fmt: skip
    assert got.orders["position_id"].tolist() == [exit_["subject"]]
    assert got.positions["status"].tolist() == ["closed"]
    assert got.positions["close_rule"].tolist() == [exit_["rule_id"]]


def test_real_run_positions_and_limits(reader: JournalReader) -> None:
    equity = reader.table("equity").to_pandas().set_index("time")["open_positions"]
    positions = reader.table("positions")
    for time in tick_times(reader.table("decisions"))[::10]:
        at = positions_at(positions, time)
        assert len(at) == equity[pd.Timestamp(time)]
        assert all(isinstance(leg["contract"], str) for legs in at["legs"] for leg in legs)
    d = reader.table("decisions")
    breached = d.filter(pc.and_(pc.equal(d.column("kind"), "limit"), d.column("fired")))
    row = breached.to_pylist()[0]
    limits = limits_at(d, row["time"])
    assert len(limits) == 11  # risk_policies/limits.v6
    hit = next(v for v in limits if v.limit_id == row["rule_id"])
    distance = json.loads(row["trace"])["conditions"][0]["distance"]
    assert hit.breached and hit.headroom is not None and hit.headroom < 0
    assert hit.headroom == pytest.approx(distance)
    assert all(v.headroom is not None and v.headroom >= 0 for v in limits if not v.breached)
    assert all(v.value is not None and v.threshold is not None for v in limits)


def test_real_run_state_at_a_trip(reader: JournalReader) -> None:
    events = reader.table("risk_events")
    trip = events.filter(pc.equal(events.column("kind"), "trip")).to_pylist()[0]
    state = state_at(reader.table("equity"), events, trip["time"])
    assert trip["cause"] in [b.breaker for b in state.tripped]
    equity = reader.table("equity")
    row = equity.filter(pc.equal(equity.column("time"), trip["time"])).to_pylist()[0]
    assert (state.state, state.regime) == (row["risk_state"], row["regime"])
    assert state.events[0].time == max(e.time for e in state.events)


def test_real_run_overview(run: Path) -> None:
    view = overview(run)
    data = load_run(run)
    assert (view.name, view.status, view.notes) == ("run", "complete", ())
    assert view.metrics == run_metrics(data).to_dict()
    assert view.equity.tolist() == data.equity.tolist()
    assert view.equity.index.equals(pd.DatetimeIndex(data.dates))
    peak = np.maximum.accumulate(data.equity)
    assert np.allclose(view.drawdown, data.equity / peak - 1.0)
    assert view.drawdown.index.equals(view.equity.index)
    bands = view.regimes
    assert sum(b.days for b in bands) == len(view.equity) > 0
    assert bands[0].start == view.equity.index[0]
    assert bands[-1].end == view.equity.index[-1] + pd.Timedelta(days=1)
    assert all(a.end == b.start and a.regime != b.regime for a, b in itertools.pairwise(bands))
    days = list(view.equity.index)
    for band in bands:
        first = days.index(band.start)
        assert set(data.regime[first : first + band.days]) == {band.regime}
    events = data.risk.events
    assert events is not None
    trips = [e for e in events.to_pylist() if e["kind"] == "trip"]
    assert [m.kind for m in view.markers] == ["trip"] * len(trips) and trips
    first_trip = view.markers[0]
    assert first_trip.label == f"{trips[0]['cause']} tripped ({trips[0]['detail']})"
    assert (first_trip.time, first_trip.date) == (trips[0]["time"], pd.Timestamp(trips[0]["date"]))


def test_overview_of_a_run_still_written(run: Path, tmp_path: Path) -> None:
    """No equity.csv yet: the curve comes from the equity table, the metrics from it too."""
    copy = Path(shutil.copytree(run, tmp_path / "running"))
    info = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**info, "status": "running"}))
    (copy / "equity.csv").unlink()
    t = datetime.fromisoformat(info["checkpoint_tick"])
    hedge = table("orders", [order(t, "h1", "bw_delta_hedge", "SPY", "H1", "hedge", "filled",
                                   strategy="hedge")])  # fmt: skip
    with DeltaAppender(copy / "orders", TABLES["orders"], PARTITION_BY) as appender:
        appender.append(hedge)
    view, done = overview(copy, JournalReader(copy)), overview(run)
    assert (view.name, view.status) == ("running", "running")
    assert view.notes == (f"the run is still being written: figures up to {t:%Y-%m-%d %H:%M}",)
    assert view.equity.index.equals(done.equity.index)
    assert np.allclose(view.equity, done.equity, atol=0.005, rtol=0)  # equity.csv: cents
    assert view.regimes == done.regimes
    assert view.metrics["trades"] == done.metrics["trades"]
    assert view.metrics["sharpe"] == pytest.approx(done.metrics["sharpe"], rel=1e-4)
    assert view.metrics["exposure"] == done.metrics["exposure"]
    assert view.markers[-1].label == "hedge order h1 filled"
    assert view.markers[:-1] == done.markers


def test_overview_of_a_finished_run_without_equity_csv(run: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run, tmp_path / "broken"))
    (copy / "equity.csv").unlink()
    with pytest.raises(JournalError) as info:
        overview(copy)
    assert str(info.value) == f"{copy}: no equity.csv (the run wrote no trading day yet?)"


def test_exit_levels_show_each_exit_rules_value_and_threshold() -> None:
    stop = cond("position.pnl_pct_of_credit <= stop", False,
                ("position.pnl_pct_of_credit", -0.35, "percent"), ("stop", -1.5, "percent"),
                distance=-1.15)  # fmt: skip
    dte = cond("position.dte <= dte_exit", False, ("position.dte", 33.0, "days"),
               ("dte_exit", 21.0, "days"), distance=-12.0)  # fmt: skip
    rows = [decision(T0, "stop_vol_adjusted", "rule", "P9", "not_fired", stop, phase="exit"),
            decision(T0, "dte_exit", "rule", "P9", "not_fired", dte, phase="exit")]  # fmt: skip
    levels = exit_levels(table("decisions", rows), T0)
    assert levels == {"P9": "stop_vol_adjusted: -35% vs -150%; dte_exit: 33d vs 21d"}
