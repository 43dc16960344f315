"""`v6 demo`: the end-to-end tour available so far — check, test and explain both rule sets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.ruletests import run_tests
from engine.dsl.runtime import evaluate
from engine.dsl.trace import Level
from engine.paths import ROOT

EXAMPLES = ("spy_calm.json", "spy_ic_open.json", "spy_stressed.json")


def run(echo: Callable[[str], None]) -> int:
    """Returns the number of failures (0 on success)."""
    from engine.state.snapshot_io import load_snapshot

    sets: list[RuleSet] = []
    failures = 0
    echo("1. Load, check and compile the shipped rule sets")
    for name in ("v6", "v5-baseline"):
        rs = load_ruleset(name)
        sets.append(rs)
        echo(
            f"   ✔ {rs.name}: {len(rs.blocks)} rules and policies, "
            f"{len(rs.strategies)} strategies, "
            f"hash {rs.hash}"
        )
    echo("\n2. Run their rule tests")
    for rs in sets:
        results, cov = run_tests(rs)
        bad = [r for r in results if not r.ok]
        failures += len(bad)
        total, evaluated, both, _ = cov.summary(rs)
        echo(
            f"   {'✔' if not bad else '✘'} {rs.name}: "
            f"{len(results) - len(bad)}/{len(results)} cases pass; "
            f"conditions evaluated {evaluated}/{total}, seen true and false {both}/{total}"
        )
    echo("\n3. Decide on example snapshots: V6 vs the V5 baseline")
    for example in EXAMPLES:
        snap = load_snapshot(Path(ROOT / "tests" / "snapshots" / example))
        echo(
            f"\n   {example}  (VIX {snap.market.vix}, {len(snap.positions)} open "
            f"position{'s' * (len(snap.positions) != 1)})"
        )
        for rs in sets:
            decisions, trace = evaluate(rs, snap, Level.FAILS)
            assert trace is not None
            echo(
                f"     {rs.name:<12} regime {trace.regime}: "
                + (f"{len(decisions)} decisions" if decisions else "no decisions")
            )
            for d in decisions:
                echo(f"        → {d.describe()}")
    echo(
        "\nNext: `v6 explain --rules v6 --snapshot tests/snapshots/spy_stressed.json` shows every "
        "condition and its values."
    )
    return failures
