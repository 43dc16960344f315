"""The unit algebra of engine/dsl/types.py, table-driven: unify, arith, convert_to."""

from __future__ import annotations

import pytest

from engine.dsl.types import (
    BARE,
    BOOL,
    TEXT,
    UNKNOWN,
    USD_LITERAL,
    Ty,
    Unit,
    UnitError,
    arith,
    convert_to,
    enum,
    num,
    unify,
)

PCT, MONEY, PRICE = num(Unit.PERCENT), num(Unit.MONEY), num(Unit.PRICE)
DAYS, DELTA, RATIO = num(Unit.DAYS), num(Unit.DELTA), num(Unit.RATIO)
NUMBER, COUNT, LEVEL = num(Unit.NUMBER), num(Unit.COUNT), num(Unit.LEVEL)
REGIME, SESSION = enum("regime"), enum("session")

UNIFY_OK = [
    (UNKNOWN, PCT, PCT),
    (PCT, UNKNOWN, PCT),
    (UNKNOWN, UNKNOWN, UNKNOWN),
    (BOOL, BOOL, BOOL),
    (TEXT, TEXT, TEXT),
    (REGIME, REGIME, REGIME),
    (PCT, PCT, PCT),
    (DAYS, DAYS, DAYS),
    (LEVEL, LEVEL, LEVEL),
    (PCT, RATIO, PCT),
    (RATIO, PCT, PCT),
    (RATIO, RATIO, RATIO),
    (NUMBER, COUNT, NUMBER),
    (COUNT, NUMBER, NUMBER),
    (COUNT, COUNT, COUNT),
    (USD_LITERAL, USD_LITERAL, USD_LITERAL),
    (USD_LITERAL, MONEY, MONEY),
    (USD_LITERAL, PRICE, PRICE),
    (PRICE, USD_LITERAL, PRICE),
    (BARE, BARE, BARE),
    (BARE, DELTA, DELTA),
    (LEVEL, BARE, LEVEL),
    (BARE, COUNT, COUNT),
    (BARE, RATIO, RATIO),
    (NUMBER, BARE, NUMBER),
]


@pytest.mark.parametrize(("a", "b", "want"), UNIFY_OK, ids=[f"{a}~{b}" for a, b, _ in UNIFY_OK])
def test_unify(a: Ty, b: Ty, want: Ty) -> None:
    assert unify(a, b) == want


UNIFY_ERR = [
    (BOOL, PCT, "cannot combine bool with percent", None),
    (TEXT, REGIME, "cannot combine text with regime", None),
    (REGIME, SESSION, "cannot compare regime with session", None),
    (USD_LITERAL, PCT, "cannot combine dollars with percent", "write the unit, e.g. 50%"),
    (DAYS, USD_LITERAL, "cannot combine dollars with days", "write the unit, e.g. 45d"),
    (USD_LITERAL, LEVEL, "cannot combine dollars with level", None),
    (USD_LITERAL, BARE, "cannot combine dollars with number", None),
    (BARE, PCT, "cannot combine percent with a plain number", "write the unit, e.g. 50%"),
    (MONEY, BARE, "cannot combine money with a plain number", "write the unit, e.g. $500"),
    (BARE, PRICE, "cannot combine price with a plain number", "write the unit, e.g. $5"),
    (BARE, DAYS, "cannot combine days with a plain number", "write the unit, e.g. 45d"),
    (MONEY, PRICE, "cannot combine money with price", None),
    (MONEY, LEVEL, "cannot combine money with level", None),
    (DAYS, PRICE, "cannot combine days with price", None),
    (DELTA, NUMBER, "cannot combine delta with number", None),
    (PCT, DAYS, "cannot combine percent with days", None),
    (LEVEL, RATIO, "cannot combine level with ratio", None),
]


@pytest.mark.parametrize(("a", "b", "msg", "hint"), UNIFY_ERR,
                         ids=[f"{a}~{b}" for a, b, *_ in UNIFY_ERR])
def test_unify_rejects(a: Ty, b: Ty, msg: str, hint: str | None) -> None:
    with pytest.raises(UnitError) as info:
        unify(a, b)
    assert (str(info.value), info.value.hint) == (msg, hint)


ARITH_OK = [
    ("+", PCT, PCT, PCT),
    ("-", MONEY, USD_LITERAL, MONEY),
    ("+", DAYS, DAYS, DAYS),
    ("-", RATIO, PCT, PCT),
    ("+", UNKNOWN, PCT, PCT),
    ("*", PCT, UNKNOWN, PCT),
    ("*", BARE, MONEY, MONEY),
    ("*", MONEY, BARE, MONEY),
    ("*", BARE, BARE, BARE),
    ("*", PCT, MONEY, MONEY),
    ("*", MONEY, PCT, MONEY),
    ("*", PCT, BARE, PCT),
    ("*", COUNT, PRICE, PRICE),
    ("*", RATIO, DELTA, DELTA),
    ("/", MONEY, BARE, MONEY),
    ("/", MONEY, COUNT, MONEY),
    ("/", MONEY, PCT, MONEY),
    ("/", PCT, BARE, PCT),
    ("/", MONEY, MONEY, RATIO),
    ("/", PRICE, USD_LITERAL, RATIO),
    ("/", PCT, PCT, RATIO),
    ("/", RATIO, PCT, RATIO),
    ("/", DAYS, DAYS, RATIO),
    ("/", LEVEL, LEVEL, RATIO),
]


@pytest.mark.parametrize(("op", "a", "b", "want"), ARITH_OK,
                         ids=[f"{a}{op}{b}" for op, a, b, _ in ARITH_OK])
def test_arith(op: str, a: Ty, b: Ty, want: Ty) -> None:
    assert arith(op, a, b) == want


ONE_SIDE = "one side must be a plain number or percent"
ARITH_ERR = [
    ("+", BOOL, PCT, "'+' needs numbers, not bool", None),
    ("*", PCT, TEXT, "'*' needs numbers, not text", None),
    ("-", REGIME, UNKNOWN, "'-' needs numbers, not regime", None),
    ("+", PCT, BARE, "cannot combine percent with a plain number", "write the unit, e.g. 50%"),
    ("-", DAYS, PRICE, "cannot combine days with price", None),
    ("*", MONEY, PRICE, "cannot multiply money by price", ONE_SIDE),
    ("*", USD_LITERAL, MONEY, "cannot multiply dollars by money", ONE_SIDE),
    ("*", DAYS, LEVEL, "cannot multiply days by level", ONE_SIDE),
    ("/", MONEY, PRICE, "cannot divide money by price", None),
    ("/", DAYS, LEVEL, "cannot divide days by level", None),
]


@pytest.mark.parametrize(("op", "a", "b", "msg", "hint"), ARITH_ERR,
                         ids=[f"{a}{op}{b}" for op, a, b, *_ in ARITH_ERR])
def test_arith_rejects(op: str, a: Ty, b: Ty, msg: str, hint: str | None) -> None:
    with pytest.raises(UnitError) as info:
        arith(op, a, b)
    assert (str(info.value), info.value.hint) == (msg, hint)


CONVERT_OK = [
    (BARE, DELTA),
    (BARE, COUNT),
    (BARE, NUMBER),
    (USD_LITERAL, PRICE),
    (USD_LITERAL, MONEY),
    (DAYS, DAYS),
    (PCT, PCT),
    (RATIO, PCT),
    (PCT, RATIO),
    (REGIME, REGIME),
    (UNKNOWN, PCT),
    (UNKNOWN, REGIME),
    (UNKNOWN, BOOL),
    (BOOL, BOOL),
    (TEXT, TEXT),
]


@pytest.mark.parametrize(("t", "target"), CONVERT_OK, ids=[f"{t}->{g}" for t, g in CONVERT_OK])
def test_convert_to(t: Ty, target: Ty) -> None:
    assert convert_to(t, target) is None


CONVERT_ERR = [
    (BARE, PCT, "cannot combine percent with a plain number", "write the unit, e.g. 50%"),
    (BARE, DAYS, "cannot combine days with a plain number", "write the unit, e.g. 45d"),
    (BARE, PRICE, "cannot combine price with a plain number", "write the unit, e.g. $5"),
    (USD_LITERAL, DAYS, "cannot combine dollars with days", "write the unit, e.g. 45d"),
    (MONEY, PRICE, "cannot combine money with price", None),
    (COUNT, NUMBER, "expected number, got count", None),
    (NUMBER, DELTA, "cannot combine number with delta", None),
    (REGIME, SESSION, "expected session, got regime", None),
    (TEXT, BOOL, "expected bool, got text", None),
    (BOOL, PCT, "expected percent, got bool", "write the unit, e.g. 50%"),
    (TEXT, MONEY, "expected money, got text", "write the unit, e.g. $500"),
    (PCT, REGIME, "expected regime, got percent", None),
]


@pytest.mark.parametrize(("t", "target", "msg", "hint"), CONVERT_ERR,
                         ids=[f"{t}->{g}" for t, g, *_ in CONVERT_ERR])
def test_convert_to_rejects(t: Ty, target: Ty, msg: str, hint: str | None) -> None:
    with pytest.raises(UnitError) as info:
        convert_to(t, target)
    assert (str(info.value), info.value.hint) == (msg, hint)


@pytest.mark.parametrize(("ty", "shown"), [
    (PCT, "percent"), (BARE, "number"), (USD_LITERAL, "dollars"), (MONEY, "money"),
    (REGIME, "regime"), (BOOL, "bool"), (UNKNOWN, "unknown"), (Ty("num"), "number"),
])
def test_type_names_in_messages(ty: Ty, shown: str) -> None:
    assert str(ty) == shown


def test_unify_is_symmetric_on_success() -> None:
    # Every successful pair unifies to the same type in both orders (modulo the literal marks).
    for a, b, _ in UNIFY_OK:
        ab, ba = unify(a, b), unify(b, a)
        assert (ab.kind, ab.unit, ab.enum) == (ba.kind, ba.unit, ba.enum), (a, b)
