"""The rule-language benchmark: result structure and a like-for-like hand-written baseline.

Timings are reported by `v6 bench dsl`, never asserted here: machines are noisy.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.bench import dsl as bench
from engine.bench.dsl_baseline import SCENARIOS, decide, decision_tuple, select_regime
from engine.dsl.ruleset import RuleSet, load, load_ruleset, loose_manifest
from engine.dsl.runtime import evaluate
from engine.dsl.trace import Level


@pytest.fixture(scope="module")
def v6() -> RuleSet:
    return load_ruleset("v6")


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return bench.run(quick=True)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_hand_written_baseline_decides_like_the_compiled_rules(v6: RuleSet, scenario: str) -> None:
    snap = SCENARIOS[scenario]()
    decisions, trace = evaluate(v6, snap, Level.FULL)
    assert trace is not None
    assert decide(snap) == [decision_tuple(d) for d in decisions]
    assert select_regime(snap) == trace.regime


def test_scenarios_cover_every_phase_and_missing_data(v6: RuleSet) -> None:
    fired: set[str] = set()
    for make in SCENARIOS.values():
        fired |= {d.rule_id for d in evaluate(v6, make())[0]}
    # breakers, limits, hedge, exits, take-profit, adjustments, entries all take part
    for rule in ("drawdown", "vix_spike", "disconnect", "bw_delta", "correlated_cluster",
                 "buying_power", "bw_delta_hedge", "stop_vol_adjusted", "trailing_stop",
                 "tp_by_regime", "dte_exit", "ic_close_tested", "pcs_roll_down", "ic_entry",
                 "pcs_entry"):
        assert rule in fired, rule
    assert select_regime(SCENARIOS["stressed"]()) == "crash"
    assert select_regime(SCENARIOS["take_profit"]()) == "low_vol"
    assert select_regime(SCENARIOS["bench"]()) == "normal"


def test_baseline_differs_when_the_rules_would(v6: RuleSet) -> None:
    """The equivalence check has teeth: a change the rules react to changes both sides."""
    snap = SCENARIOS["bench"]()
    moved = replace(snap, portfolio=replace(snap.portfolio, margin_used_pct=0.7))
    assert decide(moved) != decide(snap)
    assert decide(moved) == [decision_tuple(d) for d in evaluate(v6, moved)[0]]


def test_benchmark_snapshot_is_realistic() -> None:
    snap = SCENARIOS["bench"]()
    assert snap.market.session == "regular" and snap.market.regime is None
    assert set(snap.underlyings) == {"SPY", "QQQ", "IWM"}
    assert 350 <= len(snap.chains["SPY"]) <= 450 and len(snap.chains["SPY"].expiries()) == 3
    assert len(snap.positions) == 5 and all(p.legs for p in snap.positions)


def test_generated_rule_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "generated.v6"
    path.write_text(bench.generated_rules(60, seed=1), encoding="utf-8")
    rs = load(loose_manifest([path]))
    phases = {b.phase for b in rs.blocks}
    assert len(rs.blocks) == 60 and phases == {"entry", "exit", "take_profit", "adjust"}
    assert any(b.let_names for b in rs.blocks)
    for make in SCENARIOS.values():  # generated rules evaluate without errors
        _, trace = evaluate(rs, make(), Level.FAILS)
        assert trace is not None
        assert not [r for r in trace.rules if r.note and r.note.startswith("evaluation error")]


@pytest.mark.slow
def test_run_quick_result_structure(results: dict[str, Any]) -> None:
    assert results["benchmark"] == "dsl" and results["quick"] is True
    assert results["equivalent"] is True
    assert set(results["equivalence"]) == set(SCENARIOS)
    assert all(e["equal"] and e["regime_equal"] for e in results["equivalence"].values())
    assert results["snapshot"]["positions"] == 5
    names = [row["name"] for row in results["comparisons"]]
    assert [n[:3] for n in names] == ["(a)", "(b)", "(b)", "(b)"]
    for row in results["comparisons"]:
        for side in ("subject_us", "anchor_us"):
            assert 0 < row[side]["best"] <= row[side]["median"]
        assert row["ratio"] > 0 and row["ratio_best"] > 0
        assert row["status"] in {"PASS", "MISS", "INFO"}
    assert [row["target"] for row in results["comparisons"]] == [1.5, 3.0, None, None]
    ld = results["load"]
    assert ld["rules"] == bench.GENERATED_RULES and ld["target_s"] == 0.5
    assert 0 < ld["best_s"] <= ld["median_s"]
    assert set(ld["split_s"]) == {"parse", "check", "compile"}
    assert ld["status"] in {"PASS", "MISS"}


@pytest.mark.slow
def test_report_shows_every_measure(results: dict[str, Any]) -> None:
    text = bench.report(results)
    for needle in ("(a) compiled", "(b) explain FULL", "(b) explain FAILS", "(c) load 1,000",
                   "<=1.5x", "<=3x", "<=0.5 s", "same decisions", "parse"):
        assert needle in text
    assert "DIFFERENT" not in text
