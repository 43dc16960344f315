"""Time-series volatility features: IV rank/percentile, realized vol, beta, beta-weighted delta."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]

TRADING_DAYS = 252  # annualisation of daily series, and the default one-year lookback
_FOUR_LN2 = 4.0 * math.log(2.0)


def _floats(x: npt.ArrayLike) -> FloatArray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64).ravel())


def log_returns(prices: npt.ArrayLike) -> FloatArray:
    """ln(p[i] / p[i-1]), length n-1; NaN where either price is missing or not positive."""
    p = _floats(prices)
    if p.size < 2:
        return np.empty(0)
    p = np.where(p > 0, p, np.nan)
    return np.asarray(np.log(p[1:] / p[:-1]), dtype=np.float64)


# ------------------------------------------------------------------------ IV rank / percentile
@njit(cache=True)
def _rank_percentile(x: FloatArray, lookback: int, min_obs: int) -> tuple[FloatArray, FloatArray]:
    n = x.size
    rank = np.full(n, np.nan)
    pct = np.full(n, np.nan)
    for i in range(n):
        xi = x[i]
        if not np.isfinite(xi):
            continue
        lo = math.inf
        hi = -math.inf
        cnt = 0
        below = 0
        for j in range(max(0, i - lookback + 1), i + 1):
            v = x[j]
            if not np.isfinite(v):
                continue
            cnt += 1
            lo = min(lo, v)
            hi = max(hi, v)
            if v < xi:
                below += 1
        if cnt < min_obs:
            continue
        pct[i] = below / cnt
        if hi > lo:
            rank[i] = (xi - lo) / (hi - lo)
    return rank, pct


def iv_rank_percentile(
    history: npt.ArrayLike, lookback: int = TRADING_DAYS, min_obs: int | None = None
) -> tuple[FloatArray, FloatArray]:
    """Rolling IV rank and IV percentile, both fractions 0..1, one value per observation.

    The window at i is the last `lookback` observations ending at i, the current one included:
    rank = (x - min) / (max - min) over the window; percentile = share of the window's
    observations strictly below x (so it tops out at (n-1)/n). Missing (NaN) observations are
    skipped. NaN until the window holds at least `min_obs` finite observations (default: the
    full lookback, so a 252-day lookback needs 252 observations), when x is NaN, and for the
    rank when max == min.
    """
    x = _floats(history)
    need = lookback if min_obs is None else min_obs
    if lookback < 1:
        return np.full(x.size, np.nan), np.full(x.size, np.nan)
    return _rank_percentile(x, int(lookback), max(1, int(need)))


# ------------------------------------------------------------------------ realized volatility
@njit(cache=True)
def _rolling_std(r: FloatArray, window: int) -> FloatArray:
    """Sample std (ddof 1) of r[i-window+1..i]; NaN if any value in the window is missing."""
    n = r.size
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        s = 0.0
        ok = True
        for j in range(i - window + 1, i + 1):
            if not np.isfinite(r[j]):
                ok = False
                break
            s += r[j]
        if not ok:
            continue
        m = s / window
        ss = 0.0
        for j in range(i - window + 1, i + 1):
            d = r[j] - m
            ss += d * d
        out[i] = math.sqrt(ss / (window - 1))
    return out


@njit(cache=True)
def _rolling_mean(r: FloatArray, window: int) -> FloatArray:
    n = r.size
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        s = 0.0
        for j in range(i - window + 1, i + 1):
            s += r[j]
        out[i] = s / window  # NaN in the window propagates through the sum
    return out


def realized_vol_close(
    close: npt.ArrayLike, window: int = 20, periods_per_year: int = TRADING_DAYS
) -> FloatArray:
    """Close-to-close realized vol, annualised fraction, aligned with `close`.

    Value i = sample std (ddof 1) of the `window` log returns ending at close i, times
    sqrt(periods_per_year). NaN for the first `window` closes (it needs window + 1 closes) and
    wherever a close in the window is missing.
    """
    c = _floats(close)
    out = np.full(c.size, np.nan)
    if window < 2 or c.size < window + 1:
        return out
    out[1:] = _rolling_std(log_returns(c), int(window)) * math.sqrt(periods_per_year)
    return out


def realized_vol_parkinson(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    window: int = 20,
    periods_per_year: int = TRADING_DAYS,
) -> FloatArray:
    """Parkinson high/low realized vol, annualised fraction, aligned with the bars.

    sigma^2 = mean over the window of ln(H/L)^2 / (4 ln 2); times periods_per_year under the
    root. NaN for the first window - 1 bars and where a bar is missing or has H < L or L <= 0.
    """
    h, lo = _floats(high), _floats(low)
    if h.size != lo.size:
        raise ValueError(f"high and low differ in length: {h.size} != {lo.size}")
    if window < 1 or h.size < window:
        return np.full(h.size, np.nan)
    good = (lo > 0) & (h >= lo)
    hl = np.log(np.where(good, h, np.nan) / np.where(good, lo, np.nan))
    var = _rolling_mean(hl * hl / _FOUR_LN2, int(window))
    return np.asarray(np.sqrt(var * periods_per_year), dtype=np.float64)


# ------------------------------------------------------------------------ beta and correlation
@njit(cache=True)
def _rolling_beta_corr(a: FloatArray, b: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    n = a.size
    beta = np.full(n, np.nan)
    corr = np.full(n, np.nan)
    for i in range(window - 1, n):
        sa = 0.0
        sb = 0.0
        ok = True
        for j in range(i - window + 1, i + 1):
            if not (np.isfinite(a[j]) and np.isfinite(b[j])):
                ok = False
                break
            sa += a[j]
            sb += b[j]
        if not ok:
            continue
        ma = sa / window
        mb = sb / window
        saa = 0.0
        sbb = 0.0
        sab = 0.0
        # Two passes (means first) keep the covariances accurate for small daily returns.
        for j in range(i - window + 1, i + 1):
            da = a[j] - ma
            db = b[j] - mb
            saa += da * da
            sbb += db * db
            sab += da * db
        if sbb > 0.0:
            beta[i] = sab / sbb
            if saa > 0.0:
                corr[i] = sab / math.sqrt(saa * sbb)
    return beta, corr


def rolling_beta_correlation(
    returns: npt.ArrayLike, benchmark_returns: npt.ArrayLike, window: int = TRADING_DAYS
) -> tuple[FloatArray, FloatArray]:
    """Rolling beta and correlation of `returns` against `benchmark_returns` (same dates).

    Over the `window` returns ending at i: beta = cov(r, b) / var(b), correlation =
    cov(r, b) / (sd(r) sd(b)). NaN for the first window - 1 values, where a return in the
    window is missing, and where a variance is zero. Raises ValueError on unequal lengths.
    """
    a, b = _floats(returns), _floats(benchmark_returns)
    if a.size != b.size:
        raise ValueError(f"returns and benchmark differ in length: {a.size} != {b.size}")
    if window < 2 or a.size < window:
        return np.full(a.size, np.nan), np.full(a.size, np.nan)
    return _rolling_beta_corr(a, b, int(window))


def rolling_beta(
    returns: npt.ArrayLike, benchmark_returns: npt.ArrayLike, window: int = TRADING_DAYS
) -> FloatArray:
    """Rolling beta: see `rolling_beta_correlation`."""
    return rolling_beta_correlation(returns, benchmark_returns, window)[0]


def rolling_correlation(
    returns: npt.ArrayLike, benchmark_returns: npt.ArrayLike, window: int = TRADING_DAYS
) -> FloatArray:
    """Rolling correlation: see `rolling_beta_correlation`."""
    return rolling_beta_correlation(returns, benchmark_returns, window)[1]


# ------------------------------------------------------------------------ beta-weighted delta
def beta_weighted_delta(
    delta: npt.ArrayLike, beta: npt.ArrayLike, price: npt.ArrayLike, spy_price: float
) -> float:
    """Beta-weighted delta of a position set in SPY share-equivalents.

    sum_i delta_i * beta_i * price_i / spy_price, where delta_i is position i's delta in
    share-equivalents of its own underlying (an option's per-share delta x contracts x 100),
    beta_i its underlying's beta against SPY and price_i that underlying's price. A $1 move in
    SPY then moves the set's value by about the result (dollars), since underlying i moves by
    beta_i * price_i / spy_price dollars. NaN if any input is missing or spy_price <= 0;
    0.0 for an empty set.
    """
    d, bt, p = np.broadcast_arrays(_floats(delta), _floats(beta), _floats(price))
    if not (spy_price > 0 and math.isfinite(spy_price)):
        return math.nan
    return float(np.sum(d * bt * p) / spy_price)
