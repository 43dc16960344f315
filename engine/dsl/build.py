"""Parse tree to syntax tree: a Lark Transformer that keeps every node's location."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import VisitError
from lark.tree import Meta

from engine.dsl import ast
from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.parser import parse
from engine.dsl.source import Location, Source

_BLOCK_CLAUSES = {
    "on_clause": "on",
    "priority_clause": "priority",
    "symbols_clause": "symbols",
    "let_clause": "let",
    "when_clause": "when",
    "then_clause": "then",
    "reason_clause": "reason",
    "check_clause": "check",
    "breach_clause": "on_breach",
    "trigger_clause": "trigger",
    "cooldown_clause": "cooldown",
    "reset_clause": "reset",
    "reset_manual": "reset",
}


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}
_ESCAPE = re.compile(r'\\(["\\n])')


def _unquote(s: str) -> str:
    # One pass, so "C:\\new" stays a backslash followed by "new".
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], s[1:-1])


class _Build(Transformer[Token, Any]):
    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source

    def _loc(self, meta: Meta) -> Location:
        if getattr(meta, "empty", True):
            return Location(self.source.name, 0, 0)
        return Location(self.source.name, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> Location:
        return Location(
            self.source.name, tok.line or 0, tok.column or 0, tok.end_line, tok.end_column
        )

    # -------------------------------------------------------------- literals
    @v_args(meta=True)
    def percent(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), float(c[0][:-1]) / 100.0, "percent", str(c[0]))

    @v_args(meta=True)
    def money(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), float(c[0][1:].replace(",", "")), "money", str(c[0]))

    @v_args(meta=True)
    def days(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), float(c[0][:-1]), "days", str(c[0]))

    @v_args(meta=True)
    def number(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), float(c[0]), "number", str(c[0]))

    @v_args(meta=True)
    def string(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), _unquote(str(c[0])), "string", str(c[0]))

    @v_args(meta=True)
    def true(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), True, "bool", "true")

    @v_args(meta=True)
    def false(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), False, "bool", "false")

    @v_args(meta=True)
    def unknown(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(self._loc(meta), None, "unknown", "unknown")

    # -------------------------------------------------------------- expressions
    @v_args(meta=True)
    def path(self, meta: Meta, c: list[Token]) -> ast.Path:
        return ast.Path(self._loc(meta), tuple(str(t) for t in c))

    @v_args(meta=True)
    def arg(self, meta: Meta, c: list[Any]) -> ast.Arg:
        return ast.Arg(self._loc(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def call(self, meta: Meta, c: list[Any]) -> ast.Call:
        func: ast.Path = c[0]
        items = [x for x in c[1:] if x is not None]
        args = tuple(x for x in items if not isinstance(x, ast.Arg))
        kwargs = tuple(x for x in items if isinstance(x, ast.Arg))
        return ast.Call(self._loc(meta), func.dotted, args, kwargs)

    @v_args(meta=True)
    def neg(self, meta: Meta, c: list[Any]) -> ast.Expr:
        inner = c[0]
        if isinstance(inner, ast.Literal) and isinstance(inner.value, float):
            # Fold "-250" so traces and params show a plain negative constant.
            return ast.Literal(self._loc(meta), -inner.value, inner.kind, "-" + inner.text)
        return ast.Neg(self._loc(meta), inner)

    @v_args(meta=True)
    def not_(self, meta: Meta, c: list[Any]) -> ast.Not:
        return ast.Not(self._loc(meta), c[0])

    @v_args(meta=True)
    def or_(self, meta: Meta, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp(self._loc(meta), "or", tuple(c))

    @v_args(meta=True)
    def and_(self, meta: Meta, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp(self._loc(meta), "and", tuple(c))

    @v_args(meta=True)
    def compare(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return ast.Compare(self._loc(meta), tuple(c[0::2]), tuple(str(t) for t in c[1::2]))

    @v_args(meta=True)
    def arith(self, meta: Meta, c: list[Any]) -> ast.Expr:
        # Left-associative: a - b - c is (a - b) - c. Each partial result spans from the start.
        acc: ast.Expr = c[0]
        for op, right in zip(c[1::2], c[2::2], strict=True):
            loc = Location(
                acc.loc.file, acc.loc.line, acc.loc.column, right.loc.end_line, right.loc.end_column
            )
            acc = ast.BinOp(loc, str(op), acc, right)
        return acc

    def list_lit(self, c: list[Any]) -> tuple[ast.Expr, ...]:
        return tuple(x for x in c if x is not None)

    @v_args(meta=True)
    def in_(self, meta: Meta, c: list[Any]) -> ast.In:
        return ast.In(self._loc(meta), c[0], c[1], False)

    @v_args(meta=True)
    def not_in(self, meta: Meta, c: list[Any]) -> ast.In:
        return ast.In(self._loc(meta), c[0], c[1], True)

    @v_args(meta=True)
    def match_arm(self, meta: Meta, c: list[Any]) -> ast.MatchArm:
        name = str(c[0])
        return ast.MatchArm(self._loc(meta), None if name == "else" else name, c[1])

    @v_args(meta=True)
    def match_expr(self, meta: Meta, c: list[Any]) -> ast.Match:
        return ast.Match(self._loc(meta), c[0], tuple(c[1:]))

    # -------------------------------------------------------------- clauses
    def conditions(self, c: list[Any]) -> tuple[ast.Expr, ...]:
        return tuple(x for x in c if x is not None)

    def single_condition(self, c: list[Any]) -> tuple[ast.Expr, ...]:
        return (c[0],)

    def signed_int(self, c: list[Token | None]) -> int:
        sign, digits = c
        if len(str(digits)) > 9:
            assert isinstance(digits, Token)
            loc = self._tok(digits)
            raise DslError([Diagnostic(Code.OUT_OF_RANGE, "priority is at most 999,999,999", loc)])
        return -int(str(digits)) if sign is not None else int(str(digits))

    def title(self, c: list[Token]) -> str:
        return _unquote(str(c[0]))

    @v_args(meta=True)
    def param_range(self, meta: Meta, c: list[Any]) -> tuple[ast.Expr, ast.Expr]:
        return (c[0], c[1])

    @v_args(meta=True)
    def param_decl(self, meta: Meta, c: list[Any]) -> ast.ParamDecl:
        name, unit, rng, default = c
        lo, hi = rng if rng is not None else (None, None)
        return ast.ParamDecl(
            self._loc(meta), str(name), str(unit), self._tok(unit), default, lo, hi
        )

    strategy_param = param_decl

    @v_args(meta=True)
    def action(self, meta: Meta, c: list[Any]) -> ast.Action:
        verb, target, args = c
        return ast.Action(
            self._loc(meta), str(verb), None if target is None else str(target), tuple(args or ())
        )

    def call_args(self, c: list[Any]) -> tuple[ast.Arg, ...]:
        return tuple(x for x in c if x is not None)

    @v_args(meta=True)
    def let_clause(self, meta: Meta, c: list[Any]) -> ast.Let:
        return ast.Let(self._loc(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def leg_clause(self, meta: Meta, c: list[Any]) -> ast.LegDecl:
        name, side, ratio, right, selector, value = c
        return ast.LegDecl(
            self._loc(meta),
            str(name),
            str(side),
            self._tok(side),
            int(ratio) if ratio else 1,
            str(right),
            self._tok(right),
            str(selector),
            self._tok(selector),
            value,
        )

    @v_args(meta=True)
    def expiry_clause(self, meta: Meta, c: list[Any]) -> tuple[str, Any, Any]:
        return ("expiry", c[0], c[1])


def _title(node: object) -> str | None:
    return node if isinstance(node, str) else None


def _block(builder: _Build, tree: Tree[Any]) -> ast.Block:
    kind = tree.data.removesuffix("_decl")
    name_tok = tree.children[0]
    title = _title(tree.children[1])
    clauses: list[ast.Clause] = []
    fields: dict[str, Any] = {"lets": [], "conditions": (), "actions": (), "priority": 0}
    for item in tree.children[2:]:
        if isinstance(item, ast.Let):
            fields["lets"].append(item)
            clauses.append(ast.Clause(item.loc, "let"))
            continue
        if not isinstance(item, Tree):
            continue
        keyword = _BLOCK_CLAUSES[str(item.data)]
        loc = builder._loc(item.meta)
        clauses.append(ast.Clause(loc, keyword))
        kids: list[Any] = item.children
        if item.data == "on_clause":
            fields["phase"], fields["phase_loc"] = str(kids[0]), builder._tok(kids[0])
        elif item.data == "priority_clause":
            fields["priority"] = kids[0]
        elif item.data == "symbols_clause":
            fields["symbols"] = tuple(str(k) for k in kids)
        elif item.data in ("when_clause", "check_clause", "trigger_clause"):
            fields["conditions"] = kids[0]
        elif item.data in ("then_clause", "breach_clause"):
            fields["actions"] = tuple(kids)
        elif item.data == "reason_clause":
            fields["reason"] = _unquote(str(kids[0]))
        elif item.data == "cooldown_clause":
            fields["cooldown"] = kids[0]
        elif item.data == "reset_clause":
            fields["reset"] = kids[0]
        elif item.data == "reset_manual":
            fields["reset"], fields["reset_manual"] = (), True
    return ast.Block(
        loc=builder._loc(tree.meta),
        kind=kind,
        id=str(name_tok),
        title=title,
        phase=fields.get("phase", kind if kind != "rule" else None),
        phase_loc=fields.get("phase_loc"),
        priority=fields["priority"],
        symbols=fields.get("symbols"),
        lets=tuple(fields["lets"]),
        conditions=fields["conditions"],
        actions=fields["actions"],
        reason=fields.get("reason"),
        cooldown=fields.get("cooldown"),
        reset=fields.get("reset"),
        reset_manual=fields.get("reset_manual", False),
        clauses=tuple(clauses),
    )


def _strategy(builder: _Build, tree: Tree[Any]) -> ast.StrategyDecl:
    title = _title(tree.children[1])
    params, legs = [], []
    target = within = None
    for item in tree.children[2:]:
        if isinstance(item, ast.ParamDecl):
            params.append(item)
        elif isinstance(item, ast.LegDecl):
            legs.append(item)
        elif isinstance(item, tuple) and item[0] == "expiry":
            target, within = item[1], item[2]
    return ast.StrategyDecl(
        builder._loc(tree.meta),
        str(tree.children[0]),
        title,
        tuple(params),
        target,
        within,
        tuple(legs),
    )


def build(source: Source, *, reference: bool = False) -> ast.RuleFile:
    """Parse and build one file's syntax tree; raises DslError on syntax errors.

    Well-formed files are built in one pass by engine/dsl/fastbuild.py. Whatever it declines
    (every file with an error among them), or everything when `reference` is set, takes the
    Lark tree and _Build, which the fast path matches exactly: the same RuleFile, locations
    included (tests/dsl/test_build_equivalence.py).
    """
    if not reference:
        from engine.dsl.fastbuild import Fallback, fast_build

        try:
            return fast_build(source)
        except Fallback:
            pass
    tree = parse(source)
    builder = _Build(source)
    try:
        built = builder.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, DslError):
            raise DslError(exc.orig_exc.diagnostics, {source.name: source}) from None
        raise
    except RecursionError:
        diag = Diagnostic(Code.SYNTAX, "expression nested too deeply", Location(source.name, 1, 1))
        raise DslError([diag], {source.name: source}) from None
    version = int(str(built.children[0].children[0]))
    params, blocks, strategies = [], [], []
    for decl in built.children[1:]:
        if isinstance(decl, ast.ParamDecl):
            params.append(decl)
        elif decl.data == "strategy_decl":
            strategies.append(_strategy(builder, decl))
        else:
            blocks.append(_block(builder, decl))
    return ast.RuleFile(source, version, tuple(params), tuple(blocks), tuple(strategies))


# The tree-based path alone, for tests; a partial adds no stack frame, so a pathologically deep
# file fails at the same depth as through build().
build_reference = partial(build, reference=True)
