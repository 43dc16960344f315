"""The risk gate: every proposed order passes its controls before it reaches the broker.

Trading state for the tick comes from the limit and breaker decisions that fired: `halt` or
`flatten` make it HALTED (only closing orders pass), `block_entries` makes it REDUCING (no
entries, no risk-increasing adjustments; exits and hedges pass), otherwise ACTIVE. Controls are
small classes with one `validate` method returning None or a message that explains the
violation (after zipline's trading controls). The risk issue extends this module with a
persistent state machine, cooldowns and the what-if limits check; callers do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.dsl.trace import Decision
from engine.runtime.intents import Proposal
from engine.state.snapshot import PortfolioState, RiskState

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
CLOSING = frozenset({"close", "reduce", "flatten"})
RISK_INCREASING = frozenset({"open", "roll"})


@dataclass(frozen=True, slots=True)
class GateContext:
    state: str  # ACTIVE | REDUCING | HALTED
    because: tuple[str, ...]  # the limits and breakers that set the state
    portfolio: PortfolioState


class Control(Protocol):
    name: str

    def validate(self, p: Proposal, ctx: GateContext, margin_usd: float) -> str | None:
        """None when `p` may go; else why not. `margin_usd`: buying power this order and the
        entries passed before it this tick need."""


class HaltedControl:
    name = "halted"

    def validate(self, p: Proposal, ctx: GateContext, margin_usd: float) -> str | None:
        assert p.order is not None
        if ctx.state == HALTED and p.order.intent not in CLOSING and not _closes_only(p):
            return f"trading HALTED by {', '.join(ctx.because)}: only closing orders pass"
        return None


class ReducingControl:
    name = "reducing"

    def validate(self, p: Proposal, ctx: GateContext, margin_usd: float) -> str | None:
        assert p.order is not None
        if ctx.state == REDUCING and p.order.intent in RISK_INCREASING:
            what = "entries" if p.order.intent == "open" else "risk-increasing adjustments"
            return f"{what} blocked (REDUCING) by {', '.join(ctx.because)}"
        return None


class BuyingPowerControl:
    name = "buying_power"

    def validate(self, p: Proposal, ctx: GateContext, margin_usd: float) -> str | None:
        assert p.order is not None
        if p.order.intent != "open":
            return None
        available = ctx.portfolio.buying_power_available
        if available is None:
            return "buying power unknown: no new position (fail closed)"
        if margin_usd > available:
            return f"needs ${margin_usd:,.0f} of buying power, ${available:,.0f} available"
        return None


def _closes_only(p: Proposal) -> bool:
    """An adjustment that only closes legs (close_tested) reduces risk."""
    return (
        p.order is not None
        and p.order.intent == "adjust"
        and all(leg.ratio != 0 for leg in p.order.legs)
        and p.decision is not None
        and p.decision.target == "close_tested"
    )


DEFAULT_CONTROLS: tuple[Control, ...] = (HaltedControl(), ReducingControl(), BuyingPowerControl())


@dataclass(frozen=True, slots=True)
class Verdict:
    proposal: Proposal
    blocked: str | None  # None: passed
    control: str | None = None


class RiskGate:
    """Decides the tick's trading state and passes or blocks each proposal."""

    def __init__(self, controls: Sequence[Control] = DEFAULT_CONTROLS) -> None:
        self.controls = tuple(controls)
        self.last = RiskState()

    def context(self, decisions: Sequence[Decision], portfolio: PortfolioState) -> GateContext:
        halting = sorted({d.rule_id for d in decisions if d.verb in ("halt", "flatten")})
        blocking = sorted({d.rule_id for d in decisions if d.verb == "block_entries"})
        if halting:
            return GateContext(HALTED, tuple(halting), portfolio)
        if blocking:
            return GateContext(REDUCING, tuple(blocking), portfolio)
        return GateContext(ACTIVE, (), portfolio)

    def review(
        self, proposals: Sequence[Proposal], ctx: GateContext, margins: Sequence[float]
    ) -> list[Verdict]:
        out = []
        committed = 0.0  # buying power taken by entries passed earlier this tick
        for p, margin in zip(proposals, margins, strict=True):
            if p.order is None:
                out.append(Verdict(p, None))
                continue
            for c in self.controls:
                why = c.validate(p, ctx, committed + margin)
                if why is not None:
                    out.append(Verdict(p, why, c.name))
                    break
            else:
                out.append(Verdict(p, None))
                if p.order.intent == "open":
                    committed += margin
        return out

    def remember(self, ctx: GateContext, tripped: Sequence[str]) -> None:
        """The state the next tick's rules read as `risk.*`."""
        self.last = RiskState(
            state=ctx.state,
            breakers_tripped=tuple(tripped),
            entries_blocked=ctx.state != ACTIVE,
        )
