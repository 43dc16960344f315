"""The one-pass builder (engine/dsl/fastbuild.py) against the tree path it speeds up.

For every input, build() must give exactly what build_reference() gives: an equal RuleFile,
every Location included (compared by == and by repr, so -0.0 against 0.0 or a lark Token
against a str would show), or the same DslError, or the same crash. Where the fast path itself
returns, it must equal the tree path; where it declines (Fallback), the tree path must fail,
except for nesting deeper than it takes on, so that valid files really take the fast path.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dsl import ast
from engine.dsl.build import build, build_reference
from engine.dsl.errors import DslError
from engine.dsl.fastbuild import Fallback, fast_build
from engine.dsl.source import Source
from engine.paths import RISK_POLICIES_DIR, ROOT, RULES_DIR, STRATEGIES_DIR

FILES = sorted(p for d in (RULES_DIR, STRATEGIES_DIR, RISK_POLICIES_DIR) for p in d.rglob("*.v6"))
CORPUS = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in FILES]

# CI: a fixed 400 examples per test. Longer, random: V6_EQUIV_EXAMPLES=20000 uv run pytest ...
LONG = int(os.environ.get("V6_EQUIV_EXAMPLES", "0"))
EXAMPLES = settings(
    max_examples=LONG or 400,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def outcome(fn: Callable[[Source], ast.RuleFile], source: Source) -> tuple[str, Any]:
    try:
        return ("ok", fn(source))
    except DslError as exc:
        return ("error", (exc.render(), repr(exc.diagnostics)))
    except Exception as exc:  # the tree path's own crashes (e.g. lark's VisitError) too
        return ("crash", (type(exc).__name__, str(exc)))


def fast(source: Source) -> ast.RuleFile | None:
    try:
        return fast_build(source)
    except Fallback:
        return None


def same(a: object, b: object) -> bool:
    # Deeply nested trees compare (and repr) recursively: allow for it, after the builds.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return a == b and repr(a) == repr(b)
    finally:
        sys.setrecursionlimit(limit)


def assert_equivalent(name: str, text: str, *, deep: bool = False) -> bool:
    """build() and the fast path against the tree path; True if the file builds."""
    source = Source(name, text)
    expected = outcome(build_reference, source)
    actual = outcome(build, source)
    got = fast(source)
    assert same(actual, expected), (actual[0], expected[0])
    if got is not None:
        assert expected[0] == "ok", expected
        assert same(got, expected[1])
    else:
        assert deep or expected[0] != "ok", f"the fast path declined a valid file: {name}"
    return expected[0] == "ok"


# ------------------------------------------------------------------ shipped and generated files
def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 12
    assert {n.split("/")[0] for n, _ in CORPUS} == {"rules", "strategies", "risk_policies"}


@pytest.mark.parametrize(("name", "text"), CORPUS, ids=[n for n, _ in CORPUS])
def test_shipped_file(name: str, text: str) -> None:
    assert assert_equivalent(name, text)
    assert fast(Source(name, text)) is not None


@cache
def generated() -> str:
    from engine.bench.dsl import generated_rules

    return generated_rules()


def test_generated_thousand_rules() -> None:
    text = generated()
    assert text.count("\nrule ") == 1000
    assert assert_equivalent("generated.v6", text)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_other_seeds(seed: int) -> None:
    from engine.bench.dsl import generated_rules

    assert assert_equivalent(f"g{seed}.v6", generated_rules(60, seed=seed))


# ------------------------------------------------------------------ forms that must stay valid
def _continued(line: str) -> str:
    if '"' in line or "#" in line:
        return line
    return line.replace(" >= ", " \\\n      >= ").replace(" and ", " \\\n and ")


def _commented(line: str) -> str:
    return line + "  # note" if line.strip() and not line.rstrip().endswith("\\") else line


# Rewrites that keep a shipped file valid, in an order in which they compose.
def _variants(text: str) -> dict[str, str]:
    lines = text.split("\n")
    return {
        "trailing_blanks": "\n".join(ln + " \t " for ln in lines),
        "tabs_and_form_feeds": text.replace("  ", "\t").replace(" = ", "\x0c=\x0c"),
        "comment_lines": "\n".join(f"{ln}\n# between\n\n" if ln.strip() else ln for ln in lines),
        "leading_comment": "# header\n\n" + text,
        "parenthesised_paths": re.sub(
            r"(?<=[\s(,=<>])((?:market|underlying|position|portfolio)\.[a-z_0-9.]+)(?![\w(])",
            r"((\1))",
            text,
        ),
        "continuations": "\n".join(_continued(ln) for ln in lines),
        "comments": "\n".join(_commented(ln) for ln in lines),
        "crlf": text.replace("\n", "\r\n"),
        "no_final_newline": text.rstrip("\n"),
    }


@pytest.mark.parametrize(("name", "text"), CORPUS, ids=[n for n, _ in CORPUS])
def test_valid_variants(name: str, text: str) -> None:
    for kind, variant in _variants(text).items():
        assert assert_equivalent(f"{name}[{kind}]", variant), kind


def test_each_kind_of_declaration_and_clause() -> None:
    text = """version 1
param p: percent in [-5%, 90%] = 50%
param q: days = 45d
rule r "t" {
  on entry
  priority -3
  symbols [SPY, QQQ]
  let x = -(-(1 + 2) * 3) - 4 / 5
  when {
    not (x > 1 or x < -1) and 1 <= x <= 2
    market.regime in [crash, normal]
    market.regime not in []
    match market.regime { crash => 1  else => 2 } >= $1,000.50
    f(1, a = true, b = unknown, c = "s\\"q\\n\\\\")
    g() == 1.5e3
  }
  then open iron_condor(short_delta = 0.16,
    dte = 45d), alert(severity = warning), close x, close
  reason "why"
}
limit l { check x > 1
  on_breach block_entries
  reason "r" }
breaker b {
  trigger { x > 1 }
  then flatten
  cooldown -1d
  reset when { x < 1 }
}
breaker c {
  trigger x
  reset manual
}
hedge h { when x
  then hedge(delta = 5)
}
regime g "G" { when x
  priority 2
  let y = 1 }
strategy s "S" {
  param d: delta in [0.05, 0.45] = 0.16
  expiry dte within 10d
  leg a sell put delta -d
  leg b buy 2 call strike a.strike + 5
}
"""
    assert assert_equivalent("all.v6", text)
    for part in re.split(r"\n(?=\w)", text)[1:]:  # each declaration on its own
        assert assert_equivalent("one.v6", "version 1\n" + part + "\n")


# ------------------------------------------------------------------ nesting and odd inputs
NESTINGS: dict[str, Callable[[int], str]] = {
    "not": lambda d: "not " * d + "x",
    "neg": lambda d: "- " * d + "x > 0",
    "parens": lambda d: "a + (" * d + "b" + ")" * d + " > 0",
    "left_parens": lambda d: "(" * d + "a" + " * b + c < d and e or f)" * d,
    "calls": lambda d: "f(" * d + "a.b(1) * b" + ")" * d,
    "lists": lambda d: "x in [" * d + "a" + "]" * d,
    "matches": lambda d: "match x { a => " * d + "1" + " }" * d + " > 0",
}


@pytest.mark.parametrize("kind", NESTINGS)
def test_nesting_up_to_and_past_the_fast_path_limit(kind: str) -> None:
    taken = []
    for depth in [*range(0, 40, 3), 60, 100]:
        body = NESTINGS[kind](depth)
        text = f"version 1\nrule r {{\n  on exit\n  when {body}\n  then close\n}}\n"
        assert_equivalent("n.v6", text, deep=True)
        taken.append(fast(Source("n.v6", text)) is not None)
    assert taken[0] and taken[1] and not taken[-1]


@pytest.mark.parametrize("depth", [300, 2000])
def test_too_deep_fails_alike(depth: int) -> None:
    text = "version 1\nrule r {\n  on exit\n  when " + "not " * depth + "x\n  then close\n}\n"
    assert assert_equivalent("deep.v6", text, deep=True) == (depth < 400)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "# only a comment\n",
        "version 1",
        "version 1\n",
        "version 2\nrule r { on exit }\n",
        "version 01\n",
        "version " + "1" * 5000 + "\n",
        "version 1\nrule r { priority " + "9" * 5000 + " }\n",
        "version 1\nrule r { on exit }\x00\n",
        'version 1\nrule r "\x00" { on exit }\n',
        "version 1\nrule r { on exit }",
        "version 1\n\\\nrule r { on exit }\n",
        "version 1\nrule r {\n",
        "version 1\nrule regime { on regime }\n",
        "version 1\nrule r { when market.regime == regime }\n",
        "version 1\nrule r { when 2d > 1d }\nrule s { priority 2d }\n",
        "version 1\nrule r { when x > -  1 }\n",
        "\ufeffversion 1\n",
        "version 1\r\nrule r {\r\n  on exit\r\n}\r\n",
        "version 1\nrule r {}\n\n\n# end",
    ],
)
def test_edge_cases(text: str) -> None:
    assert_equivalent("e.v6", text)


def test_garbage_collection_is_left_as_found() -> None:
    name, text = CORPUS[0]
    assert gc.isenabled()
    fast_build(Source(name, text))
    assert gc.isenabled()
    gc.disable()
    try:
        fast_build(Source(name, text))
        assert not gc.isenabled()
    finally:
        gc.enable()


# ------------------------------------------------------------------ mutations
KEYWORDS = ["version", "rule", "limit", "breaker", "hedge", "regime", "strategy", "param", "on",
            "priority", "symbols", "let", "when", "then", "reason", "check", "on_breach",
            "trigger", "cooldown", "reset", "manual", "expiry", "within", "leg", "match", "else",
            "and", "or", "not", "in", "true", "false", "unknown"]  # fmt: skip
PUNCT = [*'{}()[],.:=+-*/<>#"\\$%', "<=", ">=", "==", "!=", "=>", "\n", "\r\n", "\t", "\x0c"]
LITERALS = ["0", "1", "-1", "45d", "0d", "50%", "-150%", "$5", "$1,000.50", "0.16", "1e5",
            "1.0e999", "99999999999999999999", '"text"', '""', '"a\\"b"', "-unknown"]  # fmt: skip
NAMES = ["x", "SPY", "iron_condor", "short_put", "market.vix", "position.dte", "abs", "close"]
TOKENS = KEYWORDS + PUNCT + LITERALS + NAMES
ODD = ["\x00", "\ufeff", "\u2028", "\x0b", "\x85", "\r", "é", "€", "\\", "\t", '"', "#", "@"]
TOKEN_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|[$\w.,%]+|[<>=!]=|=>|\S')


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    name, text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 3))):
        text = draw(mutation(text))
    return name, text


@st.composite
def mutation(draw: st.DrawFn, text: str) -> str:
    op = draw(st.sampled_from(
        ["replace_token", "insert_token", "delete_token", "duplicate_token", "wrap", "line",
         "line", "char", "blanks"]
    ))  # fmt: skip
    spans = [m.span() for m in TOKEN_RE.finditer(text)] or [(0, 0)]
    a, b = draw(st.sampled_from(spans))
    if op == "replace_token":
        return text[:a] + draw(st.sampled_from(TOKENS)) + text[b:]
    if op == "insert_token":
        return text[:a] + draw(st.sampled_from(TOKENS)) + " " + text[a:]
    if op == "delete_token":
        return text[:a] + text[b:]
    if op == "duplicate_token":
        return text[:b] + " " + text[a:b] + text[b:]
    if op == "wrap":
        left, right = draw(st.sampled_from([("(", ")"), ("-", ""), ("not ", ""), ("abs(", ")"),
                                            ("(-(", "))"), ("[", "]"), ("", " + 1")]))  # fmt: skip
        return text[:a] + left + text[a:b] + right + text[b:]
    if op == "line":
        lines = text.split("\n")
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "swap", "comment", "indent"]))
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "comment":
            lines[i] += draw(st.sampled_from(["  # c", " #", "\n# c", "\n\n"]))
        else:
            lines[i] = draw(st.sampled_from(["", "\t", "    ", "\x0c"])) + lines[i].lstrip()
        return "\n".join(lines)
    if op == "char":
        i = draw(st.integers(0, len(text)))
        return text[:i] + draw(st.sampled_from(ODD) | st.characters()) + text[i + 1 :]
    blank = draw(st.sampled_from(["  ", "\t", "\x0c", " \\\n ", " \\\r\n", "\r\n", "\n\n"]))
    return text[:a] + blank + text[a:]


@EXAMPLES
@given(mutated())
def test_mutations_build_alike(case: tuple[str, str]) -> None:
    name, text = case
    assert_equivalent(name, text)


@EXAMPLES
@given(st.sampled_from(CORPUS), st.data())
def test_valid_forms_build_alike(case: tuple[str, str], data: st.DataObject) -> None:
    """Mutations that keep a file valid: the interesting side of the comparison."""
    name, text = case
    order = list(_variants(text))
    kinds = data.draw(st.lists(st.sampled_from(order), min_size=1, max_size=4, unique=True))
    for kind in sorted(kinds, key=order.index):
        text = _variants(text)[kind]
    assert assert_equivalent(name, text)
