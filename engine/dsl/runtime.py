"""evaluate(ruleset, snapshot) -> (decisions, trace): pure, deterministic, never raising on data.

Order of one tick: regime, breakers, limits, hedges, then per position the close group
(exit + take_profit, first match wins) or else the adjust group, then per underlying the entry
rules (first match wins). No clock, no I/O: time comes from the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.dsl.compiler import CompiledBlock, CondInfo
from engine.dsl.trace import ConditionTrace, Decision, Level, Operand, RuleTrace, Trace, unit_name

if TYPE_CHECKING:
    from engine.dsl.ruleset import RuleSet
    from engine.state.snapshot import Snapshot


def _empty_underlying() -> Any:
    from engine.state.snapshot import UnderlyingState

    return UnderlyingState(symbol="")


class _Tick:
    def __init__(self, rs: RuleSet, snap: Snapshot, level: Level) -> None:
        self.rs, self.snap, self.level = rs, snap, level
        self.time = snap.time.isoformat()
        self.decisions: list[Decision] = []
        self.traces: list[RuleTrace] = []
        self.market = snap.market
        self.empty_u = _empty_underlying()

    def frame(self, u: Any, p: Any) -> tuple[Any, ...]:
        s = self.snap
        return (s, self.market, u, p, s.portfolio, s.risk)

    def run(self, cb: CompiledBlock, frame: tuple[Any, ...], subject: str) -> bool:
        """Evaluate one block; record its trace; return True when it fired."""
        try:
            idx, value = cb.fast(*frame)
        except Exception as exc:  # data shaped in a way no check can foresee: unknown, not a crash
            self._record(
                cb, subject, "unknown", None, (), note=f"evaluation error: {type(exc).__name__}"
            )
            return False
        fired: bool = idx < 0
        if self.level is not Level.OFF:
            status = "fired" if fired else ("unknown" if value is None else "not_fired")
            conds = self._conditions(cb.conditions, cb.operands, frame, idx)
            lets = self._lets(cb, frame) if self.level is Level.FULL else ()
            self._record(cb, subject, status, None if fired else idx, conds, lets)
        return fired

    def _conditions(
        self, infos: Sequence[CondInfo], fns: Sequence[Any], frame: tuple[Any, ...], failed: int
    ) -> tuple[ConditionTrace, ...]:
        if self.level is Level.FAILS:
            wanted = [] if failed < 0 else [failed]
        else:
            wanted = list(range(len(infos)))
        out = []
        for i in wanted:
            info = infos[i]
            try:
                result, dist, *values = fns[i](*frame)
            except Exception:
                result, dist, values = None, None, [None] * len(info.operand_texts)
            ops = tuple(
                Operand(t, v, unit_name(ty))
                for t, v, ty in zip(info.operand_texts, values, info.operand_types, strict=True)
            )
            dist_unit = ops[0].unit if ops else ""
            out.append(
                ConditionTrace(
                    i,
                    info.text,
                    str(info.loc),
                    result,
                    ops,
                    dist if result is False else None,
                    dist_unit,
                )
            )
        return tuple(out)

    def _lets(self, cb: CompiledBlock, frame: tuple[Any, ...]) -> tuple[Operand, ...]:
        if not cb.let_names:
            return ()
        try:
            values = cb.lets(*frame)
        except Exception:
            values = (None,) * len(cb.let_names)
        return tuple(
            Operand(n, v, unit_name(t))
            for n, v, t in zip(cb.let_names, values, cb.let_types, strict=True)
        )

    def _record(
        self,
        cb: CompiledBlock,
        subject: str,
        status: str,
        failed: int | None,
        conds: tuple[ConditionTrace, ...],
        lets: tuple[Operand, ...] = (),
        note: str | None = None,
    ) -> None:
        if self.level is Level.OFF:
            return
        b = cb.block
        self.traces.append(
            RuleTrace(
                b.id,
                b.kind,
                b.phase or b.kind,
                subject,
                status,
                str(b.loc),
                failed,
                conds,
                lets,
                note,
            )
        )

    def skip(self, cb: CompiledBlock, subject: str, why: str) -> None:
        self._record(cb, subject, "skipped", None, (), note=why)

    def decide(
        self, cb: CompiledBlock, frame: tuple[Any, ...], symbol: str | None, position: str | None
    ) -> None:
        b = cb.block
        try:
            arg_values = cb.args(*frame)
        except Exception:
            arg_values = tuple((None,) * len(names) for names in cb.arg_names)
        for action, names, values, types in zip(
            b.actions, cb.arg_names, arg_values, cb.arg_types, strict=True
        ):
            self.decisions.append(
                Decision(
                    time=self.time,
                    ruleset=self.rs.hash,
                    rule_id=b.id,
                    kind=b.kind,
                    phase=b.phase or b.kind,
                    verb=action.verb,
                    target=action.target,
                    args=tuple(zip(names, values, strict=True)),
                    arg_units=tuple(unit_name(t) for t in types),
                    symbol=symbol,
                    position_id=position,
                    reason=b.reason or b.title,
                    priority=b.priority,
                    location=str(b.loc),
                )
            )


def evaluate(
    rs: RuleSet, snap: Snapshot, level: Level = Level.OFF
) -> tuple[tuple[Decision, ...], Trace | None]:
    """Evaluate a rule set against one snapshot. Pure: same inputs, same outputs."""
    t = _Tick(rs, snap, level)
    regime_source = "snapshot"
    if t.market.regime is None:
        regime_source = "unknown"
        for i, cb in enumerate(rs.regimes):
            if t.run(cb, t.frame(t.empty_u, None), "market"):
                t.market = replace(t.market, regime=cb.block.id)
                regime_source = "policy"
                for later in rs.regimes[i + 1 :]:
                    t.skip(later, "market", f"regime '{cb.id}' matched first")
                break
    portfolio_frame = t.frame(t.empty_u, None)
    for cb in (*rs.breakers, *rs.limits, *rs.hedges):
        fired = t.run(cb, portfolio_frame, "portfolio")
        # A limit's check holding is the good case: it is the breach that acts.
        acts = (not fired) if cb.block.kind == "limit" else fired
        if acts:
            t.decide(cb, portfolio_frame, None, None)
    for pos in sorted(snap.positions, key=lambda p: p.id):
        u = snap.underlyings.get(pos.symbol) or t.empty_u
        frame = t.frame(u, pos)
        closed = _first_match(t, rs.closes, frame, pos.id, pos.symbol, pos.id)
        if closed:
            for cb in rs.adjusts:
                t.skip(cb, pos.id, "position is being closed")
        else:
            _first_match(t, rs.adjusts, frame, pos.id, pos.symbol, pos.id)
    for symbol in sorted(snap.underlyings):
        frame = t.frame(snap.underlyings[symbol], None)
        eligible = [
            cb for cb in rs.entries if cb.block.symbols is None or symbol in cb.block.symbols
        ]
        _first_match(t, eligible, frame, symbol, symbol, None)
    trace = None
    if level is not Level.OFF:
        trace = Trace(t.time, rs.hash, level, t.market.regime, regime_source, tuple(t.traces))
    return tuple(t.decisions), trace


def _first_match(
    t: _Tick,
    blocks: Sequence[CompiledBlock],
    frame: tuple[Any, ...],
    subject: str,
    symbol: str | None,
    position: str | None,
) -> bool:
    for i, cb in enumerate(blocks):
        if t.run(cb, frame, subject):
            t.decide(cb, frame, symbol, position)
            for later in blocks[i + 1 :]:
                t.skip(later, subject, f"'{cb.id}' matched first")
            return True
    return False
