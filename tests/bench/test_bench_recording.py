"""The recording benchmark: a small run's result structure (timings are reported, not tested)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.bench import recording as bench


def test_synthetic_ticks_are_seeded_and_realistic() -> None:
    a = list(bench.synthetic_ticks(5, 40, seed=3))
    assert a == list(bench.synthetic_ticks(5, 40, seed=3))
    assert a != list(bench.synthetic_ticks(5, 40, seed=4))
    chain = a[0].chains["SPY"]
    assert len(chain) == 40 and chain.is_call.sum() == 20
    assert (chain.bid <= chain.ask).all() and (chain.iv > 0).all()
    days = (np.unique(chain.expiry) - np.datetime64(a[0].time.date(), "D")).astype(int)
    assert days.tolist() == list(bench.DTES)
    assert [s.time.minute for s in a] == [30, 31, 32, 33, 34]


def test_small_run_reports_every_figure(tmp_path: Path) -> None:
    r = bench.bench_recording(30, 20, tmp_path / "rec", batch_ticks=8, unbatched_ticks=3)
    assert r["replay_identical"] is True and r["replayed_ticks"] == 30
    assert (r["ticks"], r["contracts"], r["batch_ticks"], r["unbatched_ticks"]) == (30, 20, 8, 3)
    for key in (
        "record_s", "record_ticks_per_s", "record_contracts_per_s", "unbatched_ticks_per_s",
        "batching_speedup", "compact_s", "replay_s", "replay_ticks_per_s", "replay_ms_per_tick",
        "bytes_before", "bytes_after",
    ):  # fmt: skip
        assert r[key] > 0, key
    assert r["record_contracts_per_s"] == pytest.approx(20 * r["record_ticks_per_s"])
    assert r["files_before"] == 4 and r["files_after"] == 1  # four batches, one date
    assert "ticks/s" in bench.report(r)


def test_refuses_to_record_over_an_existing_recording(tmp_path: Path) -> None:
    bench.bench_recording(2, 4, tmp_path, batch_ticks=2, unbatched_ticks=0)
    with pytest.raises(FileExistsError, match="new folder"):
        bench.bench_recording(2, 4, tmp_path)
