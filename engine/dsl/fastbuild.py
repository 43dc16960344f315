"""Text to syntax tree in one pass: parser.py's LALR tables and lexer regexes, driven directly.

`build()` (engine/dsl/build.py) takes this path first. It builds the syntax tree while parsing,
with no Lark parse tree and no second pass, and must return exactly what the tree-based
`build_reference()` returns. It raises `Fallback` for anything unusual: any lexing or syntax
error, an unsupported version, a NUL byte, deep nesting, an integer too long to convert. The
caller then runs the reference path, which reports the error (or builds the file) itself; so
errors are produced by one code path only.

Exactness rests on using Lark's own parse table (same grammar, same parser object) and each
parser state's own lexer (the contextual lexer's per-state regex and keyword "unless" map), and
on reproducing Lark's `propagate_positions`: a node spans from the start of its first raw child
to the end of its last, filtered tokens included (so a declaration ends after its line break).
Every value on the parse stack is a 5-tuple `(payload, line, column, end_line, end_column)` of
that span. A `?rule` that passes its one kept child through (`"(" expr ")"`) keeps the child's
own location but widens the span its parent sees, as Lark widens the child's container span.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter
from typing import Any

from lark.parsers.lalr_analysis import Shift

from engine.dsl import ast
from engine.dsl.parser import LANGUAGE_VERSIONS, _parser
from engine.dsl.source import Location, Source

Val = tuple[Any, int, int, int, int]  # (payload, line, column, end_line, end_column)
Handler = Callable[[Location | None, list[Any], str], Any]
Reduce = Callable[[list[Val], str], Val]

# Deeply nested input goes to the reference path, which reports "expression nested too
# deeply" when its recursive tree transform runs out of stack. Nesting needs parse-stack
# height; below this height the tree is at most a few hundred levels deep, well inside the
# stack the reference needs (checked against the caller's remaining headroom as well).
MAX_STACK = 100
_HEADROOM_FRAMES = 600


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """The fast path declines this input; use the reference path."""


def _unquote(s: str) -> str:
    body = s[1:-1]
    return body.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits(): the reference fails there
        raise Fallback from None


def _tok(t: Val, file: str) -> Location:
    return Location(file, t[1], t[2], t[3], t[4])


# ------------------------------------------------------------------ node handlers
# Each gets the node's location (None where unused), its kept children as stack values (None
# for an absent optional), and the file name; it returns the payload, as _Build does.
def _percent(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, float(c[0][0][:-1]) / 100.0, "percent", c[0][0])


def _money(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, float(c[0][0][1:].replace(",", "")), "money", c[0][0])


def _days(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, float(c[0][0][:-1]), "days", c[0][0])


def _number(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, float(c[0][0]), "number", c[0][0])


def _string(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, _unquote(c[0][0]), "string", c[0][0])


def _true(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, True, "bool", "true")


def _false(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, False, "bool", "false")


def _unknown(loc: Any, c: list[Any], f: str) -> ast.Literal:
    return ast.Literal(loc, None, "unknown", "unknown")


def _path(loc: Any, c: list[Any], f: str) -> ast.Path:
    return ast.Path(loc, tuple([t[0] for t in c]))


def _arg(loc: Any, c: list[Any], f: str) -> ast.Arg:
    return ast.Arg(loc, c[0][0], c[1][0])


def _call(loc: Any, c: list[Any], f: str) -> ast.Call:
    items = [x[0] for x in c[1:] if x is not None]
    args = tuple(x for x in items if not isinstance(x, ast.Arg))
    kwargs = tuple(x for x in items if isinstance(x, ast.Arg))
    return ast.Call(loc, c[0][0].dotted, args, kwargs)


def _neg(loc: Any, c: list[Any], f: str) -> ast.Expr:
    inner = c[0][0]
    if isinstance(inner, ast.Literal) and isinstance(inner.value, float):
        return ast.Literal(loc, -inner.value, inner.kind, "-" + inner.text)
    return ast.Neg(loc, inner)


def _not(loc: Any, c: list[Any], f: str) -> ast.Not:
    return ast.Not(loc, c[0][0])


def _or(loc: Any, c: list[Any], f: str) -> ast.BoolOp:
    return ast.BoolOp(loc, "or", tuple([x[0] for x in c]))


def _and(loc: Any, c: list[Any], f: str) -> ast.BoolOp:
    return ast.BoolOp(loc, "and", tuple([x[0] for x in c]))


def _compare(loc: Any, c: list[Any], f: str) -> ast.Compare:
    return ast.Compare(loc, tuple([x[0] for x in c[0::2]]), tuple([t[0] for t in c[1::2]]))


def _arith(loc: Any, c: list[Any], f: str) -> ast.Expr:
    acc: ast.Expr = c[0][0]
    for op, right in zip(c[1::2], c[2::2], strict=True):
        r = right[0]
        a = acc.loc
        loc = Location(a.file, a.line, a.column, r.loc.end_line, r.loc.end_column)
        acc = ast.BinOp(loc, op[0], acc, r)
    return acc


def _values(loc: Any, c: list[Any], f: str) -> tuple[Any, ...]:
    return tuple([x[0] for x in c if x is not None])


def _in(loc: Any, c: list[Any], f: str) -> ast.In:
    return ast.In(loc, c[0][0], c[1][0], False)


def _not_in(loc: Any, c: list[Any], f: str) -> ast.In:
    return ast.In(loc, c[0][0], c[1][0], True)


def _match_arm(loc: Any, c: list[Any], f: str) -> ast.MatchArm:
    name = c[0][0]
    return ast.MatchArm(loc, None if name == "else" else name, c[1][0])


def _match_expr(loc: Any, c: list[Any], f: str) -> ast.Match:
    return ast.Match(loc, c[0][0], tuple([x[0] for x in c[1:]]))


def _signed_int(loc: Any, c: list[Any], f: str) -> int:
    sign, digits = c
    return -_int(digits[0]) if sign is not None else _int(digits[0])


def _first(loc: Any, c: list[Any], f: str) -> Any:
    return c[0][0]


def _title(loc: Any, c: list[Any], f: str) -> str:
    return _unquote(c[0][0])


def _pair(loc: Any, c: list[Any], f: str) -> tuple[Any, Any]:
    return (c[0][0], c[1][0])


def _param(loc: Any, c: list[Any], f: str) -> ast.ParamDecl:
    name, unit, rng, default = c
    lo, hi = rng[0] if rng is not None else (None, None)
    return ast.ParamDecl(loc, name[0], unit[0], _tok(unit, f), default[0], lo, hi)


def _action(loc: Any, c: list[Any], f: str) -> ast.Action:
    verb, target, args = c
    return ast.Action(
        loc, verb[0], None if target is None else target[0], args[0] if args is not None else ()
    )


def _let(loc: Any, c: list[Any], f: str) -> ast.Let:
    return ast.Let(loc, c[0][0], c[1][0])


def _leg(loc: Any, c: list[Any], f: str) -> ast.LegDecl:
    name, side, ratio, right, selector, value = c
    n = _int(ratio[0]) if ratio is not None else 1
    return ast.LegDecl(
        loc, name[0], side[0], _tok(side, f), n, right[0], _tok(right, f),
        selector[0], _tok(selector, f), value[0],
    )  # fmt: skip


def _expiry(loc: Any, c: list[Any], f: str) -> tuple[str, Any, Any]:
    return ("expiry", c[0][0], c[1][0])


def _clause(keyword: str) -> Handler:
    # A block clause: (keyword, location, kept children), read by _block below.
    def make(loc: Any, c: list[Any], f: str) -> tuple[str, Location, list[Any]]:
        return (keyword, loc, c)

    return make


def _block(loc: Any, c: list[Any], f: str, kind: str) -> ast.Block:
    title = c[1][0] if c[1] is not None else None
    clauses: list[ast.Clause] = []
    lets: list[ast.Let] = []
    conditions: tuple[ast.Expr, ...] = ()
    actions: tuple[ast.Action, ...] = ()
    phase = kind if kind != "rule" else None
    phase_loc = symbols = reason = cooldown = reset = None
    priority, reset_manual = 0, False
    for value in c[2:]:
        item = value[0]
        if isinstance(item, ast.Let):
            lets.append(item)
            clauses.append(ast.Clause(item.loc, "let"))
            continue
        keyword, cloc, kids = item
        clauses.append(ast.Clause(cloc, _KEYWORDS.get(keyword, keyword)))
        if keyword == "on":
            phase, phase_loc = kids[0][0], _tok(kids[0], f)
        elif keyword == "priority":
            priority = kids[0][0]
        elif keyword == "symbols":
            symbols = tuple([k[0] for k in kids])
        elif keyword in ("when", "check", "trigger"):
            conditions = kids[0][0]
        elif keyword in ("then", "on_breach"):
            actions = tuple([k[0] for k in kids])
        elif keyword == "reason":
            reason = _unquote(kids[0][0])
        elif keyword == "cooldown":
            cooldown = kids[0][0]
        elif keyword == "reset":
            reset = kids[0][0]
        else:  # reset manual
            reset, reset_manual = (), True
    return ast.Block(
        loc, kind, c[0][0], title, phase, phase_loc, priority, symbols, tuple(lets), conditions,
        actions, reason, cooldown, reset, reset_manual, tuple(clauses),
    )  # fmt: skip


_KEYWORDS = {"reset_manual": "reset"}


def _decl(kind: str) -> Handler:
    def make(loc: Any, c: list[Any], f: str) -> ast.Block:
        return _block(loc, c, f, kind)

    return make


def _strategy(loc: Any, c: list[Any], f: str) -> ast.StrategyDecl:
    title = c[1][0] if c[1] is not None else None
    params, legs = [], []
    target = within = None
    for value in c[2:]:
        item = value[0]
        if isinstance(item, ast.ParamDecl):
            params.append(item)
        elif isinstance(item, ast.LegDecl):
            legs.append(item)
        else:  # ("expiry", target, within)
            target, within = item[1], item[2]
    return ast.StrategyDecl(loc, c[0][0], title, tuple(params), target, within, tuple(legs))


# Handlers by rule alias or name; `False` marks those that ignore the node's location.
_HANDLERS: dict[str, tuple[Handler, bool]] = {
    **{
        name: (fn, True)
        for name, fn in {
            "percent": _percent, "money": _money, "days": _days, "number": _number,
            "string": _string, "true": _true, "false": _false, "unknown": _unknown,
            "path": _path, "arg": _arg, "call": _call, "neg": _neg, "not_": _not, "or_": _or,
            "and_": _and, "compare": _compare, "in_": _in, "not_in": _not_in,
            "match_arm": _match_arm, "match_expr": _match_expr, "param_decl": _param,
            "strategy_param": _param, "action": _action, "let_clause": _let,
            "leg_clause": _leg, "strategy_decl": _strategy,
            **{f"{k}_decl": _decl(k) for k in ("rule", "limit", "breaker", "hedge", "regime")},
            **{f"{k}_clause": _clause(k) for k in (
                "on", "priority", "symbols", "when", "then", "reason", "check", "trigger",
                "cooldown", "reset")},
            "breach_clause": _clause("on_breach"), "reset_manual": _clause("reset_manual"),
        }.items()
    },
    **{
        name: (fn, False)
        for name, fn in {
            "arith": _arith, "list_lit": _values, "conditions": _values, "call_args": _values,
            "single_condition": _first, "version_decl": _first, "signed_int": _signed_int,
            "title": _title, "param_range": _pair, "expiry_clause": _expiry,
        }.items()
    },
}  # fmt: skip


# ------------------------------------------------------------------ reductions
def _gather(plan: list[tuple[int, int]]) -> Callable[[list[Val]], list[Any]]:
    """Lark's child filter: the kept children of a reduction, in order. `plan` holds
    (index, how): how 0 keeps s[index], 1 splices an inlined `_rule`'s children, 2 is None."""
    if all(how == 0 for _, how in plan):
        if len(plan) == 1:
            i = plan[0][0]
            return lambda s: [s[i]]
        get = itemgetter(*(i for i, _ in plan))
        return lambda s: list(get(s))
    if plan[0] == (0, 1) and all(how == 0 for _, how in plan[1:]):  # left recursion
        rest = [i for i, _ in plan[1:]]

        def extend(s: list[Val]) -> list[Any]:
            kids: list[Any] = s[0][0]
            kids.extend([s[i] for i in rest])
            return kids

        return extend

    def general(s: list[Val]) -> list[Any]:
        kids: list[Any] = []
        for i, how in plan:
            if how == 0:
                kids.append(s[i])
            elif how == 1:
                kids.extend(s[i][0])
            else:
                kids.append(None)
        return kids

    return general


def _reduction(rule: Any) -> Reduce | None:
    """The reduce function of one grammar rule; None for a pass-through `?rule: child`."""
    syms, alias, opts = rule.expansion, rule.alias, rule.options
    name, n = rule.origin.name, len(syms)
    assert not opts.keep_all_tokens
    if opts.expand1 and not alias and n == 1:
        return None
    empty = [0] * (n + 1)
    if opts.empty_indices:  # as in lark.parse_tree_builder.maybe_create_child_filter
        ones = "".join(str(int(b)) for b in opts.empty_indices).split("0")
        empty = [len(run) for run in ones]
    plan: list[tuple[int, int]] = []
    for i, sym in enumerate(syms):
        plan += [(i, 2)] * empty[i]
        if sym.is_term and sym.filter_out:
            continue
        plan.append((i, 1 if not sym.is_term and sym.name.startswith("_") else 0))
    plan += [(n, 2)] * empty[n]
    gather, last = _gather(plan), n - 1
    if name.startswith("_") or name == "start":  # inlined into the parent, or the file
        return lambda s, f: (gather(s), s[0][1], s[0][2], s[last][3], s[last][4])
    if opts.expand1 and not alias:  # "(" expr ")": the child, seen with the parentheses
        assert [how for _, how in plan] == [0], rule
        keep = plan[0][0]
        return lambda s, f: (s[keep][0], s[0][1], s[0][2], s[last][3], s[last][4])
    handler, with_loc = _HANDLERS[alias or name]
    if not with_loc:
        return lambda s, f: (handler(None, gather(s), f), s[0][1], s[0][2], s[last][3], s[last][4])

    def reduce(s: list[Val], f: str) -> Val:
        a, z = s[0], s[last]
        loc = Location(f, a[1], a[2], z[3], z[4])
        return (handler(loc, gather(s), f), a[1], a[2], z[3], z[4])

    return reduce


# ------------------------------------------------------------------ tables
class _Lexers(dict[int, tuple[Any, ...]]):
    """Per parser state, as the contextual lexer: (match, keyword map, ignored, newlines).
    Built on first use of each state's lexer, as Lark does."""

    def __init__(self, contextual: Any) -> None:
        super().__init__()
        self.contextual = contextual
        self.by_lexer: dict[int, tuple[Any, ...]] = {}

    def __missing__(self, state: int) -> tuple[Any, ...]:
        lexer = self.contextual.lexers[state]
        info = self.by_lexer.get(id(lexer))
        if info is None:
            scanner = lexer.scanner
            assert len(scanner._mres) == 1
            keywords: dict[str, dict[str, str]] = {}
            for typ, unless in lexer.callback.items():
                words = keywords[typ] = {}
                for t in unless.scanner.terminals:  # plain strings, no flags
                    assert t.pattern.type == "str" and not t.pattern.flags
                    words.setdefault(t.pattern.value, t.name)
            # Runs of ignored blanks are skipped with the token: only __IGNORE_0 can match at a
            # blank, so this matches what Lark's token-by-token loop would.
            assert "[\t \x0c]+" in {t.pattern.value for t in scanner.terminals}
            pattern = re.compile("[\t \x0c]*(?:" + scanner._mres[0].pattern + ")")
            info = (pattern.match, keywords, lexer.ignore_types, lexer.newline_types)
            self.by_lexer[id(lexer)] = info
        self[state] = info
        return info


class _Machine:
    def __init__(self) -> None:
        frontend: Any = _parser().parser
        table: Any = frontend.parser._parse_table
        self.start: int = table.start_states["start"]
        self.end: int = table.end_states["start"]
        self.lexers = _Lexers(frontend.lexer)
        # Per state, per symbol: (0, next state, None) to shift or go to; (1, memo, rule name)
        # to reduce a pass-through rule; (2, (size, reduce), rule name) for any other rule.
        # A chain of pass-through reductions ends in a state fixed by the state below it, so
        # each chain is walked once and memoised.
        self.table: dict[int, dict[str, tuple[int, Any, Any]]] = {}
        reductions: dict[Any, Reduce | None] = {}
        for state, actions in table.states.items():
            row = self.table[state] = {}
            for sym, (action, arg) in actions.items():
                if action is Shift:
                    row[sym] = (0, arg, None)
                    continue
                if arg not in reductions:
                    reductions[arg] = _reduction(arg)
                fn = reductions[arg]
                name = arg.origin.name
                row[sym] = (1, {}, name) if fn is None else (2, (len(arg.expansion), fn), name)

    def chain(self, below: int, state: int, typ: str) -> int:
        table = self.table
        kind, _, name = table[state][typ]
        while kind == 1:
            state = table[below][name][1]
            kind, _, name = table[state][typ]
        return state


@lru_cache(maxsize=1)
def _machine() -> _Machine:
    return _Machine()


def _stack_depth() -> int:
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    return depth


def fast_build(source: Source) -> ast.RuleFile:
    """Parse and build one file; raises Fallback instead of reporting any problem."""
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    if "\x00" in text or _stack_depth() + _HEADROOM_FRAMES > sys.getrecursionlimit():
        raise Fallback
    kids = _parse(_machine(), text, source.name)
    version = _int(kids[0][0])
    if version not in LANGUAGE_VERSIONS:
        raise Fallback
    params, blocks, strategies = [], [], []
    for value in kids[1:]:
        decl = value[0]
        if isinstance(decl, ast.ParamDecl):
            params.append(decl)
        elif isinstance(decl, ast.StrategyDecl):
            strategies.append(decl)
        else:
            blocks.append(decl)
    return ast.RuleFile(source, version, tuple(params), tuple(blocks), tuple(strategies))


def _parse(m: _Machine, text: str, file: str) -> list[Val]:
    """The LALR loop of lark.parsers.lalr_parser_state.ParserState.feed_token, fed by the
    contextual lexer's loop (lark.lexer.BasicLexer.next_token), both inlined."""
    table, lexers, chain = m.table, m.lexers, m.chain
    pos, line, line_start, size = 0, 1, 0, len(text)
    states, values = [m.start], []
    state = m.start
    try:
        while pos < size:
            match, keywords, ignore, newlines = lexers[state]
            found = match(text, pos)
            if found is None:
                raise Fallback
            typ = found.lastgroup
            val = found[typ]
            pos = found.end()
            begin = pos - len(val)
            token_line, column = line, begin - line_start + 1
            if typ in newlines and "\n" in val:
                line += val.count("\n")
                line_start = begin + val.rindex("\n") + 1
            if typ in ignore:
                continue
            if typ in keywords:
                typ = keywords[typ].get(val, typ)
            token = (val, token_line, column, line, pos - line_start + 1)
            row = table[state]
            while True:
                kind, arg, name = row[typ]
                if kind == 0:
                    states.append(arg)
                    values.append(token)
                    state = arg
                    break
                if kind == 1:
                    below = states[-2]
                    state = arg.get(below, -1)
                    if state < 0:
                        state = arg[below] = chain(below, states[-1], typ)
                    states[-1] = state
                else:
                    n, reduce = arg
                    s = values[-n:]
                    del values[-n:], states[-n:]
                    values.append(reduce(s, file))
                    state = table[states[-1]][name][1]
                    states.append(state)
                row = table[state]
            if len(states) > MAX_STACK:
                raise Fallback
        while True:  # the end of input: reduce until `start` is complete
            kind, arg, name = table[state]["$END"]
            if kind == 0:
                raise Fallback
            if kind == 1:
                states.pop()
            else:
                n, reduce = arg
                s = values[-n:]
                del values[-n:], states[-n:]
                values.append(reduce(s, file))
            state = table[states[-1]][name][1]
            states.append(state)
            if state == m.end:
                result: list[Val] = values[-1][0]
                return result
    except KeyError:  # no action for this token in this state: a syntax error
        raise Fallback from None
