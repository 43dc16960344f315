"""The Risk section: breaker history, days per trading state, hedges and blocked orders.

A hand-made journal (written with RunJournal, as `v6 dry-run` writes it) is summarized and
every figure compared with a computation of its own on the rows the test wrote; a real
synthetic dry run (one year, hedges and operator commands) renders the section and writes it
to metrics.json.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from engine.dsl.ruleset import read_manifest
from engine.journal.run_journal import RunJournal, read_table
from engine.journal.run_tables import DERIVED, TABLES
from engine.report.breakdown import analyze
from engine.report.command import run_report
from engine.report.render import render_text, to_json
from engine.report.risk_summary import (
    NO_EVENTS_NOTE,
    BreakerTrip,
    breaker_history,
    reason_prefix,
    summarize,
)
from engine.report.run_data import load_run
from engine.runtime import session
from engine.runtime.dry_run import DryRunSpec

from .conftest import weekdays

ROOT = Path(__file__).resolve().parents[2]
DAYS = weekdays(date(2019, 1, 7), 10)  # 2019-01-07 .. 2019-01-18
Row = dict[str, Any]
A, R, H = "ACTIVE", "REDUCING", "HALTED"
IC, HG = "iron_condor", "hedge"

# The hand-made run, ten days: a VIX trip reset by its rule, a daily-loss trip with an operator
# halt and resume, a backwardation trip still tripped at the end, a reset without its trip;
# hedges in SPY (closed, then reopened) and ES (open at the end); orders blocked for several
# reasons. Each row starts with the index of its day in DAYS (one tick a day).
STATES = [A, R, R, H, H, H, A, A, R, R]  # each day's trading state
EVENTS = [  # kind, state before and after, cause, detail
    (1, "trip", A, A, "vix_spike", "wants REDUCING"),
    (1, "transition", A, R, "vix_spike", "vix_spike: REDUCING"),
    (3, "trip", R, R, "daily_loss", "wants HALTED"),
    (3, "command", R, R, "operator", "halt"),
    (3, "transition", R, H, "operator halt, daily_loss", "daily_loss: HALTED"),
    (4, "reset", H, H, "vix_spike", "tripped 2019-01-08 16:00, last fired 2019-01-08 16:00"),
    (5, "reset", H, H, "ghost", "tripped before the run"),
    (6, "command", H, H, "operator", "resume"),
    (6, "reset", H, H, "daily_loss", "operator resume"),
    (6, "transition", H, A, "operator resume", "nothing tripped"),
    (8, "trip", A, A, "backwardation", "wants REDUCING"),
    (8, "transition", A, R, "backwardation", "backwardation: REDUCING"),
]
ORDERS = [  # order_id, intent, strategy, status, quantity, filled, status_reason
    (0, "o1", "open", IC, "filled", 1, 1, None),
    (0, "h1", "hedge", HG, "filled", 100, 100, None),
    (1, "o2", "open", IC, "blocked", 1, 0, "entries blocked (REDUCING) by vix_spike"),
    (1, "o3", "roll", IC, "blocked", 1, 0,
     "risk-increasing adjustments blocked (REDUCING) by vix_spike"),
    (2, "h2", "hedge", HG, "filled", 100, 100, None),
    (2, "o4", "open", IC, "blocked", 1, 0, "entries blocked (REDUCING) by vix_spike"),
    (4, "h3", "hedge", HG, "blocked", 40, 0,
     "trading HALTED by daily_loss, operator: only closing orders pass"),
    (4, "o5", "open", IC, "blocked", 1, 0, "needs $5,000 of buying power, $3,000 available"),
    (5, "o6", "open", IC, "blocked", 1, 0, "needs $12,500.50 of buying power, $3,000 available"),
    (5, "o7", "open", IC, "blocked", 1, 0,
     "would breach limit max_positions: `portfolio.open_positions < 5` (… = 5)"),
    (6, "h4", "hedge", HG, "partial", 2, 1, "1 of 2 filled"),
    (6, "h5", "hedge", HG, "filled", 50, 50, None),
    (9, "h6", "hedge", HG, "rejected", 10, 0, "no quote"),
    (9, "o8", "open", IC, "blocked", 1, 0, None),
]  # fmt: skip
FILLS = [  # order_id, position_id, kind, signed quantity, price, commission (fees 0.02 each)
    (0, "o1", "IC-1", "option", -1, 1.5, 0.65),
    (0, "o1", "IC-1", "option", 1, 0.5, 0.65),
    (0, "h1", "hedge-SPY", "stock", -100, 250.0, 1.0),
    (2, "h2", "hedge-SPY", "stock", 100, 248.0, 1.0),
    (6, "h4", "hedge-ES", "future", -1, 2600.0, 2.25),
    (6, "h5", "hedge-SPY", "stock", 50, 251.0, 1.0),
]
POSITIONS = [  # position_id, strategy, status, pnl, realized_pnl
    (0, "IC-1", IC, "open", -3.0, None),
    (0, "hedge-SPY", HG, "open", -1.02, None),
    (1, "IC-1", IC, "open", 12.0, None),
    (1, "hedge-SPY", HG, "open", 99.0, None),
    (2, "IC-1", IC, "closed", 40.0, 40.0),
    (2, "hedge-SPY", HG, "closed", 197.96, 197.96),  # 200 - 2 × 1.02 of costs
    *[(i, pid, HG, "open", pnl + 10.0 * i, None)
      for i in (6, 7, 8, 9) for pid, pnl in (("hedge-ES", -300.0), ("hedge-SPY", 0.0))],
]  # fmt: skip
MULTIPLIER = {"stock": 1.0, "future": 50.0, "option": 100.0}


def tick(i: int) -> datetime:
    return datetime.combine(DAYS[i], time(21, 0), UTC)  # 16:00 New York (EST)


def full(table: str, **values: Any) -> Row:
    """A row of `table` without its time (the tick's) and the date and year derived from it:
    the values given, None for every other column."""
    names = [n for n in TABLES[table].names if n not in (*DERIVED, "time")]
    assert not set(values) - set(names), set(values) - set(names)
    return {n: values.get(n) for n in names}


def rows(i: int) -> dict[str, list[Row]]:
    """Day i's rows of each table."""
    events = [full("risk_events", kind=k, state_before=b, state_after=a, cause=c, detail=d)
              for day, k, b, a, c, d in EVENTS if day == i]  # fmt: skip
    orders = [full("orders", order_id=o, intent=it, symbol="SPY", strategy=st, rule_id="r",
                   quantity=q, filled=f, legs="[]", status=stat, status_reason=why)
              for day, o, it, st, stat, q, f, why in ORDERS if day == i]  # fmt: skip
    fills = [full("fills", order_id=o, position_id=pid, source="order", contract=f"{pid} {k}",
                  symbol="SPY", kind=k, ratio=1 if q > 0 else -1, quantity=q, price=px,
                  commission=c, fees=0.02, cash_flow=-q * px * MULTIPLIER[k] - c - 0.02)
             for day, o, pid, k, q, px, c in FILLS if day == i]  # fmt: skip
    positions = [full("positions", position_id=pid, symbol="SPY", strategy=st, status=stat,
                      quantity=1, opened_at=tick(0), adjustments=0, legs="[]", pnl=pnl,
                      realized_pnl=real)
                 for day, pid, st, stat, pnl, real in POSITIONS if day == i]  # fmt: skip
    return {"risk_events": events, "orders": orders, "fills": fills, "positions": positions}


def write(run_dir: Path) -> Path:
    header = {"ruleset": {"name": "hand", "hash": "h0"}, "feed": "hand-made",
              "from": str(DAYS[0]), "to": str(DAYS[-1]), "initial_cash": 100000.0}  # fmt: skip
    with RunJournal.create(run_dir, header) as out:
        for i, state in enumerate(STATES):
            for table, table_rows in rows(i).items():
                out.add(table, [{**r, "time": tick(i)} for r in table_rows])
            out.end_tick(
                tick(i),
                full(
                    "equity",
                    net_liq=100_000.0 + i,
                    cash=100_000.0,
                    pnl=float(i),
                    drawdown_pct=0.0,
                    peak_net_liq=100_000.0 + i,
                    open_positions=1,
                    risk_state=state,
                    commissions=0.0,
                ),
            )
        out.close()
    return run_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("risk") / "hand")


def test_days_per_trading_state_transitions_and_commands(run: Path) -> None:
    risk = summarize(load_run(run))
    counts = Counter(STATES)
    assert risk.days == len(DAYS) == 10
    assert [(s.state, s.days, s.share) for s in risk.states] == [
        (s, counts[s], counts[s] / 10) for s in (A, R, H)
    ]
    assert risk.transitions == sum(e[1] == "transition" for e in EVENTS) == 4
    commands = [(DAYS[e[0]], e[5]) for e in EVENTS if e[1] == "command"]
    assert [(c.day, c.command) for c in risk.commands] == commands
    assert commands == [(DAYS[3], "halt"), (DAYS[6], "resume")]


def test_breaker_history_pairs_each_trip_with_its_reset(run: Path) -> None:
    risk = summarize(load_run(run))

    def days(first: int, end: int) -> int:  # trading days from the trip up to the reset
        return sum(1 for d in DAYS if DAYS[first] <= d < (DAYS[end] if end < 10 else date.max))

    assert risk.trips == (
        BreakerTrip("vix_spike", R, DAYS[1], DAYS[4], "rule", days(1, 4)),
        BreakerTrip("daily_loss", H, DAYS[3], DAYS[6], "operator", days(3, 6)),
        BreakerTrip("backwardation", R, DAYS[8], None, None, days(8, 10)),
    )
    assert [t.days for t in risk.trips] == [3, 3, 2]
    counts = {b.breaker: (b.trips, b.days, b.still_tripped) for b in risk.breakers}
    assert counts == {"backwardation": (1, 2, True), "daily_loss": (1, 3, False),
                      "vix_spike": (1, 3, False)}  # fmt: skip
    assert risk.notes == ("risk_events: reset of ghost on 2019-01-14 with no trip before it",)


def test_blocked_orders_grouped_by_reason(run: Path) -> None:
    risk = summarize(load_run(run))
    expected = {  # each blocked order's reason, grouped by hand
        "o2": "entries blocked (REDUCING)", "o4": "entries blocked (REDUCING)",
        "o3": "risk-increasing adjustments blocked (REDUCING)",
        "h3": "trading HALTED", "o5": "needs $… of buying power, $… available",
        "o6": "needs $… of buying power, $… available",
        "o7": "would breach limit max_positions", "o8": "(no reason given)",
    }  # fmt: skip
    blocked = [(o[1], o[2]) for o in ORDERS if o[4] == "blocked"]  # (order_id, intent)
    assert {oid for oid, _ in blocked} == set(expected)
    orders = Counter(expected.values())
    entries = Counter(expected[oid] for oid, intent in blocked if intent == "open")
    got = {b.reason: (b.orders, b.entries) for b in risk.blocked}
    assert got == {k: (n, entries[k]) for k, n in orders.items()}
    assert [b.orders for b in risk.blocked] == sorted(orders.values(), reverse=True)
    assert risk.headline()["blocked_entries"] == 6


def test_hedges_orders_fills_costs_and_pnl(run: Path) -> None:
    h = summarize(load_run(run)).hedges
    orders = [o for o in ORDERS if o[3] == HG]
    fills = [f for f in FILLS if f[1] in {o[1] for o in orders}]
    assert (h.orders, h.filled, h.blocked, h.rejected) == (
        len(orders), sum(o[6] > 0 for o in orders), sum(o[4] == "blocked" for o in orders),
        sum(o[4] == "rejected" for o in orders),
    ) == (6, 4, 1, 1)  # fmt: skip
    assert h.shares_traded == sum(abs(f[4]) for f in fills if f[3] == "stock") == 250
    assert h.futures_traded == 1
    assert h.costs_usd == pytest.approx(sum(f[6] + 0.02 for f in fills))
    assert h.costs_usd == pytest.approx(3 * 1.02 + 2.27)  # the iron condor's are not in
    # hedge-SPY closed once (then reopened); both hedges are open on their last rows
    assert h.closed == 1 and h.realized_pnl_usd == pytest.approx(197.96)
    last = {p[1]: p for p in POSITIONS if p[2] == HG}
    assert h.open_at_end == 2
    assert h.unrealized_pnl_usd == pytest.approx(sum(p[4] for p in last.values()))
    assert h.unrealized_pnl_usd == pytest.approx(-210.0 + 90.0)
    assert h.pnl_usd == pytest.approx(197.96 - 120.0)
    # Hedges are not trades: win rate and profit factor count option positions only.
    trades = load_run(run).trades
    assert HG not in set(trades.strategy) and "hedge-SPY" not in set(trades.position_id)


def test_text_and_json(run: Path) -> None:
    report = analyze(load_run(run))
    text = render_text(report)
    assert "\nRisk\n" in text and "\nBreaker trips\n" in text
    lines = text.splitlines()

    def line(start: str) -> list[str]:
        return next(x for x in lines if x.strip().startswith(start)).split()

    assert line("Days HALTED")[-2:] == ["3", "(30.0%)"]
    assert line("backwardation") == ["backwardation", R, "2019-01-17", "still", "tripped", "—",
                                     "2"]  # fmt: skip
    assert line("Hedge realized P&L")[-1] == "$197.96"
    assert line("Hedge P&L")[-1] == "$77.96"
    assert line("trading HALTED")[-2:] == ["1", "0"]  # a hedge: not an entry
    assert line("2019-01-10") == ["2019-01-10", "halt"]  # operator commands
    assert "risk: risk_events: reset of ghost" in text
    data = json.loads(json.dumps(to_json(report), allow_nan=False))
    risk = data["risk"]
    assert risk["trips"][2] == {"breaker": "backwardation", "wants": R, "tripped": "2019-01-17",
                                "reset": None, "reset_by": None, "days": 2}  # fmt: skip
    assert risk["states"][H] == {"days": 3, "share": 0.3}
    assert risk["commands"] == [{"date": "2019-01-10", "command": "halt"},
                                {"date": "2019-01-15", "command": "resume"}]  # fmt: skip
    assert risk["breakers"]["daily_loss"] == {"trips": 1, "days": 3, "still_tripped": False}
    assert risk["blocked"]["entries blocked (REDUCING)"] == {"orders": 2, "entries": 2}
    assert risk["hedges"]["shares_traded"] == 250
    assert risk["summary"]["hedge_costs_usd"] == pytest.approx(5.33)


def test_side_by_side_with_a_run_without_risk_events(run: Path, tmp_path: Path) -> None:
    """An older run (no risk_events table) loads with an empty history and a note."""
    old = write(tmp_path / "old")
    shutil.rmtree(old / "risk_events")
    risk = summarize(load_run(old))
    assert risk.notes == (NO_EVENTS_NOTE,)
    assert risk.trips == () and risk.transitions == 0 and risk.commands == ()
    assert risk.hedges.orders == 6  # the other tables are still read
    text = render_text(analyze(load_run(run)), analyze(load_run(old)))
    assert "Risk, side by side" in text
    trips = next(x for x in text.splitlines() if x.strip().startswith("Breaker trips"))
    assert trips.split()[-3:] == ["3", "0", "-3"]
    assert "A: Breaker trips" in text and "B: Breaker trips" not in text
    assert f"B: risk: {NO_EVENTS_NOTE[:40]}" in text


def test_fake_runs_without_orders_or_events(make_run: Callable[..., Path]) -> None:
    days = weekdays(date(2019, 1, 7), 3)
    risk = summarize(load_run(make_run(days=days, equity=[1.0, 2.0, 3.0])))
    assert [(s.state, s.days) for s in risk.states] == [("ACTIVE", 3), ("REDUCING", 0),
                                                        ("HALTED", 0)]  # fmt: skip
    assert risk.blocked == () and risk.hedges.orders == 0 and risk.hedges.costs_usd == 0.0
    no_table = summarize(load_run(make_run("b", days=days, equity=[1.0] * 3, equity_table=False)))
    assert [(s.state, s.days) for s in no_table.states][-1] == ("unknown", 3)
    assert "the trading state of each day is unknown" in no_table.notes[-1]


@pytest.mark.parametrize(
    ("reason", "prefix"),
    [
        ("entries blocked (REDUCING) by vix_spike, backwardation", "entries blocked (REDUCING)"),
        ("trading HALTED by operator: only closing orders pass", "trading HALTED"),
        ("would breach limit max_delta_2: `x` unknown", "would breach limit max_delta_2"),
        ("buying power unknown: no new position (fail closed)", "buying power unknown"),
        ("needs $1,234 of buying power, $0 available", "needs $… of buying power, $… available"),
        ("margin above 80% of net liq", "margin above …% of net liq"),
        (None, "(no reason given)"),
        ("  ", "(no reason given)"),
    ],
)
def test_reason_prefix(reason: str | None, prefix: str) -> None:
    assert reason_prefix(reason) == prefix


def test_a_trip_reset_the_same_day_lasts_no_day() -> None:
    dates = np.array(DAYS[:3], dtype="datetime64[D]")

    def obj(*values: str) -> npt.NDArray[np.object_]:
        return np.array(values, dtype=object)

    trips, notes = breaker_history(
        obj("trip", "reset", "trip", "trip"), obj("a", "a", "b", "b"),
        obj("wants HALTED", "x", "wants REDUCING", "wants HALTED"),
        np.array([DAYS[1], DAYS[1], date(2019, 1, 5), DAYS[2]], dtype="datetime64[D]"), dates,
    )  # fmt: skip
    # b tripped on a Saturday (no trading day) and counts from the Monday after
    assert [(t.breaker, t.days, t.reset) for t in trips] == [("b", 3, None), ("a", 0, DAYS[1])]
    assert notes == ["risk_events: b tripped again on 2019-01-09 without a reset"]


# ----------------------------------------------------------------------------- a real run

HALT, RESUME = date(2018, 3, 1), date(2018, 3, 8)


class ScriptedCommands:
    """An operator who halts on HALT and resumes on RESUME (in place of the command folder)."""

    def __init__(self, run_dir: Path) -> None:
        self.script = {HALT: "halt", RESUME: "resume"}

    def poll(self, when: datetime) -> str | None:
        return self.script.pop(when.date(), None)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """2018 on the synthetic market (seed 7), the V6 rules with a hedge band of 50 SPY deltas
    instead of 1000 (so hedges trade), halted by an operator for a week."""
    folder = tmp_path_factory.mktemp("real")
    hedge = (ROOT / "risk_policies" / "hedge.v6").read_text(encoding="utf-8")
    assert "= 1000\n" in hedge
    (folder / "hedge.v6").write_text(hedge.replace("= 1000\n", "= 50\n"), encoding="utf-8")
    files = read_manifest(ROOT / "rules" / "v6.ruleset.yaml").files
    listed = [str(folder / "hedge.v6") if f.name == "hedge.v6" else str(f) for f in files]
    text = "ruleset: hedged\nrules:\n" + "".join(f"  - {f}\n" for f in listed)
    (folder / "hedged.ruleset.yaml").write_text(text, encoding="utf-8")
    out = folder / "run"
    spec = DryRunSpec(str(folder / "hedged.ruleset.yaml"), date(2018, 1, 1), date(2018, 12, 31),
                      out, synthetic=7)  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session, "CommandFolder", ScriptedCommands)
        summary = session.run_dry_run(spec, progress=False)
    assert summary.status == "complete"
    yield out


def test_a_real_dry_run_renders_the_section_and_writes_it(real_run: Path) -> None:
    printed: list[str] = []
    result = run_report(real_run, echo=printed.append, charts=False)
    text = "\n".join(printed)
    assert "\nRisk\n" in text and "\nOperator commands\n" in text
    risk = json.loads((real_run / "report" / "metrics.json").read_text())["risk"]
    assert risk == result["risk"]
    equity = read_table(real_run, "equity")
    states = Counter(equity.column("risk_state").to_pylist())  # one tick a day
    assert {k: v["days"] for k, v in risk["states"].items()} == {
        s: states[s] for s in ("ACTIVE", "REDUCING", "HALTED")
    }
    assert risk["states"]["HALTED"]["days"] == 5  # 1 to 7 March
    assert risk["commands"] == [{"date": "2018-03-01", "command": "halt"},
                                {"date": "2018-03-08", "command": "resume"}]  # fmt: skip
    events = read_table(real_run, "risk_events").column("kind").to_pylist()
    assert risk["transitions"] == events.count("transition")
    assert len(risk["trips"]) == events.count("trip") > 0
    hedges = risk["hedges"]
    assert hedges["orders"] > 0 and hedges["shares_traded"] > 0
    positions = read_table(real_run, "positions").to_pylist()
    closed = [p["realized_pnl"] for p in positions
              if p["strategy"] == "hedge" and p["status"] == "closed"]  # fmt: skip
    assert hedges["closed"] == len(closed) > 0
    assert hedges["realized_pnl_usd"] == pytest.approx(sum(closed))
    fills = read_table(real_run, "fills").to_pylist()
    orders = {o["order_id"] for o in read_table(real_run, "orders").to_pylist()
              if o["strategy"] == "hedge"}  # fmt: skip
    costs = sum(f["commission"] + f["fees"] for f in fills if f["order_id"] in orders)
    assert hedges["costs_usd"] == pytest.approx(costs)
