"""One engine step: settle, mark, evaluate the rules, propose, gate, execute, book.

`Engine.step(snapshot)` is the whole tick, the same for a dry run and for live trading; only
the feed that supplies snapshots, and the broker, differ. The rules stay pure: the engine gives
them a view of the market snapshot with the book's positions, the account and the risk state
filled in, and acts on the decisions they return.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from engine.dsl.ruleset import RuleSet
from engine.dsl.runtime import TickContext, evaluate
from engine.dsl.trace import Decision, Level, Trace
from engine.execution.fill_models import QuoteBook
from engine.execution.orders import AssignmentRisk, Order, OrderResult, Settlement
from engine.portfolio.account import AccountView, MarginFn, account_view
from engine.portfolio.book import Book, Closed, PositionMark, to_position
from engine.risk.commands import CommandSource, NoCommands
from engine.risk.gate import GateContext, Verdict
from engine.risk.health import Health
from engine.runtime.intents import MaxLossFn, Sizing
from engine.runtime.order_flow import OrderFlow, build_order_flow
from engine.state.snapshot import RiskState, Snapshot


class ExecutingBroker(Protocol):
    """The broker as the engine uses it (engine.execution.orders.Broker plus settlement)."""

    def execute(self, orders: Sequence[Order], snap: Snapshot) -> list[OrderResult]: ...

    def settle(self, snap: Snapshot) -> tuple[list[Settlement], list[AssignmentRisk]]: ...

    def describe(self) -> dict[str, Any]: ...

    @property
    def connected(self) -> bool: ...


@dataclass(frozen=True)
class EngineConfig:
    initial_cash: float = 100_000.0  # USD
    sizing: Sizing = field(default_factory=Sizing)
    trace: Level = Level.FAILS

    def describe(self) -> dict[str, Any]:
        return {
            "initial_cash": self.initial_cash,
            "sizing": self.sizing.describe(),
            "trace_level": self.trace.value,
        }


@dataclass(frozen=True)
class TickResult:
    """Everything one tick did, for the journal and the dashboard."""

    time: datetime
    view: Snapshot  # what the rules saw
    decisions: tuple[Decision, ...]
    trace: Trace | None
    gate: GateContext
    verdicts: tuple[Verdict, ...]
    results: dict[str, OrderResult]  # by order id
    settlements: tuple[Settlement, ...]
    assignment_risks: tuple[AssignmentRisk, ...]
    closed: tuple[Closed, ...]
    marks: tuple[PositionMark, ...]  # after trading
    account: AccountView  # after trading
    regime: str | None


Clock = Callable[[], float]


class Engine:
    """One rule set trading one account through one broker."""

    def __init__(
        self,
        ruleset: RuleSet,
        broker: ExecutingBroker,
        margin: MarginFn,
        max_loss: MaxLossFn,
        config: EngineConfig | None = None,
        commands: CommandSource | None = None,
        clock: Clock = _time.perf_counter,
    ) -> None:
        self.rs, self.broker, self.margin = ruleset, broker, margin
        self.config = config or EngineConfig()
        self.book = Book(self.config.initial_cash)
        self.flow: OrderFlow = build_order_flow(ruleset, self.config.sizing, max_loss)
        self.commands: CommandSource = commands or NoCommands()
        self.health = Health()
        # Wall-clock split for the benchmark and the run summary; never read by trading logic.
        self.seconds = {"book": 0.0, "rules": 0.0, "broker": 0.0}
        self._clock = clock

    def step(self, snap: Snapshot) -> TickResult:
        t0 = self._clock()
        command = self.commands.poll(snap.time)
        self.book.begin_tick(snap.time)
        settlements, risks = self.broker.settle(snap)
        closed = [c for s in settlements if (c := self.book.apply_settlement(s)) is not None]
        marks = self.book.mark(snap)
        self.book.update_high_water(marks)
        before = account_view(self.book, marks, snap, self.margin)
        health = RiskState(
            orders_rejected_today=self.health.rejects_so_far(snap.time),
            data_age_seconds=self.health.data_age(snap, (m.held.symbol for m in marks)),
            broker_connected=self.broker.connected,
        )
        # The state is the previous tick's; the health signals are this tick's.
        risk = replace(
            self.flow.gate.last,
            orders_rejected_today=health.orders_rejected_today,
            data_age_seconds=health.data_age_seconds,
            broker_connected=health.broker_connected,
        )
        view = replace(
            snap,
            positions=tuple(to_position(m, snap.time) for m in marks if not m.held.is_hedge),
            portfolio=before.portfolio,
            risk=risk,
        )
        t1 = self._clock()
        decisions, trace = evaluate(self.rs, view, self.config.trace)
        # The regime policies' verdict is in the trace; without one only a given regime is known.
        regime = trace.regime if trace is not None else view.market.regime
        resets = self._resets(view)
        t2 = self._clock()
        by_id = {m.held.id: m for m in marks}
        flow = self.flow.run(decisions, view, before.portfolio, self.book, by_id, regime, resets,
                             command, QuoteBook(view), before.cluster)  # fmt: skip
        t3 = self._clock()
        results = {r.order.id: r for r in self.broker.execute(flow.orders, snap)}
        t4 = self._clock()
        entries = {v.proposal.order.id: v.proposal.entry for v in flow.verdicts if v.proposal.order}
        traded = False
        for r in results.values():
            if r.fill is not None and r.fill.quantity > 0:
                traded = True
                c = self.book.apply_fill(r.order, r.fill, **entries.get(r.order.id, {}))
                if c is not None:
                    closed.append(c)
        # Re-valued only when a fill changed the book; otherwise the marks above still hold.
        after_marks = self.book.mark(snap) if traded else marks
        after = account_view(self.book, after_marks, snap, self.margin) if traded else before
        self.book.end_tick(after.net_liq)
        self.health.count_rejects(snap.time, results.values())
        self.flow.gate.remember(flow.ctx, health)
        t5 = self._clock()
        self.seconds["book"] += (t1 - t0) + (t5 - t4)
        self.seconds["rules"] += (t2 - t1) + (t3 - t2)
        self.seconds["broker"] += t4 - t3
        return TickResult(
            snap.time, view, decisions, trace, flow.ctx, flow.verdicts, results,
            tuple(settlements), tuple(risks), tuple(closed), tuple(after_marks), after, regime,
        )  # fmt: skip

    def _resets(self, view: Snapshot) -> dict[str, bool | None]:
        """The breakers' reset conditions, evaluated only while a breaker is tripped."""
        if not self.flow.gate.state.trips:
            return {}
        return self.rs.compiled.resets(view, TickContext(self.rs, view))
