"""Decisions and explain traces: what the rules decided, and why — plain frozen values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from engine.dsl.types import Ty, Unit


class Level(str, Enum):
    """How much an evaluation records: nothing, the first failing condition, or everything."""

    OFF = "off"
    FAILS = "fails"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class Decision:
    """One action a rule asks for. The risk gate and execution decide what happens to it."""

    time: str
    ruleset: str  # content hash of the rule set
    rule_id: str
    kind: str  # rule | limit | breaker | hedge
    phase: str
    verb: str
    target: str | None
    args: tuple[tuple[str, Any], ...]
    arg_units: tuple[str, ...]
    symbol: str | None
    position_id: str | None
    reason: str | None
    priority: int
    location: str

    def describe(self) -> str:
        args = ", ".join(
            f"{k}={fmt_value(v, u)}" for (k, v), u in zip(self.args, self.arg_units, strict=False)
        )
        what = f"{self.verb}{' ' + self.target if self.target else ''}{f'({args})' if args else ''}"
        subject = self.position_id or self.symbol or "portfolio"
        return f"{self.rule_id} [{self.phase}] {what} on {subject}"


@dataclass(frozen=True, slots=True)
class Operand:
    text: str
    value: Any
    unit: str  # a unit name, or the kind of value (bool, text, enum name)

    def shown(self) -> str:
        return fmt_value(self.value, self.unit)


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    index: int
    text: str
    location: str
    result: bool | None  # None: unknown
    operands: tuple[Operand, ...]
    distance: float | None = None  # for a failed numeric comparison: how far from holding
    distance_unit: str = ""


@dataclass(frozen=True, slots=True)
class RuleTrace:
    rule_id: str
    kind: str
    phase: str
    subject: str  # symbol, position id, or "portfolio"
    status: str  # fired | not_fired | unknown | skipped
    location: str
    failed_index: int | None
    conditions: tuple[ConditionTrace, ...]
    lets: tuple[Operand, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    time: str
    ruleset: str
    level: Level
    regime: str | None
    regime_source: str  # snapshot | policy | unknown
    rules: tuple[RuleTrace, ...]


def unit_name(t: Ty) -> str:
    if t.kind == "num":
        if t.usd_literal:
            return Unit.MONEY.value
        return (t.unit or Unit.NUMBER).value
    return t.enum or t.kind


def fmt_value(v: Any, unit: str = "") -> str:
    """A value as a trader reads it: 42.0%, $1,250.00, 45d; unknown for missing data."""
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
        if unit in ("money", "price", "dollars"):
            sign = "-" if x < 0 else ""
            return f"{sign}${abs(x):,.2f}"
        if unit == "days":
            return f"{x:g}d"
        return f"{x:.6g}"
    return str(v)
