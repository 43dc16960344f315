"""Expression typing: names resolved in scope, units checked, matches checked for coverage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from engine.dsl import ast
from engine.dsl.errors import Code, Diagnostic, did_you_mean
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
    num,
    unify,
)
from engine.dsl.vocab import ENUMS, FIELDS, FUNCTIONS, SCOPES_BY_CONTEXT, Field

_CONTEXT_WORDS = {
    "position": "adjust, exit and take_profit rules",
    "underlying": "entry and position rules",
}


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a path means: a vocabulary field, a let, a param constant, or an enum constant."""

    kind: str  # field | let | param | enum | leg
    ty: Ty
    field: Field | None = None
    name: str = ""
    value: Any = None


@dataclass
class Scope:
    """Names visible to one block's expressions, and where resolutions are recorded."""

    context: str  # a phase or block kind
    params: Mapping[str, tuple[Ty, Any]]
    strategies: frozenset[str]
    diagnostics: list[Diagnostic]
    resolutions: dict[int, Resolved]
    types: dict[int, Ty]
    lets: dict[str, Ty] = field(default_factory=dict)
    let_index: dict[str, int] = field(default_factory=dict)
    legs: frozenset[str] = frozenset()

    def error(self, code: Code, msg: str, node: ast.Node, hint: str | None = None) -> Ty:
        self.diagnostics.append(Diagnostic(code, msg, node.loc, hint))
        return UNKNOWN

    def visible_fields(self) -> list[str]:
        allowed = SCOPES_BY_CONTEXT[self.context]
        return [p for p, f in FIELDS.items() if f.scope in allowed]


def literal_type(lit: ast.Literal) -> Ty:
    return {
        "percent": num(Unit.PERCENT),
        "money": USD_LITERAL,
        "days": num(Unit.DAYS),
        "number": BARE,
        "string": TEXT,
        "bool": BOOL,
        "unknown": UNKNOWN,
    }[lit.kind]


def infer(e: ast.Expr, sc: Scope, expect: Ty | None = None) -> Ty:
    """The type of `e`, recording errors in the scope; `expect` resolves bare enum names."""
    t = _infer(e, sc, expect)
    sc.types[id(e)] = t
    return t


def _infer(e: ast.Expr, sc: Scope, expect: Ty | None) -> Ty:
    if isinstance(e, ast.Literal):
        return literal_type(e)
    if isinstance(e, ast.Path):
        return _path(e, sc, expect)
    if isinstance(e, ast.Call):
        return _call(e, sc)
    if isinstance(e, ast.Neg):
        t = infer(e.operand, sc)
        if t.kind not in ("num", "unknown"):
            return sc.error(Code.TYPE_MISMATCH, f"cannot negate {t}", e)
        return t
    if isinstance(e, ast.Not):
        _want_bool(e.operand, sc)
        return BOOL
    if isinstance(e, ast.BoolOp):
        for o in e.operands:
            _want_bool(o, sc)
        return BOOL
    if isinstance(e, ast.BinOp):
        a, b = infer(e.left, sc), infer(e.right, sc)
        return _units(partial(arith, e.op, a, b), e, sc)
    if isinstance(e, ast.Compare):
        return _compare(e, sc)
    if isinstance(e, ast.In):
        needle = infer(e.needle, sc)
        for item in e.items:
            it = infer(item, sc, needle)
            _units(partial(unify, needle, it), item, sc)
        return BOOL
    assert isinstance(e, ast.Match)
    return _match(e, sc)


def _want_bool(e: ast.Expr, sc: Scope) -> None:
    t = infer(e, sc)
    if t.kind not in ("bool", "unknown"):
        sc.error(Code.TYPE_MISMATCH, f"expected a condition (true/false), got {t}", e)


def _units(fn: Callable[[], Ty], node: ast.Node, sc: Scope) -> Ty:
    try:
        return fn()
    except UnitError as exc:
        return sc.error(Code.UNIT_MISMATCH, str(exc), node, exc.hint)


def _compare(e: ast.Compare, sc: Scope) -> Ty:
    first = infer(e.operands[0], sc)
    types = [first] + [infer(o, sc, first) for o in e.operands[1:]]
    if first.kind in {"enum", "unknown"}:
        # An enum on the right resolves a bare name on the left: `crash == market.regime`.
        types[0] = infer(e.operands[0], sc, types[1])
    for op, left, right, node in zip(e.ops, types, types[1:], e.operands[1:], strict=False):
        if op not in ("==", "!=") and (
            left.kind not in ("num", "unknown") or right.kind not in ("num", "unknown")
        ):
            sc.error(Code.TYPE_MISMATCH, f"'{op}' compares numbers, not {left} and {right}", node)
            continue
        _units(partial(unify, left, right), e, sc)
    return BOOL


def _path(e: ast.Path, sc: Scope, expect: Ty | None) -> Ty:
    name = e.dotted
    if len(e.parts) == 1:
        if name in sc.lets:
            sc.resolutions[id(e)] = Resolved("let", sc.lets[name], name=name)
            return sc.lets[name]
        if name in sc.params:
            ty, value = sc.params[name]
            sc.resolutions[id(e)] = Resolved("param", ty, name=name, value=value)
            return ty
        if expect is not None and expect.kind == "enum" and expect.enum is not None:
            if _enum_member(expect.enum, name, sc):
                sc.resolutions[id(e)] = Resolved("enum", expect, value=name)
                return expect
            if expect.enum in ENUMS:
                hint = did_you_mean(name, ENUMS[expect.enum]) or (
                    "one of: " + ", ".join(ENUMS[expect.enum])
                )
                return sc.error(Code.UNKNOWN_VALUE, f"'{name}' is not a {expect.enum}", e, hint)
    if len(e.parts) == 2 and e.parts[0] in sc.legs and e.parts[1] == "strike":
        sc.resolutions[id(e)] = Resolved("leg", num(Unit.PRICE), name=e.parts[0])
        return num(Unit.PRICE)
    f = FIELDS.get(name)
    if f is None:
        candidates = [*sc.visible_fields(), *sc.lets, *sc.params]
        return sc.error(
            Code.UNKNOWN_NAME, f"unknown name '{name}'", e, did_you_mean(name, candidates)
        )
    if f.scope not in SCOPES_BY_CONTEXT[sc.context]:
        where = _CONTEXT_WORDS.get(f.scope, f.scope)
        return sc.error(
            Code.WRONG_CONTEXT,
            f"'{name}' is only available in {where}",
            e,
            f"this is a{'n' if sc.context[0] in 'aeiou' else ''} {sc.context} block",
        )
    sc.resolutions[id(e)] = Resolved("field", f.ty, field=f)
    return f.ty


def _enum_member(enum_name: str, name: str, sc: Scope) -> bool:
    if enum_name == "strategy":
        return name in sc.strategies
    if enum_name == "symbol":
        return name.isupper() and name.isalnum()
    return name in ENUMS.get(enum_name, ())


def _call(e: ast.Call, sc: Scope) -> Ty:
    fn = FUNCTIONS.get(e.func)
    if fn is None:
        return sc.error(
            Code.UNKNOWN_FUNCTION,
            f"unknown function '{e.func}'",
            e,
            did_you_mean(e.func, FUNCTIONS),
        )
    if fn.scope not in SCOPES_BY_CONTEXT[sc.context]:
        where = _CONTEXT_WORDS.get(fn.scope, fn.scope)
        return sc.error(Code.WRONG_CONTEXT, f"'{e.func}' is only available in {where}", e)
    if fn.variadic:
        if not e.args or e.kwargs:
            return sc.error(Code.MISSING_ARGUMENT, f"'{e.func}' takes one or more values", e)
        ty = infer(e.args[0], sc)
        for a in e.args[1:]:
            at = infer(a, sc)
            ty = _units(partial(unify, ty, at), a, sc)
        return ty
    if fn.name in ("abs", "is_known"):
        if len(e.args) != 1 or e.kwargs:
            return sc.error(Code.MISSING_ARGUMENT, f"'{e.func}' takes exactly one value", e)
        t = infer(e.args[0], sc)
        if fn.name == "abs" and t.kind not in ("num", "unknown"):
            return sc.error(Code.TYPE_MISMATCH, f"abs() needs a number, not {t}", e)
        return t if fn.name == "abs" else BOOL
    check_args(e, fn.params, e.kwargs, sc, f"'{e.func}'", positional=e.args)
    return fn.returns


def check_args(
    node: ast.Node,
    params: tuple[Any, ...],
    kwargs: tuple[ast.Arg, ...],
    sc: Scope,
    what: str,
    positional: tuple[ast.Expr, ...] = (),
) -> None:
    """Named arguments against declared params: known, typed, required ones present."""
    by_name = {p.name: p for p in params}
    given: dict[str, ast.Arg] = {}
    if len(positional) > len(params):
        sc.error(Code.UNKNOWN_ARGUMENT, f"{what} takes at most {len(params)} arguments", node)
    for p, value in zip(params, positional, strict=False):
        given[p.name] = ast.Arg(value.loc, p.name, value)
    for arg in kwargs:
        if arg.name in given:
            sc.error(Code.DUPLICATE, f"argument '{arg.name}' given twice", arg)
            continue
        given[arg.name] = arg
        p = by_name.get(arg.name)
        if p is None:
            sc.error(
                Code.UNKNOWN_ARGUMENT,
                f"{what} has no argument '{arg.name}'",
                arg,
                did_you_mean(arg.name, by_name) or _list(by_name),
            )
            continue
    for name, arg in given.items():
        p = by_name.get(name)
        if p is None:
            continue
        t = infer(arg.value, sc, p.ty)
        _units(partial(_converted, t, p.ty), arg, sc)
    for p in params:
        if p.required and p.name not in given:
            sc.error(Code.MISSING_ARGUMENT, f"{what} needs argument '{p.name}'", node)


def _converted(t: Ty, target: Ty) -> Ty:
    convert_to(t, target)
    return t


def _list(names: Mapping[str, Any]) -> str:
    return "arguments: " + (", ".join(names) if names else "none")


def _match(e: ast.Match, sc: Scope) -> Ty:
    subject = infer(e.subject, sc)
    if subject.kind != "enum" or subject.enum not in ENUMS:
        if subject.kind != "unknown":
            sc.error(
                Code.TYPE_MISMATCH,
                f"match needs a regime or other fixed set, not {subject}",
                e.subject,
            )
        return UNKNOWN
    members = ENUMS[subject.enum]
    seen: set[str] = set()
    has_else = False
    result: Ty = UNKNOWN
    for arm in e.arms:
        if arm.name is None:
            has_else = True
        elif arm.name not in members:
            sc.error(
                Code.UNKNOWN_VALUE,
                f"'{arm.name}' is not a {subject.enum}",
                arm,
                did_you_mean(arm.name, members) or "one of: " + ", ".join(members),
            )
        elif arm.name in seen:
            sc.error(Code.DUPLICATE, f"'{arm.name}' appears twice in this match", arm)
        seen.add(arm.name or "")
        t = infer(arm.value, sc)
        result = _units(partial(unify, result, t), arm.value, sc)
    missing = [m for m in members if m not in seen]
    if missing and not has_else:
        sc.error(
            Code.NOT_EXHAUSTIVE,
            f"match does not cover {', '.join(missing)}",
            e,
            "add an arm for each, or an 'else =>' arm",
        )
    sc.types[id(e)] = result
    return result
