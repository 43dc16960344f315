"""Dry-run benchmark: `v6 bench dryrun [--quick]` — the whole loop, timed by stage.

(a) Daily: the v6 rule set over 13 years (2007-2019) of the embedded synthetic market, with
    full synthetic chains for SPY, QQQ and IWM, journal at trace level `fails`: target ≤ 60 s
    end to end. The anchor is the chain work itself (building and enriching the chains): the
    engine's overhead — book, rules, risk gate, broker, journal — should cost at most as much.
(b) Intraday: the real SPY one-minute bars of ../shared/data/intraday (63 sessions, 24,570
    ticks), a synthetic chain at every bar (expiries to 50 days, strikes ±5%: ~1,600
    contracts, a wider window than the 400 of the target), daily features from the VIX family
    of the bars themselves (the daily history ends in 2019): target ≤ 120 s.
Peak memory (ru_maxrss of this process, which runs both) is reported against 1.5 GB.
`--quick` runs one year daily and 5 sessions intraday.
"""

from __future__ import annotations

import dataclasses
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from engine.paths import shared_data_dir
from engine.runtime.replay import ReplayStats

TARGET_DAILY_S = 60.0
TARGET_INTRADAY_S = 120.0
TARGET_RSS_MB = 1536.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _split(stats: ReplayStats, wall: float) -> dict[str, Any]:
    s = stats.seconds
    engine = s["book"] + s["rules"] + s["broker"] + s["journal"]
    return {
        "ticks": stats.ticks,
        "wall_s": wall,
        "ticks_per_s": stats.ticks / wall if wall else 0.0,
        "split_s": dict(s),
        "engine_over_chains": engine / s["feed"] if s["feed"] else None,
    }


def bench_daily(quick: bool) -> dict[str, Any]:
    """(a): `v6 dry-run --ruleset v6 --synthetic 6` over 2007-2019, in process."""
    from engine.runtime.dry_run import DryRunSpec
    from engine.runtime.session import run_dry_run

    start = date(2019, 1, 1) if quick else date(2007, 1, 1)
    with tempfile.TemporaryDirectory(prefix="v6-bench-") as tmp:
        spec = DryRunSpec("v6", start, date(2019, 12, 31), Path(tmp) / "run", synthetic=6)
        t0 = time.perf_counter()
        summary = run_dry_run(spec, progress=False)
        wall = time.perf_counter() - t0
    stats = ReplayStats(ticks=summary.ticks, seconds=dict(summary.seconds))
    return _split(stats, wall) | {
        "orders": summary.orders,
        "target_s": TARGET_DAILY_S,
        "label": f"daily {start.year}-2019, SPY/QQQ/IWM chains",
    }


def _intraday_feed(sessions: int) -> tuple[Any, int]:
    """The real SPY minute bars with chains and the features the rules read."""
    import numpy as np

    from engine.feeds.intraday import IntradayFeed, IntradaySpec, read_minute_bars
    from engine.kernels import realized_vol_close
    from engine.market.surface import VolIndices
    from engine.market.synth_chain import ChainSpec
    from engine.state.enrich import enrich_underlying

    (path,) = sorted((shared_data_dir() / "intraday").glob("spy_1min_*.csv"))
    bars = read_minute_bars(path)
    days = sorted({b.time.date() for b in bars})[:sessions]
    bars = [b for b in bars if b.time.date() in set(days)]
    # Daily history in ../shared/data ends in 2019: the VIX family is held at a level typical
    # of these months (VIX 12-16), and realized vol comes from the bars' own session closes.
    closes = np.array([[b for b in bars if b.time.date() == d][-1].close for d in days])
    rv = dict(zip(days, realized_vol_close(closes, 20), strict=True))
    spec = IntradaySpec(chain=ChainSpec(max_days=50, strike_range=0.05))
    feed = IntradayFeed(bars, lambda d: VolIndices(vix=14.0, vix3m=15.5, vix9d=13.0), spec)
    previous = {d: days[i - 1] for i, d in enumerate(days) if i}

    class Enriched:
        def describe(self) -> str:
            return feed.describe()

        def ticks(self) -> Iterator[Any]:
            for snap in feed.ticks():
                before = previous.get(snap.time.date())
                vol = float(rv[before]) if before is not None else float("nan")
                u = dataclasses.replace(snap.underlyings["SPY"], realized_vol_20d=vol, beta=1.0)
                u = enrich_underlying(u, snap.chains["SPY"], None, snap.time, r=spec.chain.rate)
                yield dataclasses.replace(snap, underlyings={"SPY": u})

    contracts = len(next(iter(feed.ticks())).chains["SPY"])
    return Enriched(), contracts


def bench_intraday(quick: bool) -> dict[str, Any]:
    """(b): the engine over minute ticks, journaled like a dry run."""
    from engine.dsl.ruleset import load_ruleset
    from engine.dsl.trace import Level
    from engine.execution.costs import Costs
    from engine.execution.fill_models import DEFAULT_FILL_MODEL
    from engine.journal.run_journal import RunJournal
    from engine.runtime.dry_run import build_engine
    from engine.runtime.engine import Engine
    from engine.runtime.replay import Runner, replay

    if not (shared_data_dir() / "intraday").is_dir():
        return {"status": "SKIP", "note": f"no intraday data under {shared_data_dir()}"}
    with tempfile.TemporaryDirectory(prefix="v6-bench-") as tmp:
        feed, contracts = _intraday_feed(5 if quick else 63)
        rs = load_ruleset("v6")
        engine: Engine = build_engine(rs, DEFAULT_FILL_MODEL, Costs(), 100_000.0, Level.FAILS)
        journal = RunJournal.create(Path(tmp) / "run", {"bench": "intraday"})
        t0 = time.perf_counter()
        stats = replay(feed, [Runner("v6", engine, journal)])
        t1 = time.perf_counter()
        journal.close("complete", {})
        stats.seconds["journal"] += time.perf_counter() - t1
        wall = time.perf_counter() - t0
    return _split(stats, wall) | {
        "contracts": contracts,
        "target_s": TARGET_INTRADAY_S,
        "label": "intraday SPY 1-minute",
    }


def report(daily: dict[str, Any], intraday: dict[str, Any], peak_mb: float) -> str:
    lines = ["dry-run benchmark (wall clock; chains = the feed building and enriching chains)"]
    for r in (daily, intraday):
        name = r.get("label", "intraday SPY 1-minute")
        if r.get("status") == "SKIP":
            lines.append(f"  {name}: SKIP ({r['note']})")
            continue
        s = r["split_s"]
        status = "PASS" if r["wall_s"] <= r["target_s"] else "MISS"
        extra = f", {r['contracts']:,}-contract chains" if "contracts" in r else ""
        lines.append(
            f"  {name}: {r['ticks']:,} ticks in {r['wall_s']:.1f} s, {r['ticks_per_s']:,.0f} "
            f"ticks/s{extra} — target ≤ {r['target_s']:.0f} s: {status}"
        )
        lines.append(
            "    split: " + ", ".join(f"{k} {v:.1f} s" for k, v in s.items())
            + f"; engine overhead / chain work = {r['engine_over_chains']:.2f} (target ≤ 1)"
        )  # fmt: skip
    status = "PASS" if peak_mb <= TARGET_RSS_MB else "MISS"
    lines.append(f"  peak memory {peak_mb:,.0f} MB — target ≤ {TARGET_RSS_MB:,.0f} MB: {status}")
    return "\n".join(lines)


def main(quick: bool = False) -> str:
    daily = bench_daily(quick)
    intraday = bench_intraday(quick)
    return report(daily, intraday, _peak_mb())
