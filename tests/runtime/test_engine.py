"""Engine.step over a replay: the book and the broker's account agree; positions behave."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from engine.dsl.ruleset import load_ruleset
from engine.dsl.trace import Level
from engine.execution.costs import Costs
from engine.execution.fill_models import DEFAULT_FILL_MODEL
from engine.market.store import MarketStore
from engine.runtime.dry_run import (
    DryRunSpec,
    build_engine,
    entry_symbols,
    history_feed,
)
from engine.runtime.engine import Engine, TickResult
from engine.runtime.intents import Sizing
from engine.runtime.replay import Runner, replay
from tests.runtime.conftest import END, START


@pytest.fixture(scope="module")
def replayed(store: Path) -> tuple[Engine, list[TickResult]]:
    rs = load_ruleset("v6")
    engine = build_engine(rs, DEFAULT_FILL_MODEL, Costs(), 100_000.0,
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


def test_partial_fills_never_split_rolls_or_share_orders() -> None:
    from engine.execution.fill_models import FillModel
    from engine.execution.orders import Contract, Order, OrderLeg
    from engine.execution.sim_broker import SimBroker
    from tests.portfolio.test_book import CONDOR, T1, snapshot

    broker = SimBroker(FillModel.mid_minus(0.25, max_units=2), Costs(), 1_000_000.0)
    snap = snapshot({260: 0.30, 265: 0.50, 290: 0.40, 295: 0.20})
    legs = tuple(OrderLeg(c, r, role) for c, r, role in CONDOR)

    def order(oid: str, intent: str, order_legs: tuple[OrderLeg, ...], qty: int) -> Order:
        return Order(oid, T1, intent, "SPY", order_legs, qty, "r", "test",  # type: ignore[arg-type]
                     "iron_condor", "P1")  # fmt: skip

    opened, rolled, shares = broker.execute(
        [
            order("o1", "open", legs, 5),
            order("o2", "roll", legs[:2], 5),
            order("o3", "hedge", (OrderLeg(Contract("SPY", "stock"), -1, "hedge"),), 300),
        ],
        snap,
    )
    assert opened.status == "partial" and opened.fill is not None and opened.fill.quantity == 2
    assert rolled.fill is not None and rolled.fill.quantity == 5
    assert shares.fill is not None and shares.fill.quantity == 300


def test_a_hedge_counts_the_positions_closing_in_the_same_tick() -> None:
    from dataclasses import replace as dc_replace

    from engine.dsl.trace import ActionInfo, Decision
    from engine.portfolio.book import Book, HeldLeg, HeldPosition
    from engine.runtime.intents import Proposer
    from engine.state.snapshot import Chain, PortfolioState
    from tests.portfolio.test_book import CONDOR, T1, snapshot

    book = Book(100_000.0)
    held = HeldPosition("P1", "iron_condor", "SPY", T1, 10,
                        [HeldLeg(role, c, r, 1.0) for c, r, role in CONDOR], 0.85)  # fmt: skip
    book.positions["P1"] = held
    plain = snapshot({260: 0.30, 265: 0.50, 290: 0.40, 295: 0.20})
    chain = plain.chains["SPY"]
    tested = Chain.from_columns(  # the short put is tested: the condor is long delta
        "SPY", expiry=chain.expiry, strike=chain.strike, is_call=chain.is_call, bid=chain.bid,
        ask=chain.ask, delta=[-0.10, -0.45, 0.20, 0.08], vega=chain.vega, theta=chain.theta,
        iv=chain.iv)  # fmt: skip
    base = dc_replace(plain, chains={"SPY": tested})
    (mark,) = book.mark(base)  # the condor's delta from the chain: SPY shares, beta 1
    assert round(mark.delta) == 230
    view = dc_replace(base, portfolio=PortfolioState(net_liq=100_000.0, bw_delta_spy=mark.delta))

    def decision(verb: str, kind: str, phase: str, args: tuple, pid: str | None) -> Decision:  # type: ignore[type-arg]
        info = ActionInfo("r_" + verb, kind, phase, verb, None, (), (), None, 0, "f:1:1")
        return Decision(T1, "h", info, args, "SPY", pid)

    close = decision("close", "rule", "exit", (), "P1")
    hedge = decision("hedge", "breaker", "breaker", (("target", 0.0), ("instrument", "SPY")), None)
    proposer = Proposer(None, Sizing(), lambda *a: 0.0)
    alone = proposer.propose([hedge], view, book, {"P1": mark}, "crash")
    assert alone[0].order is not None and alone[0].order.quantity == abs(round(mark.delta))
    both = proposer.propose([close, hedge], view, book, {"P1": mark}, "crash")
    assert both[0].order is not None and both[0].order.intent == "close"
    assert both[1].order is None and "smaller than one SPY unit" in (both[1].note or "")
