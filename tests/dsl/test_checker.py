"""Checker: one minimal file per error code, all errors reported together, shipped sets clean."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from syrupy.assertion import SnapshotAssertion

from engine.dsl import load_ruleset
from engine.dsl.errors import DslError
from engine.dsl.ruleset import RuleSet

Errors = Callable[..., DslError]


def entry(when: str, then: str = "alert") -> str:
    return f"rule r {{\n  on entry\n  when {when}\n  then {then}\n}}\n"


def exit_(when: str, then: str = "close") -> str:
    return f"rule r {{\n  on exit\n  when {when}\n  then {then}\n}}\n"


def diag(err: DslError) -> tuple[str, str, str, str | None]:
    """The single diagnostic as (code, location, message, hint)."""
    assert len(err.diagnostics) == 1, err.render()
    d = err.diagnostics[0]
    return d.code.value, str(d.location), d.message, d.hint


# (id, file text without header, code, location, message, hint)
CASES = [
    ("unknown_name", entry("underlying.iv_rnk > 50%"), "V6E100", "x.v6:4:8",
     "unknown name 'underlying.iv_rnk'",
     "did you mean 'underlying.iv_rank' or 'underlying.iv_premium' or 'underlying.iv_percentile'?"),
    ("unknown_name_param_suggested", "param iv_floor: percent = 5%\n"
     + entry("underlying.iv_rank > iv_flor"), "V6E100", "x.v6:5:29",
     "unknown name 'iv_flor'", "did you mean 'iv_floor'?"),
    ("unknown_function", entry("has_positon(symbol = SPY)"), "V6E101", "x.v6:4:8",
     "unknown function 'has_positon'", "did you mean 'has_position' or 'count_positions'?"),
    ("unknown_action", entry("true", "buy"), "V6E102", "x.v6:5:8", "unknown action 'buy'",
     "actions: open, close, reduce, roll, adjust, hedge, alert, block_entries, halt, flatten"),
    ("unknown_phase", "rule r {\n  on exitt\n  then close\n}\n", "V6E103", "x.v6:3:6",
     "unknown phase 'exitt'", "did you mean 'exit'?"),
    ("unknown_unit", "param p: percnt = 5%\n", "V6E104", "x.v6:2:10", "unknown unit 'percnt'",
     "did you mean 'percent'?"),
    ("unknown_strategy", entry("true", "open iron_condr"), "V6E105", "x.v6:5:8",
     "unknown strategy 'iron_condr'", "did you mean 'iron_condor'?"),
    ("unknown_argument", entry("true", "open iron_condor(shrt_delta = 0.1)"), "V6E106",
     "x.v6:5:25", "'open iron_condor' has no argument 'shrt_delta'", "did you mean 'short_delta'?"),
    ("unknown_enum_value", entry("market.regime == crsh"), "V6E107", "x.v6:4:25",
     "'crsh' is not a regime", "did you mean 'crash'?"),
    ("unknown_severity", entry("true", "alert(severity = loud)"), "V6E107", "x.v6:5:25",
     "'loud' is not a severity", "one of: info, warning, critical"),
    ("position_in_entry", entry("position.dte > 10d"), "V6E110", "x.v6:4:8",
     "'position.dte' is only available in adjust, exit and take_profit rules",
     "this is an entry block"),
    ("underlying_in_limit", "limit l {\n  check underlying.iv_rank < 90%\n"
     "  on_breach block_entries\n}\n", "V6E110", "x.v6:3:9",
     "'underlying.iv_rank' is only available in entry and position rules", "this is a limit block"),
    ("open_in_exit", exit_("true", "open iron_condor"), "V6E110", "x.v6:5:8",
     "'open' cannot be used in exit rules", "allowed in: entry"),
    ("percent_vs_bare", entry("underlying.iv_rank > 50"), "V6E200", "x.v6:4:8",
     "cannot combine percent with a plain number", "write the unit, e.g. 50%"),
    ("money_vs_level", exit_("position.pnl > market.vix"), "V6E200", "x.v6:4:8",
     "cannot combine money with level", None),
    ("days_vs_price", exit_("position.dte > position.mark"), "V6E200", "x.v6:4:8",
     "cannot combine days with price", None),
    ("days_vs_dollars", exit_("position.dte > $5"), "V6E200", "x.v6:4:8",
     "cannot combine dollars with days", "write the unit, e.g. 45d"),
    ("arg_unit", entry("true", "open iron_condor(dte = 45)"), "V6E200", "x.v6:5:25",
     "cannot combine days with a plain number", "write the unit, e.g. 45d"),
    ("param_unit", "param p: days = 5%\n", "V6E200", "x.v6:2:17",
     "param 'p' is days: cannot combine percent with days", None),
    ("condition_not_bool", exit_("position.dte"), "V6E201", "x.v6:4:8",
     "a condition must be true or false, not days", None),
    ("compare_text", exit_("position.id > 3"), "V6E201", "x.v6:4:22",
     "'>' compares numbers, not text and number", None),
    ("and_of_number", exit_("position.dte > 1d and position.dte"), "V6E201", "x.v6:4:30",
     "expected a condition (true/false), got days", None),
    ("match_not_exhaustive", "rule r {\n  on exit\n  let t = match market.regime "
     "{ crash => 40%  high_vol => 50% }\n  when position.pnl_pct_of_credit >= t\n"
     "  then close\n}\n", "V6E202", "x.v6:4:11", "match does not cover normal, low_vol",
     "add an arm for each, or an 'else =>' arm"),
    ("param_default_out_of_range", "param p: percent in [10%, 20%] = 30%\n", "V6E203",
     "x.v6:2:34", "default of 'p' is outside its range [10%, 20%]", None),
    ("open_arg_out_of_range", entry("true", "open iron_condor(short_delta = 0.50)"), "V6E203",
     "x.v6:5:39",
     "short_delta = 0.50 is outside the range [0.05, 0.40] declared by strategy 'iron_condor'",
     None),
    ("open_dte_out_of_range", entry("true", "open put_credit_spread(dte = 200d)"), "V6E203",
     "x.v6:5:37", "dte = 200d is outside the range [7d, 120d] declared by strategy "
     "'put_credit_spread'", None),
    ("missing_argument", exit_("true", "reduce"), "V6E204", "x.v6:5:8",
     "'reduce' needs argument 'fraction'", None),
    ("duplicate_id", exit_("position.dte < 1d") + exit_("position.dte < 2d"), "V6E300",
     "x.v6:7:1", "id 'r' is used twice", "first used at x.v6:2:1"),
    ("duplicate_param", "param p: percent = 5%\nparam p: percent = 6%\n", "V6E300", "x.v6:3:1",
     "param 'p' is declared twice", None),
    ("let_shadows_let", "rule r {\n  on exit\n  let a = 1%\n  let a = 2%\n"
     "  when position.pnl_pct_of_credit > a\n  then close\n}\n", "V6E300", "x.v6:5:3",
     "'a' is already defined", None),
    ("let_shadows_param", "param a: percent = 5%\nrule r {\n  on exit\n  let a = 1%\n"
     "  when position.pnl_pct_of_credit > a\n  then close\n}\n", "V6E300", "x.v6:5:3",
     "'a' is already defined", None),
    ("missing_on", "rule r {\n  priority 1\n  then close\n}\n", "V6E301", "x.v6:2:1",
     "rule 'r' needs 'on <phase>'", "phases: entry, adjust, exit, take_profit"),
    ("missing_then", "rule r {\n  on exit\n  when position.dte < 1d\n}\n", "V6E301",
     "x.v6:2:1", "rule 'r' needs a 'then' clause", None),
    ("missing_check", "limit l {\n  on_breach halt\n}\n", "V6E301", "x.v6:2:1",
     "limit 'l' needs a 'check' clause", None),
    ("repeated_clause", "rule r {\n  on exit\n  priority 1\n  priority 2\n  then close\n}\n",
     "V6E302", "x.v6:5:3", "'priority' appears twice in rule 'r'", "first at x.v6:4:3"),
    ("unreachable_false", exit_("false"), "V6E303", "x.v6:4:8",
     "rule 'r' can never fire: condition is 'false'", None),
    ("unreachable_after_unconditional",
     "rule always {\n  on exit\n  priority 10\n  then close\n}\n"
     "rule later {\n  on take_profit\n  priority 5\n  when position.dte < 1d\n  then close\n}\n",
     "V6E303", "x.v6:7:1",
     "rule 'later' can never fire: 'always' (priority 10) always matches first",
     "see x.v6:2:1"),
    ("symbols_in_exit", "rule r {\n  on exit\n  symbols [SPY]\n  then close\n}\n", "V6E304",
     "x.v6:4:3", "'symbols' does not apply to exit rules", None),
    ("target_not_taken", exit_("true", "close short_put"), "V6E304", "x.v6:5:8",
     "'close' takes no target, got 'short_put'", None),
]


@pytest.mark.parametrize(("text", "code", "where", "message", "hint"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error(rule_errors: Errors, text: str, code: str, where: str, message: str,
               hint: str | None) -> None:
    assert diag(rule_errors(text)) == (code, where, message, hint)


def test_else_makes_a_match_exhaustive(compile_rules: Callable[[str], RuleSet]) -> None:
    rs = compile_rules("rule r {\n  on exit\n  let t = match market.regime { crash => 40%  "
                       "else => 80% }\n  when position.pnl_pct_of_credit >= t\n  then close\n}\n")
    assert [b.id for b in rs.blocks] == ["r"]


def test_exhaustive_match_without_else(compile_rules: Callable[[str], RuleSet]) -> None:
    rs = compile_rules("rule r {\n  on exit\n  let t = match market.regime { crash => 40%  "
                       "high_vol => 50%  normal => 80%  low_vol => 90% }\n"
                       "  when position.pnl_pct_of_credit >= t\n  then close\n}\n")
    assert rs.block("r") is not None


def test_equal_priority_unconditional_exits_shadow_by_file_then_id(rule_errors: Errors) -> None:
    err = rule_errors({"a.v6": "rule zz {\n  on exit\n  then close\n}\n",
                       "b.v6": "rule aa {\n  on exit\n  then close\n}\n"})
    assert [(d.code.value, str(d.location)) for d in err.diagnostics] == [("V6E303", "b.v6:2:1")]


def test_unconditional_entry_does_not_shadow(compile_rules: Callable[[str], RuleSet]) -> None:
    rs = compile_rules("rule a {\n  on entry\n  priority 2\n  then alert\n}\n"
                       "rule b {\n  on entry\n  priority 1\n  then alert\n}\n")
    assert [b.id for b in rs.entries] == ["a", "b"]


def test_duplicate_ids_across_files(rule_errors: Errors) -> None:
    err = rule_errors({"a.v6": exit_("position.dte < 1d"), "b.v6": exit_("position.dte < 2d")})
    assert diag(err) == ("V6E300", "b.v6:2:1", "id 'r' is used twice", "first used at a.v6:2:1")


def test_duplicate_strategy_with_the_library(rule_errors: Errors) -> None:
    err = rule_errors("strategy iron_condor {\n  param dte: days = 45d\n  expiry dte within 5d\n"
                      "  leg short_put sell put delta 0.1\n}\n")
    assert err.codes == ["V6E300"]
    assert err.diagnostics[0].message == "strategy 'iron_condor' is declared twice"


def test_param_with_text_default_is_a_diagnostic(rule_errors: Errors) -> None:
    err = rule_errors('param p: percent in [10%, 20%] = "abc"\n')
    assert err.codes[0] == "V6E201"


def test_param_with_text_bound_is_a_diagnostic(rule_errors: Errors) -> None:
    err = rule_errors('param p: percent in ["low", 20%] = 15%\n')
    assert err.codes[0] == "V6E201"


@pytest.mark.parametrize("default", ["-unknown", "-true", '-"x"'])
def test_param_with_negated_non_number_is_a_diagnostic(rule_errors: Errors, default: str) -> None:
    err = rule_errors(f"param p: percent = {default}\n")
    assert err.codes and all(c.startswith("V6E2") for c in err.codes)


@pytest.mark.parametrize("expr", [
    "not " * 400 + "risk.broker_connected",
    "-" * 100 + "market.vix < 1",
    " and ".join(["risk.broker_connected"] * 250),
    " + ".join(["market.vix"] * 100) + " > 1",
], ids=["nested_not_400", "nested_neg_100", "long_and_250", "long_sum_100"])
def test_deep_expressions_load_or_give_a_diagnostic(compile_files: Callable[..., RuleSet],
                                                    expr: str) -> None:
    # Never a RecursionError out of the checker, nor a SyntaxError ("too many nested
    # parentheses") out of compile(): either it loads, or the trader gets a located diagnostic.
    try:
        rs = compile_files({"x.v6": entry(expr)})
    except DslError as exc:
        assert all(c.startswith("V6E") for c in exc.codes)
    else:
        assert rs.block("r") is not None


MULTI = """\
version 1
param floor: percent in [10%, 20%] = 30%

rule ic_entry "Iron condor" {
  on entry
  when {
    underlying.iv_rnk > floor
    underlying.iv_rank > 50
    position.dte > 10d
  }
  then open iron_condr(short_delta = 0.2)
}

rule ic_entry {
  on exti
  then close
}

rule stop {
  on exit
  let t = match market.regime { crash => 40%  high_vol => 50% }
  when position.pnl_pct_of_credit <= t
  then close, reduce
}
"""


def test_all_errors_in_a_file_are_reported_together(rule_errors: Errors,
                                                    snapshot: SnapshotAssertion) -> None:
    err = rule_errors(MULTI)
    assert err.codes == ["V6E203", "V6E100", "V6E200", "V6E110", "V6E105", "V6E300", "V6E103",
                         "V6E202", "V6E204"]
    lines = [d.location.line for d in err.diagnostics]
    assert lines == sorted(lines)
    assert err.render() == snapshot
    assert str(err) == err.render()


def test_syntax_errors_in_several_files_are_reported_together(rule_errors: Errors) -> None:
    err = rule_errors({"a.v6": "version 1\nrule r {\n", "b.v6": "version 3\n",
                       "c.v6": exit_("true")})
    assert [(c, str(d.location)) for c, d in zip(err.codes, err.diagnostics, strict=True)] == [
        ("V6E011", "a.v6:2:9"), ("V6E020", "b.v6:1:1")]


def test_no_python_traceback_in_messages(rule_errors: Errors) -> None:
    text = rule_errors(MULTI).render()
    assert "Traceback" not in text
    assert "File \"" not in text


@pytest.mark.parametrize("name", ["v6", "v5-baseline"])
def test_shipped_rule_sets_check_clean(name: str) -> None:
    rs = load_ruleset(name)
    assert rs.name == name
    assert len(rs.hash) == 16
    assert rs.blocks


def test_shipped_v6_blocks_in_priority_order() -> None:
    rs = load_ruleset("v6")
    assert [b.id for b in rs.closes] == ["stop_vol_adjusted", "exit_short_strike_breach",
                                         "trailing_stop", "tp_by_regime", "dte_exit"]
    assert [b.id for b in rs.regimes] == ["crash", "high_vol", "low_vol", "normal"]
    assert [b.id for b in rs.entries] == ["ic_entry", "pcs_entry"]
    assert [b.id for b in rs.adjusts] == ["ic_close_tested", "pcs_roll_down"]
    prios = [b.priority for b in rs.program.blocks]
    assert prios == sorted(prios, reverse=True)


def test_shipped_library_strategies() -> None:
    rs = load_ruleset("v6")
    assert sorted(rs.strategies) == ["call_credit_spread", "iron_condor", "put_credit_spread",
                                     "short_strangle"]
    ic = rs.strategies["iron_condor"]
    assert [leg.name for leg in ic.decl.legs] == ["short_put", "long_put", "short_call",
                                                 "long_call"]
    assert ic.params["short_delta"][1] == 0.16
