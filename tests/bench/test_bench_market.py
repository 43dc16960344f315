"""The market-data benchmark: every section runs small and reports its figures (not timed)."""

from __future__ import annotations

from pathlib import Path

from engine.bench import market
from engine.bench.recording import bench_recording


def test_sections_report_their_figures(tmp_path: Path) -> None:
    chain = market.bench_chain(1)
    assert chain["contracts"] > 1000 and chain["expiries"] >= 10
    assert chain["best_ms"] > chain["greeks_ms"] > 0 and chain["status"] in ("PASS", "MISS")
    replay = market.bench_replay(5)
    assert replay["bare"]["ticks"] == replay["with_chain"]["ticks"] == 5
    assert 0 < replay["bare"]["ms_per_tick"] < replay["with_chain"]["ms_per_tick"]
    imported = market.bench_import(1)
    assert imported["status"] == "SKIP" or imported["rows"] > 20_000
    recording = bench_recording(10, 20, tmp_path / "rec", unbatched_ticks=2)
    results = {"import": imported, "chain": chain, "replay": replay, "recording": recording}
    text = market.report(results)
    for marker in ("(a) import", "(b) one day's SPY chain", "(c) replay feed", "(d) recording"):
        assert marker in text
