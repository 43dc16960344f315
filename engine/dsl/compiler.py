"""Checked expressions to Python source: three-valued logic inline, constants folded.

Generated source contains only accessor templates from the vocabulary, helper names, numbered
temporaries and constants (printed with repr() or hoisted into the namespace): names from rule
files never become code. `None` is the `unknown` value; any comparison or arithmetic with an
unknown operand is unknown.
"""

from __future__ import annotations

import itertools
from typing import Any

from engine.dsl import ast
from engine.dsl.ast import children
from engine.dsl.checker import Program
from engine.dsl.source import Source
from engine.dsl.trace import BlockInfo, CondInfo, unit_name
from engine.dsl.types import UNKNOWN
from engine.dsl.vocab import FUNCTIONS

NOT_CONST = object()


class ConstPool:
    """Constants hoisted out of generated code, shared by everything one program generates."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        # Which (strategy given, symbol given) shapes of position counts the program reads.
        self.count_keys: set[tuple[bool, bool]] = set()
        self._index: dict[tuple[type, Any], str] = {}

    def name(self, value: Any) -> str:
        key = (type(value), value)
        if key not in self._index:
            self._index[key] = f"_k{len(self.values)}"
            self.values[self._index[key]] = value
        return self._index[key]


class ExprGen:
    """Python expression text for rule expressions of one program; hoists constants into
    `consts` and shares numbered temporaries across everything it generates."""

    def __init__(self, program: Program, consts: ConstPool) -> None:
        self.p = program
        self.consts = consts
        self._tmp = itertools.count()
        self.let_slots: dict[str, str] = {}
        self.pre: dict[int, str] = {}  # id(expr) -> temporary already holding its value
        self.nonnull: set[str] = set()  # generated texts that can never be unknown
        self.count_keys: set[tuple[bool, bool]] = consts.count_keys

    def t(self) -> str:
        return f"_t{next(self._tmp)}"

    def const(self, value: Any) -> str:
        if value is None or isinstance(value, bool | float | int):
            return repr(value)
        return self.consts.name(value)

    def static(self, e: ast.Expr) -> Any:
        """The value of a constant expression (literal, param, enum member), else NOT_CONST."""
        if isinstance(e, ast.Literal) and e.value is not None:
            return e.value
        if isinstance(e, ast.Path):
            r = self.p.resolutions.get(id(e))
            if r is not None and r.kind in ("enum", "param") and r.value is not None:
                return r.value
        if isinstance(e, ast.Neg):
            inner = self.static(e.operand)
            if isinstance(inner, float) and not isinstance(inner, bool):
                return -inner
        return NOT_CONST

    def expr(self, e: ast.Expr) -> str:
        if id(e) in self.pre:
            return self.pre[id(e)]
        value = self.static(e)
        if value is not NOT_CONST:
            return self.const(value)
        out: str = getattr(self, "_" + type(e).__name__)(e)
        return out

    def _bind(self, e: ast.Expr) -> tuple[str, str | None]:
        """(name of the value, the expression that binds it) — None when no test is needed."""
        code = self.expr(e)
        if self.static(e) is not NOT_CONST or code in self.nonnull:
            return code, None
        if code.isidentifier() and code.startswith(("_t", "_l", "_v")):
            return code, code
        t = self.t()
        return t, f"({t} := {code})"

    def _guarded(self, parts: list[ast.Expr], make: Any) -> str:
        names, tests = [], []
        for p in parts:
            name, binding = self._bind(p)
            names.append(name)
            if binding:
                tests.append(f"{binding} is None")
        body: str = make(*names)
        return f"(None if {' or '.join(tests)} else {body})" if tests else f"({body})"

    def holds(self, e: ast.Expr) -> str:
        """Text that is True exactly when `e` evaluates to true (not false, not unknown)."""
        if isinstance(e, ast.BoolOp):
            joiner = " and " if e.op == "and" else " or "
            return "(" + joiner.join(self.holds(o) for o in e.operands) + ")"
        if isinstance(e, ast.Not):
            return self.fails(e.operand)
        if isinstance(e, ast.Compare | ast.In):
            return self._known_then(e, negate=False)
        return f"{self.expr(e)} is True"

    def fails(self, e: ast.Expr) -> str:
        """Text that is True exactly when `e` evaluates to false."""
        if isinstance(e, ast.BoolOp):
            joiner = " or " if e.op == "and" else " and "
            return "(" + joiner.join(self.fails(o) for o in e.operands) + ")"
        if isinstance(e, ast.Not):
            return self.holds(e.operand)
        if isinstance(e, ast.Compare | ast.In):
            return self._known_then(e, negate=True)
        return f"{self.expr(e)} is False"

    def _known_then(self, e: ast.Compare | ast.In, negate: bool) -> str:
        parts = list(e.operands) if isinstance(e, ast.Compare) else [e.needle]
        names, tests = [], []
        for p in parts:
            name, binding = self._bind(p)
            names.append(name)
            if binding:
                tests.append(f"{binding} is not None")
        if isinstance(e, ast.Compare):
            body = names[0] + "".join(f" {op} {n}" for op, n in zip(e.ops, names[1:], strict=True))
        else:
            consts = [self.static(i) for i in e.items]
            if all(c is not NOT_CONST for c in consts):
                coll = self.const(frozenset(consts))
            else:
                coll = "(" + ", ".join(self.expr(i) for i in e.items) + ",)"
            body = f"{names[0]} {'not in' if e.negated else 'in'} {coll}"
        body = f"not ({body})" if negate else f"({body})"
        return "(" + " and ".join([*tests, body]) + ")"

    def _Literal(self, e: ast.Literal) -> str:
        return repr(e.value)

    def _Path(self, e: ast.Path) -> str:
        r = self.p.resolutions[id(e)]
        if r.kind == "field":
            assert r.field is not None
            return f"({r.field.accessor})"
        if r.kind == "let":
            return self.let_slots[r.name]
        return self.const(r.value)

    def _Call(self, e: ast.Call) -> str:
        fn = FUNCTIONS[e.func]
        if fn.name == "is_known":
            return f"({self.expr(e.args[0])} is not None)"
        if fn.name == "abs":
            return self._guarded([e.args[0]], lambda a: f"abs({a})")
        if fn.variadic:
            return f"H.{fn.impl}({', '.join(self.expr(a) for a in e.args)})"
        given = {p.name: v for p, v in zip(fn.params, e.args, strict=False)}
        given.update({a.name: a.value for a in e.kwargs})
        args = [self.expr(given[p.name]) if p.name in given else "None" for p in fn.params]
        if fn.name in ("has_position", "count_positions"):
            # Position counts by (strategy, symbol) are tallied once per tick.
            key = f"({args[0]}, {args[1]})"
            values = [self.static(given[p.name]) if p.name in given else None for p in fn.params]
            if all(v is not NOT_CONST for v in values):
                key = self.const(tuple(values))
            code = (
                f"({key} in X.counts)" if fn.name == "has_position" else f"X.counts.get({key}, 0)"
            )
            self.nonnull.add(code)
            self.count_keys.add(("strategy" in given, "symbol" in given))
            return code
        return f"H.{fn.impl}(S, U, {', '.join(args)})"

    def _Neg(self, e: ast.Neg) -> str:
        return self._guarded([e.operand], lambda a: f"-{a}")

    def _Not(self, e: ast.Not) -> str:
        return self._guarded([e.operand], lambda a: f"not {a}")

    def _BoolOp(self, e: ast.BoolOp) -> str:
        # Kleene logic, short-circuiting on the deciding value (False for and, True for or).
        decide, other = ("False", "True") if e.op == "and" else ("True", "False")
        temps = [self.t() for _ in e.operands]
        out = f"({other} if {' and '.join(f'{t} is {other}' for t in temps)} else None)"
        for t, o in reversed(list(zip(temps, e.operands, strict=True))):
            out = f"({decide} if ({t} := {self.expr(o)}) is {decide} else {out})"
        return out

    def _BinOp(self, e: ast.BinOp) -> str:
        if e.op == "/":
            return self._guarded([e.left, e.right], lambda a, b: f"{a} / {b} if {b} else None")
        return self._guarded([e.left, e.right], lambda a, b: f"{a} {e.op} {b}")

    def _Compare(self, e: ast.Compare) -> str:
        def chain(*names: str) -> str:
            return names[0] + "".join(f" {op} {n}" for op, n in zip(e.ops, names[1:], strict=True))

        return self._guarded(list(e.operands), chain)

    def _In(self, e: ast.In) -> str:
        consts = [self.static(i) for i in e.items]
        if all(c is not NOT_CONST for c in consts):
            coll = self.const(frozenset(consts))
        else:
            coll = "(" + ", ".join(self.expr(i) for i in e.items) + ",)"
        op = "not in" if e.negated else "in"
        return self._guarded([e.needle], lambda a: f"{a} {op} {coll}")

    def _Match(self, e: ast.Match) -> str:
        values = [self.static(a.value) for a in e.arms]
        if all(v is not NOT_CONST for v in values):
            # A table of constants: one dict lookup.
            table = {a.name: v for a, v in zip(e.arms, values, strict=True) if a.name is not None}
            default = next((v for a, v in zip(e.arms, values, strict=True) if a.name is None), None)
            subject, binding = self._bind(e.subject)
            test = f"{binding} is None" if binding else None
            lookup = f"{self.const(_FrozenTable(table))}.get({subject}, {default!r})"
            return f"(None if {test} else {lookup})" if test else lookup
        default = "None"
        arms = []
        subject, binding = self._bind(e.subject)
        test = f"{binding} is None" if binding else None
        for arm in e.arms:
            if arm.name is None:
                default = self.expr(arm.value)
            else:
                arms.append(f"{self.expr(arm.value)} if {subject} == {arm.name!r} else")
        body = f"({' '.join(arms)} {default})"
        return f"(None if {test} else {body})" if test else body


class _FrozenTable(dict[str, Any]):
    """A hashable constant mapping (for the constant pool); never mutated."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def condition_operands(e: ast.Expr, program: Program) -> list[ast.Expr]:
    """Values worth showing for a condition: comparison sides, then the names it reads.

    Constants (literals, enum members) are left out: their value is their text. The same
    name read twice is shown once.
    """
    inner = e.operand if isinstance(e, ast.Not) else e
    heads: list[ast.Expr] = []
    if isinstance(inner, ast.Compare):
        heads = list(inner.operands)
    elif isinstance(inner, ast.In):
        heads = [inner.needle]
    leaves: list[ast.Expr] = []

    def walk(x: ast.Expr) -> None:
        if isinstance(x, ast.Path | ast.Call):
            leaves.append(x)
        for child in children(x):
            walk(child)

    walk(e)
    out: list[ast.Expr] = []
    seen: set[str] = set()
    for x in heads + leaves:
        key = shape(x)
        r = program.resolutions.get(id(x))
        if isinstance(x, ast.Literal) or key in seen or (r is not None and r.kind == "enum"):
            continue
        seen.add(key)
        out.append(x)
    return out


def shape(x: ast.Expr) -> str:
    if isinstance(x, ast.Path):
        return x.dotted
    if isinstance(x, ast.Call):
        args = [shape(a) for a in x.args] + [f"{k.name}={shape(k.value)}" for k in x.kwargs]
        return f"{x.func}({','.join(args)})"
    if isinstance(x, ast.Literal):
        return x.text
    return f"{type(x).__name__}:{x.loc.line}:{x.loc.column}:{x.loc.end_column}"


def block_info(b: ast.Block, program: Program) -> BlockInfo:
    src: Source = program.block_files[b.id].source
    conds = []
    gen = ExprGen(program, ConstPool())
    for i, c in enumerate(b.conditions):
        ops = condition_operands(c, program)
        sides = None
        comparators: tuple[str, ...] = ()
        if isinstance(c, ast.Compare) and all(o in ("<", "<=", ">", ">=") for o in c.ops):
            refs = []
            for side in c.operands:
                value = gen.static(side)
                if value is not NOT_CONST:
                    refs.append(("const", value))
                else:
                    refs.append(
                        ("op", next(j for j, o in enumerate(ops) if shape(o) == shape(side)))
                    )
            sides, comparators = tuple(refs), c.ops
        conds.append(
            CondInfo(
                i,
                src.text_between(c.loc).strip(),
                str(c.loc),
                tuple(src.text_between(o.loc).strip() for o in ops),
                tuple(unit_name(program.types.get(id(o), UNKNOWN)) for o in ops),
                sides,
                comparators,
            )
        )
    return BlockInfo(
        id=b.id,
        kind=b.kind,
        phase=b.phase or b.kind,
        location=str(b.loc),
        file=src.name,
        priority=b.priority,
        symbols=b.symbols,
        conditions=tuple(conds),
        let_names=tuple(lt.name for lt in b.lets),
        let_units=tuple(unit_name(program.types.get(id(lt.value), UNKNOWN)) for lt in b.lets),
    )
