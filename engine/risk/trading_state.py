"""The trading state machine: ACTIVE → REDUCING → HALTED, driven by breakers and limits.

Each tick the machine takes the limit and breaker decisions that fired, the breakers' reset
conditions as the rules evaluated them (`CompiledProgram.resets`), and any operator command,
and returns the new state with its events: breakers tripped and reset, commands read, and
the transition, if any. Pure: time comes from the tick.

- A breaker that fires is *tripped* and stays tripped after its trigger clears: with `reset
  when`, until its cool-down has passed since it last fired and its reset conditions hold; with
  `reset manual`, until an operator resumes; with neither, as soon as it stops firing.
- A limit acts only while it is breached (limits are re-checked every tick, before every
  order).
- The state is the most severe wanted by any tripped breaker or breached limit: `halt` or
  `flatten` → HALTED, `block_entries` → REDUCING. HALTED is left only by an operator resume,
  even when its breakers have reset: someone must look before trading starts again.
- A `flatten` (breaker action or operator command) keeps the engine closing positions while
  HALTED, until an operator resumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from engine.dsl.tickgen import BreakerPolicy
from engine.dsl.trace import Decision

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
_SEVERITY = {ACTIVE: 0, REDUCING: 1, HALTED: 2}
_WANTS = {"block_entries": REDUCING, "halt": HALTED, "flatten": HALTED}
_STATEFUL = ("breaker", "limit")  # the kinds of rules whose actions set the trading state
Command = Literal["halt", "flatten", "resume"]  # `flatten`: halt and close everything
EVENT_KINDS = ("trip", "reset", "transition", "command")


@dataclass(frozen=True, slots=True)
class Trip:
    breaker: str
    wants: str  # REDUCING | HALTED
    first: datetime  # when it tripped
    last: datetime  # when its trigger last held


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One row of the `risk_events` journal table.

    `kind`: `trip` (a breaker fired while not tripped), `reset` (a tripped breaker was
    released: cool-down over and reset held, or an operator resumed), `command` (an operator
    halt, flatten or resume was read) and `transition` (the trading state changed). `rules`
    names the breakers and limits behind it, so the journal can add their condition values.
    """

    time: datetime
    before: str
    after: str
    cause: str  # the breakers, limits or operator command behind it
    detail: str
    kind: str = "transition"
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class TradingState:
    state: str = ACTIVE
    trips: Mapping[str, Trip] = field(default_factory=dict)
    operator_halt: bool = False
    flatten: bool = False  # close every position while HALTED (a flatten breaker or command)


def _wanted(decisions: Sequence[Decision], kind: str) -> dict[str, str]:
    """Rule id → the most severe state its fired actions ask for."""
    out: dict[str, str] = {}
    for d in decisions:
        if d.kind == kind and d.verb in _WANTS:
            want = _WANTS[d.verb]
            if _SEVERITY[want] > _SEVERITY.get(out.get(d.rule_id, ACTIVE), 0):
                out[d.rule_id] = want
    return out


def step(
    s: TradingState,
    time: datetime,
    decisions: Sequence[Decision],
    resets: Mapping[str, bool | None],
    policies: Sequence[BreakerPolicy],
    command: Command | None = None,
) -> tuple[TradingState, list[RiskEvent]]:
    """The state after this tick, and the events that led there."""
    by_id = {p.id: p for p in policies}
    trips = dict(s.trips)
    events: list[RiskEvent] = []
    now = s.state
    for breaker, want in _wanted(decisions, "breaker").items():
        old = trips.get(breaker)
        if old is None:
            trips[breaker] = Trip(breaker, want, time, time)
            events.append(RiskEvent(time, now, now, breaker, f"wants {want}", "trip", (breaker,)))
        else:
            trips[breaker] = replace(old, last=time, wants=want)
    fired = {d.rule_id for d in decisions if d.kind == "breaker"}
    flatten = s.flatten or any(d.verb == "flatten" for d in decisions if d.kind in _STATEFUL)
    for breaker, trip in sorted(trips.items()):
        if breaker in fired:
            continue
        policy = by_id.get(breaker)
        if policy is None or _released(policy, trip, time, resets.get(breaker)):
            del trips[breaker]
            since = f"tripped {trip.first:%Y-%m-%d %H:%M}, last fired {trip.last:%Y-%m-%d %H:%M}"
            events.append(RiskEvent(time, now, now, breaker, since, "reset", (breaker,)))
    operator_halt = s.operator_halt
    if command is not None:
        # A manual breaker still firing on the resume tick stays tripped: resuming into it
        # would trade one tick and trip again (the drawdown from a peak does not heal).
        held = sorted(b for b, t in trips.items()
                      if by_id.get(b) and by_id[b].manual and b in fired)  # fmt: skip
        detail = command if command != "resume" or not held else (
            f"resume; still firing, stays tripped: {', '.join(held)}")  # fmt: skip
        events.append(RiskEvent(time, now, now, "operator", detail, "command", tuple(held)))
    if command == "resume":
        for b in [b for b, t in trips.items() if by_id.get(b) and by_id[b].manual]:
            if b in fired:
                continue
            del trips[b]
            events.append(RiskEvent(time, now, now, b, "operator resume", "reset", (b,)))
        operator_halt = False
        # Only what still asks for it this tick keeps flattening.
        flatten = any(d.verb == "flatten" for d in decisions if d.kind in _STATEFUL)
    elif command in ("halt", "flatten"):
        operator_halt = True
        flatten = flatten or command == "flatten"
    limits = _wanted(decisions, "limit")
    causes = {b: t.wants for b, t in trips.items()} | limits
    if operator_halt:
        causes["operator"] = HALTED
    state = max(causes.values(), key=_SEVERITY.__getitem__, default=ACTIVE)
    if s.state == HALTED and command != "resume":
        state = HALTED  # only an operator leaves HALTED
    if state != s.state:
        why = [c for c, w in sorted(causes.items()) if w == state and c != "operator"]
        if command is not None:
            why.insert(0, f"operator {command}")
        detail = "; ".join(f"{c}: {w}" for c, w in sorted(causes.items())) or "nothing tripped"
        rules = tuple(c for c in sorted(causes) if c != "operator")
        cause = ", ".join(why) or "all clear"
        events.append(RiskEvent(time, s.state, state, cause, detail, "transition", rules))
    return TradingState(state, trips, operator_halt, flatten and state == HALTED), events


def _released(p: BreakerPolicy, trip: Trip, time: datetime, reset: bool | None) -> bool:
    if p.manual:
        return False
    if p.cooldown_days is not None and time - trip.last < timedelta(days=p.cooldown_days):
        return False
    if p.resets:
        return reset is True  # unknown keeps it tripped: fail closed
    return True
