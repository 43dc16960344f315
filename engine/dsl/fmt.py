"""The canonical formatter behind `v6 fmt`: one layout per meaning, every comment kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from lark import Token, Tree

from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.fmt_layout import Blank, Layout, SourceText, weave
from engine.dsl.parser import parse, read_source
from engine.dsl.source import Location, Source

MAX_WIDTH = 100
INDENT = 2
CONTINUATION = 4

_Node = Tree[Token] | Token
# Expressions whose parentheses never change the parse: they bind tighter than any operator.
_LITERALS = frozenset({"percent", "money", "days", "number", "string", "true", "false", "unknown"})
_ATOMS = _LITERALS | {"path", "call", "match_expr"}
_CONDITION_KEYWORDS = {
    "when_clause": "when",
    "check_clause": "check",
    "trigger_clause": "trigger",
    "reset_clause": "reset when",
}
_ACTION_KEYWORDS = {"then_clause": "then", "breach_clause": "on_breach"}


def format_source(source: Source) -> str:
    """The canonical text of `source`; a syntax error raises the parser's DslError."""
    tree = parse(source)
    # Offsets in the tree are into the text as parsed, which always ends with a line break.
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    src = SourceText(text)
    printer = _Printer(src)
    try:
        printer.file(tree)
    except RecursionError:  # thousands of nested `not`s parse (LALR is iterative) but recurse here
        diag = Diagnostic(Code.SYNTAX, "too deeply nested to format", Location(source.name, 1, 1))
        raise DslError([diag], {source.name: source}) from None
    return weave(printer.out.lines, src)


def check_formatted(source: Source) -> bool:
    """Whether `source` is already in canonical form (what `v6 fmt --check` asks)."""
    return format_source(source) == source.text


def format_path(path: Path, write: bool) -> bool:
    """True if the file is already canonical; otherwise rewrite it when `write` is set."""
    formatted = format_source(read_source(path)).encode("utf-8")
    if path.read_bytes() == formatted:
        return True
    if write:
        path.write_bytes(formatted)
    return False


def _start(node: _Node) -> int:
    if isinstance(node, Token):
        assert node.start_pos is not None
        return node.start_pos
    # A parenthesised node's container starts at its "(".
    return int(getattr(node.meta, "container_start_pos", node.meta.start_pos))


def _parenthesised(node: Tree[Token]) -> bool:
    return _start(node) != node.meta.start_pos


def _trees(children: Sequence[object]) -> list[Tree[Token]]:
    return [c for c in children if isinstance(c, Tree)]


class _Printer:
    def __init__(self, src: SourceText) -> None:
        self.src = src
        self.out = Layout()
        self._flat = False  # measuring: lay lists out on one line unless a comment breaks them

    # ------------------------------------------------------------------ declarations

    def file(self, tree: Tree[Token]) -> None:
        version, *decls = _trees(tree.children)
        self.out.line(0, _start(version), lead="none")
        self.out.write(f"version {version.children[0]}")
        after_block = False
        for decl in decls:
            is_block = decl.data != "param_decl"
            self.out.line(0, _start(decl), lead="one" if is_block or after_block else "keep")
            if is_block:
                self.block(decl)
            else:
                self.param(decl)
            after_block = is_block

    def param(self, node: Tree[Token]) -> None:
        name, unit, bounds, default = node.children
        self.out.write(f"param {name}: {unit}")
        if isinstance(bounds, Tree):
            low, high = bounds.children
            self.out.write(f" in [{self.constant(low)}, {self.constant(high)}]")
        self.out.write(f" = {self.constant(default)}")

    def constant(self, node: object) -> str:
        assert isinstance(node, Tree)
        if node.data == "neg":
            return "-" + self.constant(node.children[0])
        return str(node.children[0])

    def block(self, node: Tree[Token]) -> None:
        name, title, *items = node.children
        keyword = str(node.data).removesuffix("_decl")
        self.out.write(f"{keyword} {name} ")
        if isinstance(title, Tree):
            self.out.write(f"{title.children[0]} ")
        # The declaration's span runs on over the line break after its "}".
        close = self.src.code_before(node.meta.end_pos)
        self.braced(_trees(items), close, self.clause)

    def braced(self, items: list[Tree[Token]], close: int, item: Callable[[_Node], None]) -> None:
        """`{`, one item per line, `}`; `{}` when nothing is inside, not even a comment."""
        if not items and not self.src.has_comment(self.out.lines[-1].pos, close):
            self.out.write("{}")
            return
        self.out.write("{")
        base = self.out.indent
        for i, child in enumerate(items):
            self.out.line(base + INDENT, _start(child), lead="none" if i == 0 else "keep")
            item(child)
        self.out.line(base, close, lead="keep" if items else "none", tail=False, closer=True)
        self.out.write("}")

    # ------------------------------------------------------------------ clauses

    def clause(self, node: _Node) -> None:
        assert isinstance(node, Tree)
        kind, children = str(node.data), node.children
        write = self.out.write
        if kind in _CONDITION_KEYWORDS:
            write(_CONDITION_KEYWORDS[kind] + " ")
            self.conditions(children[0])
        elif kind in _ACTION_KEYWORDS:
            write(_ACTION_KEYWORDS[kind] + " ")
            self.actions(_trees(children))
        elif kind == "on_clause":
            write(f"on {children[0]}")
        elif kind == "priority_clause":
            number = children[0]
            assert isinstance(number, Tree)
            sign, digits = number.children
            write(f"priority {'-' if sign is not None else ''}{digits}")
        elif kind == "symbols_clause":
            write(f"symbols [{', '.join(map(str, children))}]")
        elif kind == "let_clause":
            write(f"let {children[0]} = ")
            self.expr(children[1], root=True)
        elif kind == "reason_clause":
            write(f"reason {children[0]}")
        elif kind == "cooldown_clause":
            write(f"cooldown {self.constant(children[0])}")
        elif kind == "reset_manual":
            write("reset manual")
        elif kind == "strategy_param":
            self.param(node)
        elif kind == "expiry_clause":
            write("expiry ")
            self.expr(children[0], root=True)
            write(" within ")
            self.expr(children[1], root=True)
        elif kind == "leg_clause":
            *words, value = (c for c in children if c is not None)
            write(f"leg {' '.join(map(str, words))} ")
            self.expr(value, root=True)
        else:
            raise AssertionError(f"unknown clause {kind}")

    def conditions(self, node: object) -> None:
        assert isinstance(node, Tree)
        if node.data == "single_condition":
            self.expr(node.children[0], root=True)
        else:
            self.braced(_trees(node.children), node.meta.end_pos - 1, partial(self.expr, root=True))

    def actions(self, actions: list[Tree[Token]]) -> None:
        """Actions filled up to the width, preferring a break between actions to one inside."""
        indent = self.out.indent + CONTINUATION
        for i, action in enumerate(actions):
            render = partial(self._action, action, indent)
            if i:
                self._separate(_start(action), render, indent, 0 if i == len(actions) - 1 else 1)
            render()

    def _action(self, action: Tree[Token], indent: int) -> None:
        verb, target, args = action.children
        self.out.write(f"{verb} {target}" if target is not None else str(verb))
        if isinstance(args, Tree):
            self.out.write("(")
            for i, arg in enumerate(_trees(args.children)):
                render = partial(self.expr, arg, True)
                if i:
                    self._separate(_start(arg), render, indent, 1)
                render()
            self.out.write(")")

    def _separate(self, pos: int, render: Callable[[], None], indent: int, after: int) -> None:
        """The comma before a list item, then a space or, after a comment or when the item
        would pass the width, a continuation line."""
        self.out.write(",")
        forced = self.src.has_comment(self.src.code_before(pos), pos)
        if not forced and (self._flat or self._fits(render, self.out.column + 1, after)):
            self.out.write(" ")
        else:
            self.out.line(indent, pos, lead="none", tail=False)

    def _fits(self, render: Callable[[], None], column: int, after: int) -> bool:
        first = self._measure(render, column).lines[0]
        return first.indent + len(first.text) + after <= MAX_WIDTH

    def _measure(self, render: Callable[[], None], column: int) -> Layout:
        """Lay out a fragment on its own, unwrapped, as if it started at `column`."""
        saved = self.out, self._flat
        self.out, self._flat = Layout.scratch(column), True
        try:
            render()
            return self.out
        finally:
            self.out, self._flat = saved

    # ------------------------------------------------------------------ expressions

    def expr(self, node: object, root: bool = False) -> None:
        """Print an expression, keeping the author's parentheses wherever they could matter."""
        assert isinstance(node, Tree)
        wrap = not root and node.data not in _ATOMS and _parenthesised(node)
        if wrap:
            self.out.write("(")
        self._bare(node)
        if wrap:
            self.out.write(")")

    def _bare(self, node: Tree[Token]) -> None:
        kind, children = str(node.data), node.children
        write = self.out.write
        if kind in ("or_", "and_"):
            for i, operand in enumerate(children):
                if i:
                    write(" or " if kind == "or_" else " and ")
                self.expr(operand)
        elif kind in ("compare", "arith"):
            for child in children:
                if isinstance(child, Token):
                    write(f" {child} ")
                else:
                    self.expr(child)
        elif kind in ("in_", "not_in"):
            self.expr(children[0])
            write(" in " if kind == "in_" else " not in ")
            self.expr(children[1])
        elif kind in ("not_", "neg"):
            write("not " if kind == "not_" else "-")
            self.expr(children[0])
        elif kind == "path":
            write(".".join(map(str, children)))
        elif kind in ("call", "list_lit"):
            items = _trees(children[1:] if kind == "call" else children)
            if kind == "call":
                self.expr(children[0])
            write("(" if kind == "call" else "[")
            for i, item in enumerate(items):
                if i:
                    write(", ")
                self.expr(item, root=True)
            write(")" if kind == "call" else "]")
        elif kind == "arg":
            write(f"{children[0]} = ")
            self.expr(children[1], root=True)
        elif kind == "match_expr":
            self.match(node)
        else:
            write(str(children[0]))

    def match(self, node: Tree[Token]) -> None:
        """One line if the author wrote it on one and it fits; otherwise one arm per line."""
        subject, *arms = _trees(node.children)
        if node.meta.line == node.meta.end_line:
            flat = self._measure(lambda: self._match_flat(subject, arms), self.out.column)
            if len(flat.lines) == 1 and flat.column <= MAX_WIDTH:
                self.out.write(flat.lines[0].text)
                return
        self.out.write("match ")
        self.expr(subject, root=True)
        self.out.write(" {")
        base = self.out.indent
        for i, arm in enumerate(arms):
            lead: Blank = "none" if i == 0 else "keep"
            self.out.line(base + INDENT, _start(arm), lead=lead)
            self._arm(arm)
        self.out.line(base, node.meta.end_pos - 1, tail=False, closer=True)
        self.out.write("}")

    def _match_flat(self, subject: Tree[Token], arms: list[Tree[Token]]) -> None:
        self.out.write("match ")
        self.expr(subject, root=True)
        self.out.write(" { ")
        for i, arm in enumerate(arms):
            if i:
                self.out.write("  ")
            self._arm(arm)
        self.out.write(" }")

    def _arm(self, arm: Tree[Token]) -> None:
        self.out.write(f"{arm.children[0]} => ")
        self.expr(arm.children[1], root=True)
