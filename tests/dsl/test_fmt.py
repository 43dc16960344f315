"""The canonical formatter: pinned layout, idempotence, meaning and comment preservation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Token, Tree
from syrupy.assertion import SnapshotAssertion

from engine.dsl.errors import DslError
from engine.dsl.fmt import check_formatted, format_path, format_source
from engine.dsl.fmt_layout import SourceText
from engine.dsl.parser import parse
from engine.dsl.source import Source

MESSY = """\


# file header comment

version   1   # the version
param iv_rank_min :percent in[30%,90%]=50%   # bound
param   floor: number in [-5, 5] = -1



# about the entry rule
rule ic_entry "Iron condor when IV is rich" {  # opener
  on entry
\tpriority   -100

  symbols [SPY,QQQ]
  let target = match market.regime { crash => 40%  high_vol => 50%  else => 80% }
  let t2 = match market.regime {  # after brace
     crash => 40%    # crash arm
     # before else

     else => (80%)
  }
  when {
    underlying.iv_rank > iv_rank_min   # rank
    # inside when

    not has_position(strategy = iron_condor, symbol = underlying.symbol)
    (a or b) and ((c)) and -(x) < -(-y) * (1 + 2) and (z in [1, 2]) == false
  }
  then open iron_condor(short_delta = 0.16, wing_width = $1,000, dte = 45d), alert(severity = \
warning, message = "a very long message that goes well past the column limit"), hedge
  then roll short_put(dte = 45d),  # after roll
     # before alert
     alert(severity = info,
     note = "x")
  reason "esc \\" # not a comment"  # real comment
  # end of block
}
limit bw_delta "Beta-weighted delta band" { check -250 <= portfolio.bw_delta_spy <= 250
  on_breach block_entries, hedge, alert }
breaker daily_loss "Daily loss" {
  trigger portfolio.day_pnl < -$2,500.50
  then halt,close_all
  cooldown 1d
  reset when { market.vix < 30 }
}
breaker manual_stop {
  trigger unknown == risk.flag
  then halt
  reset manual
}
hedge delta_hedge {
  priority 5
  let band = 0.16
  when {}
  then hedge(delta = 0)
}
regime crash { when market.vix >= 40 and market.spy_drop_1d >= 5% or x not in [a, b]
priority 10 }
strategy iron_condor "Iron condor" {
  param short_delta: delta in [0.05, 0.45] = 0.16   # target delta
  expiry dte within 10d
  leg short_put sell put delta -short_delta
  leg long_put buy 2 put strike short_put.strike - wing_width
}
rule empty {
  # nothing here yet
}
rule bare {}
# end of file comment"""


def _fmt(text: str) -> str:
    return format_source(Source("test.v6", text))


def _shape(node: object) -> object:
    """A parse tree as plain data: rule names and token types/values, positions dropped."""
    if isinstance(node, Tree):
        return (str(node.data), tuple(_shape(c) for c in node.children))
    if isinstance(node, Token):
        return (node.type, str(node))
    return node


def _meaning(text: str) -> object:
    return _shape(parse(Source("test.v6", text)))


def _comments(text: str) -> list[str]:
    return [c.text for c in SourceText(text).comments]


def test_messy_file_snapshot(snapshot: SnapshotAssertion) -> None:
    assert _fmt(MESSY) == snapshot


def test_messy_file_is_idempotent_and_keeps_meaning() -> None:
    once = _fmt(MESSY)
    assert _fmt(once) == once
    assert check_formatted(Source("test.v6", once))
    assert not check_formatted(Source("test.v6", MESSY))
    assert _meaning(once) == _meaning(MESSY)
    assert _comments(once) == _comments(MESSY)


def test_layout_details() -> None:
    out = _fmt(MESSY)
    lines = out.split("\n")
    assert out.endswith("}\n\nrule bare {}\n# end of file comment\n")
    assert lines[0] == "# file header comment" and lines[2] == "version 1  # the version"
    # The grammar drops the sign of a priority; the formatter must not.
    assert "  priority -100" in lines
    assert all(len(ln) <= 100 for ln in lines if "#" not in ln)
    assert all(ln == ln.rstrip() and "\t" not in ln for ln in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version 1\nrule r { when (a > 1) }", "version 1\n\nrule r {\n  when a > 1\n}\n"),
        (
            "version 1\nrule r { when { a > 1 } }",
            "version 1\n\nrule r {\n  when {\n    a > 1\n  }\n}\n",
        ),
        (
            "version 1\nrule r { let x = (a + b) * -(c) }",
            "version 1\n\nrule r {\n  let x = (a + b) * -c\n}\n",
        ),
        ("version 1\r\nparam p: count = 3\r\n", "version 1\nparam p: count = 3\n"),
        ("version 1\n\n\n\nparam p: count = 3\n\n\n", "version 1\n\nparam p: count = 3\n"),
    ],
)
def test_small_cases(text: str, expected: str) -> None:
    assert _fmt(text) == expected
    assert _meaning(expected) == _meaning(text)


def test_long_match_goes_one_arm_per_line() -> None:
    arms = "  ".join(f"regime_{i} => {i}0%" for i in range(8))
    out = _fmt(f"version 1\nrule r {{\n  let t = match market.regime {{ {arms} }}\n}}\n")
    assert "  let t = match market.regime {\n    regime_0 => 00%\n" in out
    assert out.endswith("    regime_7 => 70%\n  }\n}\n")


def test_syntax_error_propagates() -> None:
    with pytest.raises(DslError):
        _fmt("version 1\nrule r {\n  when >\n}\n")


def test_pathological_nesting_is_a_diagnostic() -> None:
    with pytest.raises(DslError, match="too deeply nested"):
        _fmt("version 1\nrule r {\n  when " + "not " * 5000 + "a\n}\n")


def test_comment_placement_edge_cases() -> None:
    text = (
        "version 1\r\nrule r { on entry  # same line as brace\r\n"
        "  when {  # open\r\n\r\n  }\r\n}  # done"
    )
    assert _fmt(text) == (
        "version 1\n\nrule r {\n  on entry  # same line as brace\n"
        "  when {  # open\n  }\n}  # done\n"
    )


def test_format_path(tmp_path: Path) -> None:
    path = tmp_path / "r.v6"
    path.write_text("version 1\nparam  p: count = 3\n", encoding="utf-8")
    assert not format_path(path, write=False)
    assert path.read_text(encoding="utf-8") == "version 1\nparam  p: count = 3\n"
    assert not format_path(path, write=True)
    assert path.read_text(encoding="utf-8") == "version 1\nparam p: count = 3\n"
    assert format_path(path, write=True)


# ---------------------------------------------------------------------- generated files

# Precedence of what an expression text is, and the least each operator accepts unparenthesised.
_OR, _AND, _NOT, _CMP, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 9)

_space = st.sampled_from([" ", "  ", "\t", " \\\n  "])
_comment = st.text(alphabet='abc XYZ"#=_{}()019', max_size=16).map(lambda s: ("# " + s).rstrip())
_paths = st.sampled_from(["a", "x_1", "underlying.iv_rank", "market.regime", "position.pnl"])
_literals = st.sampled_from(
    ["50%", "12.5%", "$5", "$1,000.50", "45d", "0.16", "3", '"a # b"', '"q\\"x"', "true", "unknown"]
)


@st.composite
def _expr(draw: st.DrawFn, depth: int = 0) -> tuple[str, int]:
    def operand(minimum: int) -> str:
        text, prec = draw(_expr(depth + 1))
        if prec < minimum or draw(st.integers(0, 5)) == 0:
            return f"({draw(_space)}{text})" if draw(st.booleans()) else f"({text})"
        return text

    def sep() -> str:
        return draw(_space)

    kinds = (
        ["path", "literal"]
        if depth >= 3
        else [
            "path",
            "literal",
            "or",
            "and",
            "not",
            "cmp",
            "in",
            "sum",
            "product",
            "neg",
            "call",
            "match",
        ]
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "path":
        return draw(_paths), _ATOM
    if kind == "literal":
        return draw(_literals), _ATOM
    if kind in ("or", "and"):
        level = _OR if kind == "or" else _AND
        parts = [operand(level + 1) for _ in range(draw(st.integers(2, 3)))]
        return f"{sep()}{kind}{sep()}".join(parts), level
    if kind == "not":
        return f"not{sep()}{operand(_NOT)}", _NOT
    if kind == "cmp":
        ops = draw(
            st.lists(st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), min_size=1, max_size=2)
        )
        text = operand(_SUM)
        for op in ops:
            text += f"{sep()}{op}{sep()}{operand(_SUM)}"
        return text, _CMP
    if kind == "in":
        items = [operand(_OR) for _ in range(draw(st.integers(0, 2)))]
        word = draw(st.sampled_from(["in", "not in"]))
        return f"{operand(_SUM)}{sep()}{word}{sep()}[{', '.join(items)}]", _CMP
    if kind in ("sum", "product"):
        level, ops = (_SUM, "+-") if kind == "sum" else (_PRODUCT, "*/")
        text = operand(level)
        for op in draw(st.lists(st.sampled_from(ops), min_size=1, max_size=2)):
            text += f"{sep()}{op}{sep()}{operand(level + 1)}"
        return text, level
    if kind == "neg":
        return f"-{operand(_UNARY)}", _UNARY
    if kind == "call":
        name = draw(st.sampled_from(["abs", "max", "has_position"]))
        args = [operand(_OR) for _ in range(draw(st.integers(0, 2)))]
        if draw(st.booleans()):
            args.append(f"strategy{sep()}={sep()}{operand(_OR)}")
        return f"{name}({', '.join(args)})", _ATOM
    arms = [f"{n}{sep()}=>{sep()}{operand(_OR)}" for n in ("crash", "normal", "else")]
    if draw(st.booleans()):
        return f"match {operand(_OR)} {{ {'  '.join(arms)} }}", _ATOM
    inner = "".join(
        f"\n  {arm}  {draw(_comment)}" if draw(st.booleans()) else f"\n{arm}" for arm in arms
    )
    return f"match {operand(_OR)} {{{inner}\n}}", _ATOM


@st.composite
def _gap(draw: st.DrawFn) -> str:
    """A line break with, maybe, a trailing comment, blank lines and own-line comments."""
    text = f"  {draw(_comment)}" if draw(st.booleans()) else ""
    for _ in range(draw(st.integers(0, 2))):
        text += (
            "\n" * draw(st.integers(1, 3))
            + draw(st.sampled_from(["", "  ", "\t"]))
            + draw(_comment)
        )
    return text + "\n" * draw(st.integers(1, 3))


@st.composite
def _file(draw: st.DrawFn) -> str:
    def expr() -> str:
        return draw(_expr())[0]

    def conditions() -> str:
        if draw(st.booleans()):
            return expr()
        return (
            "{"
            + "".join(draw(_gap()) + expr() for _ in range(draw(st.integers(0, 3))))
            + draw(_gap())
            + "}"
        )

    def listed(items: list[str]) -> str:
        # The grammar allows a line break (so comments) after each comma of an action list.
        return "".join(
            ("," + (draw(_gap()) if draw(st.booleans()) else " ") if i else "") + item
            for i, item in enumerate(items)
        )

    def actions() -> str:
        verbs = st.sampled_from(["alert", "open iron_condor", "close", "roll short_put"])
        items = []
        for _ in range(draw(st.integers(1, 4))):
            args = listed([f"arg_{i} = {expr()}" for i in range(draw(st.integers(0, 3)))])
            items.append(draw(verbs) + (f"({args})" if args or draw(st.booleans()) else ""))
        return listed(items)

    clauses = {
        "rule": [
            lambda: "on entry",
            lambda: f"priority {draw(st.sampled_from(['', '-']))}{draw(st.integers(0, 200))}",
            lambda: "symbols [SPY, QQQ]",
            lambda: f"let t = {expr()}",
            lambda: f"when {conditions()}",
            lambda: f"then {actions()}",
            lambda: 'reason "because # so"',
        ],
        "limit": [lambda: f"check {conditions()}", lambda: f"on_breach {actions()}"],
        "breaker": [
            lambda: f"trigger {conditions()}",
            lambda: "cooldown 2d",
            lambda: f"reset when {conditions()}",
            lambda: "reset manual",
        ],
        "strategy": [
            lambda: "param d: delta in [0.05, 0.45] = 0.16",
            lambda: f"expiry {expr()} within 10d",
            lambda: f"leg lp buy {draw(st.sampled_from(['', '2 ']))}put strike {expr()}",
        ],
    }
    text = draw(st.sampled_from(["", "# top\n", "\n\n"])) + "version 1" + draw(_gap())
    for _ in range(draw(st.integers(0, 2))):
        text += "param p: percent in [-5%, 90%] = 50%" + draw(_gap())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(sorted(clauses)))
        picks = draw(st.lists(st.sampled_from(clauses[kind]), max_size=4))
        body = "".join(
            draw(_gap()) + draw(st.sampled_from(["", "    "])) + pick() for pick in picks
        )
        text += f"{kind} b{draw(_space)}{{{body}{draw(_gap())}}}" + draw(_gap())
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_file())
def test_generated_files_format_stably(text: str) -> None:
    once = _fmt(text)
    assert _fmt(once) == once
    assert _meaning(once) == _meaning(text)
    assert _comments(once) == _comments(text)
