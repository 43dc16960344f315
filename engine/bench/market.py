"""Market-data benchmark: `v6 bench market [--quick]` — import, chains, replay and recording.

Measured in one run, each against a target and, where one exists, an anchor:

(a) Import of the daily SPY + VIX family history (6 files from ../shared/data) into a fresh
    store: target <= 10 s. Anchor: pandas.read_csv of the same files (parsing alone, no
    validation, calendar or Delta write), so the ratio is what the rest of the import costs.
(b) Building and enriching one day's SPY chain (expiries to 70 days, strikes +-20%) with
    `synth_chain`: target <= 5 ms. Anchor: the bare `bsm_greeks` call on the same contracts.
(c) Replay feed overhead per tick, chain construction excluded: `HistoryFeed` with no chains
    over a year of the synthetic market (snapshot assembly, closes, dividends, rolling
    features): target <= 0.2 ms. Also the full tick with the chain, for context.
(d) Recording a year of one-minute SPY ticks (98,280) with a 400-contract window:
    rows/s, files and bytes on disk, compaction and replay (engine/bench/recording.py).
    `--quick` records 2,000 ticks.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.recording import YEAR_TICKS, bench_recording
from engine.bench.recording import report as recording_report
from engine.bench.timing import time_rounds
from engine.paths import shared_data_dir
from engine.state.snapshot import EXCHANGE_TZ

TARGET_IMPORT_S = 10.0
TARGET_CHAIN_MS = 5.0
TARGET_REPLAY_MS = 0.2
IMPORT_FILES = {"SPY": "spy_unadjusted_*.csv"}
INDEX_FILES = {"VIX": "vix_cboe_*.csv", "VIX9D": "vix9d_cboe_*.csv", "VIX3M": "vix3m_cboe_*.csv",
               "VVIX": "vvix_cboe_*.csv", "SKEW": "skew_cboe_*.csv"}  # fmt: skip


def _status(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def bench_import(rounds: int) -> dict[str, Any]:
    """(a): best and median seconds of a full import into a new store, and of the anchor."""
    import pandas as pd

    from engine.market.importer import import_history

    daily = shared_data_dir() / "daily"
    if not daily.is_dir():
        return {"status": "SKIP", "note": f"no shared data at {daily} (set V6_DATA)"}
    found = {
        s: next(iter(sorted(daily.glob(g))), None) for s, g in (IMPORT_FILES | INDEX_FILES).items()
    }
    if any(p is None for p in found.values()):
        return {"status": "SKIP", "note": f"missing files in {daily}: {found}"}
    paths: dict[str, Path] = {s: p for s, p in found.items() if p is not None}
    underlyings = {s: paths[s] for s in IMPORT_FILES}
    indices = {s: paths[s] for s in INDEX_FILES}
    rows = 0
    ours, anchor = [], []
    with tempfile.TemporaryDirectory() as tmp:
        import_history(Path(tmp) / "warm", underlyings, indices, {})  # calendar, imports
        for i in range(rounds):
            t0 = time.perf_counter()
            report = import_history(Path(tmp) / f"store{i}", underlyings, indices, {})
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for p in paths.values():
                pd.read_csv(p)
            anchor.append(time.perf_counter() - t0)
            rows = report.rows
    best = min(ours)
    return {"files": len(paths), "rows": rows, "best_s": best, "median_s": statistics.median(ours),
            "anchor_best_s": min(anchor), "ratio": best / min(anchor),
            "target_s": TARGET_IMPORT_S, "status": _status(best, TARGET_IMPORT_S)}  # fmt: skip


def bench_chain(rounds: int) -> dict[str, Any]:
    """(b): ms to build and enrich one day's SPY chain; the Greeks call alone as anchor."""
    from engine.kernels.bsm import bsm_greeks
    from engine.market.surface import VolIndices
    from engine.market.synth_chain import ChainSpec, synth_chain

    asof = datetime(2025, 6, 9, 16, 0, tzinfo=EXCHANGE_TZ)
    indices = VolIndices(vix=17.16)
    spec = ChainSpec(max_days=70, strike_range=0.20)
    chain = synth_chain("SPY", asof, 599.68, indices, 0.013, spec)
    t = np.full(len(chain), 30 / 365)
    fns = {
        "chain": lambda: synth_chain("SPY", asof, 599.68, indices, 0.013, spec),
        "greeks": lambda: bsm_greeks(chain.is_call, 599.68, chain.strike, t, 0.04, 0.013, chain.iv),
    }
    samples = time_rounds(fns, rounds, batch_ns=5e7)
    ms = {k: min(v) / 1e6 for k, v in samples.items()}
    med = {k: statistics.median(v) / 1e6 for k, v in samples.items()}
    return {"contracts": len(chain), "expiries": int(np.unique(chain.expiry).size),
            "best_ms": ms["chain"], "median_ms": med["chain"], "greeks_ms": ms["greeks"],
            "target_ms": TARGET_CHAIN_MS,
            "status": _status(med["chain"], TARGET_CHAIN_MS)}  # fmt: skip


def bench_replay(days: int) -> dict[str, Any]:
    """(c): ms per tick of the history feed without chains, and with the SPY chain."""
    from engine.feeds.history import HistoryFeed, HistorySpec
    from engine.market.generator import DEMO_SEED, write_synthetic_store
    from engine.market.store import MarketStore

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_store(Path(tmp), DEMO_SEED, date(2017, 1, 3), date(2019, 12, 31))
        store = MarketStore(tmp)
        start, end = date(2019, 1, 1), date(2019, 12, 31)
        for label, spec in (("bare", HistorySpec(chains=())), ("with_chain", HistorySpec())):
            feed = HistoryFeed(store, start, end, spec)
            best, n = float("inf"), 0
            for _ in range(4):  # the first pass warms up JIT code and caches
                t0 = time.perf_counter()
                n = sum(1 for _ in zip(range(days), feed.ticks(), strict=False))
                best = min(best, (time.perf_counter() - t0) / n)
            out[label] = {"ticks": n, "ms_per_tick": best * 1e3}
    ms = out["bare"]["ms_per_tick"]
    return out | {"target_ms": TARGET_REPLAY_MS, "status": _status(ms, TARGET_REPLAY_MS)}


def run(quick: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {
        "import": bench_import(2 if quick else 5),
        "chain": bench_chain(5 if quick else 21),
        "replay": bench_replay(60 if quick else 252),
    }
    with tempfile.TemporaryDirectory() as tmp:
        ticks = 2_000 if quick else YEAR_TICKS
        results["recording"] = bench_recording(ticks, 400, Path(tmp) / "rec")
    return results


def report(r: dict[str, Any]) -> str:
    imp, ch, rp = r["import"], r["chain"], r["replay"]
    lines = ["V6 market-data benchmark (2 cores: compare ratios, not absolute times)", ""]
    if imp["status"] == "SKIP":
        lines.append(f"(a) import SPY + VIX family: skipped, {imp['note']}")
    else:
        lines.append(
            f"(a) import SPY + VIX family ({imp['files']} files, {imp['rows']:,} rows): "
            f"{imp['best_s']:.2f} s best, {imp['median_s']:.2f} s median; pandas.read_csv alone "
            f"{imp['anchor_best_s']:.2f} s ({imp['ratio']:.1f}x)  target <= "
            f"{imp['target_s']:.0f} s  {imp['status']}"
        )
    lines.append(
        f"(b) one day's SPY chain ({ch['contracts']:,} contracts, {ch['expiries']} expiries): "
        f"{ch['median_ms']:.2f} ms median, {ch['best_ms']:.2f} best; bsm_greeks alone "
        f"{ch['greeks_ms']:.2f} ms  target <= {ch['target_ms']:.0f} ms  {ch['status']}"
    )
    lines.append(
        f"(c) replay feed overhead per tick, no chain: {rp['bare']['ms_per_tick']:.3f} ms "
        f"(with the SPY chain: {rp['with_chain']['ms_per_tick']:.2f} ms)  target <= "
        f"{rp['target_ms']} ms  {rp['status']}"
    )
    lines += ["(d) recording:", recording_report(r["recording"])]
    return "\n".join(lines)
