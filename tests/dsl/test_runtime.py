"""evaluate(): three-valued logic, ordering, first-match groups, limits, regimes, traces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from syrupy.assertion import SnapshotAssertion

from engine.dsl import Level, evaluate, load_ruleset
from engine.dsl.ruleset import RuleSet
from engine.dsl.trace import ConditionTrace, Operand, RuleTrace, Trace
from engine.paths import ROOT
from engine.state.snapshot import Snapshot
from tests.dsl.conftest import CompileRules, MakeSnap, realistic_snapshot

SPY = {"SPY": {"price": 500.0, "iv_rank": 0.35}}


def entry_rule(when: str, lets: str = "") -> str:
    return f"rule r {{\n  on entry\n{lets}  when {when}\n  then alert\n}}\n"


def rule(name: str, phase: str, when: str, then: str, priority: int = 0, extra: str = "") -> str:
    return (f"rule {name} {{\n  on {phase}\n  priority {priority}\n{extra}  when {when}\n"
            f"  then {then}\n}}\n")


def traces(trace: Trace | None, subject: str | None = None) -> list[tuple[Any, ...]]:
    """(rule, subject, status, note) per rule trace; without the subject when filtering on it."""
    assert trace is not None
    if subject is None:
        return [(r.rule_id, r.subject, r.status, r.note) for r in trace.rules]
    return [(r.rule_id, r.status, r.note) for r in trace.rules if r.subject == subject]


def status_of(rs: RuleSet, snap: Snapshot) -> str:
    decisions, trace = evaluate(rs, snap, Level.FULL)
    assert trace is not None
    (rt,) = [r for r in trace.rules if r.rule_id == "r"]
    assert len(decisions) == (1 if rt.status == "fired" else 0)
    return rt.status


STATUS = {True: "fired", False: "not_fired", None: "unknown"}
T, F, U = True, False, None
LIT = {T: "true", F: "false", U: "unknown"}
AND = {(T, T): T, (T, F): F, (T, U): U, (F, T): F, (F, F): F, (F, U): F, (U, T): U, (U, F): F,
       (U, U): U}
OR = {(T, T): T, (T, F): T, (T, U): T, (F, T): T, (F, F): F, (F, U): U, (U, T): T, (U, F): U,
      (U, U): U}
KLEENE = ([(f"{LIT[a]} and {LIT[b]}", STATUS[w]) for (a, b), w in AND.items()]
          + [(f"{LIT[a]} or {LIT[b]}", STATUS[w]) for (a, b), w in OR.items()]
          + [("not true", "not_fired"), ("not false", "fired"), ("not unknown", "unknown")])

# conditions against vix=20, vix3m=25, vvix=0 (division by zero: unknown), vix9d unknown
DATA_CASES = [
    ("market.vix9d > 10", "unknown"), ("market.vix9d > 10 and market.vix > 30", "not_fired"),
    ("market.vix > 10 or market.vix9d > 10", "fired"), ("not (market.vix9d > 10)", "unknown"),
    ("market.vix9d > 10 or market.vix > 30", "unknown"), ("market.vix9d_ratio > 0", "unknown"),
    ("market.vix * 2 - 1 == 39", "fired"), ("(market.vix + 10) / 2 == 15", "fired"),
    ("market.vix / market.vix3m == 0.8", "fired"), ("market.vix / market.vvix > 0", "unknown"),
    ("market.vix_term_ratio == 0.8", "fired"), ("-market.vix == -20", "fired"),
    ("market.vix - market.vix9d > 0", "unknown"), ("abs(-market.vix) == 20", "fired"),
    ("max(market.vix, market.vix3m, 3) == 25", "fired"), ("is_known(market.vix9d)", "not_fired"),
    ("min(market.vix, market.vix9d) < 100", "unknown"), ("10 < market.vix <= 20", "fired"),
    ("not is_known(market.vix9d)", "fired"), ("10 < market.vix < 20", "not_fired"),
    ("20 < market.vix <= 30", "not_fired"), ("0 < market.vix9d < 100", "unknown"),
    ("market.vix <= market.vix3m <= 30", "fired"), ("market.vix in [10, 20]", "fired"),
    ("market.vix not in [10, 20]", "not_fired"), ("market.vix9d in [10, 20]", "unknown"),
    ("underlying.symbol in [SPY, QQQ]", "fired"), ("market.regime not in [crash]", "fired"),
    ("underlying.symbol not in [SPY, QQQ]", "not_fired"), ("market.regime == crash", "not_fired"),
    ("market.regime in [normal, low_vol]", "fired"),
]


@pytest.mark.parametrize(("cond", "want"), KLEENE + DATA_CASES,
                         ids=[c for c, _ in KLEENE + DATA_CASES])
def test_expression_semantics(compile_rules: CompileRules, make_snap: MakeSnap, cond: str,
                              want: str) -> None:
    rs = compile_rules(entry_rule(cond))
    snap = make_snap(market={"regime": "normal", "vix": 20.0, "vix3m": 25.0, "vvix": 0.0},
                     underlyings=SPY)
    assert status_of(rs, snap) == want


@pytest.mark.parametrize(("regime", "value", "status"), [
    ("crash", 1.0, "not_fired"), ("high_vol", 2.0, "fired"), ("normal", 3.0, "not_fired"),
    (None, None, "unknown"),
])
def test_match(compile_rules: CompileRules, make_snap: MakeSnap, regime: str | None,
               value: float | None, status: str) -> None:
    rs = compile_rules(entry_rule("x == 2", "  let x = match market.regime { crash => 1  "
                                  "high_vol => 2  else => 3 }\n"))
    _, trace = evaluate(rs, make_snap(market={"regime": regime}, underlyings=SPY), Level.FULL)
    assert trace is not None
    (rt,) = trace.rules
    assert (rt.status, rt.lets) == (status, (Operand("x", value, "number"),))


def test_priority_then_file_then_id(compile_files: Callable[..., RuleSet],
                                    make_snap: MakeSnap) -> None:
    def e(name: str, priority: int, when: str = "true") -> str:
        return rule(name, "entry", when, "alert", priority)

    rs = compile_files({"b.v6": e("beta", 5) + e("top", 9, "market.vix > 30") + e("low", 1),
                        "a.v6": e("zeta", 5) + e("alpha", 5)})
    assert [b.id for b in rs.entries] == ["top", "alpha", "zeta", "beta", "low"]
    decisions, trace = evaluate(rs, make_snap(market={"vix": 20.0}, underlyings=SPY), Level.FULL)
    assert [(d.rule_id, d.symbol) for d in decisions] == [("alpha", "SPY")]
    skipped = "'alpha' matched first"
    assert traces(trace) == [("top", "SPY", "not_fired", None), ("alpha", "SPY", "fired", None),
                             ("zeta", "SPY", "skipped", skipped),
                             ("beta", "SPY", "skipped", skipped),
                             ("low", "SPY", "skipped", skipped)]


def test_negative_priority_ranks_below_zero(compile_rules: CompileRules) -> None:
    rs = compile_rules("rule neg {\n  on entry\n  priority -10\n  then alert\n}\n"
                       "rule zero {\n  on entry\n  then alert\n}\n")
    assert [(b.id, b.priority) for b in rs.program.blocks] == [("zero", 0), ("neg", -10)]
    assert [b.id for b in rs.entries] == ["zero", "neg"]


POSITION_RULES = (
    rule("big_loss", "exit", "position.pnl_pct_of_credit <= -100%", "close", 20,
         '  reason "stop"\n')
    + rule("tp", "take_profit", "position.pnl_pct_of_credit >= 50%", "reduce(fraction = 50%)", 15)
    + rule("near_expiry", "exit", "position.dte <= 5d", "close", 10)
    + rule("defend", "adjust", "position.short_delta_max >= 0.30", "roll short_put(dte = 45d)"))


def test_exits_first_match_per_position_and_adjust_skipped(compile_rules: CompileRules,
                                                           make_snap: MakeSnap) -> None:
    rs = compile_rules(POSITION_RULES)
    tested = [{"role": "short_put", "strike": 480.0, "delta": -0.35}]
    snap = make_snap(positions=[
        {"id": "P3", "pnl_pct_of_credit": 0.1, "dte": 30.0, "legs": tested},
        {"id": "P1", "pnl_pct_of_credit": -1.5, "dte": 3.0},
        {"id": "P2", "pnl_pct_of_credit": 0.6, "dte": 3.0},
        {"id": "P0"},
    ])
    decisions, trace = evaluate(rs, snap, Level.FULL)
    assert [(d.rule_id, d.position_id, d.symbol, d.verb, d.target, d.args, d.reason)
            for d in decisions] == [
        ("big_loss", "P1", "SPY", "close", None, (), "stop"),
        ("tp", "P2", "SPY", "reduce", None, (("fraction", 0.5),), None),
        ("defend", "P3", "SPY", "roll", "short_put", (("dte", 45.0),), None),
    ]
    closing, by_loss = "position is being closed", "'big_loss' matched first"
    assert traces(trace, "P0") == [("big_loss", "unknown", None), ("tp", "unknown", None),
                                   ("near_expiry", "unknown", None), ("defend", "unknown", None)]
    assert traces(trace, "P1") == [("big_loss", "fired", None), ("tp", "skipped", by_loss),
                                   ("near_expiry", "skipped", by_loss),
                                   ("defend", "skipped", closing)]
    assert traces(trace, "P2") == [("big_loss", "not_fired", None), ("tp", "fired", None),
                                   ("near_expiry", "skipped", "'tp' matched first"),
                                   ("defend", "skipped", closing)]
    assert traces(trace, "P3") == [("big_loss", "not_fired", None), ("tp", "not_fired", None),
                                   ("near_expiry", "not_fired", None), ("defend", "fired", None)]


def test_entries_first_match_per_underlying_with_symbols(compile_rules: CompileRules,
                                                          make_snap: MakeSnap) -> None:
    rs = compile_rules("rule spy_only {\n  on entry\n  priority 10\n  symbols [SPY]\n"
                       "  when underlying.iv_rank >= 30%\n  then open iron_condor\n}\n"
                       "rule anyone {\n  on entry\n  priority 5\n  when underlying.iv_rank >= 20%\n"
                       "  then open put_credit_spread\n}\n")
    snap = make_snap(underlyings={"SPY": {"iv_rank": 0.35}, "QQQ": {"iv_rank": 0.4},
                                  "IWM": {"iv_rank": 0.1}})
    decisions, trace = evaluate(rs, snap, Level.FULL)
    assert [(d.rule_id, d.symbol, d.target) for d in decisions] == [
        ("anyone", "QQQ", "put_credit_spread"), ("spy_only", "SPY", "iron_condor")]
    assert traces(trace) == [("anyone", "IWM", "not_fired", None),
                             ("anyone", "QQQ", "fired", None),
                             ("spy_only", "SPY", "fired", None),
                             ("anyone", "SPY", "skipped", "'spy_only' matched first")]


LIMITS = ("limit nl {\n  check portfolio.net_liq >= $1,000\n  on_breach halt\n}\n"
          "limit max_pos {\n  check portfolio.open_positions <= 3\n"
          "  on_breach block_entries, alert(severity = critical)\n}\n"
          "breaker vix {\n  trigger market.vix >= 40\n  then flatten\n}\n")


@pytest.mark.parametrize(("portfolio", "vix", "acted"), [
    ({"net_liq": 5000.0, "open_positions": 2}, 20.0, []),
    ({"net_liq": 5000.0, "open_positions": 5}, 20.0,
     [("max_pos", "block_entries"), ("max_pos", "alert")]),
    ({"net_liq": 500.0, "open_positions": 3}, 20.0, [("nl", "halt")]),
    ({"open_positions": 0}, 20.0, [("nl", "halt")]),  # unknown check: breached
    ({"net_liq": 5000.0}, 45.0, [("vix", "flatten")]),
    ({"open_positions": 9}, None, [("max_pos", "block_entries"), ("max_pos", "alert"),
                                   ("nl", "halt")]),
])
def test_limits_act_when_check_fails_or_is_unknown(compile_rules: CompileRules,
                                                   make_snap: MakeSnap, portfolio: dict[str, Any],
                                                   vix: float | None,
                                                   acted: list[tuple[str, str]]) -> None:
    rs = compile_rules(LIMITS)
    decisions, _ = evaluate(rs, make_snap(market={"vix": vix}, portfolio=portfolio))
    assert [(d.rule_id, d.verb) for d in decisions] == acted
    assert all(d.symbol is None and d.position_id is None for d in decisions)


NORMAL = "regime normal {\n  when true\n}\n"
REGIMES = ("regime crash {\n  priority 30\n  when market.vix >= 35\n}\n"
           "regime high_vol {\n  priority 20\n  when market.vix >= 25\n}\n" + NORMAL
           + entry_rule("market.regime == crash"))


@pytest.mark.parametrize(("given", "vix", "regime", "source", "regime_traces"), [
    (None, 40.0, "crash", "policy",
     [("crash", "fired"), ("high_vol", "skipped"), ("normal", "skipped")]),
    (None, 30.0, "high_vol", "policy",
     [("crash", "not_fired"), ("high_vol", "fired"), ("normal", "skipped")]),
    (None, None, "normal", "policy",
     [("crash", "unknown"), ("high_vol", "unknown"), ("normal", "fired")]),
    ("crash", 10.0, "crash", "snapshot", []),
    ("low_vol", 40.0, "low_vol", "snapshot", []),
])
def test_regime_from_policy_or_snapshot(compile_rules: CompileRules, make_snap: MakeSnap,
                                        given: str | None, vix: float | None, regime: str,
                                        source: str, regime_traces: list[tuple[str, str]]) -> None:
    rs = compile_rules(REGIMES)
    snap = make_snap(market={"regime": given, "vix": vix}, underlyings=SPY)
    decisions, trace = evaluate(rs, snap, Level.FULL)
    assert trace is not None
    assert (trace.regime, trace.regime_source) == (regime, source)
    assert [(r.rule_id, r.status) for r in trace.rules if r.kind == "regime"] == regime_traces
    assert [d.rule_id for d in decisions] == (["r"] if regime == "crash" else [])


def test_no_regime_matches(compile_rules: CompileRules, make_snap: MakeSnap) -> None:
    rs = compile_rules(REGIMES.replace(NORMAL, ""))
    _, trace = evaluate(rs, make_snap(market={"vix": 12.0}, underlyings=SPY), Level.FAILS)
    assert trace is not None
    assert (trace.regime, trace.regime_source) == (None, "unknown")
    assert [r.status for r in trace.rules] == ["not_fired", "not_fired", "unknown"]


def test_decision_carries_hash_location_and_resolved_args(compile_rules: CompileRules,
                                                          make_snap: MakeSnap) -> None:
    rs = compile_rules('rule ic "Iron condor" {\n  on entry\n  priority 3\n'
                       "  then open iron_condor(short_delta = 0.16),\n"
                       '       alert(severity = info, message = "opened")\n  reason "rich IV"\n}\n')
    decisions, _ = evaluate(rs, make_snap(underlyings=SPY))
    assert decisions[0].describe() == "ic [entry] open iron_condor(short_delta=0.16) on SPY"
    common = {"time": "2024-05-01T14:30:00+00:00", "ruleset": rs.hash, "rule_id": "ic",
              "kind": "rule", "phase": "entry", "reason": "rich IV", "priority": 3,
              "location": "x.v6:2:1", "symbol": "SPY", "position_id": None}
    assert [d.to_dict() for d in decisions] == [
        {**common, "verb": "open", "target": "iron_condor", "args": {"short_delta": 0.16}},
        {**common, "verb": "alert", "target": None,
         "args": {"severity": "info", "message": "opened"}},
    ]
    assert decisions[1].args == (("severity", "info"), ("message", "opened"))
    assert len(rs.hash) == 16


def test_arg_units_are_the_declared_units(compile_rules: CompileRules,
                                          make_snap: MakeSnap) -> None:
    # The strategy declares short_delta: delta, wing_width: price; `open` declares quantity: count.
    rs = compile_rules("rule ic {\n  on entry\n  then open iron_condor(short_delta = 0.16, "
                       "wing_width = $5, quantity = 2)\n}\n")
    (d,) = evaluate(rs, make_snap(underlyings=SPY))[0]
    assert d.args == (("short_delta", 0.16), ("wing_width", 5.0), ("quantity", 2.0))
    assert d.info.arg_units == ("delta", "price", "count")


def test_hedge_argument_computed_from_data(compile_rules: CompileRules,
                                           make_snap: MakeSnap) -> None:
    rs = compile_rules("hedge h {\n  when abs(portfolio.bw_delta_spy) > 100\n"
                       "  then hedge(target = portfolio.bw_delta_spy / 2, instrument = ES)\n}\n")
    decisions, _ = evaluate(rs, make_snap(portfolio={"bw_delta_spy": -300.0}))
    assert [(d.verb, d.args, d.info.arg_units) for d in decisions] == [
        ("hedge", (("target", -150.0), ("instrument", "ES")), ("delta", "hedge_instrument"))]


THREE = entry_rule(
    "{\n    market.vix > 10\n    market.vix < 30\n    underlying.iv_rank >= 50%\n  }")
C0 = ConditionTrace(0, "market.vix > 10", "x.v6:5:5", True, (Operand("market.vix", 35.0, "level"),),
                    None, "level")
C1 = ConditionTrace(1, "market.vix < 30", "x.v6:6:5", False,
                    (Operand("market.vix", 35.0, "level"),), -5.0, "level")
C2 = ConditionTrace(2, "underlying.iv_rank >= 50%", "x.v6:7:5", False,
                    (Operand("underlying.iv_rank", 0.25, "percent"),), 0.25, "percent")


@pytest.mark.parametrize(("level", "conds"), [(Level.FAILS, (C1,)), (Level.FULL, (C0, C1, C2))])
def test_trace_levels(compile_rules: CompileRules, make_snap: MakeSnap, level: Level,
                      conds: tuple[ConditionTrace, ...]) -> None:
    rs = compile_rules(THREE)
    snap = make_snap(market={"vix": 35.0}, underlyings={"SPY": {"iv_rank": 0.25}})
    decisions, trace = evaluate(rs, snap, level)
    assert decisions == ()
    assert trace is not None
    assert (trace.ruleset, trace.level, trace.regime, trace.regime_source) == (
        rs.hash, level, None, "unknown")
    assert trace.rules == (
        RuleTrace("r", "rule", "entry", "SPY", "not_fired", "x.v6:2:1", 1, conds),)


def test_trace_off_and_fired_rules(compile_rules: CompileRules, make_snap: MakeSnap) -> None:
    rs = compile_rules(THREE)
    snap = make_snap(market={"vix": 20.0}, underlyings={"SPY": {"iv_rank": 0.6}})
    assert evaluate(rs, snap) == (evaluate(rs, snap, Level.FULL)[0], None)
    _, fails = evaluate(rs, snap, Level.FAILS)
    _, full = evaluate(rs, snap, Level.FULL)
    assert fails is not None and full is not None
    assert [(r.status, r.failed_index, r.conditions) for r in fails.rules] == [("fired", None, ())]
    assert [c.result for c in full.rules[0].conditions] == [True, True, True]
    assert [c.distance for c in full.rules[0].conditions] == [None, None, None]


def test_overflowing_literal_is_rejected_or_compares_as_infinity(
        compile_files: Callable[..., RuleSet], make_snap: MakeSnap) -> None:
    # 1.0e999 is float('inf'); repr() of it is the bare name `inf` in generated code.
    from engine.dsl.errors import DslError

    try:
        rs = compile_files({"x.v6": entry_rule("market.vix < 1.0e999")})
    except DslError as exc:
        assert exc.codes[0].startswith("V6E2")
        return
    assert status_of(rs, make_snap(market={"vix": 20.0}, underlyings=SPY)) == "fired"


def test_numpy_floats_in_the_snapshot_behave_like_floats(compile_rules: CompileRules,
                                                         make_snap: MakeSnap) -> None:
    # np.float64 is a float subclass, but its comparisons return np.bool_, not True/False:
    # live (OFF) and explain (FULL) evaluation must still agree, and agree with plain floats.
    rs = compile_rules(entry_rule("market.vix < 30 and market.vix > 10"))
    for vix in (20.0, np.float64(20.0)):
        snap = make_snap(market={"vix": vix}, underlyings=SPY)
        off, _ = evaluate(rs, snap)
        full, trace = evaluate(rs, snap, Level.FULL)
        assert [d.rule_id for d in off] == ["r"], type(vix)
        assert [d.rule_id for d in full] == ["r"], type(vix)
        assert trace is not None and trace.rules[0].status == "fired", type(vix)


def test_missing_data_is_unknown_never_an_error(monkeypatch: pytest.MonkeyPatch,
                                                 make_snap: MakeSnap) -> None:
    monkeypatch.chdir(ROOT)
    rs = load_ruleset("v6")
    snap = make_snap(underlyings={"SPY": {}}, positions=[{"id": "P1"}])  # no data at all
    decisions, trace = evaluate(rs, snap, Level.FULL)
    assert [(d.rule_id, d.verb) for d in decisions] == [  # unverifiable limits act
        ("buying_power", "block_entries"), ("bw_delta", "block_entries"),
        ("cluster_delta", "block_entries"), ("vega_cap", "block_entries"),
        ("vega_cap", "alert")]
    assert trace is not None and all(r.note is None for r in trace.rules)
    assert {r.rule_id: r.status for r in trace.rules
            if r.kind == "rule" and r.status != "unknown"} == {"pcs_roll_down": "not_fired"}


def normalised(x: Any, rs: RuleSet) -> Any:
    """A decision or trace as plain data, the rule-set hash replaced (it changes with any edit)."""
    d = x.to_dict()
    d["ruleset"] = "<hash>" if d["ruleset"] == rs.hash else d["ruleset"]
    return d


def outcome(rs: RuleSet, snap: Snapshot) -> tuple[Any, ...]:
    decisions, trace = evaluate(rs, snap, Level.FULL)
    return tuple(d.to_dict() for d in decisions), trace.to_dict() if trace else None


def test_determinism(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    rs1, rs2 = load_ruleset("v6"), load_ruleset("v6")
    assert rs1.hash == rs2.hash
    first = outcome(rs1, realistic_snapshot())
    assert outcome(rs1, realistic_snapshot()) == first
    assert outcome(rs2, realistic_snapshot()) == first
    assert evaluate(rs1, realistic_snapshot())[0] == evaluate(rs2, realistic_snapshot())[0]


def test_full_trace_of_shipped_v6(monkeypatch: pytest.MonkeyPatch,
                                  snapshot: SnapshotAssertion) -> None:
    monkeypatch.chdir(ROOT)  # locations are relative to the working directory
    rs = load_ruleset("v6")
    decisions, trace = evaluate(rs, realistic_snapshot(), Level.FULL)
    assert [(d.rule_id, d.verb, d.target, d.symbol, d.position_id) for d in decisions] == [
        ("buying_power", "block_entries", None, None, None),
        ("pcs_roll_down", "roll", "short_put", "QQQ", "P2"),
        ("pcs_entry", "open", "put_credit_spread", "IWM", None),
    ]
    assert trace is not None
    assert (trace.regime, trace.regime_source) == ("normal", "policy")
    assert [normalised(d, rs) for d in decisions] == snapshot(name="decisions")
    assert normalised(trace, rs) == snapshot(name="trace")


@pytest.mark.parametrize(("vix", "distance"), [(5.0, -5.0), (47.0, -7.0), (20.0, None)])
def test_chained_comparison_distance_is_to_the_violated_bound(
        compile_rules: CompileRules, make_snap: MakeSnap, vix: float, distance: float | None
) -> None:
    rs = compile_rules(entry_rule("10 <= market.vix <= 40"))
    _, trace = evaluate(rs, make_snap(market={"vix": vix}, underlyings=SPY), Level.FULL)
    assert trace is not None
    (cond,) = trace.rules[0].conditions
    assert cond.distance == distance


WHATIF_LIMITS = """
limit few "At most two positions" {
  check portfolio.open_positions <= 2
  on_breach block_entries
}
limit band "Delta in band" {
  check -100 <= portfolio.bw_delta_spy <= 100
  on_breach block_entries
}
"""


def test_limits_alone_are_traced_for_the_what_if_check(
        compile_rules: CompileRules, make_snap: MakeSnap) -> None:
    from engine.dsl.runtime import TickContext

    rs = compile_rules(WHATIF_LIMITS)
    snap = make_snap(portfolio={"open_positions": 3, "bw_delta_spy": 50.0})
    records: list[tuple[Any, ...]] = []
    decisions = rs.compiled.limits(snap, TickContext(rs, snap), records.append)
    assert [d.rule_id for d in decisions] == ["few"]
    assert [r[1] for r in records] == list(rs.compiled.groups["limit"])
    assert evaluate(rs, snap)[0] == tuple(decisions)
