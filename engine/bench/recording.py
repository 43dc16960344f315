"""Snapshot recording benchmark: record N one-minute ticks with a chain, compact, replay.

The issue's figure is a year of one-minute SPY ticks (252 sessions x 390 = 98,280 ticks) with a
400-contract chain window: `python -m engine.bench.recording --ticks 98280 --contracts 400`.
The anchor is the same recorder writing one commit per tick (batch_ticks=1) over the first
`unbatched_ticks` ticks: the ratio is what batching buys.

Ticks come from a seeded synthetic market: a random-walk spot, a chain of `contracts` contracts
(expiries 7 to 45 days out, strikes around spot, calls and puts) priced by the BSM kernel on a
skewed smile, quotes rounded to cents. Generating them is timed apart from recording them.
Sizes on disk depend on the machine's Parquet build; timings on its load.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from engine.feeds.recording import Recorder, RecordingFeed, compact_recording, table_path
from engine.kernels.bsm import bsm_greeks
from engine.state.snapshot import EXCHANGE_TZ, Chain, MarketState, Snapshot, UnderlyingState

TICKS_PER_SESSION = 390  # one-minute bars, 09:30 to 16:00
YEAR_TICKS = 252 * TICKS_PER_SESSION
DTES = (7, 14, 21, 30, 45)  # calendar days to each expiry of the window
RATE, DIVIDEND_YIELD, ANNUAL_VOL = 0.05, 0.013, 0.15  # per year, continuous
UNBATCHED_TICKS = 200


def _session_opens(first: datetime) -> Iterator[datetime]:
    """09:30 New York on each weekday from `first` on (holidays ignored: a benchmark)."""
    day = first.date()
    while True:
        if day.weekday() < 5:
            yield datetime(day.year, day.month, day.day, 9, 30, tzinfo=EXCHANGE_TZ)
        day += timedelta(days=1)


def synthetic_ticks(ticks: int, contracts: int, seed: int = 6) -> Iterator[Snapshot]:
    """`ticks` one-minute SPY snapshots, each with a chain of `contracts` contracts."""
    rng = np.random.default_rng(seed)
    per_expiry = max(1, math.ceil(contracts / (2 * len(DTES))))
    offsets = np.arange(per_expiry) - per_expiry // 2  # strikes, $1 apart around spot
    layout = np.array([(dte, k, call) for dte in DTES for k in offsets for call in (True, False)])[
        :contracts
    ]
    dte, k_offset, is_call = layout[:, 0], layout[:, 1], layout[:, 2].astype(bool)
    volume = rng.integers(0, 5_000, contracts).astype(np.float64)
    open_interest = rng.integers(0, 50_000, contracts).astype(np.float64)
    minute_vol = ANNUAL_VOL / math.sqrt(YEAR_TICKS)
    spot = 500.0
    opens = _session_opens(datetime(2024, 1, 2, tzinfo=EXCHANGE_TZ))
    for i in range(ticks):
        if i % TICKS_PER_SESSION == 0:
            session_open = next(opens)
            expiry = np.datetime64(session_open.date(), "D") + dte.astype("timedelta64[D]")
            strike = np.round(spot) + k_offset
        now = session_open + timedelta(minutes=i % TICKS_PER_SESSION)
        spot *= math.exp(minute_vol * rng.standard_normal())
        years = (dte - (i % TICKS_PER_SESSION) / (24 * 60)) / 365
        moneyness = np.log(strike / spot)
        iv = ANNUAL_VOL * (1 - 1.5 * moneyness + 4 * moneyness**2) + rng.normal(0, 0.001, contracts)
        g = bsm_greeks(is_call, spot, strike, years, RATE, DIVIDEND_YIELD, iv)
        half = np.maximum(0.005, 0.01 * g.price)
        bid = np.maximum(0.0, np.round(g.price - half, 2))
        ask = np.round(g.price + half, 2)
        chain = Chain(
            symbol="SPY",
            expiry=expiry,
            strike=strike,
            is_call=is_call,
            bid=bid,
            ask=ask,
            last=np.round(g.price, 2),
            volume=volume,
            open_interest=open_interest,
            iv=iv,
            delta=g.delta,
            gamma=g.gamma,
            vega=g.vega / 100,  # per vol point
            theta=g.theta / 365,  # per calendar day
        )
        yield Snapshot(
            time=now,
            market=MarketState(session="regular", vix=100 * ANNUAL_VOL),
            underlyings={"SPY": UnderlyingState(symbol="SPY", price=spot, atm_iv=ANNUAL_VOL)},
            chains={"SPY": chain},
        )


def _record(out: Path, snaps: list[Snapshot], batch_ticks: int) -> float:
    """Seconds to record `snaps` (conversion, checks and commits included)."""
    t0 = time.perf_counter()
    with Recorder(out, batch_ticks=batch_ticks) as recorder:
        for snap in snaps:
            recorder.record(snap)
    return time.perf_counter() - t0


def _unbatched_ticks_per_s(snaps: list[Snapshot]) -> float | None:
    if not snaps:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return len(snaps) / _record(Path(tmp), snaps, batch_ticks=1)


def bench_recording(
    ticks: int,
    contracts: int,
    out: Path,
    *,
    batch_ticks: int = 500,
    unbatched_ticks: int = UNBATCHED_TICKS,
    seed: int = 6,
) -> dict[str, Any]:
    """Record, compact and replay `ticks` ticks of `contracts` contracts in the recording at
    `out` (a new folder); figures in seconds, files and bytes on disk."""
    if table_path(out).exists():
        raise FileExistsError(f"{table_path(out)} exists: give the benchmark a new folder")
    generate_s = record_s = 0.0
    first = last = None
    unbatched: list[Snapshot] = []
    with Recorder(out, batch_ticks=batch_ticks) as recorder:
        source = synthetic_ticks(ticks, contracts, seed)
        while True:
            t0 = time.perf_counter()
            snap = next(source, None)
            t1 = time.perf_counter()
            generate_s += t1 - t0
            if snap is None:
                break
            recorder.record(snap)
            record_s += time.perf_counter() - t1
            first = first or snap
            last = snap
            if len(unbatched) < unbatched_ticks:
                unbatched.append(snap)
        t0 = time.perf_counter()
    record_s += time.perf_counter() - t0  # the final flush
    t0 = time.perf_counter()
    compaction = compact_recording(out)
    compact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    replayed = 0
    replay_first = replay_last = None
    for snap in RecordingFeed(out).ticks():
        replay_first = replay_first or snap
        replay_last = snap
        replayed += 1
    replay_s = time.perf_counter() - t0
    ticks_per_s = ticks / record_s if record_s else math.inf
    unbatched_rate = _unbatched_ticks_per_s(unbatched)
    return {
        "benchmark": "recording",
        "ticks": ticks,
        "contracts": contracts,
        "batch_ticks": batch_ticks,
        "generate_s": generate_s,
        "record_s": record_s,
        "record_ticks_per_s": ticks_per_s,
        "record_contracts_per_s": ticks_per_s * contracts,
        "unbatched_ticks": len(unbatched),
        "unbatched_ticks_per_s": unbatched_rate,
        "batching_speedup": ticks_per_s / unbatched_rate if unbatched_rate else None,
        "files_before": compaction["files_before"],
        "bytes_before": compaction["bytes_before"],
        "files_after": compaction["files_after"],
        "bytes_after": compaction["bytes_after"],
        "compact_s": compact_s,
        "replayed_ticks": replayed,
        "replay_s": replay_s,
        "replay_ticks_per_s": replayed / replay_s if replay_s else math.inf,
        "replay_ms_per_tick": 1000 * replay_s / replayed if replayed else None,
        "replay_identical": replayed == ticks and replay_first == first and replay_last == last,
    }


def report(r: dict[str, Any]) -> str:
    mb = 1024 * 1024
    speedup = r["batching_speedup"]
    lines = [
        f"recording: {r['ticks']:,} ticks x {r['contracts']} contracts, "
        f"batches of {r['batch_ticks']} ticks (generation {r['generate_s']:.1f} s, not counted)",
        f"  record   {r['record_s']:8.2f} s  {r['record_ticks_per_s']:>10,.0f} ticks/s  "
        f"{r['record_contracts_per_s']:>12,.0f} contracts/s",
        f"  anchor   one commit per tick over {r['unbatched_ticks']} ticks: "
        + (
            f"{r['unbatched_ticks_per_s']:,.0f} ticks/s; batching is {speedup:.0f}x faster"
            if speedup
            else "not run"
        ),
        f"  on disk  {r['files_before']} files, {r['bytes_before'] / mb:,.1f} MiB before "
        f"compaction; {r['files_after']} files, {r['bytes_after'] / mb:,.1f} MiB after "
        f"({r['compact_s']:.2f} s)",
        f"  replay   {r['replay_s']:8.2f} s  {r['replay_ticks_per_s']:>10,.0f} ticks/s  "
        f"{r['replay_ms_per_tick']:.3f} ms per tick; identical: {r['replay_identical']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.bench.recording [--ticks N] [--contracts N] [--out DIR] [--json]`."""
    parser = argparse.ArgumentParser(description="snapshot recording benchmark")
    parser.add_argument("--ticks", type=int, default=YEAR_TICKS)
    parser.add_argument("--contracts", type=int, default=400)
    parser.add_argument("--batch-ticks", type=int, default=500)
    parser.add_argument("--out", type=Path, help="recording folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "recording"
        results = bench_recording(args.ticks, args.contracts, out, batch_ticks=args.batch_ticks)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
