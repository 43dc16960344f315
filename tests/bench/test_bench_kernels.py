"""The kernel benchmark: result structure only (timings are reported by `v6 bench kernels`)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.bench import kernels as bench


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return bench.run(quick=True)


def test_contracts_are_a_valid_book() -> None:
    c = bench.contracts(1000)
    assert set(c) == {"is_call", "S", "K", "T", "r", "q", "sigma"}
    assert all(len(v) == 1000 for v in c.values())
    assert (c["T"] > 0).all() and (c["sigma"] > 0).all() and (c["K"] > 0).all()


@pytest.mark.slow
def test_run_quick_result_structure(results: dict[str, Any]) -> None:
    assert results["benchmark"] == "kernels" and results["quick"] is True
    g = results["greeks"]
    for name in ("api", "kernel, 1 thread", "kernel, all threads", "price only (bsm_price)"):
        assert g["ms_per_million"][name] > 0
    assert g["status"] in {"PASS", "MISS"} and g["target_ms"] == 30.0
    assert g["floor_ms"] > 0 and g["memcpy_gb_s"] > 0 and g["bytes_per_option"] == 97
    assert set(g["crossover"]) == {64, 256, 512, 1024, 4096}
    if results["anchor"] is None:  # `uv sync --group bench` installs it
        assert g["comparisons"] == []
    else:
        [row] = g["comparisons"]  # quick: the anchor is timed at N = 10k only
        assert row["n"] == 10_000 and row["target"] == 50.0
        assert row["speedup"] > 0 and row["status"] in {"PASS", "MISS"}
        assert 0 < row["subject_ns"]["best"] <= row["subject_ns"]["median"]
    iv = results["iv"]
    assert iv["status"] in {"PASS", "MISS", "INFO", "pending"}
    if iv["status"] != "pending":
        assert iv["subject_ns"]["best"] > 0 and iv["determined"] > 0
    jit = results["jit"]
    names = {k["kernel"] for k in jit["kernels"]}
    assert {"bsm_greeks (serial)", "bsm_greeks (parallel)", "bsm_price (serial)"} <= names
    for k in jit["kernels"]:
        assert k["cold_s"] > 0 and k["warm_total_s"] > 0 and k["status"] in {"PASS", "MISS"}


@pytest.mark.slow
def test_report_shows_every_measure(results: dict[str, Any]) -> None:
    text = bench.report(results)
    for needle in (
        "ms per million",
        "memory-traffic floor",
        "(c) JIT",
        "bsm_greeks (serial)",
        "<=30 ms",
        "<=0.5 s",
        "implied vol",
    ):
        assert needle in text
    if results["anchor"] is None:
        assert "uv sync --group bench" in text
    else:
        assert "(a) Greeks N=10,000" in text and ">=50x" in text
