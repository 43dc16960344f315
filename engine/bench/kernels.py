"""Quant-kernel benchmark: `v6 bench kernels [--quick]` (anchor: `uv sync --group bench`).

Measured side by side in one process run, reported as ratios against targets:

(a) Greeks (price + 5) through `bsm_greeks`, allocation included, against py_vollib_vectorized's
    API (`vectorized_black_scholes_merton` + `get_all_greeks`, numpy/dict output: no pandas
    cost) at N = 10k (target >= 50x faster) and 1M; ms per million on all threads (target
    <= 30 ms), the 1-thread loop, and the memory floor (bytes per option / np.copyto rate).
(b) `engine.kernels.iv.implied_vol` against `vectorized_implied_volatility` at N = 10k
    (target >= 3x faster), with each side's round-trip error for context.
(c) JIT per kernel: cold compile (empty NUMBA_CACHE_DIR) and warm-cache import plus first
    call in a fresh process — target <= 0.5 s.

Timing: batches (gc paused) after a warm-up call, round-robin, one batch per round; a ratio is
the median of paired per-round ratios, so load from other processes mostly cancels.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numba
import numpy as np
from numba.np.ufunc import threading_layer
from numpy.typing import NDArray

from engine.bench.timing import per_call_ns, time_rounds
from engine.kernels import bsm
from engine.kernels.bsm import bsm_greeks, bsm_price

TARGET_GREEKS_SPEEDUP = 50.0
TARGET_MS_PER_MILLION = 30.0
TARGET_IV_SPEEDUP = 3.0
TARGET_JIT_S = 0.5
SMALL, LARGE = 10_000, 1_000_000
INSTALL_ANCHOR = "uv sync --group bench"
ROOT = Path(__file__).resolve().parents[2]
Arr = NDArray[Any]
_LABELS = {"api": "bsm_greeks, all threads, allocation included", "anchor": "anchor"}


# ------------------------------------------------------------------ inputs and anchor
def contracts(n: int, seed: int = 6) -> dict[str, Arr]:
    """A realistic random book: listed strikes around spot, one day to two years."""
    rng = np.random.default_rng(seed)
    spot = rng.uniform(20.0, 1000.0, n)
    return {"is_call": rng.random(n) < 0.5, "S": spot, "K": spot * rng.uniform(0.7, 1.3, n),
            "T": rng.uniform(1 / 365, 2.0, n), "r": rng.uniform(0.0, 0.06, n),
            "q": rng.uniform(0.0, 0.03, n), "sigma": rng.uniform(0.08, 0.8, n)}  # fmt: skip


def _anchor() -> ModuleType | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module("py_vollib_vectorized")
    except ImportError:
        return None


def _anchor_greeks(pv: ModuleType, c: dict[str, Arr], flag: Arr) -> object:
    args = (flag, c["S"], c["K"], c["T"], c["r"], c["sigma"], c["q"])
    return (pv.vectorized_black_scholes_merton(*args, return_as="numpy"),
            pv.get_all_greeks(*args, model="black_scholes_merton", return_as="dict"))  # fmt: skip


def _implied_vol() -> Callable[..., Arr] | None:
    try:
        from engine.kernels.iv import implied_vol
    except ImportError:
        return None
    return implied_vol


# ------------------------------------------------------------------ timing
def _ns_per_option(samples: list[float], n: int) -> dict[str, float]:
    return {"median": statistics.median(samples) / n, "best": min(samples) / n}


def _speedup(name: str, n: int, samples: dict[str, list[float]], subject: str, anchor: str,
             target: float | None) -> dict[str, Any]:  # fmt: skip
    """How many times faster subject is than anchor: median of paired per-round ratios."""
    ratio = statistics.median(a / s for s, a in zip(samples[subject], samples[anchor], strict=True))
    status = "INFO" if target is None else ("PASS" if ratio >= target else "MISS")
    return {"name": name, "n": n, "subject_ns": _ns_per_option(samples[subject], n),
            "anchor_ns": _ns_per_option(samples[anchor], n), "speedup": ratio,
            "speedup_best": min(samples[anchor]) / min(samples[subject]),
            "rounds": len(samples[subject]), "target": target, "status": status}  # fmt: skip


# ------------------------------------------------------------------ (a) Greeks
def memcpy_gb_s() -> float:
    """Bytes read + written per second by np.copyto on 64 MB arrays (best of 5)."""
    src = np.random.default_rng(0).random(8_000_000)
    dst = np.empty_like(src)
    best_ns = min(per_call_ns(lambda: np.copyto(dst, src), 1) for _ in range(5))
    return 2 * src.nbytes / (best_ns * 1e-9)


def bench_greeks(quick: bool, pv: ModuleType | None) -> dict[str, Any]:
    rows = []
    for n in (SMALL, LARGE):
        c = contracts(n)
        args = tuple(c[k] for k in ("is_call", "S", "K", "T", "r", "q", "sigma"))
        fns: dict[str, Callable[[], object]] = {"api": partial(bsm_greeks, *args)}
        anchor_here = pv is not None and (n == SMALL or not quick)
        if pv is not None and anchor_here:
            fns["anchor"] = partial(_anchor_greeks, pv, c, np.where(c["is_call"], "c", "p"))
        if n == LARGE:  # the bare kernels on preallocated outputs: where the time goes
            _, flat, steps = bsm._flatten(*args)
            outs = [np.empty(n) for _ in range(6)]
            fns["kernel, 1 thread"] = partial(bsm._greeks_serial, *flat, steps, *outs)
            fns["kernel, all threads"] = partial(bsm._greeks_parallel, *flat, steps, *outs)
            fns["price only (bsm_price)"] = partial(bsm_price, *args)
        rounds = (5 if n == SMALL else 3) if quick else (21 if n == SMALL else 7)
        samples = time_rounds(fns, rounds, batch_ns=2e7 if n == SMALL else 1.0)
        if anchor_here:
            target = TARGET_GREEKS_SPEEDUP if n == SMALL else None
            rows.append(_speedup(f"(a) Greeks N={n:,}: bsm_greeks vs anchor", n, samples, "api",
                                 "anchor", target))  # fmt: skip
    per_million = {k: statistics.median(v) / 1e6 for k, v in samples.items()}  # N = LARGE
    per_million_best = {k: min(v) / 1e6 for k, v in samples.items()}
    bytes_per_option = 6 * 8 + 1 + 6 * 8  # six float64 and a bool in, six float64 out
    bandwidth = memcpy_gb_s()
    return {"comparisons": rows, "ms_per_million": per_million,
            "ms_per_million_best": per_million_best, "target_ms": TARGET_MS_PER_MILLION,
            "status": "PASS" if per_million["api"] <= TARGET_MS_PER_MILLION else "MISS",
            "bytes_per_option": bytes_per_option, "memcpy_gb_s": bandwidth / 1e9,
            "floor_ms": bytes_per_option * 1e6 / bandwidth * 1e3,
            "threads": numba.get_num_threads(), "threading_layer": threading_layer(),
            "parallel_min_size": bsm.PARALLEL_MIN_SIZE, "crossover": crossover(quick)}  # fmt: skip


def crossover(quick: bool) -> dict[int, float]:
    """Serial / parallel kernel time by size: where PARALLEL_MIN_SIZE comes from."""
    out = {}
    for n in (64, 256, 512, 1024, 4096):
        _, flat, steps = bsm._flatten(*contracts(n).values())
        outs = [np.empty(n) for _ in range(6)]
        samples = time_rounds({"serial": partial(bsm._greeks_serial, *flat, steps, *outs),
                               "parallel": partial(bsm._greeks_parallel, *flat, steps, *outs)},
                              5 if quick else 21, batch_ns=2e6)  # fmt: skip
        out[n] = statistics.median(samples["serial"]) / statistics.median(samples["parallel"])
    return out


# ------------------------------------------------------------------ (b) implied vol
def bench_iv(quick: bool, pv: ModuleType | None) -> dict[str, Any]:
    implied_vol = _implied_vol()
    if implied_vol is None:
        return {"status": "pending", "note": "engine.kernels.iv.implied_vol not importable yet"}
    c = contracts(SMALL, seed=7)
    g = bsm_greeks(c["is_call"], c["S"], c["K"], c["T"], c["r"], c["q"], c["sigma"])
    price, args = g.price, (g.price, c["is_call"], c["S"], c["K"], c["T"], c["r"], c["q"])
    # Round-trip error is reported where the price determines sigma to 1e-10: one rounding of
    # the price moves sigma by eps * price / vega (deep ITM short-dated options carry no
    # recoverable time value; both sides may legitimately miss those).
    determined = np.finfo(float).eps * price / g.vega <= 1e-10

    def max_err(iv: Arr) -> float:
        return float(np.nanmax(np.abs(iv - c["sigma"])[determined]))

    ours = implied_vol(*args)
    out: dict[str, Any] = {"n": SMALL, "determined": int(determined.sum()), "max_abs_err":
                           max_err(ours), "nan": int(np.isnan(ours[determined]).sum())}  # fmt: skip
    fns: dict[str, Callable[[], object]] = {"api": lambda: implied_vol(*args)}
    if pv is not None:
        flag = np.where(c["is_call"], "c", "p")

        def anchor() -> Arr:
            return pv.vectorized_implied_volatility(  # type: ignore[no-any-return]
                price, c["S"], c["K"], c["T"], c["r"], flag, c["q"],
                model="black_scholes_merton", return_as="numpy", on_error="ignore")  # fmt: skip

        theirs = anchor()
        out["anchor_max_abs_err"] = max_err(theirs)
        out["anchor_nan"] = int(np.isnan(theirs[determined]).sum())
        fns["anchor"] = anchor
    samples = time_rounds(fns, 5 if quick else 21, 2e7)
    out["subject_ns"] = _ns_per_option(samples["api"], SMALL)
    if pv is not None:
        row = _speedup(f"(b) implied vol N={SMALL:,}: implied_vol vs anchor", SMALL, samples,
                       "api", "anchor", TARGET_IV_SPEEDUP)  # fmt: skip
        out |= {"comparison": row, "status": row["status"]}
    else:
        out["status"] = "INFO"
    return out


# ------------------------------------------------------------------ (c) JIT
_JIT_SCRIPT = """
import json, sys, time
which = sys.argv[1]
t0 = time.perf_counter()
import numba
import numpy as np
t1 = time.perf_counter()
try:  # numba imports scipy.linalg (for BLAS) on first dispatch when scipy is installed
    import scipy.linalg; scipy_s = time.perf_counter() - t1
except ImportError:
    scipy_s = None
t2 = time.perf_counter()
from engine.kernels import bsm
calls = {}
if which == "all" or which.startswith("bsm"):
    small, big = (np.full(n, 100.0) for n in (8, 4 * bsm.PARALLEL_MIN_SIZE))
    for label, x in (("serial", small), ("parallel", big)):
        calls[f"bsm_greeks ({label})"] = lambda x=x: bsm.bsm_greeks(True, x, 100, .5, .03, .01, .2)
        calls[f"bsm_price ({label})"] = lambda x=x: bsm.bsm_price(True, x, 100, .5, .03, .01, .2)
if which == "all" or which.startswith("implied_vol"):
    from engine.kernels.iv import implied_vol
    small, big = (np.full(n, 100.0) for n in (8, 100_000))
    for label, x in (("serial", small), ("parallel", big)):
        calls[f"implied_vol ({label})"] = lambda x=x: implied_vol(8.0, True, x, 100, .5, .03, .01)
t3 = time.perf_counter()
first = {}
for name in calls if which == "all" else [which]:
    t = time.perf_counter()
    calls[name]()
    first[name] = time.perf_counter() - t
print(json.dumps({"import_numba_s": t1 - t0, "import_scipy_s": scipy_s,
                  "import_module_s": t3 - t2, "first_call_s": first}))
"""


def _jit_run(which: str, cache_dir: str, pyc_dir: str) -> dict[str, Any]:
    # Bytecode to a private prefix: PYTHONDONTWRITEBYTECODE would add ~0.5 s of recompiling numba.
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPYCACHEPREFIX": pyc_dir}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, "-c", _JIT_SCRIPT, which], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True, timeout=600)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_jit() -> dict[str, Any]:
    """Cold: one process on an empty NUMBA_CACHE_DIR compiles every kernel in turn (shared
    helpers compile with the first). Warm: per kernel, a fresh process on that cache."""
    with tempfile.TemporaryDirectory(prefix="v6-numba-") as tmp:
        cache, pyc = str(Path(tmp) / "numba"), str(Path(tmp) / "pyc")
        with_iv = _implied_vol() is not None
        cold = _jit_run("all" if with_iv else "bsm", cache, pyc)
        kernels = []
        for name, cold_s in cold["first_call_s"].items():
            warm = _jit_run(name, cache, pyc)
            scipy_s = warm["import_scipy_s"] or 0.0
            total = warm["import_numba_s"] + warm["import_module_s"] + warm["first_call_s"][name]
            kernels.append({"kernel": name, "cold_s": cold_s, "warm": warm,
                            "warm_total_s": total, "scipy_s": scipy_s,
                            "status": "PASS" if total <= TARGET_JIT_S else "MISS"})  # fmt: skip
    return {"kernels": kernels, "target_s": TARGET_JIT_S, "iv": with_iv}


# ------------------------------------------------------------------ run and report
def run(quick: bool = False) -> dict[str, Any]:
    """Run all three measurements; `quick` cuts iterations (and the anchor at N = 1M)."""
    pv = _anchor()
    return {
        "benchmark": "kernels", "quick": quick, "python": platform.python_version(),
        "cpus": os.cpu_count(), "numba": numba.__version__, "load_avg": os.getloadavg()[0],
        "anchor": None if pv is None else getattr(pv, "__version__", "installed"),
        "greeks": bench_greeks(quick, pv), "iv": bench_iv(quick, pv), "jit": bench_jit(),
    }  # fmt: skip


def _ns(t: dict[str, float]) -> str:
    return f"{t['median']:.1f} / {t['best']:.1f}"


def _row(row: dict[str, Any]) -> str:
    target = "-" if row["target"] is None else f">={row['target']:g}x"
    ratio = f"{row['speedup']:.1f}x ({row['speedup_best']:.1f}x)"
    return (
        f"{row['name']:<48} {_ns(row['subject_ns']):>17} {_ns(row['anchor_ns']):>19} "
        f"{ratio:>16} {target:>7}  {row['status']}"
    )


def report(results: dict[str, Any]) -> str:
    """Plain-text table: ns/option of project and anchor, ratios, targets, PASS/MISS."""
    g, iv, jit = results["greeks"], results["iv"], results["jit"]
    mode = "quick run: few iterations, rough figures" if results["quick"] else "full run"
    lines = [
        f"V6 kernel benchmark: Python {results['python']}, numba {results['numba']}, "
        f"{results['cpus']} CPUs ({g['threads']} threads, {g['threading_layer']}), {mode}",
        f"load average at start {results['load_avg']:.2f} (other processes skew timings)",
    ]
    lines.append(
        f"anchor py_vollib_vectorized NOT INSTALLED: run `{INSTALL_ANCHOR}` (then `uv run "
        "--group bench v6 bench kernels`); project figures only"
        if results["anchor"] is None
        else f"anchor: py_vollib_vectorized {results['anchor']} (its API, numpy output)"
    )
    lines += [
        "",
        f"{'measure':<48} {'V6 ns/opt med/best':>17} {'anchor ns/opt':>19} "
        f"{'faster (best)':>16} {'target':>7}  result",
    ]
    lines += [_row(row) for row in g["comparisons"]]
    if "comparison" in iv:
        lines.append(_row(iv["comparison"]))
    ms, best = g["ms_per_million"], g["ms_per_million_best"]
    lines += ["", "(a) ms per million options (median / best):"]
    for name, value in ms.items():
        label = _LABELS.get(name, name)
        extra = f"   target <={g['target_ms']:g} ms  {g['status']}" if name == "api" else ""
        lines.append(f"    {label:<46} {value:9.1f} / {best[name]:.1f}{extra}")
    cross = ", ".join(f"{n}: {x:.2f}x" for n, x in g["crossover"].items())
    lines += [
        f"    memory-traffic floor: {g['bytes_per_option']} B/option at "
        f"{g['memcpy_gb_s']:.1f} GB/s (np.copyto) = {g['floor_ms']:.1f} ms",
        f"    parallel kernel from N >= {g['parallel_min_size']}; serial/parallel time: {cross}",
    ]
    if iv["status"] == "pending":
        lines.append(f"(b) implied vol: pending ({iv['note']})")
    else:  # accuracy context: both sides on the same well-determined contracts
        theirs = iv.get("anchor_max_abs_err", math.nan), iv.get("anchor_nan", "-")
        lines.append(
            f"(b) implied vol: on the {iv['determined']:,} contracts whose price fixes sigma to "
            f"1e-10: max |err| {iv['max_abs_err']:.1e} ({iv['nan']} NaN), anchor "
            f"{theirs[0]:.1e} ({theirs[1]} NaN)"
        )
    lines += [
        "",
        f"(c) JIT per kernel (warm total = import numba + module + first call, fresh "
        f"process on a warm cache; target <={jit['target_s']:g} s):",
    ]
    for k in jit["kernels"]:
        w = k["warm"]
        lines.append(
            f"    {k['kernel']:<24} cold {k['cold_s']:5.2f} s   warm {k['warm_total_s']:.2f} s"
            f" (numba {w['import_numba_s']:.2f} + module {w['import_module_s']:.2f} + "
            f"call {w['first_call_s'][k['kernel']]:.3f})  {k['status']}"
        )
    scipy_s = max((k["scipy_s"] for k in jit["kernels"]), default=0.0)
    if scipy_s:
        lines.append(
            f"    + {scipy_s:.2f} s not counted: numba imports scipy.linalg on first "
            "dispatch when scipy is installed (only the bench group installs it)"
        )
    if not jit["iv"]:
        lines.append("    implied_vol: pending (engine.kernels.iv not importable)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`v6 bench kernels [--quick] [--json]`."""
    parser = argparse.ArgumentParser(prog="v6 bench kernels", description="kernel benchmark")
    parser.add_argument("--quick", action="store_true", help="few iterations (rough figures)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
