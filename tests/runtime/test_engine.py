"""Engine.step over a replay: the book and the broker's account agree; positions behave."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from engine.dsl.ruleset import load_ruleset
from engine.dsl.trace import Level
from engine.execution.costs import Costs
from engine.market.store import MarketStore
from engine.runtime.dry_run import (
    DryRunSpec,
    build_engine,
    entry_symbols,
    history_feed,
    resolve_fill_model,
)
from engine.runtime.engine import Engine, TickResult
from engine.runtime.intents import Sizing
from engine.runtime.replay import Runner, replay
from tests.runtime.conftest import END, START


@pytest.fixture(scope="module")
def replayed(store: Path) -> tuple[Engine, list[TickResult]]:
    rs = load_ruleset("v6")
    engine = build_engine(rs, resolve_fill_model("mid-minus:0.25"), Costs(), 100_000.0,
                          Level.FAILS)  # fmt: skip
    spec = DryRunSpec("v6", START, END, store / "unused", store=store)
    feed = history_feed(MarketStore(store), entry_symbols(rs), spec)
    results: list[TickResult] = []
    replay(feed, [Runner("v6", engine, observe=results.append)])
    return engine, results


def test_book_and_broker_agree_to_the_cent(replayed: tuple[Engine, list[TickResult]]) -> None:
    engine, results = replayed
    broker = engine.broker
    assert abs(engine.book.cash - broker.cash) < 0.005  # type: ignore[attr-defined]
    held: dict[str, dict[str, int]] = defaultdict(dict)
    for h in broker.holdings():  # type: ignore[attr-defined]
        held[h.position_id][h.contract.key] = h.quantity
    book = {
        pid: {hl.contract.key: hl.per_unit * (1 if p.is_hedge else p.quantity) for hl in p.legs}
        for pid, p in engine.book.positions.items()
    }
    assert book == {pid: q for pid, q in held.items() if any(q.values())}
    assert sum(1 for r in results for c in r.closed) > 0  # the quarter saw positions close


def test_every_position_closes_once_and_only_after_it_opened(
    replayed: tuple[Engine, list[TickResult]],
) -> None:
    _, results = replayed
    opened: dict[str, object] = {}
    closed: set[str] = set()
    for r in results:
        for res in r.results.values():
            if res.order.intent == "open" and res.fill is not None:
                opened[res.order.position_id or ""] = r.time
        for c in r.closed:
            assert c.held.id not in closed
            assert c.held.id in opened or c.held.is_hedge
            closed.add(c.held.id)


def test_net_liq_is_cash_plus_marks(replayed: tuple[Engine, list[TickResult]]) -> None:
    _, results = replayed
    for r in results[::7]:
        assert r.account.net_liq == pytest.approx(
            r.account.portfolio.cash + sum(m.value for m in r.marks)
        )
        assert (r.account.portfolio.drawdown_pct or 0.0) >= 0.0


@pytest.mark.parametrize(
    ("net_liq", "max_loss", "units"),
    [(100_000, 400.0, 5), (100_000, 3_000.0, 1), (1_000_000, 100.0, 25), (50_000, 0.0, 1)],
)
def test_sizing_keeps_max_loss_within_the_risk_budget(
    net_liq: float, max_loss: float, units: int
) -> None:
    assert Sizing(risk_per_trade=0.02, max_units=25).units(net_liq, max_loss) == units


def test_early_assignment_flags_reach_the_position_rows() -> None:
    from datetime import date, datetime
    from types import SimpleNamespace

    from engine.execution.orders import AssignmentRisk, Contract
    from engine.runtime.rows import _flags
    from engine.state.snapshot import EXCHANGE_TZ

    call = Contract("SPY", "option", date(2019, 3, 15), 250.0, True)
    risk = AssignmentRisk(datetime(2019, 3, 12, 16, tzinfo=EXCHANGE_TZ), "P1", call, 0.12, 1.23)
    flags = _flags(SimpleNamespace(assignment_risks=(risk,)))  # type: ignore[arg-type]
    assert flags == {
        "P1": "early assignment risk: short SPY 2019-03-15 250C has $0.12 of time value, "
        "under the ~$1.23 dividend"
    }
