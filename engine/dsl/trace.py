"""Decisions and explain traces: what the rules decided, and why.

Decisions are light tuples pointing at static, compile-time action info. A trace keeps the
compact records the generated code writes during evaluation (every value it saw) and builds
its per-rule objects only when someone reads them, so explain costs little per tick.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any, NamedTuple

from engine.dsl.types import Ty, Unit


class Level(str, Enum):
    """How much an evaluation records: nothing, the first failing condition, or everything."""

    OFF = "off"
    FAILS = "fails"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """Everything about one action of one rule that is known at compile time."""

    rule_id: str
    kind: str  # rule | limit | breaker | hedge
    phase: str
    verb: str
    target: str | None
    arg_names: tuple[str, ...]
    arg_units: tuple[str, ...]
    reason: str | None
    priority: int
    location: str


class Decision(NamedTuple):
    """One action a rule asks for. The risk gate and execution decide what happens to it."""

    time: datetime
    ruleset: str  # content hash of the rule set
    info: ActionInfo
    args: tuple[tuple[str, Any], ...]
    symbol: str | None
    position_id: str | None

    @property
    def rule_id(self) -> str:
        return self.info.rule_id

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def phase(self) -> str:
        return self.info.phase

    @property
    def verb(self) -> str:
        return self.info.verb

    @property
    def target(self) -> str | None:
        return self.info.target

    @property
    def reason(self) -> str | None:
        return self.info.reason

    @property
    def priority(self) -> int:
        return self.info.priority

    @property
    def location(self) -> str:
        return self.info.location

    def action(self) -> str:
        """The action with its arguments: `open iron_condor(short_delta=0.16, …)`."""
        args = ", ".join(
            f"{k}={fmt_value(v, u)}"
            for (k, v), u in zip(self.args, self.info.arg_units, strict=False)
        )
        return f"{self.verb}{' ' + self.target if self.target else ''}{f'({args})' if args else ''}"

    def describe(self) -> str:
        subject = self.position_id or self.symbol or "portfolio"
        return f"{self.rule_id} [{self.phase}] {self.action()} on {subject}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "ruleset": self.ruleset,
            **{k: v for k, v in asdict(self.info).items() if k not in ("arg_names", "arg_units")},
            "args": {k: v for k, v in self.args},
            "symbol": self.symbol,
            "position_id": self.position_id,
        }


class Operand(NamedTuple):
    text: str
    value: Any
    unit: str  # a unit name, or the kind of value (bool, text, enum name)

    def shown(self) -> str:
        return fmt_value(self.value, self.unit)


class ConditionTrace(NamedTuple):
    number: int  # position in the rule's `when` block, from 0
    text: str
    location: str
    result: bool | None  # None: unknown
    operands: tuple[Operand, ...]
    distance: float | None = None  # for a failed numeric comparison: how far from holding
    distance_unit: str = ""


class RuleTrace(NamedTuple):
    rule_id: str
    kind: str
    phase: str
    subject: str  # symbol, position id, "portfolio" or "market"
    status: str  # fired | not_fired | unknown | skipped
    location: str
    failed_index: int | None
    conditions: tuple[ConditionTrace, ...]
    lets: tuple[Operand, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CondInfo:
    """Static facts about one condition, for building its trace."""

    index: int
    text: str
    location: str
    operand_texts: tuple[str, ...]
    operand_units: tuple[str, ...]
    # For a numeric comparison (chained too: `a <= x <= b`): where each compared value comes
    # from, an operand index or a constant, and the comparators between them, so the distance
    # to threshold is derived only when a trace is read.
    sides: tuple[tuple[str, Any], ...] | None = None
    comparators: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """Static facts about one compiled block (rule, limit, breaker, hedge or regime)."""

    id: str
    kind: str
    phase: str
    location: str
    file: str
    priority: int
    symbols: tuple[str, ...] | None
    conditions: tuple[CondInfo, ...]
    let_names: tuple[str, ...]
    let_units: tuple[str, ...]


class Trace:
    """What one evaluation saw. `rules` is built from the raw records on first access."""

    def __init__(
        self,
        time: datetime,
        ruleset: str,
        level: Level,
        regime: str | None,
        regime_source: str,
        blocks: Sequence[BlockInfo],
        records: list[tuple[Any, ...]],
    ) -> None:
        self.time, self.ruleset, self.level = time, ruleset, level
        self.regime, self.regime_source = regime, regime_source
        self._blocks, self.records = blocks, records

    @cached_property
    def rules(self) -> tuple[RuleTrace, ...]:
        return tuple(_rule_trace(self._blocks[r[1]], r, self.level) for r in self.records)

    def rule(self, record: tuple[Any, ...]) -> RuleTrace:
        """The trace of one of `records`: for readers that cache by record (the journal)."""
        return _rule_trace(self._blocks[record[1]], record, self.level)

    def block_of(self, record: tuple[Any, ...]) -> BlockInfo:
        block: BlockInfo = self._blocks[record[1]]
        return block

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "ruleset": self.ruleset,
            "level": self.level.value,
            "regime": self.regime,
            "regime_source": self.regime_source,
            "rules": [_plain(r) for r in self.rules],
        }


def _plain(x: Any) -> Any:
    """NamedTuples (nested) as plain dicts and lists, for JSON."""
    if hasattr(x, "_asdict"):
        return {k: _plain(v) for k, v in x._asdict().items()}
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    return x


def rule_trace(b: BlockInfo, rec: tuple[Any, ...], level: Level) -> RuleTrace:
    """The trace of one raw record of block `b` (for readers without a `Trace`)."""
    return _rule_trace(b, rec, level)


def _rule_trace(b: BlockInfo, rec: tuple[Any, ...], level: Level) -> RuleTrace:
    tag, _, subject = rec[0], rec[1], rec[2]
    if tag != "e":
        status = "skipped" if tag == "s" else "unknown"
        note = rec[3] if tag == "s" else f"evaluation error: {rec[3]}"
        return RuleTrace(b.id, b.kind, b.phase, subject, status, b.location, None, (), (), note)
    results, operands, lets = rec[3], rec[4], rec[5]
    failed = next((i for i, r in enumerate(results) if r is not True), None)
    status = "fired" if failed is None else ("unknown" if results[failed] is None else "not_fired")
    wanted = range(len(results)) if level is Level.FULL else ([] if failed is None else [failed])
    conds = []
    for i in wanted:
        info = b.conditions[i]
        ops = tuple(
            Operand(t, v, u)
            for t, v, u in zip(info.operand_texts, operands[i], info.operand_units, strict=True)
        )
        dist = distance(info, operands[i]) if results[i] is False else None
        conds.append(
            ConditionTrace(
                i,
                info.text,
                info.location,
                results[i],
                ops,
                dist,
                info.operand_units[0] if info.operand_units else "",
            )
        )
    let_ops: tuple[Operand, ...] = ()
    if level is Level.FULL:
        let_ops = tuple(
            Operand(n, v, u) for n, v, u in zip(b.let_names, lets, b.let_units, strict=True)
        )
    return RuleTrace(
        b.id, b.kind, b.phase, subject, status, b.location, failed, tuple(conds), let_ops
    )


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def distance(info: CondInfo, values: Sequence[Any]) -> float | None:
    """How far a failed comparison is from holding: right minus left of its first failing
    pair (`a <= x <= b` with x above b: b - x, negative)."""
    if info.sides is None:
        return None
    side = [values[ref] if kind == "op" else ref for kind, ref in info.sides]
    if not all(isinstance(v, float | int) and not isinstance(v, bool) for v in side):
        return None
    for op, a, b in zip(info.comparators, side, side[1:], strict=False):
        if not _COMPARE[op](a, b):
            return float(b) - float(a)
    return float(side[1]) - float(side[0]) if len(side) == 2 else None


def unit_name(t: Ty) -> str:
    if t.kind == "num":
        if t.usd_literal:
            return Unit.MONEY.value
        return (t.unit or Unit.NUMBER).value
    return t.enum or t.kind


def fmt_value(v: Any, unit: str = "") -> str:
    """A value as a trader reads it: 42%, $1,250.00, 45d; unknown for missing data."""
    if v is None:
        return "unknown"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float | int):
        x = float(v)
        if math.isnan(x):
            return "unknown"
        if unit == "percent":
            return f"{x * 100:.4g}%"
        if unit in ("money", "price"):
            sign = "-" if x < 0 else ""
            return f"{sign}${abs(x):,.2f}"
        if unit == "days":
            return f"{x:g}d"
        return f"{x:.6g}"
    return str(v)
