"""Value types and units of the rule language, and the algebra that checks them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Unit(str, Enum):
    """Units a numeric value can carry. Percent values are stored as fractions (50% = 0.5)."""

    PERCENT = "percent"
    MONEY = "money"  # USD amounts: P&L, net liq, max loss
    PRICE = "price"  # USD per share: strikes, premiums, underlying prices
    DAYS = "days"
    DELTA = "delta"  # option delta, or share-equivalent delta for positions
    RATIO = "ratio"  # dimensionless quotient, e.g. VIX / VIX3M
    NUMBER = "number"  # a bare literal or a plain quantity
    COUNT = "count"
    LEVEL = "level"  # an index level: VIX, SKEW


# Units a bare number literal (no %, $ or d) may stand for without ambiguity. "50" against a
# percent could mean 50% or 0.5%, so the checker makes the trader write the unit there.
BARE_NUMBER_OK = frozenset({Unit.NUMBER, Unit.RATIO, Unit.DELTA, Unit.COUNT, Unit.LEVEL})
# Quotients of like quantities, and percentages, are all dimensionless fractions.
FRACTIONS = frozenset({Unit.PERCENT, Unit.RATIO})
SCALARS = frozenset({Unit.NUMBER, Unit.RATIO, Unit.COUNT, Unit.PERCENT})

LITERAL_HINT = {
    Unit.PERCENT: "write the unit, e.g. 50%",
    Unit.MONEY: "write the unit, e.g. $500",
    Unit.PRICE: "write the unit, e.g. $5",
    Unit.DAYS: "write the unit, e.g. 45d",
}


@dataclass(frozen=True, slots=True)
class Ty:
    """A value type: a number with a unit, a boolean, text, a member of an enum, or unknown.

    `usd_literal` marks a `$5` literal, which adapts to money or price from context;
    `bare` marks a number literal without unit.
    """

    kind: str  # "num" | "bool" | "text" | "enum" | "unknown"
    unit: Unit | None = None
    enum: str | None = None
    usd_literal: bool = False
    bare: bool = False

    def __str__(self) -> str:
        if self.kind == "num":
            if self.usd_literal:
                return "dollars"
            return "number" if self.bare else str(self.unit.value if self.unit else "number")
        if self.kind == "enum":
            return f"{self.enum}"
        return self.kind


BOOL = Ty("bool")
TEXT = Ty("text")
UNKNOWN = Ty("unknown")
SYMBOL = Ty("enum", enum="symbol")
STRATEGY = Ty("enum", enum="strategy")
USD_LITERAL = Ty("num", Unit.MONEY, usd_literal=True)
BARE = Ty("num", Unit.NUMBER, bare=True)


def num(unit: Unit) -> Ty:
    return Ty("num", unit)


def enum(name: str) -> Ty:
    return Ty("enum", enum=name)


class UnitError(Exception):
    """A unit clash; the message says what met what, the hint how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def unify(a: Ty, b: Ty) -> Ty:
    """The common type of two operands that are compared or added; raises UnitError."""
    if a.kind == "unknown":
        return b
    if b.kind == "unknown":
        return a
    if a.kind != b.kind:
        raise UnitError(f"cannot combine {a} with {b}")
    if a.kind == "enum":
        if a.enum != b.enum:
            raise UnitError(f"cannot compare {a.enum} with {b.enum}")
        return a
    if a.kind != "num":
        return a
    return _unify_units(a, b)


def _unify_units(a: Ty, b: Ty) -> Ty:
    if a.usd_literal and b.usd_literal:
        return a
    if a.usd_literal or b.usd_literal:
        other = b if a.usd_literal else a
        if other.unit in (Unit.MONEY, Unit.PRICE):
            return num(other.unit)
        raise UnitError(f"cannot combine dollars with {other}", _literal_hint(other))
    if a.bare and b.bare:
        return a
    if a.bare or b.bare:
        other = b if a.bare else a
        assert other.unit is not None
        if other.unit in BARE_NUMBER_OK:
            return other
        raise UnitError(f"cannot combine {other} with a plain number", LITERAL_HINT.get(other.unit))
    if a.unit == b.unit:
        return a
    if a.unit in FRACTIONS and b.unit in FRACTIONS:
        return num(Unit.PERCENT)
    if {a.unit, b.unit} <= {Unit.NUMBER, Unit.COUNT}:
        return num(Unit.NUMBER)
    raise UnitError(f"cannot combine {a} with {b}")


def _literal_hint(ty: Ty) -> str | None:
    return LITERAL_HINT.get(ty.unit) if ty.unit else None


def arith(op: str, a: Ty, b: Ty) -> Ty:
    """Result type of a + b, a - b, a * b, a / b; raises UnitError."""
    for t in (a, b):
        if t.kind not in ("num", "unknown"):
            raise UnitError(f"'{op}' needs numbers, not {t}")
    if a.kind == "unknown" or b.kind == "unknown":
        return b if a.kind == "unknown" else a
    if op in "+-":
        return unify(a, b)
    if op == "*":
        if _is_scalar(a):
            return b if not b.bare else a
        if _is_scalar(b):
            return a
        raise UnitError(f"cannot multiply {a} by {b}", "one side must be a plain number or percent")
    # division
    if _is_scalar(b) and not (a.unit in FRACTIONS and b.unit == Unit.PERCENT and not b.bare):
        return a
    try:
        unify(a, b)
    except UnitError:
        raise UnitError(f"cannot divide {a} by {b}") from None
    return num(Unit.RATIO)


def _is_scalar(t: Ty) -> bool:
    return t.bare or (t.unit in SCALARS and not t.usd_literal)


def convert_to(t: Ty, target: Ty) -> None:
    """Check a value of type t may be used where `target` is declared (argument, param)."""
    if target.kind == "num" and t.kind == "num":
        unify(t, target)
        exact = t.bare or t.usd_literal or t.unit == target.unit
        if not exact and not (t.unit in FRACTIONS and target.unit in FRACTIONS):
            raise UnitError(f"expected {target}, got {t}")
        return
    if target.kind == "enum" and t.kind == "enum" and target.enum == t.enum:
        return
    if t.kind == "unknown" or (t.kind == target.kind and t.kind in ("bool", "text")):
        return
    raise UnitError(f"expected {target}, got {t}", _literal_hint(target))
