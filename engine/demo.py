"""`v6 demo`: the end-to-end tour so far — rule sets checked and tested, then run on markets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.ruletests import run_tests
from engine.dsl.runtime import evaluate
from engine.dsl.trace import Level
from engine.paths import ROOT
from engine.state.snapshot import PortfolioState, Snapshot

EXAMPLES = ("spy_calm.json", "spy_ic_open.json", "spy_stressed.json")


DEMO_START, DEMO_END = date(2007, 1, 1), date(2019, 12, 31)
# Portfolio limits read the account; with none known they breach (fail closed), so the tour
# gives the feed's snapshots a flat account.
FLAT = PortfolioState(
    net_liq=100_000.0, cash=100_000.0, peak_net_liq=100_000.0, day_pnl=0.0, day_pnl_pct=0.0,
    drawdown_pct=0.0, bw_delta_spy=0.0, delta=0.0, gamma=0.0, vega=0.0, theta=0.0,
    buying_power_used=0.0, buying_power_available=100_000.0, margin_used_pct=0.0,
)  # fmt: skip


def run(echo: Callable[[str], None], out: Path) -> int:
    """Returns the number of failures (0 on success). Writes the synthetic store under out."""
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
    synthetic_market(echo, sets, out / "market")
    echo(
        "\nNext: `v6 explain --rules v6 --snapshot tests/snapshots/spy_stressed.json` shows every "
        "condition and its values; `v6 import-history --out STORE` imports real history."
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


def synthetic_market(echo: Callable[[str], None], sets: list[RuleSet], store_path: Path) -> None:
    """Step 4: the embedded synthetic market, and both rule sets on its calmest and worst day."""
    import numpy as np

    from engine.feeds.history import HistoryFeed
    from engine.market.generator import DEMO_SEED, write_synthetic_store
    from engine.market.store import MarketStore

    echo(f"\n4. The embedded synthetic market (seed {DEMO_SEED}, {DEMO_START}..{DEMO_END})")
    table = write_synthetic_store(store_path, DEMO_SEED, DEMO_START, DEMO_END)
    echo(f"   ✔ {table.num_rows:,} daily bars of 11 symbols in the Delta store {store_path}")
    feed = HistoryFeed(MarketStore(store_path), DEMO_START, DEMO_END)
    vix = feed.closes["VIX"][feed.first :]
    days = {"calmest": int(np.nanargmin(vix)), "most stressed": int(np.nanargmax(vix))}
    echo(f"   A flat ${FLAT.net_liq:,.0f} account, no positions yet (the dry run keeps the book)")
    for label, i in days.items():
        snap = feed.snapshot_at(feed.first + i)
        assert snap is not None  # the day was chosen by its VIX close
        snap = replace(snap, portfolio=FLAT)
        spy = snap.underlyings["SPY"]
        echo(
            f"\n   {label} day {snap.time:%Y-%m-%d}: SPY {spy.price:.2f}, VIX {snap.market.vix:.2f}"
            f" (VIX3M {snap.market.vix3m:.2f}), synthetic SPY chain of {len(snap.chains['SPY'])}"
            f" contracts, ATM IV {spy.atm_iv:.1%}, IV rank {spy.iv_rank:.0%}"
        )
        _decide(echo, sets, snap)
