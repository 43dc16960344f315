"""The canonical formatter behind `v6 fmt`: one layout per meaning, every comment kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lark import Token, Tree

from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.fmt_layout import Blank, Layout, SourceText, weave
from engine.dsl.parser import parse, read_source
from engine.dsl.source import Location, Source

MAX_WIDTH = 100
INDENT = 2
CONTINUATION = 4

_Node = Tree[object] | Token
# Expressions whose parentheses never change the parse: they bind tighter than any operator.
_ATOMS = frozenset(
    {"path", "call", "match_expr", "percent", "money", "days", "number", "string", "true", "false"}
    | {"unknown"}
)
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


def _parenthesised(node: Tree[object]) -> bool:
    return _start(node) != node.meta.start_pos


def _trees(children: list[object]) -> list[Tree[object]]:
    return [c for c in children if isinstance(c, Tree)]


class _Printer:
    def __init__(self, src: SourceText) -> None:
        self.src = src
        self.out = Layout()

    # ------------------------------------------------------------------ declarations

    def file(self, tree: Tree[object]) -> None:
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

    def param(self, node: Tree[object]) -> None:
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

    def block(self, node: Tree[object]) -> None:
        name, title, *items = node.children
        keyword = str(node.data).removesuffix("_decl")
        self.out.write(f"{keyword} {name} ")
        if isinstance(title, Tree):
            self.out.write(f"{title.children[0]} ")
        # The declaration's span runs on over the line break after its "}".
        close = self.src.code_before(node.meta.end_pos)
        self.braced(_trees(items), close, self.clause)

    def braced(self, items: list[Tree[object]], close: int, item: Callable[[_Node], None]) -> None:
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
            # The grammar drops the sign token of signed_int, so read it back from the source.
            sign = "-" if self.src.text[number.meta.start_pos] == "-" else ""
            write(f"priority {sign}{number.children[0]}")
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
            self.braced(_trees(node.children), node.meta.end_pos - 1, self.condition)

    def condition(self, node: _Node) -> None:
        self.expr(node, root=True)

    def actions(self, actions: list[Tree[object]]) -> None:
        """Actions and their arguments, filled up to the width; a comment forces a break."""
        pieces: list[tuple[int, Callable[[], None]]] = []
        for action in actions:
            verb, target, args = action.children
            head = f"{verb} {target}" if target is not None else str(verb)
            if not isinstance(args, Tree):
                pieces.append((_start(action), self._piece(head, None, "")))
                continue
            listed = _trees(args.children)
            if not listed:
                pieces.append((_start(action), self._piece(head + "()", None, "")))
            for i, arg in enumerate(listed):
                opening = head + "(" if i == 0 else ""
                closing = ")" if i == len(listed) - 1 else ""
                pos = _start(action) if i == 0 else _start(arg)
                pieces.append((pos, self._piece(opening, arg, closing)))
        indent = self.out.indent + CONTINUATION
        for i, (pos, render) in enumerate(pieces):
            if i:
                self.out.write(",")
                comma = 1 if i < len(pieces) - 1 else 0
                width = len(self._measure(render, self.out.column + 1).lines[0].text)
                forced = self.src.has_comment(pieces[i - 1][0], pos)
                if forced or self.out.column + 1 + width + comma > MAX_WIDTH:
                    self.out.line(indent, pos, lead="none", tail=False)
                else:
                    self.out.write(" ")
            render()

    def _piece(self, opening: str, arg: Tree[object] | None, closing: str) -> Callable[[], None]:
        def render() -> None:
            self.out.write(opening)
            if arg is not None:
                self.expr(arg, root=True)
            self.out.write(closing)

        return render

    def _measure(self, render: Callable[[], None], column: int) -> Layout:
        """Lay out a fragment on its own, as if it started at `column`."""
        saved, self.out = self.out, Layout.scratch(column)
        try:
            render()
            return self.out
        finally:
            self.out = saved

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

    def _bare(self, node: Tree[object]) -> None:
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

    def match(self, node: Tree[object]) -> None:
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

    def _match_flat(self, subject: Tree[object], arms: list[Tree[object]]) -> None:
        self.out.write("match ")
        self.expr(subject, root=True)
        self.out.write(" { ")
        for i, arm in enumerate(arms):
            if i:
                self.out.write("  ")
            self._arm(arm)
        self.out.write(" }")

    def _arm(self, arm: Tree[object]) -> None:
        self.out.write(f"{arm.children[0]} => ")
        self.expr(arm.children[1], root=True)
