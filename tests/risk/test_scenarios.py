"""Crash, hedge and recovery scenarios: the V6 rule set stepped through shocked synthetic markets.

Every scenario runs the dry run's engine (`build_engine`) over the synthetic market of seed 6,
Q1 2018, with a crash laid over it by tests/risk/markets.py (the generator cannot be steered
to a crash on a chosen day). Positions are open from the first days; the crash comes on
2018-01-17 (tick 10). Assertions read only what a tick returns (`TickResult`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta

import pytest

from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.runtime import TickContext
from engine.execution.orders import Order
from engine.portfolio.book import HEDGE
from engine.risk.gate import ACTIVE, CLOSING, HALTED, REDUCING, RISK_INCREASING
from engine.risk.trading_state import Command, RiskEvent
from engine.runtime.engine import TickResult
from engine.runtime.intents import Sizing
from tests.risk.markets import Market, Shock, generated_market, make_engine, run, shocked

SEED, START, END = 6, date(2018, 1, 1), date(2018, 3, 31)
CRASH = 10  # 2018-01-17

# One crash day: SPY -9% (QQQ and IWM more, by their beta), VIX +80% over its generated
# move, VIX3M up half as much in log terms: the term structure inverts.
ONE_DAY = (Shock(CRASH, -0.08, 1.8),)
# The same crash over two days: a VIX spike on a quiet tape, then the fall. SPY -9.5% in all,
# VIX 19 -> 33.5.
TWO_DAYS = (Shock(CRASH, -0.005, 1.32), Shock(CRASH + 1, -0.095, 1.4))
# The crash books risk 4% of net liq per position (the default is 2%), so that a crash costs
# well beyond the daily-loss breaker's 3% and not only just about it.
CRASH_SIZING = Sizing(risk_per_trade=0.04)
# A VIX spike and a -3% day: entries stop, nothing halts.
SPIKE = (Shock(CRASH, -0.03, 1.5),)


@pytest.fixture(scope="module")
def rs() -> RuleSet:
    return load_ruleset("v6")


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Market:
    return generated_market(tmp_path_factory.mktemp("scenarios"), SEED, START, END)


# ---------------------------------------------------------------------------- reading ticks


def events(r: TickResult, kind: str) -> list[RiskEvent]:
    return [e for e in r.gate.events if e.kind == kind]


def sent(r: TickResult) -> list[Order]:
    """Orders that passed the gate this tick."""
    return [v.proposal.order for v in r.verdicts if v.blocked is None and v.proposal.order]


def closes(r: TickResult) -> list[Order]:
    return [o for o in sent(r) if o.intent in CLOSING and o.strategy != HEDGE]


def filled(r: TickResult, orders: Iterable[Order]) -> bool:
    return all((f := r.results[o.id].fill) is not None and f.quantity == o.quantity for o in orders)


def bw(r: TickResult) -> float:
    value = r.view.portfolio.bw_delta_spy
    assert value is not None, f"{r.time}: beta-weighted delta unknown"
    return value


def hedge_band(rs: RuleSet) -> float:
    _, band = rs.program.params["risk_policies/hedge.v6"]["hedge_band"]
    return float(band)


def breakers_by_priority(rs: RuleSet) -> list[str]:
    return [
        b.id
        for b in sorted(
            (b for b in rs.program.blocks if b.kind == "breaker"), key=lambda b: -b.priority
        )
    ]


def describe(r: TickResult) -> str:
    """One line per tick for assertion messages."""
    orders = [
        f"{v.proposal.order.intent} {v.proposal.order.symbol}"
        + (f" BLOCKED ({v.blocked})" if v.blocked else "")
        for v in r.verdicts
        if v.proposal.order
    ]
    kinds = [f"{e.kind}:{e.cause}" for e in r.gate.events]
    return f"{r.time:%Y-%m-%d} {r.gate.state} events={kinds} orders={orders}"


# ---------------------------------------------------------------------------- the crash


def test_the_crash_day_is_a_crash(market: Market) -> None:
    """The shocked tick is what the scenarios claim: indices down 8-10%, VIX up 60-100%,
    VIX3M below VIX, and every chain re-priced off the new spot."""
    before, crash = market.base[CRASH], shocked(market, ONE_DAY)[CRASH]
    for sym in ("SPY", "QQQ", "IWM"):
        u = crash.underlyings[sym]
        worst = -0.10 if sym == "SPY" else -0.14  # QQQ and IWM fall by their beta to SPY
        assert u.change_pct is not None and worst <= u.change_pct <= -0.08, (sym, u.change_pct)
        chain = crash.chains[sym]
        calls = chain.is_call & (chain.expiry == chain.expiries()[2])
        atm = chain.strike[calls][abs(chain.delta[calls] - 0.5).argmin()]
        assert abs(atm / (u.price or 1.0) - 1) < 0.02, f"{sym} chain not priced off the new spot"
        assert (u.atm_iv or 0) > 1.5 * (before.underlyings[sym].atm_iv or 1), f"{sym} IV stale"
    m = crash.market
    assert m.vix_change_pct is not None and 0.6 <= m.vix_change_pct <= 1.0, m.vix_change_pct
    assert m.vix is not None and m.vix3m is not None and m.vix > m.vix3m


def test_a_crash_day_trips_the_breakers_in_priority_order_and_halts(
    rs: RuleSet, market: Market
) -> None:
    results = run(make_engine(rs, sizing=CRASH_SIZING), shocked(market, ONE_DAY))
    calm, crash = results[CRASH - 1], results[CRASH]
    assert calm.gate.state == ACTIVE and calm.view.positions, describe(calm)

    trips = [e.cause for e in events(crash, "trip")]
    assert trips == ["daily_loss", "vix_spike", "backwardation"], describe(crash)
    order = breakers_by_priority(rs)
    assert trips == sorted(trips, key=order.index), f"trips {trips} not in priority order {order}"
    (move,) = events(crash, "transition")
    assert (move.before, move.after, move.cause) == (ACTIVE, HALTED, "daily_loss"), move
    assert crash.gate.state == HALTED and crash.gate.because == ("daily_loss",)
    day_pnl = crash.view.portfolio.day_pnl_pct
    assert day_pnl is not None and day_pnl <= -0.03, f"day P&L {day_pnl} should trip daily_loss"

    # Exits still work: the stops fire on the crash and their closes pass while HALTED.
    exits = closes(crash)
    assert exits and filled(crash, exits), describe(crash)
    assert {o.position_id for o in exits} <= {p.id for p in crash.view.positions}
    assert not [
        v
        for v in crash.verdicts
        if v.proposal.order and v.proposal.order.intent in CLOSING and v.blocked
    ], describe(crash)


def test_a_two_day_crash_reduces_first_then_halts(rs: RuleSet, market: Market) -> None:
    results = run(make_engine(rs, sizing=CRASH_SIZING), shocked(market, TWO_DAYS))
    spike, fall = results[CRASH], results[CRASH + 1]

    assert [e.cause for e in events(spike, "trip")] == ["vix_spike", "backwardation"]
    (move,) = events(spike, "transition")
    assert (move.before, move.after) == (ACTIVE, REDUCING), describe(spike)
    assert {"vix_spike", "backwardation"} <= set(spike.gate.because), spike.gate.because

    assert [e.cause for e in events(fall, "trip")] == ["daily_loss"], describe(fall)
    (move,) = events(fall, "transition")
    assert (move.before, move.after, move.cause) == (REDUCING, HALTED, "daily_loss"), move
    assert fall.gate.tripped == ("backwardation", "daily_loss", "vix_spike")

    for r in (spike, fall):  # nothing adds risk
        assert not [o for o in sent(r) if o.intent in RISK_INCREASING], describe(r)
    for state in (REDUCING, HALTED):  # no exit is ever refused in either state
        during = [r for r in results if r.gate.state == state]
        refused = [v.blocked for r in during for v in r.verdicts
                   if v.proposal.order and v.proposal.order.intent == "close" and v.blocked]
        assert during and not refused, refused
    # Which positions reach an exit on which day depends on the path; on this one the
    # stops fire on the HALTED day (side closes fill while REDUCING in the hedge scenario).
    assert closes(fall) and filled(fall, closes(fall)), describe(fall)
    # The book's beta-weighted delta stayed inside the hedge band: no hedge, as hedge.v6 says.
    band = hedge_band(rs)
    assert max(abs(bw(r)) for r in results) < band
    assert not [o for r in results for o in sent(r) if o.intent == "hedge"]


def test_a_hedge_is_placed_when_beta_weighted_delta_leaves_the_band(
    rs: RuleSet, market: Market
) -> None:
    """A $1M book risking 5% per position, whose delta leaves the 1000-share band on a
    sell-off: the hedge passes the gate while REDUCING, sells SPY, and fills."""
    book = make_engine(rs, cash=1_000_000.0, sizing=Sizing(risk_per_trade=0.05, max_units=100))
    results = run(book, shocked(market, (Shock(CRASH, -0.02, 1.35),)))
    band = hedge_band(rs)
    r = results[CRASH]
    assert r.gate.state == REDUCING and bw(r) > band, describe(r)
    hedges = [v for v in r.verdicts if v.proposal.order and v.proposal.order.intent == "hedge"]
    assert len(hedges) == 1 and hedges[0].blocked is None, describe(r)
    order = hedges[0].proposal.order
    assert order is not None and order.rule_id == "bw_delta_hedge"
    assert order.symbol == "SPY", describe(r)
    assert filled(r, [order]), r.results[order.id]
    assert r.account.hedge_shares == order.legs[0].ratio * order.quantity
    # Sized net of the tick's closes and side closes (which the gate never blocks): the book
    # ends the tick inside the band, whichever way those closes left it.
    assert abs(r.account.portfolio.bw_delta_spy or 0.0) < band, describe(r)

    # On every tick, a hedge is ordered only when a hedge policy asks for it.
    for t in results:
        flat = not t.view.positions and abs(bw(t)) > 0.5
        if any(o.intent == "hedge" for o in sent(t)):
            assert abs(bw(t)) > band or flat, describe(t)


def test_a_hedge_beside_same_tick_adjustments_lands_inside_the_band(
    rs: RuleSet, market: Market
) -> None:
    book = make_engine(rs, cash=1_000_000.0, sizing=Sizing(risk_per_trade=0.05, max_units=100))
    r = run(book, shocked(market, (Shock(CRASH, -0.02, 1.35),)))[CRASH]
    adjusted = [o for o in sent(r) if o.intent == "adjust"]
    assert adjusted and any(o.intent == "hedge" for o in sent(r)), describe(r)
    assert r.gate.state == REDUCING and filled(r, adjusted), describe(r)  # side closes fill
    after = r.account.portfolio.bw_delta_spy
    assert after is not None and abs(after) <= hedge_band(rs), (
        f"hedged from {bw(r):+.0f} to {after:+.0f} SPY shares: beyond the band on the other side"
    )


# ---------------------------------------------------------------------------- recovery


def test_reducing_returns_to_active_after_the_cooldowns_and_resets(
    rs: RuleSet, market: Market
) -> None:
    results = run(make_engine(rs), shocked(market, SPIKE))
    assert results[CRASH].gate.state == REDUCING, describe(results[CRASH])
    policies = {p.id: p for p in rs.compiled.breaker_policies}
    released: dict[str, int] = {}
    for breaker in ("vix_spike", "backwardation"):
        last = max(
            k
            for k, r in enumerate(results)
            if any(d.kind == "breaker" and d.rule_id == breaker for d in r.decisions)
        )
        cooldown = timedelta(days=policies[breaker].cooldown_days or 0.0)
        # The first tick past the cool-down whose reset conditions hold, as the rules read them.
        due = next(
            k
            for k in range(last + 1, len(results))
            if results[k].time - results[last].time >= cooldown
            and rs.compiled.resets(results[k].view, TickContext(rs, results[k].view)).get(breaker)
            is True
        )
        resets = [
            k for k, r in enumerate(results) if any(e.cause == breaker for e in events(r, "reset"))
        ]
        assert resets == [due], f"{breaker}: reset at ticks {resets}, due at {due}"
        released[breaker] = due
    back = max(released.values())
    assert released["vix_spike"] < back, "the two breakers should reset on different days"

    for r in results[CRASH:back]:
        assert r.gate.state == REDUCING, describe(r)
        for v in r.verdicts:
            if v.proposal.order and v.proposal.order.intent == "open":
                assert v.control == "reducing" and v.blocked, describe(r)
                assert v.blocked.startswith("entries blocked (REDUCING) by "), v.blocked
    assert any(v.control == "reducing" for r in results[CRASH:back] for v in r.verdicts), (
        "no entry was proposed while REDUCING: the scenario does not show entries stopping"
    )
    (move,) = events(results[back], "transition")
    assert (move.before, move.after, move.cause) == (REDUCING, ACTIVE, "all clear"), move
    assert any(o.intent == "open" for o in sent(results[back])), describe(results[back])


@pytest.mark.parametrize(
    ("resume", "then"),
    [(35, ACTIVE), (15, REDUCING)],
    ids=["after-every-reset", "backwardation-still-tripped"],
)
def test_halted_holds_until_an_operator_resumes(
    rs: RuleSet, market: Market, resume: int, then: str
) -> None:
    snaps = shocked(market, ONE_DAY)
    operator: dict[date, Command] = {snaps[resume].time.date(): "resume"}
    results = run(make_engine(rs, sizing=CRASH_SIZING, commands=operator), snaps)

    held = results[CRASH + 1 : resume]
    assert all(r.gate.state == HALTED for r in held), [describe(r) for r in held]
    reset = {e.cause for r in held for e in events(r, "reset")}
    assert {"daily_loss", "vix_spike"} <= reset, "the breakers reset; the halt must not"
    blocked = [
        v
        for r in held
        for v in r.verdicts
        if v.proposal.order and v.proposal.order.intent == "open"
    ]
    if then == ACTIVE:
        assert blocked, "no entry was proposed while HALTED: nothing shows entries stopping"
    for v in blocked:
        assert v.control == "halted" and v.blocked is not None, v
        assert v.blocked.startswith("trading HALTED by "), v.blocked

    r = results[resume]
    assert [(e.cause, e.detail) for e in events(r, "command")] == [("operator", "resume")]
    (move,) = events(r, "transition")
    assert (move.before, move.after) == (HALTED, then), describe(r)
    assert move.cause.startswith("operator resume"), move.cause
    later = results[resume:]
    assert any(o.intent == "open" for t in later for o in sent(t)), "trading never resumed"
    if then == REDUCING:  # the breaker still tripped holds entries until it resets
        assert r.gate.because == ("backwardation",), r.gate.because
        back = next(k for k, t in enumerate(later) if t.gate.state == ACTIVE)
        assert [e.cause for e in events(later[back], "reset")] == ["backwardation"]


def test_the_market_helpers_leave_unshocked_days_alone(market: Market) -> None:
    snaps = shocked(market, SPIKE)
    assert snaps[:CRASH] == list(market.base[:CRASH])
    assert snaps[CRASH].time == market.base[CRASH].time
    spy = [s.underlyings["SPY"].price or 0.0 for s in (market.base[-1], snaps[-1])]
    assert spy[1] == pytest.approx(spy[0] * math.exp(-0.03), rel=1e-4)  # the move persists
    assert snaps[-1].market.vix == pytest.approx(market.base[-1].market.vix, rel=1e-4)
