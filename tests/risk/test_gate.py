"""The risk gate: the tick's trading state from the fired limits and breakers, and its controls."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from engine.dsl.trace import ActionInfo, Decision
from engine.execution.orders import Contract, Order, OrderLeg
from engine.risk.gate import ACTIVE, HALTED, REDUCING, RiskGate
from engine.runtime.intents import Proposal
from engine.state.snapshot import EXCHANGE_TZ, MarketState, PortfolioState, Snapshot

T = datetime(2020, 3, 9, 16, 0, tzinfo=EXCHANGE_TZ)
PORTFOLIO = PortfolioState(net_liq=100_000.0, buying_power_available=10_000.0)
VIEW = Snapshot(time=T, market=MarketState(session="regular"), portfolio=PORTFOLIO)


def decision(verb: str, kind: str = "rule", target: str | None = None, rule: str = "r") -> Decision:
    phase = {"breaker": "breaker", "limit": "limit"}.get(kind, "entry")
    info = ActionInfo(rule, kind, phase, verb, target, (), (), None, 0, "f.v6:1:1")
    return Decision(T, "hash", info, (), "SPY", None)


def proposal(intent: Any, margin: float = 0.0, target: str | None = None) -> Proposal:
    leg = OrderLeg(Contract("SPY", "option", date(2020, 4, 17), 250.0, False), -1, "short_put")
    order = Order("o-1", T, intent, "SPY", (leg,), 1, "r", "test", "put_credit_spread", "p-1")
    verb = {"open": "open", "close": "close", "hedge": "hedge"}.get(intent, "adjust")
    return Proposal(decision(verb, target=target), order, margin_usd=margin)


def test_state_comes_from_the_fired_limits_and_breakers() -> None:
    gate = RiskGate()
    assert gate.context([], PORTFOLIO, T).state == ACTIVE
    blocked = gate.context([decision("block_entries", "limit", rule="max_positions")], PORTFOLIO,
                           T)
    assert blocked.state == REDUCING and blocked.because == ("max_positions",)
    halted = gate.context(
        [decision("block_entries", "limit"), decision("halt", "breaker", rule="daily_loss")],
        PORTFOLIO,
        T,
    )
    assert halted.state == HALTED and halted.because == ("daily_loss",)


def test_reducing_blocks_entries_and_rolls_but_not_exits_or_hedges() -> None:
    gate = RiskGate()
    ctx = gate.context([decision("block_entries", "breaker", rule="vix_spike")], PORTFOLIO, T)
    props = [proposal("open"), proposal("roll"), proposal("close"), proposal("hedge")]
    verdicts = gate.review(props, ctx, VIEW)
    assert [v.blocked is not None for v in verdicts] == [True, True, False, False]
    assert verdicts[0].blocked == "entries blocked (REDUCING) by vix_spike"
    assert "risk-increasing adjustments" in (verdicts[1].blocked or "")


def test_halted_lets_only_closing_orders_through() -> None:
    gate = RiskGate()
    ctx = gate.context([decision("halt", "breaker", rule="daily_loss")], PORTFOLIO, T)
    props = [proposal("open"), proposal("hedge"), proposal("close"),
             proposal("adjust", target="close_tested")]  # fmt: skip
    verdicts = gate.review(props, ctx, VIEW)
    assert [v.blocked is not None for v in verdicts] == [True, True, False, False]
    assert "HALTED by daily_loss" in (verdicts[0].blocked or "")


def test_buying_power_counts_entries_passed_earlier_in_the_tick() -> None:
    gate = RiskGate()
    ctx = gate.context([], PORTFOLIO, T)
    verdicts = gate.review([proposal("open", 6_000.0), proposal("open", 6_000.0)], ctx, VIEW)
    assert verdicts[0].blocked is None
    assert verdicts[1].blocked == "needs $12,000 of buying power, $10,000 available"
    unknown = RiskGate().context([], PortfolioState(), T)
    (v,) = gate.review([proposal("open", 1.0)], unknown, VIEW)
    assert v.blocked is not None and "fail closed" in v.blocked
