"""The shipped rule sets check, format idempotently, pass their rule tests and activate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.dsl.activation import ActiveRuleSet
from engine.dsl.fmt import format_source
from engine.dsl.parser import read_source
from engine.dsl.ruleset import load_ruleset
from engine.dsl.ruletests import run_tests

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    p for d in ("rules", "strategies", "risk_policies") for p in (ROOT / d).rglob("*.v6")
)


@pytest.mark.parametrize("name", ["v6", "v5-baseline"])
def test_shipped_sets_check_and_pass_their_rule_tests(name: str) -> None:
    rs = load_ruleset(name)
    results, coverage = run_tests(rs)
    assert len(results) >= 6
    assert [r.failures for r in results if not r.ok] == []
    total, evaluated, _, _ = coverage.summary(rs)
    assert evaluated >= total - 1  # `normal: true` is only reached when no other regime matches


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_are_canonically_formatted(path: Path) -> None:
    source = read_source(path)
    formatted = format_source(source)
    assert formatted == source.text, f"run: uv run v6 fmt {path.relative_to(ROOT)}"


def test_v6_and_v5_share_entries_but_not_exits() -> None:
    v6, v5 = load_ruleset("v6"), load_ruleset("v5-baseline")
    assert {b.id for b in v6.entries} == {b.id for b in v5.entries}
    assert not {b.id for b in v6.closes} & {b.id for b in v5.closes}
    assert not v5.limits and not v5.breakers and not v5.hedges
    assert v6.hash != v5.hash


def test_activation_is_atomic(tmp_path: Path) -> None:
    active = ActiveRuleSet(load_ruleset("v5-baseline"))
    before = active.current
    # A copy of the V6 set with one rule test that cannot pass: refused, the old set stays.
    for d in ("rules", "strategies", "risk_policies"):
        shutil.copytree(ROOT / d, tmp_path / d)
    test_file = tmp_path / "rules" / "v6.test.yaml"
    test_file.write_text(
        test_file.read_text().replace("fired: [dte_exit]", "fired: [tp_by_regime]")
    )
    refused = active.activate(str(tmp_path / "rules" / "v6.ruleset.yaml"))
    assert not refused.activated and active.current is before
    assert any("DTE exit at 21 days" in f for f in refused.failed_tests)
    # A set that does not check is refused with its errors.
    entries = tmp_path / "rules" / "entries.v6"
    entries.write_text(entries.read_text().replace("underlying.iv_rank", "underlying.iv_rnk"))
    broken = active.activate(str(tmp_path / "rules" / "v6.ruleset.yaml"))
    assert not broken.activated and "V6E100" in broken.errors and active.current is before
    # The shipped set activates.
    ok = active.activate("v6")
    assert ok.activated and active.current.name == "v6"


def test_content_hash_changes_with_any_file(tmp_path: Path) -> None:
    for d in ("rules", "strategies", "risk_policies"):
        shutil.copytree(ROOT / d, tmp_path / d)
    manifest = str(tmp_path / "rules" / "v6.ruleset.yaml")
    first = load_ruleset(manifest).hash
    assert load_ruleset(manifest).hash == first
    strat = tmp_path / "strategies" / "iron_condor.v6"
    strat.write_text(strat.read_text() + "\n# a comment changes the content\n")
    assert load_ruleset(manifest).hash != first
