"""Checked blocks to Python functions, generated once per load; three-valued logic inline.

Generated source contains only accessor templates from the vocabulary, helper names, numbered
temporaries and constants printed with repr(): names from rule files never become code.
`None` is the `unknown` value; a comparison with an unknown operand is unknown.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.dsl import ast, helpers
from engine.dsl.checker import Program
from engine.dsl.source import Location
from engine.dsl.types import UNKNOWN, Ty

FRAME = "S, M, U, P, PF, R"
Fn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CondInfo:
    index: int
    text: str
    loc: Location
    operand_texts: tuple[str, ...]
    operand_types: tuple[Ty, ...]
    ops: tuple[str, ...]  # comparison operators when the condition is a comparison


@dataclass(frozen=True, slots=True)
class CompiledBlock:
    block: ast.Block
    file: str
    conditions: tuple[CondInfo, ...]
    reset_conditions: tuple[CondInfo, ...]
    fast: Fn  # frame -> (index of first condition not true, or -1; its value)
    reset: Fn | None
    operands: tuple[Fn, ...]  # per condition: frame -> (its value, distance, *operand values)
    reset_operands: tuple[Fn, ...]
    lets: Fn  # frame -> let values
    let_names: tuple[str, ...]
    let_types: tuple[Ty, ...]
    args: Fn  # frame -> per action, a tuple of argument values
    arg_names: tuple[tuple[str, ...], ...]
    arg_types: tuple[tuple[Ty, ...], ...]

    @property
    def id(self) -> str:
        return self.block.id


class _Gen:
    def __init__(self, program: Program, consts: dict[str, Any]) -> None:
        self.p = program
        self.consts = consts
        self.tmp = itertools.count()
        self.let_slots: dict[str, str] = {}

    def t(self) -> str:
        return f"_t{next(self.tmp)}"

    def const(self, value: Any) -> str:
        if value is None or isinstance(value, bool | float | int | str):
            return repr(value)
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        return name

    def expr(self, e: ast.Expr) -> str:
        m = getattr(self, "_" + type(e).__name__)
        out: str = m(e)
        return out

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
        from engine.dsl.vocab import FUNCTIONS

        fn = FUNCTIONS[e.func]
        if fn.name == "is_known":
            return f"({self.expr(e.args[0])} is not None)"
        if fn.name == "abs":
            t = self.t()
            return f"(None if ({t} := {self.expr(e.args[0])}) is None else abs({t}))"
        if fn.variadic:
            return f"H.{fn.impl}({', '.join(self.expr(a) for a in e.args)})"
        given = {p.name: v for p, v in zip(fn.params, e.args, strict=False)}
        given.update({a.name: a.value for a in e.kwargs})
        args = [self.expr(given[p.name]) if p.name in given else "None" for p in fn.params]
        return f"H.{fn.impl}(S, U, {', '.join(args)})"

    def _Neg(self, e: ast.Neg) -> str:
        t = self.t()
        return f"(None if ({t} := {self.expr(e.operand)}) is None else -{t})"

    def _Not(self, e: ast.Not) -> str:
        t = self.t()
        return f"(None if ({t} := {self.expr(e.operand)}) is None else not {t})"

    def _BoolOp(self, e: ast.BoolOp) -> str:
        # Kleene logic, short-circuiting on the deciding value (False for and, True for or).
        decide, other = ("False", "True") if e.op == "and" else ("True", "False")
        temps = [self.t() for _ in e.operands]
        tail = f"({other} if {' and '.join(f'{t} is {other}' for t in temps)} else None)"
        out = tail
        for t, o in reversed(list(zip(temps, e.operands, strict=True))):
            out = f"({decide} if ({t} := {self.expr(o)}) is {decide} else {out})"
        return out

    def _BinOp(self, e: ast.BinOp) -> str:
        a, b = self.t(), self.t()
        head = (
            f"None if ({a} := {self.expr(e.left)}) is None or ({b} := {self.expr(e.right)}) is None"
        )
        if e.op == "/":
            return f"({head} else ({a} / {b} if {b} else None))"
        return f"({head} else {a} {e.op} {b})"

    def _Compare(self, e: ast.Compare) -> str:
        temps = [self.t() for _ in e.operands]
        nulls = " or ".join(
            f"({t} := {self.expr(o)}) is None" for t, o in zip(temps, e.operands, strict=True)
        )
        chain = temps[0] + "".join(f" {op} {t}" for op, t in zip(e.ops, temps[1:], strict=True))
        return f"(None if {nulls} else ({chain}))"

    def _In(self, e: ast.In) -> str:
        t = self.t()
        consts = [self._static(i) for i in e.items]
        if all(c is not _NOT_CONST for c in consts):
            coll = self.const(frozenset(consts))
        else:
            coll = "(" + ", ".join(self.expr(i) for i in e.items) + ",)"
        op = "not in" if e.negated else "in"
        return f"(None if ({t} := {self.expr(e.needle)}) is None else {t} {op} {coll})"

    def _static(self, e: ast.Expr) -> Any:
        if isinstance(e, ast.Literal):
            return e.value
        if isinstance(e, ast.Path):
            r = self.p.resolutions.get(id(e))
            if r is not None and r.kind in ("enum", "param"):
                return r.value
        return _NOT_CONST

    def _Match(self, e: ast.Match) -> str:
        s = self.t()
        default = "None"
        arms = []
        for arm in e.arms:
            if arm.name is None:
                default = self.expr(arm.value)
            else:
                arms.append(f"{self.expr(arm.value)} if {s} == {arm.name!r} else")
        return (
            f"(None if ({s} := {self.expr(e.subject)}) is None else ({' '.join(arms)} {default}))"
        )


_NOT_CONST = object()


def _operands(e: ast.Expr, program: Program) -> list[ast.Expr]:
    """Values worth showing for a condition: comparison sides, then the leaves it reads.

    Constants (literals, enum members) are left out: their value is their text.
    """
    out: list[ast.Expr] = []
    seen: set[tuple[int, int, int | None, int | None]] = set()
    for x in _candidate_operands(e):
        # The same name read twice is shown once: key on its position-free shape.
        key = (hash(_shape(x)), 0, None, None)
        if isinstance(x, ast.Literal) or key in seen:
            continue
        seen.add(key)
        r = program.resolutions.get(id(x))
        if r is not None and r.kind == "enum":
            continue
        out.append(x)
    return out


def _shape(x: ast.Expr) -> str:
    if isinstance(x, ast.Path):
        return x.dotted
    if isinstance(x, ast.Call):
        args = [_shape(a) for a in x.args] + [f"{k.name}={_shape(k.value)}" for k in x.kwargs]
        return f"{x.func}({','.join(args)})"
    if isinstance(x, ast.Literal):
        return x.text
    return f"{type(x).__name__}:{x.loc.line}:{x.loc.column}"


def _candidate_operands(e: ast.Expr) -> list[ast.Expr]:
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
            if isinstance(x, ast.Call):
                for a in (*x.args, *(k.value for k in x.kwargs)):
                    walk(a)
            return
        for child in _children(x):
            walk(child)

    walk(e)
    return heads + [leaf for leaf in leaves if leaf not in heads]


def _children(x: ast.Expr) -> tuple[ast.Expr, ...]:
    if isinstance(x, ast.Neg | ast.Not):
        return (x.operand,)
    if isinstance(x, ast.BinOp):
        return (x.left, x.right)
    if isinstance(x, ast.BoolOp):
        return x.operands
    if isinstance(x, ast.Compare):
        return x.operands
    if isinstance(x, ast.In):
        return (x.needle, *x.items)
    if isinstance(x, ast.Match):
        return (x.subject, *(a.value for a in x.arms))
    return ()


def compile_program(program: Program) -> tuple[CompiledBlock, ...]:
    """Compile every block of a checked program, in evaluation order."""
    consts: dict[str, Any] = {}
    lines: list[str] = []
    metas: list[dict[str, Any]] = []
    for n, b in enumerate(program.blocks):
        g = _Gen(program, consts)
        src = program.block_files[b.id].source
        let_lines = []
        for i, let in enumerate(b.lets):
            slot = f"_l{i}"
            let_lines.append(f"    {slot} = {g.expr(let.value)}")
            g.let_slots[let.name] = slot

        def text(e: ast.Node, src: Any = src) -> str:
            return str(src.text_between(e.loc)).strip()

        def infos(
            conds: tuple[ast.Expr, ...], g: _Gen = g, text: Any = text
        ) -> tuple[CondInfo, ...]:
            out = []
            for i, c in enumerate(conds):
                ops = _operands(c, program)
                inner = c.operand if isinstance(c, ast.Not) else c
                out.append(
                    CondInfo(
                        i,
                        text(c),
                        c.loc,
                        tuple(text(o) for o in ops),
                        tuple(program.types.get(id(o), UNKNOWN) for o in ops),
                        inner.ops if isinstance(inner, ast.Compare) else (),
                    )
                )
            return tuple(out)

        def cond_fn(
            name: str, conds: tuple[ast.Expr, ...], g: _Gen = g, let_lines: list[str] = let_lines
        ) -> None:
            lines.append(f"def {name}({FRAME}):")
            lines.extend(let_lines)
            for i, c in enumerate(conds):
                lines.append(f"    _c = {g.expr(c)}")
                lines.append(f"    if _c is not True: return {i}, _c")
            lines.append("    return -1, True")

        def ops_fns(
            prefix: str, conds: tuple[ast.Expr, ...], g: _Gen = g, let_lines: list[str] = let_lines
        ) -> list[str]:
            names = []
            for i, c in enumerate(conds):
                name = f"{prefix}_{i}"
                inner = c.operand if isinstance(c, ast.Not) else c
                dist = "None"
                if (
                    isinstance(inner, ast.Compare)
                    and len(inner.ops) == 1
                    and inner.ops[0] not in ("==", "!=")
                ):
                    dist = f"H.distance({g.expr(inner.operands[0])}, {g.expr(inner.operands[1])})"
                vals = [g.expr(c), dist] + [g.expr(o) for o in _operands(c, program)]
                lines.append(f"def {name}({FRAME}):")
                lines.extend(let_lines)
                lines.append(f"    return ({''.join(v + ', ' for v in vals)})")
                names.append(name)
            return names

        cond_fn(f"_fast{n}", b.conditions)
        ops = ops_fns(f"_ops{n}", b.conditions)
        reset_ops: list[str] = []
        if b.reset:
            cond_fn(f"_reset{n}", b.reset)
            reset_ops = ops_fns(f"_rops{n}", b.reset)
        lines.append(f"def _lets{n}({FRAME}):")
        lines.extend(let_lines)
        lines.append(f"    return ({''.join(s + ', ' for s in g.let_slots.values())})")
        lines.append(f"def _args{n}({FRAME}):")
        lines.extend(let_lines)
        arg_tuples = [
            "(" + "".join(g.expr(a.value) + ", " for a in act.args) + ")" for act in b.actions
        ]
        lines.append(f"    return ({''.join(t + ', ' for t in arg_tuples)})")
        metas.append(
            {
                "block": b,
                "n": n,
                "conds": infos(b.conditions),
                "rconds": infos(b.reset or ()),
                "ops": ops,
                "rops": reset_ops,
                "let_names": tuple(lt.name for lt in b.lets),
                "let_types": tuple(program.types.get(id(lt.value), UNKNOWN) for lt in b.lets),
                "arg_names": tuple(tuple(a.name for a in act.args) for act in b.actions),
                "arg_types": tuple(
                    tuple(program.types.get(id(a.value), UNKNOWN) for a in act.args)
                    for act in b.actions
                ),
            }
        )
    namespace: dict[str, Any] = {"__builtins__": {"abs": abs}, "H": helpers, **consts}
    code = compile("\n".join(lines) + "\n", "<v6-rules>", "exec")
    exec(code, namespace)
    return tuple(
        CompiledBlock(
            block=m["block"],
            file=program.block_files[m["block"].id].source.name,
            conditions=m["conds"],
            reset_conditions=m["rconds"],
            fast=namespace[f"_fast{m['n']}"],
            reset=namespace.get(f"_reset{m['n']}") if m["rconds"] else None,
            operands=tuple(namespace[o] for o in m["ops"]),
            reset_operands=tuple(namespace[o] for o in m["rops"]),
            lets=namespace[f"_lets{m['n']}"],
            let_names=m["let_names"],
            let_types=m["let_types"],
            args=namespace[f"_args{m['n']}"],
            arg_names=m["arg_names"],
            arg_types=m["arg_types"],
        )
        for m in metas
    )
