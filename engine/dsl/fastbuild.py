"""Text to syntax tree in one pass: parser.py's LALR tables and lexer regexes, driven directly.

build() (engine/dsl/build.py) tries this first: it builds the syntax tree while parsing, with
no Lark tree and no second pass, and returns exactly what the tree path returns. Anything
unusual (any lexing or syntax error, an unsupported version, a NUL byte, deep nesting, an
integer too long to convert) raises Fallback, and build() takes the tree path, which reports
the error (or builds the file) itself. Exactness rests on Lark's own parse table and per-state
lexers, and on reproducing Lark's propagate_positions: a node spans from the start of its first
raw child to the end of its last, filtered tokens included (a declaration ends after its line
break). Each stack value is (payload, line, column, end_line, end_column) of that span; a
token's payload is its text. `"(" expr ")"` passes the expression through with its own
location, but its parent sees the parentheses, as Lark widens the child's container span.
"""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter
from typing import Any

from lark.parsers.lalr_analysis import Shift

from engine.dsl import ast
from engine.dsl.build import _unquote  # shared, so that the two paths unquote alike
from engine.dsl.parser import LANGUAGE_VERSIONS, _parser
from engine.dsl.source import Location, Source

Val = tuple[Any, int, int, int, int]  # (payload, line, column, end_line, end_column)
Kids = list[Any]  # a reduction's kept children: stack values, None for an absent [optional]
Handler = Callable[[Any, Kids, str], Any]  # (location or None, kids, file name) -> payload
Reduce = Callable[[list[Val], str], Val]

# The tree path transforms recursively, two frames per tree level, and one parse-stack entry
# can stand for up to 9 levels (conditions > or_ > and_ > compare > arith > arith > call > path,
# all leftmost, and the entry's own node). Input whose parse stack could need more frames than
# the caller has left goes to the tree path, to fail (or not) there.
FRAMES_PER_STACK_ENTRY = 18
FRAMES_SPARE = 100


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """The fast path declines this input: take the tree path."""


def _int(text: str) -> int:
    if len(text) > 9:  # a priority or version this long is an error: the tree path reports it
        raise Fallback
    return int(text)


# ------------------------------------------------------------------ node handlers
# As _Build in build.py does, on stack values: `c[i][0]` is a child's payload.
def _call(loc: Any, c: Kids, f: str) -> ast.Call:
    items = [x[0] for x in c[1:] if x is not None]
    args = tuple(x for x in items if not isinstance(x, ast.Arg))
    return ast.Call(loc, c[0][0].dotted, args, tuple(x for x in items if isinstance(x, ast.Arg)))


def _neg(loc: Any, c: Kids, f: str) -> ast.Expr:
    inner = c[0][0]
    if isinstance(inner, ast.Literal) and isinstance(inner.value, float):
        return ast.Literal(loc, -inner.value, inner.kind, "-" + inner.text)
    return ast.Neg(loc, inner)


def _arith(loc: Any, c: Kids, f: str) -> ast.Expr:
    acc: ast.Expr = c[0][0]
    for op, right in zip(c[1::2], c[2::2], strict=True):
        r, a = right[0], acc.loc
        acc = ast.BinOp(Location(a.file, a.line, a.column, r.loc.end_line, r.loc.end_column),
                        op[0], acc, r)  # fmt: skip
    return acc


def _leg(loc: Any, c: Kids, f: str) -> ast.LegDecl:
    name, side, ratio, right, sel, v = c
    side_at, right_at, sel_at = (Location(f, *t[1:]) for t in (side, right, sel))
    n = _int(ratio[0]) if ratio is not None else 1
    return ast.LegDecl(loc, name[0], side[0], side_at, n, right[0], right_at, sel[0], sel_at, v[0])


def _param(loc: Any, c: Kids, f: str) -> ast.ParamDecl:
    low, high = c[2][0] if c[2] else (None, None)
    return ast.ParamDecl(loc, c[0][0], c[1][0], Location(f, *c[1][1:]), c[3][0], low, high)


# A block clause is (keyword, location, the Block fields it sets), applied in order by _block.
_CLAUSES: dict[str, tuple[str, Callable[[Kids, str], dict[str, Any]]]] = {
    "on_clause": ("on", lambda c, f: {"phase": c[0][0], "phase_loc": Location(f, *c[0][1:])}),
    "priority_clause": ("priority", lambda c, f: {"priority": c[0][0]}),
    "symbols_clause": ("symbols", lambda c, f: {"symbols": tuple([k[0] for k in c])}),
    "when_clause": ("when", lambda c, f: {"conditions": c[0][0]}),
    "check_clause": ("check", lambda c, f: {"conditions": c[0][0]}),
    "trigger_clause": ("trigger", lambda c, f: {"conditions": c[0][0]}),
    "then_clause": ("then", lambda c, f: {"actions": tuple([k[0] for k in c])}),
    "breach_clause": ("on_breach", lambda c, f: {"actions": tuple([k[0] for k in c])}),
    "reason_clause": ("reason", lambda c, f: {"reason": _unquote(c[0][0])}),
    "cooldown_clause": ("cooldown", lambda c, f: {"cooldown": c[0][0]}),
    "reset_clause": ("reset", lambda c, f: {"reset": c[0][0]}),
    "reset_manual": ("reset", lambda c, f: {"reset": (), "reset_manual": True}),
}


def _clause(keyword: str, sets: Callable[[Kids, str], dict[str, Any]]) -> Handler:
    return lambda loc, c, f: (keyword, loc, sets(c, f))


def _block(kind: str) -> Handler:
    def make(loc: Any, c: Kids, f: str) -> ast.Block:
        fields: dict[str, Any] = {"phase": kind if kind != "rule" else None, "phase_loc": None,
                                  "priority": 0, "symbols": None, "conditions": (),
                                  "actions": (), "reason": None}  # fmt: skip
        lets, clauses = [], []
        for value in c[2:]:
            if isinstance(item := value[0], ast.Let):
                lets.append(item)
                clauses.append(ast.Clause(item.loc, "let"))
            else:
                keyword, where, sets = item
                clauses.append(ast.Clause(where, keyword))
                fields.update(sets)
        title = c[1] and c[1][0]
        return ast.Block(loc, kind, c[0][0], title, lets=tuple(lets), clauses=tuple(clauses),
                         **fields)  # fmt: skip

    return make


def _strategy(loc: Any, c: Kids, f: str) -> ast.StrategyDecl:
    params, legs, target, within = [], [], None, None
    for value in c[2:]:
        if isinstance(item := value[0], ast.ParamDecl):
            params.append(item)
        elif isinstance(item, ast.LegDecl):
            legs.append(item)
        else:  # ("expiry", target, within)
            target, within = item[1], item[2]
    title = c[1] and c[1][0]
    return ast.StrategyDecl(loc, c[0][0], title, tuple(params), target, within, tuple(legs))


def _payloads(loc: Any, c: Kids, f: str) -> tuple[Any, ...]:
    return tuple([x[0] for x in c if x is not None])


Lit = ast.Literal
# By rule alias or name: handlers given the node's location, then those not needing it.
_NODES: dict[str, Handler] = {
    "percent": lambda loc, c, f: Lit(loc, float(c[0][0][:-1]) / 100.0, "percent", c[0][0]),
    "money": lambda loc, c, f: Lit(loc, float(c[0][0][1:].replace(",", "")), "money", c[0][0]),
    "days": lambda loc, c, f: Lit(loc, float(c[0][0][:-1]), "days", c[0][0]),
    "number": lambda loc, c, f: Lit(loc, float(c[0][0]), "number", c[0][0]),
    "string": lambda loc, c, f: Lit(loc, _unquote(c[0][0]), "string", c[0][0]),
    "true": lambda loc, c, f: Lit(loc, True, "bool", "true"),
    "false": lambda loc, c, f: Lit(loc, False, "bool", "false"),
    "unknown": lambda loc, c, f: Lit(loc, None, "unknown", "unknown"),
    "path": lambda loc, c, f: ast.Path(loc, tuple([t[0] for t in c])),
    "arg": lambda loc, c, f: ast.Arg(loc, c[0][0], c[1][0]),
    "call": _call,
    "neg": _neg,
    "not_": lambda loc, c, f: ast.Not(loc, c[0][0]),
    "or_": lambda loc, c, f: ast.BoolOp(loc, "or", tuple([x[0] for x in c])),
    "and_": lambda loc, c, f: ast.BoolOp(loc, "and", tuple([x[0] for x in c])),
    "compare": lambda loc, c, f: ast.Compare(
        loc, tuple([x[0] for x in c[0::2]]), tuple([t[0] for t in c[1::2]])
    ),
    "in_": lambda loc, c, f: ast.In(loc, c[0][0], c[1][0], False),
    "not_in": lambda loc, c, f: ast.In(loc, c[0][0], c[1][0], True),
    "match_arm": lambda loc, c, f: ast.MatchArm(
        loc, c[0][0] if c[0][0] != "else" else None, c[1][0]
    ),
    "match_expr": lambda loc, c, f: ast.Match(loc, c[0][0], tuple([x[0] for x in c[1:]])),
    **dict.fromkeys(("param_decl", "strategy_param"), _param),
    "action": lambda loc, c, f: ast.Action(loc, c[0][0], c[1] and c[1][0], c[2][0] if c[2] else ()),
    "let_clause": lambda loc, c, f: ast.Let(loc, c[0][0], c[1][0]),
    "leg_clause": _leg,
    "strategy_decl": _strategy,
    **{f"{k}_decl": _block(k) for k in ("rule", "limit", "breaker", "hedge", "regime")},
    **{name: _clause(keyword, sets) for name, (keyword, sets) in _CLAUSES.items()},
}
_VALUES: dict[str, Handler] = {
    "arith": _arith,
    **dict.fromkeys(("list_lit", "conditions", "call_args"), _payloads),
    "single_condition": lambda loc, c, f: (c[0][0],),
    "version_decl": lambda loc, c, f: c[0][0],
    "signed_int": lambda loc, c, f: -_int(c[1][0]) if c[0] else _int(c[1][0]),
    "title": lambda loc, c, f: _unquote(c[0][0]),
    "param_range": lambda loc, c, f: (c[0][0], c[1][0]),
    "expiry_clause": lambda loc, c, f: ("expiry", c[0][0], c[1][0]),
}


# ------------------------------------------------------------------ reductions
def _gather(plan: list[tuple[int, int]]) -> Callable[[list[Val]], Kids]:
    """lark.parse_tree_builder.ChildFilterLALR for one rule; `plan` has (index, how): how 0 keeps
    s[index], 1 splices an inlined `_rule`'s kids (reusing a first list), 2 is an absent [x]."""
    if plan and all(how == 0 for _, how in plan):
        get = itemgetter(*(i for i, _ in plan))
        return (lambda s: [get(s)]) if len(plan) == 1 else (lambda s: list(get(s)))

    def general(s: list[Val]) -> Kids:
        kids: Kids = []
        for i, how in plan:
            if how == 0:
                kids.append(s[i])
            elif how == 2:
                kids.append(None)
            elif kids:
                kids.extend(s[i][0])
            else:  # left recursion: extend the list the inlined rule built
                kids = s[i][0]
        return kids

    return general


def _reduction(rule: Any) -> Reduce | None:
    """The reduce function of one grammar rule; None for a pass-through `?rule: child`."""
    syms, alias, opts = rule.expansion, rule.alias, rule.options
    name, n = str(rule.origin.name), len(syms)
    assert not opts.keep_all_tokens
    if opts.expand1 and not alias and n == 1:
        return None
    empty = [0] * (n + 1)
    if opts.empty_indices:  # as lark.parse_tree_builder.maybe_create_child_filter reads them
        empty = [len(ones) for ones in "".join(str(int(b)) for b in opts.empty_indices).split("0")]
    plan: list[tuple[int, int]] = []
    for i, sym in enumerate(syms):
        plan += [(i, 2)] * empty[i]
        if not (sym.is_term and sym.filter_out):
            plan.append((i, 1 if not sym.is_term and sym.name.startswith("_") else 0))
    plan += [(n, 2)] * empty[n]
    gather, last = _gather(plan), n - 1
    if name.startswith("_") or name == "start":  # inlined into the parent, or the file's kids
        return lambda s, f: (gather(s), s[0][1], s[0][2], s[last][3], s[last][4])
    if opts.expand1 and not alias:  # "(" expr ")": the child, seen with its parentheses
        assert [how for _, how in plan] == [0], rule
        keep = plan[0][0]
        return lambda s, f: (s[keep][0], s[0][1], s[0][2], s[last][3], s[last][4])
    if (handler := _VALUES.get(alias or name)) is not None:
        return lambda s, f: (handler(None, gather(s), f), s[0][1], s[0][2], s[last][3], s[last][4])
    node = _NODES[alias or name]

    def reduce(s: list[Val], f: str) -> Val:
        a, z = s[0], s[last]
        return (node(Location(f, a[1], a[2], z[3], z[4]), gather(s), f), a[1], a[2], z[3], z[4])

    return reduce


# ------------------------------------------------------------------ tables
class _Lexers(dict[int, tuple[Any, ...]]):
    """Per parser state, its contextual lexer as (match, keyword map, ignored, newline types),
    made on first use, as Lark makes its per-state lexers."""

    def __init__(self, contextual: Any) -> None:
        self.contextual, self.made = contextual, dict[int, tuple[Any, ...]]()

    def __missing__(self, state: int) -> tuple[Any, ...]:
        lexer = self.contextual.lexers[state]
        if id(lexer) not in self.made:
            scanner = lexer.scanner
            assert len(scanner._mres) == 1
            keywords: dict[str, dict[str, str]] = {}  # lark.lexer.UnlessCallback, as a dict
            for typ, unless in lexer.callback.items():
                words = keywords[str(typ)] = {}
                for t in unless.scanner.terminals:
                    assert t.pattern.type == "str" and not t.pattern.flags
                    words.setdefault(str(t.pattern.value), str(t.name))
            # Blanks are skipped with the token after them: no other terminal starts with one,
            # so Lark, one token at a time, would match the ignored blank run there and go on.
            assert "[\t \x0c]+" in {t.pattern.value for t in scanner.terminals}
            pattern = re.compile("[\t \x0c]*(?:" + scanner._mres[0].pattern + ")")
            made = (pattern.match, keywords, lexer.ignore_types, lexer.newline_types)
            self.made[id(lexer)] = made
        self[state] = self.made[id(lexer)]
        return self[state]


class _Machine:
    def __init__(self) -> None:
        frontend: Any = _parser().parser
        table: Any = frontend.parser._parse_table
        self.start: int = table.start_states["start"]
        self.end: int = table.end_states["start"]
        self.lexers = _Lexers(frontend.lexer)
        # Per state and symbol: (0, next state, None) to shift or go to; (2, (size, reduce), rule
        # name) to reduce; (1, memo, rule name) to reduce a pass-through rule: such chains end in
        # a state fixed by the state below, walked once and kept in the first step's memo.
        self.table: dict[int, dict[str, tuple[int, Any, Any]]] = {}
        reductions = {id(rule): _reduction(rule) for rule in frontend.parser_conf.rules}  # by id
        for state, actions in table.states.items():
            row = self.table[state] = {}
            for sym, (action, arg) in actions.items():
                assert not (action is Shift and sym == "$END")
                if action is Shift:
                    row[sym] = (0, arg, None)
                    continue
                fn, name = reductions[id(arg)], str(arg.origin.name)  # lark's hash and eq are slow
                row[sym] = (1, {}, name) if fn is None else (2, (len(arg.expansion), fn), name)


@lru_cache(maxsize=1)
def _machine() -> _Machine:
    return _Machine()


def fast_build(source: Source) -> ast.RuleFile:
    """Parse and build one file; raises Fallback instead of reporting any problem."""
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    if "\x00" in text:
        raise Fallback
    depth, frame = 0, sys._getframe()  # the caller's stack, to leave room for the tree path
    while frame.f_back is not None:
        depth, frame = depth + 1, frame.f_back
    room = sys.getrecursionlimit() - depth - FRAMES_SPARE
    # The build makes ~10^5 objects and no reference cycles; pausing the cyclic collector for
    # its duration stops it from walking the whole heap repeatedly (it is restored after).
    collecting = gc.isenabled()
    gc.disable()
    try:
        kids = _parse(_machine(), text, source.name, room // FRAMES_PER_STACK_ENTRY)
    finally:
        if collecting:
            gc.enable()
    if (version := _int(kids[0][0])) not in LANGUAGE_VERSIONS:
        raise Fallback
    decls = [value[0] for value in kids[1:]]
    params = tuple(d for d in decls if isinstance(d, ast.ParamDecl))
    blocks = tuple(d for d in decls if isinstance(d, ast.Block))
    return ast.RuleFile(source, version, params, blocks,
                        tuple(d for d in decls if isinstance(d, ast.StrategyDecl)))  # fmt: skip


def _parse(m: _Machine, text: str, file: str, max_stack: int) -> Kids:
    """lark.parsers.lalr_parser_state.ParserState.feed_token, fed by the contextual lexer
    (lark.lexer.ContextualLexer.lex, BasicLexer.next_token), both inlined; the file's kids."""
    table, lexers, end = m.table, m.lexers, m.end
    pos, line, line_start, size = 0, 1, 0, len(text)
    states: list[int] = [m.start]
    values: list[Any] = []
    state, token = m.start, None
    try:
        while True:
            if pos < size:
                match, keywords, ignore, newlines = lexers[state]
                if (found := match(text, pos)) is None:
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
            else:
                typ = "$END"  # never shifted: reduce until `start` is complete, or fail
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
                    if (state := arg.get(below, -1)) < 0:  # walk the chain, remember its end
                        state, step = states[-1], 1
                        while step == 1:
                            state = table[below][name][1]
                            step, _, name = table[state][typ]
                        arg[below] = state
                    states[-1] = state
                else:
                    n, reduce = arg
                    s = values[-n:]
                    del values[-n:], states[-n:]
                    values.append(reduce(s, file))
                    if (state := table[states[-1]][name][1]) == end:
                        kids: Kids = values[-1][0]
                        return kids
                    states.append(state)
                row = table[state]
            if len(states) > max_stack:
                raise Fallback
    except KeyError:  # no action for this token in this state: a syntax error
        raise Fallback from None
