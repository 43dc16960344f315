"""evaluate(ruleset, snapshot) -> (decisions, trace): pure, deterministic, never raising on data.

Order of one tick: regime, breakers, limits, hedges; then per position (by id) the close group
(exit and take_profit, first match wins) or else the adjust group; then per underlying (by
symbol) the entry rules, first match wins. No clock, no I/O: time comes from the snapshot. The
order itself lives in the generated tick function (engine/dsl/tickgen.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from engine.dsl.trace import Decision, Level, Trace

if TYPE_CHECKING:
    from engine.dsl.ruleset import RuleSet
    from engine.state.snapshot import Snapshot

_BY_ID = attrgetter("id")


@cache
def empty_underlying() -> Any:
    from engine.state.snapshot import UnderlyingState

    return UnderlyingState(symbol="")


Counts = dict[tuple[str | None, str | None], int]


def position_counts(
    positions: Iterable[tuple[str | None, str]],
    shapes: Iterable[tuple[bool, bool]],
    into: Counts | None = None,
) -> Counts:
    """Open positions by (strategy, symbol) for each shape the rules read (`count_positions`,
    `has_position`): a shape keeps the strategy, the symbol, both or neither. `positions` are
    (strategy, symbol) pairs; counts are added to `into` when given."""
    counts: Counts = {} if into is None else into
    shapes = tuple(shapes)
    for strategy, symbol in positions:
        for by_strategy, by_symbol in shapes:
            key = (strategy if by_strategy else None, symbol if by_symbol else None)
            counts[key] = counts.get(key, 0) + 1
    return counts


class TickContext:
    """Per-tick facts the generated code reads besides the snapshot: the regime as decided so
    far, position counts by (strategy, symbol), and the iteration orders."""

    __slots__ = (
        "counts",
        "empty_u",
        "hash",
        "positions",
        "regime",
        "regime_source",
        "symbols",
        "time",
    )

    def __init__(self, rs: RuleSet, snap: Snapshot) -> None:
        self.time = snap.time
        self.hash = rs.hash
        self.regime: str | None = snap.market.regime
        self.regime_source = "snapshot" if self.regime is not None else "unknown"
        pairs = ((p.strategy, p.symbol) for p in snap.positions)
        self.counts = position_counts(pairs, rs.compiled.count_keys)
        self.positions = sorted(snap.positions, key=_BY_ID)
        self.symbols = sorted(snap.underlyings)
        self.empty_u = empty_underlying()


def evaluate(
    rs: RuleSet, snap: Snapshot, level: Level = Level.OFF
) -> tuple[tuple[Decision, ...], Trace | None]:
    """Evaluate a rule set against one snapshot. Pure: same inputs, same outputs."""
    x = TickContext(rs, snap)
    if level is Level.OFF:
        return tuple(rs.compiled.tick_off(snap, x)), None
    records: list[tuple[Any, ...]] = []
    decisions = rs.compiled.tick_traced(snap, x, records.append)
    trace = Trace(snap.time, rs.hash, level, x.regime, x.regime_source, rs.compiled.blocks, records)
    return tuple(decisions), trace
