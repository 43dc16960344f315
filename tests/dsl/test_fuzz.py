"""Fuzzing the parser and checker with mutations of the shipped rule files.

Whatever the input, loading must end in either a compiled program or a DslError whose
diagnostics all carry a V6E code and a location inside the file. Never any other exception.

CI runs a fixed, derandomized 300 examples per test. For a longer local run:
    V6_FUZZ_PROFILE=v6-fuzz-long V6_FUZZ_EXAMPLES=20000 uv run pytest tests/dsl/test_fuzz.py
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dsl import ast, ruleset
from engine.dsl.build import build
from engine.dsl.checker import check
from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.parser import decode_source
from engine.dsl.source import Location, Source
from engine.dsl.vocab import ACTIONS, ENUMS, FIELDS, FUNCTIONS, PHASES
from engine.paths import RISK_POLICIES_DIR, ROOT, RULES_DIR, STRATEGIES_DIR

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile("v6-fuzz-ci", max_examples=300, deadline=None, derandomize=True,
                          database=None, suppress_health_check=_QUIET)
settings.register_profile("v6-fuzz-long",
                          max_examples=int(os.environ.get("V6_FUZZ_EXAMPLES", "20000")),
                          deadline=None, derandomize=False, suppress_health_check=_QUIET)
FUZZ = settings(settings.get_profile(os.environ.get("V6_FUZZ_PROFILE", "v6-fuzz-ci")))

FILES = sorted([*RULES_DIR.glob("*.v6"), *(RULES_DIR / "baseline_v5").glob("*.v6"),
                *STRATEGIES_DIR.glob("*.v6"), *RISK_POLICIES_DIR.glob("*.v6")])
CORPUS = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in FILES]
FILE_LEVEL = {Code.ENCODING, Code.TOO_LARGE, Code.EMPTY, Code.FILE_NOT_FOUND, Code.MANIFEST}

# Tokens worth splicing in: keywords, punctuation, literals of every unit, vocabulary names.
KEYWORDS = ["version", "rule", "limit", "breaker", "hedge", "regime", "strategy", "param", "on",
            "priority", "symbols", "let", "when", "then", "reason", "check", "on_breach",
            "trigger", "cooldown", "reset", "manual", "expiry", "within", "leg", "match", "else",
            "and", "or", "not", "in", "true", "false", "unknown"]
PUNCT = [*'{}()[],.:=+-*/<>#"\\$%', "<=", ">=", "==", "!=", "=>", "\n", "\r\n", "\t"]
LITERALS = ["0", "1", "-1", "45d", "0d", "50%", "-150%", "$5", "$1,000.50", "0.16", "1.0e999",
            "99999999999999999999", '"text"', '""', "-unknown", "-true", '-"x"']
NAMES = sorted({*FIELDS, *FUNCTIONS, *ACTIONS, *PHASES, *(m for v in ENUMS.values() for m in v),
                "iron_condor", "short_put", "__import__", "x", "SPY"})
TOKENS = KEYWORDS + PUNCT + LITERALS + NAMES
ODD_CHARS = ["\x00", "\ufeff", "\u2028", "\x0c", "\x0b", "\x85", "\r", "é", "€", "😀", "\u200b",
             "\ud800", "\\", "\t", "\"", "#"]


@cache
def library() -> tuple[ast.RuleFile, ...]:
    return tuple(build(decode_source(str(p.relative_to(ROOT)), p.read_bytes()))
                 for p in sorted(STRATEGIES_DIR.glob("*.v6")))


def _lines(text: str) -> list[str]:
    # Lines as the grammar counts them: "\n" only.
    return text.split("\n")


def assert_loads_or_diagnoses(name: str, raw: bytes) -> bool:
    """decode_source + build + check (+ compile) in-process: success (True), or a well-formed
    DslError (False). Any other exception propagates and fails the test."""
    texts = {f.source.name: f.source.text for f in library() if f.source.name != name}
    try:
        source = decode_source(name, raw)
        texts[name] = source.text
        rf = build(source)
        program = check([rf, *(f for f in library() if f.source.name != name)])
        ruleset.compile_program(program)  # the compiler ruleset.load uses
        return True
    except DslError as exc:
        assert exc.diagnostics, "a DslError with no diagnostics"
        if name not in texts:  # decoding failed: count lines in the bytes
            texts[name] = raw.decode("utf-8", "replace")
        for d in exc.diagnostics:
            assert isinstance(d.code, Code) and d.code.value.startswith("V6E"), d
            assert d.message, d
            loc = d.location
            assert loc.file in texts, d
            lines = _lines(texts[loc.file])
            if loc.line == 0:
                assert d.code in FILE_LEVEL, d
                continue
            assert 1 <= loc.line <= len(lines), (d, len(lines))
            assert 1 <= loc.column <= len(lines[loc.line - 1]) + 1, (d, lines[loc.line - 1])
        rendered = exc.render()
        assert isinstance(rendered, str) and "Traceback" not in rendered
        return False


# ------------------------------------------------------------------ mutations
@st.composite
def index(draw: st.DrawFn, seq: str | bytes | list[str], extra: int = 0) -> int:
    return draw(st.integers(0, max(0, len(seq) - 1 + extra)))


@st.composite
def char_mutation(draw: st.DrawFn, text: str) -> str:
    op = draw(st.sampled_from(["delete", "insert", "duplicate", "swap", "unicode", "truncate",
                               "delete_span"]))
    i = draw(index(text, extra=1))
    if op == "delete":
        return text[:i] + text[i + 1:]
    if op == "insert":
        c = draw(st.sampled_from(ODD_CHARS) | st.characters())
        return text[:i] + c + text[i:]
    if op == "duplicate":
        return text[:i] + text[i:i + 1] * 2 + text[i + 1:]
    if op == "swap":
        j = draw(index(text))
        chars = list(text)
        if chars:
            chars[min(i, len(chars) - 1)], chars[j] = chars[j], chars[min(i, len(chars) - 1)]
        return "".join(chars)
    if op == "unicode":
        return text[:i] + draw(st.text(max_size=6)) + text[i:]
    if op == "truncate":
        return text[:i]
    return text[:i] + text[i + draw(st.integers(1, 40)):]


@st.composite
def line_mutation(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    op = draw(st.sampled_from(["delete", "duplicate", "swap", "crossover", "truncate"]))
    i = draw(index(lines))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "swap":
        j = draw(index(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "crossover":  # a line from another shipped file
        _, other = draw(st.sampled_from(CORPUS))
        lines.insert(i, draw(st.sampled_from(other.split("\n"))))
    else:
        lines = lines[:i]
    return "\n".join(lines)


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@st.composite
def token_mutation(draw: st.DrawFn, text: str) -> str:
    toks = _TOKEN.findall(text)
    op = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert"]))
    i = draw(index(toks))
    if not toks:
        return draw(st.sampled_from(TOKENS))
    if op == "delete":
        del toks[i]
    elif op == "duplicate":
        toks.insert(i, toks[i])
    elif op == "swap":
        j = draw(index(toks))
        toks[i], toks[j] = toks[j], toks[i]
    elif op == "replace":
        toks[i] = draw(st.sampled_from(TOKENS))
    else:
        toks.insert(i, " " + draw(st.sampled_from(TOKENS)) + " ")
    return "".join(toks)


@st.composite
def byte_mutation(draw: st.DrawFn, raw: bytes) -> bytes:
    op = draw(st.sampled_from(["insert", "flip", "truncate", "delete", "bom"]))
    i = draw(index(raw, extra=1))
    if op == "insert":
        return raw[:i] + draw(st.binary(min_size=1, max_size=4)) + raw[i:]
    if op == "flip" and raw:
        i = min(i, len(raw) - 1)
        return raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
    if op == "truncate":
        return raw[:i]
    if op == "bom":
        return b"\xef\xbb\xbf" + raw
    return raw[:i] + raw[i + draw(st.integers(1, 8)):]


def _mutated(kind: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """A shipped file after 1-4 mutations of the given kinds, as UTF-8 (lone surrogates kept)."""
    @st.composite
    def go(draw: st.DrawFn) -> tuple[str, bytes]:
        name, text = draw(st.sampled_from(CORPUS))
        for _ in range(draw(st.integers(1, 4))):
            op = {"char": char_mutation, "line": line_mutation, "token": token_mutation}
            text = draw(op[draw(st.sampled_from(kind.split("+")))](text))
        return name, text.encode("utf-8", "surrogatepass")

    return go()


@FUZZ
@given(_mutated("char"))
def test_character_mutations(case: tuple[str, bytes]) -> None:
    assert_loads_or_diagnoses(*case)


@FUZZ
@given(_mutated("line+token"))
def test_line_and_token_mutations(case: tuple[str, bytes]) -> None:
    assert_loads_or_diagnoses(*case)


@FUZZ
@given(_mutated("char+line+token"))
def test_mixed_mutations(case: tuple[str, bytes]) -> None:
    assert_loads_or_diagnoses(*case)


@st.composite
def raw_case(draw: st.DrawFn) -> tuple[str, bytes]:
    name, text = draw(st.sampled_from(CORPUS))
    raw = text.encode("utf-8")
    for _ in range(draw(st.integers(1, 4))):
        raw = draw(byte_mutation(raw))
    return name, raw


@FUZZ
@given(raw_case())
def test_byte_mutations(case: tuple[str, bytes]) -> None:
    assert_loads_or_diagnoses(*case)


# Inputs the long profile found, kept apart so the random runs above still run when one fails.
REGRESSIONS = [
    ("risk_policies/regimes.v6", b"\x0cversion 1\nregime crash {\n  when m"),  # form feed
    ("rules/exits.v6", b"version 1\n# \xe2\x80\xa8\nrule r {\n  on exit"),  # U+2028
    ("risk_policies/breakers.v6", b"\xef\xbb\xbfversion 1\n\n\x80# breakers"),  # BOM + bad byte
    ("rules/exits.v6", "version 1\n\U00010000\U00010000 # \ud800".encode("utf-8", "surrogatepass")),
]


@pytest.mark.parametrize("case", REGRESSIONS,
                         ids=["form_feed", "u2028", "bom_bad_byte", "multibyte_then_bad_byte"])
def test_fuzz_regressions(case: tuple[str, bytes]) -> None:
    assert_loads_or_diagnoses(*case)


def test_unmutated_corpus_loads() -> None:
    # The harness itself: every shipped file checks clean with the strategy library.
    assert len(CORPUS) >= 12
    assert [name for name, text in CORPUS
            if not assert_loads_or_diagnoses(name, text.encode("utf-8"))] == []


@pytest.mark.parametrize(("line", "col", "ok"), [(3, 1, True), (3, 5, True), (4, 1, False),
                                                 (3, 6, False), (0, 0, False), (1, 0, False)])
def test_harness_checks_locations(monkeypatch: pytest.MonkeyPatch, line: int, col: int,
                                  ok: bool) -> None:
    def fake_build(source: Source) -> ast.RuleFile:
        raise DslError([Diagnostic(Code.SYNTAX, "x", Location(source.name, line, col))])

    monkeypatch.setattr(sys.modules[__name__], "build", fake_build)
    raw = b"version 1\n\nrule"  # 3 lines; the last has 4 characters
    if ok:
        assert assert_loads_or_diagnoses("x.v6", raw) is False
    else:
        with pytest.raises(AssertionError):
            assert_loads_or_diagnoses("x.v6", raw)


def test_harness_accepts_a_real_syntax_error() -> None:
    raw = (ROOT / "rules" / "exits.v6").read_bytes() + b"rule {\n"
    assert assert_loads_or_diagnoses("rules/exits.v6", raw) is False
