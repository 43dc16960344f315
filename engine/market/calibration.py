"""Synthetic chains against the four real CBOE chains: IV and bid/ask errors, markdown report.

`uv run python -m engine.market.calibration` prints the table of docs/market/synthetic_chains.md
(`--fit` also refits the surface constants and prints them; `--data DIR` reads the chains from
DIR instead of ../shared/data).

Real IV: from each real quote's mid, the out-of-the-money side only (ITM quotes are wider and
carry SPY's early-exercise premium), with the forward implied by put-call parity at the
strikes nearest spot (a least-squares fit of C - P = D (F - K), which also absorbs SPY's
discrete dividends). The vendor's IV column is not used: its rate and dividend inputs are
unknown and disagree with parity on short SPY expiries around an ex-date. The synthetic chain
of the same day uses the same close, rate and that expiry's parity dividend yield, so the
comparison measures the surface and the spread model, not the forward.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.feeds.cboe_chains import OptionChain, load_cboe_chain
from engine.kernels.bsm import bsm_greeks
from engine.kernels.iv import implied_vol
from engine.market.surface import DEFAULT, SurfaceParams, VolIndices, implied_vols
from engine.market.synth_chain import ChainSpec, synth_chain
from engine.paths import shared_data_dir
from engine.state.snapshot import EXCHANGE_TZ

FloatArray = npt.NDArray[np.float64]
DAYS_PER_YEAR = 365.0
TARGETS = (("short", 7), ("30d", 30), ("long", 90))  # (label, target DTE)
MIN_LONG_DTE = 60  # a "long" expiry nearer than this repeats the 30-day row: skipped
DELTAS = (("p25", -0.25), ("c25", 0.25), ("p10", -0.10), ("c10", 0.10))
WIDTH_DELTA = (0.05, 0.5)  # |delta| band of the width comparison (OTM)
FIT_DTE = (7, 100)  # expiries used by the fit
FIT_DELTA = (0.05, 0.6)  # |delta| band used by the fit (OTM)
PARITY_STRIKES = 6  # strikes nearest spot in the parity fit


@dataclass(frozen=True)
class RealDay:
    """One real chain and the market inputs it does not carry (data README; the rate is the
    3-month T-bill on the day, as in tests/kernels/test_real_chains.py)."""

    file: str
    symbol: str  # the synthetic chain's symbol
    root: str  # OCC root used from the file (SPXW: PM-settled, like the synthetic expiries)
    close: float  # official close (the file's line 2 is an after-hours quote)
    vix: float
    rate: float


REAL_DAYS = (
    RealDay("spy_chain_2023-09-14_cboe_delayed.csv", "SPY", "SPY", 450.36, 12.82, 0.053),
    RealDay("spx_chain_2023-09-14_cboe_delayed.csv", "SPX", "SPXW", 4505.10, 12.82, 0.053),
    RealDay("spy_chain_2025-06-09_cboe_delayed.csv", "SPY", "SPY", 599.68, 17.16, 0.043),
    RealDay("spy_chain_2025-09-25_cboe_delayed.csv", "SPY", "SPY", 658.05, 16.74, 0.041),
)


@dataclass(frozen=True)
class Smile:
    """One expiry's OTM quotes: ln(K/F), IV (fraction), BSM delta and relative width."""

    expiry: date
    years: float
    forward: float
    dividend_yield: float  # the continuous yield that reproduces the parity forward
    log_moneyness: FloatArray
    iv: FloatArray
    delta: FloatArray
    rel_width: FloatArray  # (ask - bid) / mid


@dataclass(frozen=True)
class Row:
    """One compared expiry; IVs in vol points, widths as medians of (ask - bid) / mid."""

    chain: str
    label: str
    expiry: date
    dte: int
    real: dict[str, float]  # atm, p25, c25, p10, c10
    synth: dict[str, float]
    width_real: float
    width_synth: float


def _parity_forward(k: FloatArray, call_mid: FloatArray, put_mid: FloatArray, spot: float) -> float:
    near = np.argsort(np.abs(k - spot))[:PARITY_STRIKES]
    a = np.column_stack([np.ones(near.size), -k[near]])
    (intercept, disc), *_ = np.linalg.lstsq(a, call_mid[near] - put_mid[near], rcond=None)
    return float(intercept / disc) if disc > 0 else math.nan


def _sorted_by_moneyness(
    k_over_f: FloatArray, iv: FloatArray, delta: FloatArray, w: FloatArray
) -> tuple[FloatArray, ...]:
    order = np.argsort(k_over_f)
    return k_over_f[order], iv[order], delta[order], w[order]


def real_smiles(day: RealDay, chain: OptionChain) -> list[Smile]:
    """Every expiry with quotes on both sides of the forward, from the day's real chain."""
    out: list[Smile] = []
    asof = chain.snapshot_date
    for expiry in np.unique(chain.expiry):
        dte = int((expiry - asof).astype(int))
        if dte < 1:
            continue
        t = dte / DAYS_PER_YEAR
        m = (chain.expiry == expiry) & (chain.root == day.root)
        m &= (chain.bid > 0) & (chain.ask >= chain.bid)
        calls, puts = m & chain.is_call, m & ~chain.is_call
        both = np.intersect1d(chain.strike[calls], chain.strike[puts])
        if both.size < 3:
            continue
        cmid = dict(zip(chain.strike[calls], 0.5 * (chain.bid + chain.ask)[calls], strict=True))
        pmid = dict(zip(chain.strike[puts], 0.5 * (chain.bid + chain.ask)[puts], strict=True))
        c_m = np.array([cmid[x] for x in both])
        p_m = np.array([pmid[x] for x in both])
        fwd = _parity_forward(both, c_m, p_m, day.close)
        if not math.isfinite(fwd):
            continue
        q = day.rate - math.log(fwd / day.close) / t
        otm = m & np.where(chain.is_call, chain.strike >= fwd, chain.strike < fwd)
        k, c = chain.strike[otm], chain.is_call[otm]
        mid = 0.5 * (chain.bid + chain.ask)[otm]
        iv = implied_vol(mid, c, day.close, k, t, day.rate, q)
        delta = bsm_greeks(c, day.close, k, t, day.rate, q, iv).delta
        ok = np.isfinite(iv) & np.isfinite(delta)
        if not ok.any():
            continue
        rel = (chain.ask - chain.bid)[otm] / mid
        x, v, d, w = _sorted_by_moneyness(np.log(k[ok] / fwd), iv[ok], delta[ok], rel[ok])
        if x[0] > 0 or x[-1] < 0:
            continue
        out.append(Smile(expiry.item(), t, fwd, q, x, v, d, w))
    return out


def smile_metrics(log_moneyness: FloatArray, iv: FloatArray, delta: FloatArray) -> dict[str, float]:
    """ATM IV (linear in ln K/F at 0) and IV at the DELTAS targets (linear in delta, per
    side), in vol points; NaN where a target is outside the quoted range."""
    out = {"atm": float(np.interp(0.0, log_moneyness, iv)) * 100}
    for name, target in DELTAS:
        side = delta < 0 if target < 0 else delta > 0
        d, v = delta[side], iv[side]
        order = np.argsort(d)
        d, v = d[order], v[order]
        inside = d.size > 1 and d[0] <= target <= d[-1]
        out[name] = float(np.interp(target, d, v)) * 100 if inside else math.nan
    return out


def _band(delta: FloatArray, band: tuple[float, float]) -> npt.NDArray[np.bool_]:
    a = np.abs(delta)
    return np.asarray((a >= band[0]) & (a <= band[1]))


def compare_day(day: RealDay, chain: OptionChain, params: SurfaceParams = DEFAULT) -> list[Row]:
    """Rows for the day's short, ~30-day and long expiries (those listed in both chains)."""
    smiles = real_smiles(day, chain)
    asof_day = date.fromisoformat(str(chain.snapshot_date))
    asof = datetime.combine(asof_day, time(16), EXCHANGE_TZ)
    rows: list[Row] = []
    used: set[date] = set()
    for label, target in TARGETS:
        pick = min(smiles, key=lambda s: abs(s.years * DAYS_PER_YEAR - target), default=None)
        if pick is None or pick.expiry in used:
            continue
        dte = round(pick.years * DAYS_PER_YEAR)
        if label == "long" and dte < MIN_LONG_DTE:
            continue
        spec = ChainSpec(max_days=dte, rate=day.rate, surface=params)
        syn = synth_chain(
            day.symbol, asof, day.close, VolIndices(vix=day.vix), pick.dividend_yield, spec
        )
        m = syn.expiry == np.datetime64(pick.expiry, "D")
        if not m.any():
            continue
        used.add(pick.expiry)
        fwd = day.close * math.exp((day.rate - pick.dividend_yield) * pick.years)
        otm = m & np.where(syn.is_call, syn.strike >= fwd, syn.strike < fwd)
        x, v, d, w = _sorted_by_moneyness(
            np.log(syn.strike[otm] / fwd), syn.iv[otm], syn.delta[otm],
            (syn.ask - syn.bid)[otm] / (0.5 * (syn.ask + syn.bid))[otm],
        )  # fmt: skip
        rows.append(
            Row(
                chain=day.file.split("_cboe")[0],
                label=label,
                expiry=pick.expiry,
                dte=dte,
                real=smile_metrics(pick.log_moneyness, pick.iv, pick.delta),
                synth=smile_metrics(x, v, d),
                width_real=float(np.median(pick.rel_width[_band(pick.delta, WIDTH_DELTA)])),
                width_synth=float(np.median(w[_band(d, WIDTH_DELTA)])),
            )
        )
    return rows


# ------------------------------------------------------------------ fit
# smile_width is a prior: the fit is flat in it (amplitude and rho trade off against it; the
# quotes reach |z| ~ 3 only, so the wings' onset is not identified).
FIT_FIELDS = ("atm_to_vix", "smile_amplitude", "smile_rho", "term_power")


@dataclass(frozen=True)
class FitData:
    """Real OTM smile points of one chain: ln(K/F), T (years), IV (fraction), expiry index."""

    vix: float
    log_moneyness: FloatArray
    years: FloatArray
    iv: FloatArray
    weight: FloatArray  # 1 / (points of its expiry x expiries of its chain)


def fit_data(day: RealDay, smiles: Sequence[Smile]) -> FitData:
    """The points the fit uses: expiries FIT_DTE days out, OTM |delta| within FIT_DELTA."""
    use = [s for s in smiles if FIT_DTE[0] <= s.years * DAYS_PER_YEAR <= FIT_DTE[1]]
    parts = [(s, _band(s.delta, FIT_DELTA)) for s in use]
    parts = [(s, m) for s, m in parts if m.any()]
    k = np.concatenate([s.log_moneyness[m] for s, m in parts])
    t = np.concatenate([np.full(m.sum(), s.years) for s, m in parts])
    v = np.concatenate([s.iv[m] for s, m in parts])
    w = np.concatenate([np.full(m.sum(), 1.0 / (m.sum() * len(parts))) for _, m in parts])
    return FitData(day.vix, k, t, v, w)


def fit_error(params: SurfaceParams, data: Sequence[FitData]) -> float:
    """RMS of model - real IV in vol points, each chain and each of its expiries weighted
    equally."""
    total = 0.0
    for d in data:
        model = implied_vols(VolIndices(vix=d.vix), d.log_moneyness, d.years, params)
        total += float(np.sum(d.weight * ((model - d.iv) * 100) ** 2))
    return math.sqrt(total / len(data))


def _params(x: FloatArray, base: SurfaceParams) -> SurfaceParams:
    # Bounded through the parametrisation: rho in (-1, 1), the others positive.
    return replace(
        base,
        atm_to_vix=abs(x[0]),
        smile_amplitude=abs(x[1]),
        smile_rho=math.tanh(x[2]),
        term_power=x[3],
    )


def nelder_mead(
    fn: Callable[[FloatArray], float],
    x0: FloatArray,
    step: float = 0.1,
    iters: int = 600,
    tol: float = 1e-8,
) -> FloatArray:
    """Minimise fn from x0: the textbook simplex method (no SciPy in the runtime deps).

    Stops after `iters` steps or once the simplex's values agree within `tol`.
    """
    pts = [x0] + [x0 + step * np.eye(x0.size)[i] * max(abs(x0[i]), 1.0) for i in range(x0.size)]
    vals = [float(fn(p)) for p in pts]
    for _ in range(iters):
        order = np.argsort(vals)
        pts, vals = [pts[i] for i in order], [vals[i] for i in order]
        if vals[-1] - vals[0] < tol:
            break
        centre = np.mean(pts[:-1], axis=0)
        refl = centre + (centre - pts[-1])
        fr = float(fn(refl))
        if fr < vals[0]:
            exp = centre + 2.0 * (centre - pts[-1])
            fe = float(fn(exp))
            pts[-1], vals[-1] = (exp, fe) if fe < fr else (refl, fr)
        elif fr < vals[-2]:
            pts[-1], vals[-1] = refl, fr
        else:
            con = centre + 0.5 * (pts[-1] - centre)
            fc = float(fn(con))
            if fc < vals[-1]:
                pts[-1], vals[-1] = con, fc
            else:  # shrink towards the best point
                pts = [pts[0] + 0.5 * (p - pts[0]) for p in pts]
                vals = [float(fn(p)) for p in pts]
    return np.asarray(pts[int(np.argmin(vals))], dtype=np.float64)


def fit_surface(data: Sequence[FitData], base: SurfaceParams = DEFAULT) -> SurfaceParams:
    """The FIT_FIELDS constants minimising `fit_error`; the others stay as in `base`."""
    x0 = np.array(
        [
            base.atm_to_vix,
            base.smile_amplitude,
            math.atanh(base.smile_rho),
            base.term_power,
        ]
    )
    best = nelder_mead(lambda x: fit_error(_params(x, base), data), x0)
    return _params(best, base)


# ------------------------------------------------------------------ report
def _fmt(x: float, signed: bool = False) -> str:
    if not math.isfinite(x):
        return "–"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def markdown_table(rows: Sequence[Row]) -> str:
    """One line per compared expiry: real IV and synthetic - real error, in vol points."""
    head = (
        "| chain | expiry | DTE | ATM real | ATM err | 25Δp real | 25Δp err | 25Δc real "
        "| 25Δc err | 10Δp real | 10Δp err | 10Δc real | 10Δc err | width real | width synth |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        cells = [r.chain, str(r.expiry), str(r.dte)]
        for key in ("atm", "p25", "c25", "p10", "c10"):
            cells += [_fmt(r.real[key]), _fmt(r.synth[key] - r.real[key], signed=True)]
        cells += [f"{r.width_real:.1%}", f"{r.width_synth:.1%}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_days(data_dir: Path) -> list[tuple[RealDay, OptionChain]]:
    """The REAL_DAYS chains from data_dir/option_chains (FileNotFoundError naming the file)."""
    return [(d, load_cboe_chain(data_dir / "option_chains" / d.file)) for d in REAL_DAYS]


def leave_one_day_out(
    days: Sequence[tuple[RealDay, OptionChain]], base: SurfaceParams = DEFAULT
) -> list[Row]:
    """30-day rows of each trading date with the surface refitted on the other dates only."""
    smiles = {d.file: real_smiles(d, c) for d, c in days}
    dates = sorted({str(c.snapshot_date) for _, c in days})
    rows: list[Row] = []
    for held in dates:
        train = [fit_data(d, smiles[d.file]) for d, c in days if str(c.snapshot_date) != held]
        params = fit_surface(train, base)
        for d, c in days:
            if str(c.snapshot_date) == held:
                rows += [r for r in compare_day(d, c, params) if r.label == "30d"]
    return rows


def report(data_dir: Path, refit: bool = False) -> str:
    """The markdown calibration report of docs/market/synthetic_chains.md."""
    days = load_days(data_dir)
    params = DEFAULT
    out: list[str] = []
    if refit:
        params = fit_surface([fit_data(d, real_smiles(d, c)) for d, c in days])
        out += ["Refitted constants (in-sample, all four chains):", ""]
        out += [f"- {name} = {getattr(params, name):.4f}" for name in FIT_FIELDS] + [""]
    fits = [fit_data(d, real_smiles(d, c)) for d, c in days]
    rows = [r for d, c in days for r in compare_day(d, c, params)]
    out += ["In-sample (constants fitted on these four chains):", "", markdown_table(rows), ""]
    out += [f"Fit RMS error over {FIT_DTE[0]}-{FIT_DTE[1]}-day expiries: "]
    out[-1] += f"{fit_error(params, fits):.2f} vol points.\n"
    loo = leave_one_day_out(days, params)
    out += ["Leave one trading date out (refitted on the other dates), 30-day rows:", ""]
    out += [markdown_table(loo), ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.market.calibration")
    parser.add_argument("--data", type=Path, default=None, help="market data folder")
    parser.add_argument("--fit", action="store_true", help="refit the surface constants")
    args = parser.parse_args(argv)
    data_dir = args.data if args.data is not None else shared_data_dir()
    if not (data_dir / "option_chains").is_dir():
        print(f"no real chains under {data_dir / 'option_chains'}", file=sys.stderr)
        return 2
    print(report(data_dir, refit=args.fit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
