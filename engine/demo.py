"""`v6 demo`: the end-to-end tour so far — rule sets checked and tested, then run on markets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.ruletests import run_tests
from engine.dsl.runtime import evaluate
from engine.dsl.trace import Level
from engine.paths import ROOT
from engine.state.snapshot import Snapshot

EXAMPLES = ("spy_calm.json", "spy_ic_open.json", "spy_stressed.json")


DEMO_START, DEMO_END = date(2007, 1, 1), date(2019, 12, 31)


RULESETS = ("v6", "v5-baseline")


def run(
    echo: Callable[[str], None],
    out: Path,
    store: Path | None = None,
    start: date = DEMO_START,
    end: date = DEMO_END,
    progress: bool = True,
) -> int:
    """Returns the number of failures (0 on success). Writes everything under `out`."""
    prepare_out(out)
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
        _decide(echo, sets, snap)
    runs = dry_runs(echo, out, store, start, end, progress)
    compare(echo, runs)
    echo(
        f"\nNext: `v6 diff --ruleset v5-baseline --ruleset v6 --store {out / 'market'} --from "
        f"{end.year}-01-01 --to {end}` lists where the two decide differently; `v6 explain` "
        "shows any rule's conditions and values; `v6 import-history --out STORE` imports real "
        "history for `v6 demo --store STORE`."
    )
    return failures


def _decide(echo: Callable[[str], None], sets: list[RuleSet], snap: Snapshot) -> None:
    for rs in sets:
        decisions, trace = evaluate(rs, snap, Level.FAILS)
        assert trace is not None
        echo(
            f"     {rs.name:<12} regime {trace.regime}: "
            + (f"{len(decisions)} decisions" if decisions else "no decisions")
        )
        for d in decisions:
            echo(f"        → {d.describe()}")


MARKER = ".v6-demo"  # the demo clears only folders it made itself


def prepare_out(out: Path) -> None:
    """A fresh demo folder: the demo's own previous output is replaced, anything else kept."""
    import shutil

    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise ValueError(
                f"{out} exists, is not empty and was not made by `v6 demo`: give another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by v6 demo; removed and rewritten on every run\n")


def dry_runs(
    echo: Callable[[str], None],
    out: Path,
    store: Path | None,
    start: date,
    end: date,
    progress: bool,
) -> list[Path]:
    """Step 4: both rule sets replayed on one market, each into its own run folder."""
    from engine.market.generator import DEMO_SEED, write_synthetic_store
    from engine.runtime.dry_run import DryRunSpec, synthetic_begin
    from engine.runtime.session import run_dry_runs

    if store is None:
        store = out / "market"
        table = write_synthetic_store(store, DEMO_SEED, synthetic_begin(start), end)
        echo(
            f"\n4. Dry run on the embedded synthetic market (seed {DEMO_SEED}, {start}..{end}; "
            f"{table.num_rows:,} daily bars in {store})"
        )
    else:
        echo(f"\n4. Dry run on the market store {store} ({start}..{end})")
    runs = [out / "runs" / name for name in RULESETS]
    specs = [
        DryRunSpec(name, start, end, run, store=store, trace=Level.FULL)
        for name, run in zip(RULESETS, runs, strict=True)
    ]
    summaries = run_dry_runs(specs, progress=progress)
    for name, summary in zip(RULESETS, summaries, strict=True):
        echo(f"   {name}:")
        for line in summary.lines():
            echo(f"     {line}")
    return runs


def compare(echo: Callable[[str], None], runs: list[Path]) -> None:
    """Step 5: the reports, side by side."""
    from engine.report.command import run_report

    echo(f"\n5. V6 against the V5 baseline (reports in {runs[0]}/report and {runs[1]}/report)")
    run_report(runs[1], echo=lambda _: None)  # the baseline's own report files, not printed
    run_report(runs[0], vs=runs[1], echo=echo)
