"""The risk gate: the trading state, and the controls every proposed order must pass.

Each tick the gate advances the trading state machine (engine.risk.trading_state) with the
limit and breaker decisions that fired, the breakers' reset conditions and any operator
command. Then each proposal runs through the controls in order; the first objection blocks
it. Controls are small classes with one `validate` method returning None or a message that
explains the violation (after zipline's trading controls):

- HALTED: only closing orders pass;
- REDUCING: no entries and no risk-increasing adjustments; exits and hedges pass;
- buying power: an entry must fit in what is left after the entries passed before it;
- what-if limits: the portfolio as it would be after the order (and the orders passed before
  it this tick) must not breach a limit that held, nor go further beyond one already breached.
  Exits are never checked: a limit must not trap a position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property
from typing import Protocol

from engine.dsl.tickgen import BreakerPolicy
from engine.dsl.trace import Decision
from engine.execution.fill_models import QuoteBook
from engine.risk.exposure import Cluster
from engine.risk.trading_state import (
    ACTIVE,
    HALTED,
    REDUCING,
    Command,
    RiskEvent,
    TradingState,
    step,
)  # fmt: skip
from engine.risk.whatif import Breach, Impact, LimitsCheck, Pending, order_impact, violations
from engine.runtime.intents import CLOSING, Proposal, closes_only
from engine.state.snapshot import PortfolioState, RiskState, Snapshot

__all__ = [
    "ACTIVE", "CLOSING", "HALTED", "REDUCING", "GateContext", "RiskGate", "Verdict", "WhatIf",
]  # fmt: skip

RISK_INCREASING = frozenset({"open", "roll"})


@dataclass(frozen=True)
class GateContext:
    state: str  # ACTIVE | REDUCING | HALTED
    because: tuple[str, ...]  # the limits, breakers or operator that set the state
    portfolio: PortfolioState
    flatten: bool = False  # HALTED with a flatten in force: close everything
    events: tuple[RiskEvent, ...] = ()  # this tick's risk events
    tripped: tuple[str, ...] = ()  # breakers tripped after this tick's step


class WhatIf:
    """One order seen against the portfolio as it would be after it; computed on demand."""

    def __init__(
        self,
        p: Proposal,
        view: Snapshot,
        pending: Pending,
        check: LimitsCheck | None,
        before: Callable[[], Mapping[str, Breach]],
        book: QuoteBook | None,
        committed_usd: float,
    ) -> None:
        self.p, self.view, self.pending, self.check = p, view, pending, check
        self.before, self.book = before, book
        self.margin_usd = committed_usd + p.margin_usd  # this entry and those passed before it

    @cached_property
    def impact(self) -> Impact:
        assert self.p.order is not None
        return order_impact(self.p.order, self.view, self.p.margin_usd, self.book)

    @property
    def shapes(self) -> frozenset[tuple[bool, bool]]:
        return self.check.shapes if self.check is not None else frozenset()

    @cached_property
    def after(self) -> Pending:
        return self.pending.plus(self.impact, self.shapes)

    @cached_property
    def violations(self) -> list[str]:
        if self.check is None:
            return []
        return violations(self.before(), self.check.breaches(self.view, self.after))


class Control(Protocol):
    name: str

    def validate(self, p: Proposal, ctx: GateContext, w: WhatIf) -> str | None:
        """None when `p` may go; else why not."""


class HaltedControl:
    name = "halted"

    def validate(self, p: Proposal, ctx: GateContext, w: WhatIf) -> str | None:
        assert p.order is not None
        if ctx.state == HALTED and not reduces_risk(p):
            return f"trading HALTED by {', '.join(ctx.because)}: only closing orders pass"
        return None


class ReducingControl:
    name = "reducing"

    def validate(self, p: Proposal, ctx: GateContext, w: WhatIf) -> str | None:
        assert p.order is not None
        if ctx.state == REDUCING and p.order.intent in RISK_INCREASING:
            what = "entries" if p.order.intent == "open" else "risk-increasing adjustments"
            return f"{what} blocked (REDUCING) by {', '.join(ctx.because)}"
        return None


class BuyingPowerControl:
    name = "buying_power"

    def validate(self, p: Proposal, ctx: GateContext, w: WhatIf) -> str | None:
        assert p.order is not None
        if p.order.intent != "open":
            return None
        available = ctx.portfolio.buying_power_available
        if available is None:
            return "buying power unknown: no new position (fail closed)"
        if w.margin_usd > available:
            return f"needs ${w.margin_usd:,.0f} of buying power, ${available:,.0f} available"
        return None


class WhatIfLimitsControl:
    name = "limits"

    def validate(self, p: Proposal, ctx: GateContext, w: WhatIf) -> str | None:
        assert p.order is not None
        if reduces_risk(p):
            return None
        found = w.violations
        return "; ".join(found) if found else None


def reduces_risk(p: Proposal) -> bool:
    """Exits, side closes and a hedge made smaller: these pass HALTED and every limit."""
    assert p.order is not None
    return p.order.intent in CLOSING or closes_only(p) or p.reduces_hedge


DEFAULT_CONTROLS: tuple[Control, ...] = (
    HaltedControl(), ReducingControl(), BuyingPowerControl(), WhatIfLimitsControl(),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    proposal: Proposal
    blocked: str | None  # None: passed
    control: str | None = None


@dataclass
class RiskGate:
    """The trading state across ticks, and the controls. `limits` None: no what-if check."""

    limits: LimitsCheck | None = None
    policies: Sequence[BreakerPolicy] = ()
    controls: Sequence[Control] = DEFAULT_CONTROLS
    state: TradingState = field(default_factory=TradingState)
    last: RiskState = field(default_factory=RiskState)  # what the next tick's rules read

    def context(
        self,
        decisions: Sequence[Decision],
        portfolio: PortfolioState,
        time: datetime,
        resets: Mapping[str, bool | None] | None = None,
        command: Command | None = None,
    ) -> GateContext:
        """Advance the trading state by one tick."""
        s, events = step(self.state, time, decisions, resets or {}, self.policies, command)
        self.state = s
        because = _because(s, decisions)
        return GateContext(s.state, because, portfolio, s.flatten, tuple(events),
                           tuple(sorted(s.trips)))  # fmt: skip

    def review(
        self, proposals: Sequence[Proposal], ctx: GateContext, view: Snapshot,
        book: QuoteBook | None = None, cluster: Cluster | None = None,
    ) -> list[Verdict]:  # fmt: skip
        """Each proposal's verdict. `cluster`: the account's index-cluster exposure (for the
        what-if of `portfolio.cluster_delta`); `book`: the tick's quotes, to reuse its index."""
        out = []
        check = self.limits
        # Two views of the tick so far. `strict` (for everything but hedges) counts the passed
        # orders that add risk, not the closes: the broker may still refuse a close, and an
        # entry must not use room it has not freed. `netted` (for hedges) counts the closes
        # too: the Proposer sized the hedge net of them, and checks must agree with it.
        strict = Pending(view.portfolio, check.counts(view) if check else {}, cluster)
        netted = strict
        start = strict
        # The limits before any order, evaluated once and only if an order reaches the
        # what-if control: most ticks propose nothing.
        before = cache(lambda: check.breaches(view, start) if check is not None else {})
        committed = 0.0  # buying power taken by entries and hedges passed earlier this tick
        for p in proposals:
            if p.order is None:
                out.append(Verdict(p, None))
                continue
            hedge = p.order.intent == "hedge"
            w = WhatIf(p, view, netted if hedge else strict, check, before, book, committed)
            for c in self.controls:
                why = c.validate(p, ctx, w)
                if why is not None:
                    out.append(Verdict(p, why, c.name))
                    break
            else:
                out.append(Verdict(p, None))
                same = netted is strict  # no close passed yet: one portfolio, one update
                adds = p.order.intent not in CLOSING and not closes_only(p)
                if hedge:
                    netted = w.after
                    if adds:
                        strict = netted if same else strict.plus(w.impact, w.shapes)
                elif adds:
                    strict = w.after
                    netted = strict if same else netted.plus(w.impact, w.shapes)
                else:
                    netted = netted.plus(w.impact, w.shapes)
                if adds:
                    committed += p.margin_usd
        return out

    def remember(self, ctx: GateContext, health: RiskState | None = None) -> None:
        """The state the next tick's rules read as `risk.*`."""
        base = health or RiskState()
        self.last = RiskState(
            state=ctx.state,
            breakers_tripped=ctx.tripped,
            entries_blocked=ctx.state != ACTIVE,
            orders_rejected_today=base.orders_rejected_today,
            data_age_seconds=base.data_age_seconds,
            broker_connected=base.broker_connected,
        )


def _because(s: TradingState, decisions: Sequence[Decision]) -> tuple[str, ...]:
    want = s.state
    out = {b for b, t in s.trips.items() if t.wants == want}
    out |= {d.rule_id for d in decisions if d.kind == "limit" and want == REDUCING
            and d.verb == "block_entries"}  # fmt: skip
    out |= {d.rule_id for d in decisions if d.kind == "limit" and want == HALTED
            and d.verb in ("halt", "flatten")}  # fmt: skip
    if s.operator_halt and want == HALTED:
        out.add("operator")
    if not out and want == HALTED:
        out.add("an earlier halt (held until `v6 resume`)")
    return tuple(sorted(out))
