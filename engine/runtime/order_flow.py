"""From a tick's decisions to the orders that may be sent: one path, built by one factory.

candidate (a rule's decision) → legs and size (Proposer) → trading state (the state machine,
with breaker resets and operator commands) → every control of the risk gate, the what-if
limits check last → orders. `build_order_flow` is the only constructor the engine uses, so no
caller can send an order that skipped a check: the broker receives `FlowResult.orders` and
nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.dsl.ruleset import RuleSet
from engine.dsl.trace import ActionInfo, Decision
from engine.execution.fill_models import QuoteBook
from engine.execution.orders import Order
from engine.portfolio.book import Book, PositionMark
from engine.risk.exposure import Cluster
from engine.risk.gate import DEFAULT_CONTROLS, Control, GateContext, RiskGate, Verdict
from engine.risk.trading_state import Command
from engine.risk.whatif import LimitsCheck
from engine.runtime.intents import MaxLossFn, Proposer, Sizing
from engine.state.snapshot import PortfolioState, Snapshot

OPERATOR = "operator"
_FLATTEN = ActionInfo(OPERATOR, "breaker", "breaker", "flatten", None, (), (),
                      "operator flatten: close every position", 0, "operator")  # fmt: skip


@dataclass(frozen=True)
class FlowResult:
    ctx: GateContext
    verdicts: tuple[Verdict, ...]

    @property
    def orders(self) -> list[Order]:
        return [v.proposal.order for v in self.verdicts if v.blocked is None and v.proposal.order]


class OrderFlow:
    def __init__(self, proposer: Proposer, gate: RiskGate, ruleset_hash: str) -> None:
        self._proposer, self.gate, self._hash = proposer, gate, ruleset_hash

    def run(
        self,
        decisions: Sequence[Decision],
        view: Snapshot,
        portfolio: PortfolioState,
        book: Book,
        marks: dict[str, PositionMark],
        regime: str | None,
        resets: Mapping[str, bool | None],
        command: Command | None = None,
        quotes: QuoteBook | None = None,
        cluster: Cluster | None = None,
    ) -> FlowResult:
        ctx = self.gate.context(decisions, portfolio, view.time, resets, command)
        acting = list(decisions)
        if ctx.flatten and book.positions and not any(d.verb == "flatten" for d in decisions):
            # A flatten in force closes whatever is still open, tick after tick.
            acting.append(Decision(view.time, self._hash, _FLATTEN, (), None, None))
        proposals = self._proposer.propose(acting, view, book, marks, regime)
        verdicts = self.gate.review(proposals, ctx, view, quotes, cluster)
        return FlowResult(ctx, tuple(verdicts))


def build_order_flow(
    rs: RuleSet,
    sizing: Sizing,
    max_loss: MaxLossFn,
    controls: Sequence[Control] = DEFAULT_CONTROLS,
) -> OrderFlow:
    """The proposer and the risk gate of `rs`: its limits (what-if) and breaker policies."""
    gate = RiskGate(LimitsCheck(rs), rs.compiled.breaker_policies, tuple(controls))
    return OrderFlow(Proposer(rs, sizing, max_loss), gate, rs.hash)
