"""Rule text never reaches Python: names are resolved against the vocabulary or rejected, and the
generated code is made only of vocabulary accessors, helpers, temporaries and repr() constants."""

from __future__ import annotations

import builtins
import io
import re
import tokenize
from collections.abc import Callable
from typing import Any

import pytest

from engine.dsl import Level, evaluate
from engine.dsl.errors import DslError
from tests.dsl.conftest import CompileRules, MakeSnap

Errors = Callable[..., DslError]


def entry(when: str, then: str = "alert") -> str:
    return f"rule r {{\n  on entry\n  when {when}\n  then {then}\n}}\n"


REJECTED = [
    ("__import__(\"os\")", "V6E101"),
    ("__import__", "V6E100"),
    ("__class__", "V6E100"),
    ("__builtins__", "V6E100"),
    ("os.system(\"echo pwned\")", "V6E101"),
    ("exec(\"import os\")", "V6E101"),
    ("eval(\"1 + 1\") == 2", "V6E101"),
    ("open(\"/etc/passwd\") == 1", "V6E101"),
    ("globals()", "V6E101"),
    ("getattr(underlying, \"symbol\")", "V6E101"),
    ("underlying.__class__.__bases__", "V6E100"),
    ("underlying.symbol.__class__", "V6E100"),
    ("market.__dict__", "V6E100"),
    ("abs.__self__", "V6E100"),
    # names of the evaluation frame and generated temporaries are not visible either
    ("M.vix > 1", "V6E100"),
    ("S.positions", "V6E100"),
    ("H.ratio(1, 2) > 0", "V6E101"),
    ("_t0", "V6E100"),
    ("_k0", "V6E100"),
]


@pytest.mark.parametrize(("expr", "code"), REJECTED, ids=[e for e, _ in REJECTED])
def test_python_names_are_rejected(rule_errors: Errors, expr: str, code: str) -> None:
    err = rule_errors(entry(expr))
    assert err.codes[0] == code
    assert set(err.codes) <= {"V6E100", "V6E101", "V6E201"}


@pytest.mark.parametrize(("phase", "then", "code"), [
    ("entry", "open __import__", "V6E105"),
    ("adjust", "adjust __class__", "V6E107"),
    ("adjust", "roll __globals__(dte = 45d)", "V6E108"),
    ("entry", "alert(severity = __import__)", "V6E107"),
    ("entry", "alert(__class__ = 1)", "V6E106"),
    ("entry", "__import__", "V6E102"),
    ("exit", "exec", "V6E102"),
])
def test_python_names_in_actions_are_rejected(rule_errors: Errors, phase: str, then: str,
                                              code: str) -> None:
    err = rule_errors(f"rule r {{\n  on {phase}\n  when true\n  then {then}\n}}\n")
    assert err.codes == [code]


def test_python_names_in_match_arms_are_rejected(rule_errors: Errors) -> None:
    err = rule_errors(entry("x > 1").replace(
        "  when", "  let x = match market.regime { __import__ => 1  else => 2 }\n  when"))
    assert err.codes == ["V6E107"]


# (the string as written in the rule file, the value it stands for)
CODE_STRINGS = [
    ("__import__('os').system('touch /tmp/v6-pwned')",
     "__import__('os').system('touch /tmp/v6-pwned')"),
    ('\\"); __import__(\\"os\\").system(\\"id\\"); (\\"', '"); __import__("os").system("id"); ("'),
    ("\\\\\\\"; exec('1')", "\\\"; exec('1')"),
    ("{0.__class__}", "{0.__class__}"),
]


@pytest.mark.parametrize(("written", "value"), CODE_STRINGS)
def test_strings_with_code_are_inert_constants(compile_rules: CompileRules, make_snap: MakeSnap,
                                               written: str, value: str) -> None:
    rs = compile_rules(entry(f'breaker_tripped("{written}") or true',
                             f'alert(message = "{written}")'))
    (d,) = evaluate(rs, make_snap(underlyings={"SPY": {}}))[0]
    assert d.args == (("message", value),)


# ------------------------------------------------------------------ the generated code
SNEAKY = """\
param sneaky_param: percent = 5%
rule sneaky_rule "title with __import__('os')" {
  on entry
  let sneaky_let = underlying.iv_rank - sneaky_param
  let __import__ = 2
  let eval = match market.regime { crash => 1  else => __import__ }
  when {
    sneaky_let > 0%
    eval == 2
    has_position(strategy = sneaky_strategy, symbol = underlying.symbol) == false
    underlying.symbol in [SPY, QQQ]
  }
  then open sneaky_strategy(sneaky_width = $5),
       alert(message = "os.system('x')")
}
strategy sneaky_strategy {
  param sneaky_width: price in [$1, $10] = $2
  expiry 45d within 10d
  leg short_put sell put delta -0.2
  leg long_put buy put strike short_put.strike - sneaky_width
}
"""
FROM_RULE_FILE = {"sneaky_param", "sneaky_rule", "sneaky_let", "sneaky_strategy", "sneaky_width",
                  "__import__", "eval", "os", "system", "title", "message", "SPY", "QQQ",
                  "short_put", "long_put"}
# The same rules with every name the author chose replaced: the generated code must not change.
RENAMES = {"sneaky_param": "p1", "sneaky_rule": "r1", "sneaky_let": "l1", "__import__": "l2",
           "eval": "l3", "sneaky_strategy": "s1", "sneaky_width": "w1", "os.system('x')": "hello",
           "title with l2('os')": "t"}
DANGEROUS = {"__import__", "eval", "exec", "compile", "open", "getattr", "setattr", "delattr",
             "globals", "locals", "vars", "breakpoint", "input", "memoryview", "object"}


def _tokens(source: str, kind: int) -> list[str]:
    toks = tokenize.generate_tokens(io.StringIO(source).readline)
    return [t.string for t in toks if t.type == kind]


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What the compiler hands to compile() and exec(): (source, namespace) per rule set."""
    seen: list[tuple[str, Any]] = []
    sources: dict[Any, str] = {}
    real_compile, real_exec = builtins.compile, builtins.exec

    def spy_compile(source: Any, filename: Any, *args: Any, **kwargs: Any) -> Any:
        code = real_compile(source, filename, *args, **kwargs)
        if str(filename).startswith("<v6"):
            sources[code] = source
        return code

    def spy_exec(code: Any, *args: Any) -> Any:
        assert not isinstance(code, str | bytes), "exec() of text"
        if code in sources:
            seen.append((sources[code], args[0]))
        return real_exec(code, *args)

    def no_eval(*args: Any) -> Any:
        raise AssertionError("eval() called while loading rules")

    monkeypatch.setattr(builtins, "compile", spy_compile)
    monkeypatch.setattr(builtins, "exec", spy_exec)
    monkeypatch.setattr(builtins, "eval", no_eval)
    return seen


def test_generated_code_has_no_identifier_from_the_rule_file(
        compile_rules: CompileRules, make_snap: MakeSnap, generated: list[tuple[str, Any]]) -> None:
    rs = compile_rules(SNEAKY)
    assert len(generated) == 1
    assert set(_tokens(generated[0][0], tokenize.NAME)) & FROM_RULE_FILE == set()
    # ... and the rule still means what it says
    snap = make_snap(market={"regime": "normal"}, underlyings={"SPY": {"iv_rank": 0.3}})
    decisions, trace = evaluate(rs, snap, Level.FULL)
    assert [(d.verb, d.target, d.args) for d in decisions] == [
        ("open", "sneaky_strategy", (("sneaky_width", 5.0),)),
        ("alert", None, (("message", "os.system('x')"),))]
    assert trace is not None
    assert [(o.text, o.value) for o in trace.rules[0].lets] == [
        ("sneaky_let", pytest.approx(0.25)), ("__import__", 2.0), ("eval", 2.0)]


def test_renaming_everything_the_author_named_changes_no_code(
        compile_rules: CompileRules, generated: list[tuple[str, Any]]) -> None:
    plain = SNEAKY
    for old, new in RENAMES.items():
        plain = plain.replace(old, new)
    assert not set(RENAMES) & set(re.findall(r"[\w.()']+", plain))
    compile_rules(SNEAKY, "a.v6")
    compile_rules(plain, "b.v6")
    (sneaky, _), (renamed, _) = generated
    assert _tokens(sneaky, tokenize.NAME) == _tokens(renamed, tokenize.NAME)
    assert _tokens(sneaky, tokenize.OP) == _tokens(renamed, tokenize.OP)


def test_string_constants_in_generated_code_are_plain_literals(
        compile_rules: CompileRules, generated: list[tuple[str, Any]]) -> None:
    compile_rules(SNEAKY)
    source = generated[0][0]
    strings = _tokens(source, tokenize.STRING)
    assert strings
    assert all(s[0] in "'\"" for s in strings), strings  # no f-, b-, r- or u-prefixes
    kinds = {tokenize.tok_name[t.type] for t in
             tokenize.generate_tokens(io.StringIO(source).readline)}
    assert "FSTRING_START" not in kinds


def test_shipped_rule_sets_generate_no_dangerous_names(generated: list[tuple[str, Any]]) -> None:
    from engine.dsl import load_ruleset

    for name in ("v6", "v5-baseline"):
        load_ruleset(name)
    assert len(generated) == 2
    for source, _ in generated:
        assert set(_tokens(source, tokenize.NAME)) & DANGEROUS == set()
        assert "__" not in "".join(_tokens(source, tokenize.NAME))


def test_generated_code_runs_with_a_minimal_builtins(
        compile_rules: CompileRules, generated: list[tuple[str, Any]]) -> None:
    compile_rules(entry("abs(market.vix) > 1"))
    ((_, namespace),) = generated
    allowed = namespace["__builtins__"]
    assert isinstance(allowed, dict)
    assert set(allowed) & DANGEROUS == set()
    assert "abs" in allowed


def test_symbols_clause_rejects_non_ticker_names(compile_rules: CompileRules) -> None:
    # A symbol is data, and only a ticker-shaped name is accepted: `__import__` never gets
    # as far as code generation.
    with pytest.raises(DslError) as exc:
        compile_rules("rule r {\n  on entry\n  symbols [__import__, SPY]\n  then alert\n}\n")
    assert exc.value.codes == ["V6E107"]
    assert "x.v6:4:3: error V6E107" in exc.value.render()
    assert "'__import__' is not a ticker symbol" in exc.value.render()
