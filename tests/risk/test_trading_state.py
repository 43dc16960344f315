"""The trading state machine: trips, cool-downs, resets, limits and the operator."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.dsl.ruleset import load_ruleset
from engine.dsl.tickgen import BreakerPolicy
from engine.dsl.trace import ActionInfo, Decision
from engine.risk.trading_state import ACTIVE, HALTED, REDUCING, RiskEvent, TradingState
from engine.risk.trading_state import step as _step
from engine.state.snapshot import EXCHANGE_TZ

T0 = datetime(2020, 3, 9, 16, 0, tzinfo=EXCHANGE_TZ)
POLICIES = (
    BreakerPolicy("vix_spike", 2.0, manual=False, resets=True),
    BreakerPolicy("drawdown", None, manual=True, resets=False),
    BreakerPolicy("stale_data", None, manual=False, resets=True),
    BreakerPolicy("plain", None, manual=False, resets=False),
)


def fired(rule: str, verb: str, kind: str = "breaker") -> Decision:
    info = ActionInfo(rule, kind, kind, verb, None, (), (), None, 0, "f.v6:1:1")
    return Decision(T0, "h", info, (), None, None)


def step(*args: object, **kw: object) -> tuple[TradingState, list[RiskEvent]]:
    """The machine's step, keeping only its transitions (trip and reset events: below)."""
    state, events = _step(*args, **kw)  # type: ignore[arg-type]
    return state, [e for e in events if e.kind == "transition"]


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def test_a_breaker_stays_tripped_through_its_cooldown_and_until_its_reset_holds() -> None:
    s, ev = step(TradingState(), day(0), [fired("vix_spike", "block_entries")], {}, POLICIES)
    assert s.state == REDUCING and ev[0].cause == "vix_spike" and ev[0].before == ACTIVE
    s, ev = step(s, day(1), [], {"vix_spike": True}, POLICIES)  # trigger gone, in cool-down
    assert s.state == REDUCING and not ev
    s, ev = step(s, day(2), [], {"vix_spike": False}, POLICIES)  # cool-down over, no reset
    assert s.state == REDUCING
    s, ev = step(s, day(3), [], {"vix_spike": None}, POLICIES)  # unknown: stays (fail closed)
    assert s.state == REDUCING
    s, ev = step(s, day(4), [], {"vix_spike": True}, POLICIES)
    assert s.state == ACTIVE and ev[0].after == ACTIVE and ev[0].cause == "all clear"


def test_firing_again_restarts_the_cooldown() -> None:
    s, _ = step(TradingState(), day(0), [fired("vix_spike", "block_entries")], {}, POLICIES)
    s, _ = step(s, day(1), [fired("vix_spike", "block_entries")], {}, POLICIES)
    s, _ = step(s, day(2), [], {"vix_spike": True}, POLICIES)  # only 1 day since it last fired
    assert s.state == REDUCING
    s, _ = step(s, day(3), [], {"vix_spike": True}, POLICIES)
    assert s.state == ACTIVE


def test_halted_needs_an_operator_even_after_its_breaker_resets() -> None:
    s, ev = step(TradingState(), day(0), [fired("vix_spike", "halt")], {}, POLICIES)
    assert s.state == HALTED
    s, ev = step(s, day(5), [], {"vix_spike": True}, POLICIES)
    assert s.state == HALTED and not s.trips and not ev
    s, ev = step(s, day(5), [], {}, POLICIES, command="resume")
    assert s.state == ACTIVE and ev[0].cause == "operator resume"


def test_manual_reset_breakers_clear_only_on_resume() -> None:
    s, _ = step(TradingState(), day(0), [fired("drawdown", "flatten")], {}, POLICIES)
    s, _ = step(s, day(30), [], {}, POLICIES)
    assert s.state == HALTED and "drawdown" in s.trips
    s, events = step(s, day(30), [], {}, POLICIES, command="resume")
    assert s.state == ACTIVE and not s.trips and events[0].before == HALTED


def test_resume_does_not_clear_what_still_holds() -> None:
    both = [fired("drawdown", "halt"), fired("vix_spike", "block_entries")]
    s, _ = step(TradingState(), day(0), both, {}, POLICIES)
    s, ev = step(s, day(0), [], {"vix_spike": False}, POLICIES, command="resume")
    assert s.state == REDUCING and ev[0].cause == "operator resume, vix_spike"


def test_limits_act_only_while_breached_and_a_plain_breaker_while_it_fires() -> None:
    s, _ = step(TradingState(), day(0), [fired("max_positions", "block_entries", "limit")], {},
                POLICIES)  # fmt: skip
    assert s.state == REDUCING and not s.trips
    s, _ = step(s, day(0), [], {}, POLICIES)
    assert s.state == ACTIVE
    s, _ = step(s, day(1), [fired("plain", "block_entries")], {}, POLICIES)
    s, _ = step(s, day(1), [], {}, POLICIES)
    assert s.state == ACTIVE


def test_operator_halt_holds_until_resume() -> None:
    s, ev = step(TradingState(), day(0), [], {}, POLICIES, command="halt")
    assert s.state == HALTED and ev[0].cause == "operator halt"
    s, _ = step(s, day(1), [], {}, POLICIES)
    assert s.state == HALTED
    s, _ = step(s, day(1), [], {}, POLICIES, command="resume")
    assert s.state == ACTIVE


def test_the_shipped_policies_compile_their_cooldowns_and_resets() -> None:
    rs = load_ruleset("v6")
    by_id = {p.id: p for p in rs.compiled.breaker_policies}
    assert by_id["daily_loss"].cooldown_days == 1.0 and by_id["daily_loss"].resets
    assert by_id["vix_spike"].cooldown_days == 2.0
    assert by_id["drawdown"].manual and not by_id["drawdown"].resets


def test_trips_resets_and_commands_are_events_too() -> None:
    s, ev = _step(TradingState(), day(0), [fired("vix_spike", "block_entries")], {}, POLICIES)
    assert [(e.kind, e.cause) for e in ev] == [("trip", "vix_spike"), ("transition", "vix_spike")]
    s, ev = _step(s, day(1), [fired("vix_spike", "block_entries")], {}, POLICIES)
    assert ev == []  # still firing: not a new trip
    s, ev = _step(s, day(4), [], {"vix_spike": True}, POLICIES, command="halt")
    assert [(e.kind, e.cause, e.after) for e in ev] == [
        ("reset", "vix_spike", REDUCING), ("command", "operator", REDUCING),
        ("transition", "operator halt", HALTED)]


def test_a_flatten_holds_until_resume() -> None:
    s, _ = _step(TradingState(), day(0), [], {}, POLICIES, command="flatten")
    assert s.state == HALTED and s.flatten
    s, _ = _step(s, day(1), [], {}, POLICIES)
    assert s.flatten
    s, _ = _step(s, day(2), [], {}, POLICIES, command="resume")
    assert s.state == ACTIVE and not s.flatten
    s, _ = _step(s, day(3), [fired("drawdown", "flatten")], {}, POLICIES)
    assert s.state == HALTED and s.flatten


def test_resume_keeps_a_manual_breaker_that_still_fires() -> None:
    s, _ = _step(TradingState(), day(0), [fired("drawdown", "flatten")], {}, POLICIES)
    s, ev = _step(s, day(1), [fired("drawdown", "flatten")], {}, POLICIES, command="resume")
    assert s.state == HALTED and "drawdown" in s.trips and s.flatten
    (cmd,) = [e for e in ev if e.kind == "command"]
    assert cmd.detail == "resume; still firing, stays tripped: drawdown"
    s, ev = _step(s, day(2), [], {}, POLICIES, command="resume")
    assert s.state == ACTIVE and not s.trips


def test_a_limit_asking_to_flatten_holds_the_flatten() -> None:
    s, _ = _step(TradingState(), day(0), [fired("too_big", "flatten", "limit")], {}, POLICIES)
    assert s.state == HALTED and s.flatten
