"""The what-if limits check: an order's impact, the portfolio after it, and the refusal."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np

from engine.dsl import load_ruleset
from engine.dsl.trace import ActionInfo, Decision
from engine.execution.orders import Contract, Order, OrderLeg
from engine.risk.exposure import CLUSTER, Cluster
from engine.risk.gate import RiskGate
from engine.risk.whatif import LimitsCheck, Pending, order_impact, violations
from engine.runtime.intents import Proposal
from engine.state.snapshot import PortfolioState, Snapshot
from tests.dsl.conftest import T0, make_snapshot

RS = load_ruleset("v6")
CHECK = LimitsCheck(RS)
CALM = {"net_liq": 100_000.0, "open_positions": 0, "bw_delta_spy": 0.0, "delta": 0.0,
        "gamma": 0.0, "vega": 0.0, "theta": 0.0, "buying_power_used": 0.0,
        "buying_power_available": 100_000.0, "margin_used_pct": 0.0,
        "cluster_delta": 0.0}  # fmt: skip


# Nothing held on the index cluster yet; equal vols and betas: correlation 1.
ZERO = Cluster.of(CLUSTER, np.zeros(3), np.ones(3), np.full(3, 0.15), 0.15)


def pending(v: Snapshot) -> Pending:
    return Pending(v.portfolio, CHECK.counts(v), ZERO)


def view(**portfolio: Any) -> Snapshot:
    return make_snapshot(
        market={"vix": 15.0, "futures": {"ES": {"price": 5000.0}}},
        underlyings={"SPY": {"price": 500.0}, "QQQ": {"price": 400.0, "beta": 1.25}},
        portfolio={**CALM, **portfolio},
    )


def order(intent: Any, legs: tuple[OrderLeg, ...], qty: int = 1, strategy: str | None = None,
          symbol: str = "SPY") -> Order:  # fmt: skip
    return Order("o-1", T0, intent, symbol, legs, qty, "r", "test", strategy, "p-1")


def shares(symbol: str, n: int) -> OrderLeg:
    return OrderLeg(Contract(symbol, "stock"), n, "hedge")


def test_impact_of_shares_and_futures_in_spy_share_equivalents() -> None:
    v = view()
    qqq = order_impact(order("hedge", (shares("QQQ", -100),), symbol="QQQ"), v)
    assert qqq.delta == -100.0
    assert math.isclose(qqq.bw_delta or 0.0, -100 * 1.25 * 400.0 / 500.0)  # beta × price / SPY
    es = order_impact(order("hedge", (OrderLeg(Contract("ES", "future"), -1, "hedge"),), 2,
                            symbol="ES"), v)  # fmt: skip
    assert es.delta == -100.0  # 2 contracts × 50 multiplier, in index units
    assert math.isclose(es.bw_delta or 0.0, -100.0 * 5000.0 / 500.0)
    assert not qqq.opens and es.vega == 0.0


def test_an_unpriced_leg_makes_the_greeks_unknown() -> None:
    leg = OrderLeg(Contract("XYZ", "option", date(2024, 4, 19), 50.0, False), -1, "short_put")
    imp = order_impact(order("open", (leg,), strategy="put_credit_spread", symbol="XYZ"), view())
    assert imp.opens and imp.delta is None and imp.bw_delta is None


def test_pending_adds_the_order_and_counts_the_new_position() -> None:
    v = view(open_positions=1, positions_by_symbol={"SPY": 1})
    before = pending(v)
    imp = order_impact(order("open", (shares("SPY", 10),), strategy="iron_condor"), v, 2_000.0)
    after = before.plus(imp, CHECK.shapes)
    pf = after.portfolio
    assert (pf.open_positions, pf.positions_by_symbol["SPY"], pf.delta) == (2, 2, 10.0)
    assert (pf.buying_power_used, pf.buying_power_available, pf.margin_used_pct) == (
        2_000.0, 98_000.0, 0.02)
    assert after.counts.get((None, "SPY"), 0) == before.counts.get((None, "SPY"), 0) + 1


def test_a_new_breach_and_a_deeper_one_are_refused_with_the_limit_and_the_amount() -> None:
    v = view(bw_delta_spy=200.0)  # bw_delta band: ±250
    now = pending(v)
    before = CHECK.breaches(v, now)
    assert before == {}
    buy = order_impact(order("hedge", (shares("SPY", 80),)), v)
    (why,) = violations(before, CHECK.breaches(v, now.plus(buy, CHECK.shapes)))
    assert why.startswith("would breach limit bw_delta: `-bw_delta_band <= portfolio.bw_delta_spy")
    assert "fails by 30" in why and "portfolio.bw_delta_spy = 280" in why
    assert "limits.v6" in why
    # Already beyond: going further is refused, coming back (even if still beyond) is not.
    far = view(bw_delta_spy=400.0)
    far_now = pending(far)
    far_before = CHECK.breaches(far, far_now)
    assert set(far_before) == {"bw_delta"}
    more = far_now.plus(order_impact(order("hedge", (shares("SPY", 10),)), far), CHECK.shapes)
    less = far_now.plus(order_impact(order("hedge", (shares("SPY", -100),)), far), CHECK.shapes)
    assert violations(far_before, CHECK.breaches(far, more))[0].startswith(
        "would take limit bw_delta further beyond")
    assert violations(far_before, CHECK.breaches(far, less)) == []


def proposal(o: Order, margin: float = 0.0) -> Proposal:
    verb = {"open": "open", "close": "close", "hedge": "hedge"}[o.intent]
    info = ActionInfo("r", "rule", "entry", verb, o.strategy, (), (), None, 0, "f.v6:1:1")
    return Proposal(Decision(T0, RS.hash, info, (), o.symbol, None), o, margin_usd=margin)


def test_the_gate_counts_orders_passed_earlier_in_the_tick() -> None:
    gate = RiskGate(CHECK, RS.compiled.breaker_policies)
    v = view(open_positions=5)  # max_positions 6
    ctx = gate.context([], v.portfolio, v.time)
    first = proposal(order("open", (shares("SPY", 1),), strategy="iron_condor", symbol="SPY"))
    second = proposal(order("open", (shares("QQQ", 1),), strategy="iron_condor", symbol="QQQ"))
    close = proposal(order("close", (shares("SPY", 1),), strategy="iron_condor"))
    verdicts = gate.review([first, second, close], ctx, v, cluster=ZERO)
    assert verdicts[0].blocked is None
    assert verdicts[1].control == "limits"
    assert "would breach limit max_positions" in (verdicts[1].blocked or "")
    assert verdicts[2].blocked is None  # exits are never checked against limits


def test_limits_that_cannot_be_evaluated_after_the_order_refuse_it() -> None:
    v = view()
    now = pending(v)
    unknown = Pending(PortfolioState(**{**CALM, "bw_delta_spy": None}), now.counts)
    (why,) = violations(CHECK.breaches(v, now), CHECK.breaches(v, unknown))
    assert why.startswith("would breach limit bw_delta") and "unknown" in why


def test_an_unknown_limit_refuses_risk_even_when_it_was_unknown_before() -> None:
    v = view(bw_delta_spy=None)
    now = pending(v)
    before = CHECK.breaches(v, now)
    assert math.isinf(before["bw_delta"].size)
    after = now.plus(order_impact(order("hedge", (shares("SPY", 10),)), v), CHECK.shapes)
    (why,) = violations(before, CHECK.breaches(v, after))
    assert why.startswith("would breach limit bw_delta") and "unknown" in why


def test_entries_do_not_count_on_room_a_close_has_not_freed_yet() -> None:
    gate = RiskGate(CHECK, RS.compiled.breaker_policies)
    v = view(bw_delta_spy=240.0)  # band ±250
    ctx = gate.context([], v.portfolio, v.time)
    close = proposal(order("close", (shares("SPY", -200),), strategy="iron_condor"))
    entry = proposal(order("open", (shares("SPY", 50),), strategy="iron_condor"))
    hedge = proposal(order("hedge", (shares("SPY", 50),)))
    v_close, v_entry, v_hedge = gate.review([close, entry, hedge], ctx, v, cluster=ZERO)
    assert v_close.blocked is None
    assert v_entry.control == "limits" and "bw_delta" in (v_entry.blocked or "")  # 290 > 250
    assert v_hedge.blocked is None  # sized net of the close: 240 - 200 + 50 = 90


def test_a_smaller_hedge_passes_while_halted_and_a_larger_one_does_not() -> None:
    from dataclasses import replace as dc_replace

    gate = RiskGate(CHECK, RS.compiled.breaker_policies)
    v = view()
    info = ActionInfo("daily_loss", "breaker", "breaker", "halt", None, (), (), None, 0, "f:1:1")
    halt = Decision(T0, RS.hash, info, (), None, None)
    ctx = gate.context([halt], v.portfolio, v.time)
    smaller = dc_replace(proposal(order("hedge", (shares("SPY", 100),))), reduces_hedge=True)
    larger = proposal(order("hedge", (shares("SPY", -100),)))
    v_small, v_large = gate.review([smaller, larger], ctx, v, cluster=ZERO)
    assert v_small.blocked is None
    assert v_large.control == "halted"
