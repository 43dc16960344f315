"""Chain features (ATM IV, 25-delta skew, smile slope, term structure) as array-in kernels."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from engine.kernels.vol_features import (
    beta_weighted_delta,
    iv_rank_percentile,
    log_returns,
    realized_vol_close,
    realized_vol_parkinson,
    rolling_beta,
    rolling_beta_correlation,
    rolling_correlation,
)

__all__ = [
    "ChainFeatures",
    "ExpiryFeatures",
    "beta_weighted_delta",
    "chain_features",
    "expiry_features",
    "interp_maturity",
    "iv_rank_percentile",
    "log_returns",
    "realized_vol_close",
    "realized_vol_parkinson",
    "rolling_beta",
    "rolling_beta_correlation",
    "rolling_correlation",
]

FloatArray = npt.NDArray[np.float64]

# Units throughout: T in years, IV and deltas as fractions (0.25 = 25 delta), strikes and
# forwards in price. Every function returns NaN for missing data and never raises on it.
DAYS_PER_YEAR = 365.0
ATM_TARGET_T = 30.0 / DAYS_PER_YEAR
FAR_TARGET_T = 90.0 / DAYS_PER_YEAR
SLOPE_BAND = 0.1  # |ln K/F| below this is "near the money" for the slope fit


class ExpiryFeatures(NamedTuple):
    """Per listed expiry, sorted by T: t (years), forward, atm_iv, put/call 25-delta IV, slope."""

    t: FloatArray
    forward: FloatArray
    atm_iv: FloatArray
    put_25d_iv: FloatArray
    call_25d_iv: FloatArray
    skew_slope: FloatArray  # dIV / d ln(K/F), IV fraction per unit log-moneyness


class ChainFeatures(NamedTuple):
    """One chain's features at a target maturity (by default 30 days; the far one 90 days)."""

    atm_iv: float  # fraction, at the target maturity
    put_25d_iv: float  # fraction
    call_25d_iv: float  # fraction
    skew_25d_ratio: float  # ratio: 25-delta put IV / 25-delta call IV
    risk_reversal_25d: float  # fraction: 25-delta call IV - 25-delta put IV
    skew_slope: float  # ratio: dIV / d ln(K/F) near the money
    atm_iv_far: float  # fraction, at the far maturity
    term_slope: float  # ratio: atm_iv / atm_iv_far
    expiries: ExpiryFeatures


@njit(cache=True)
def _interp_sorted(x0: float, xs: FloatArray, ys: FloatArray, n: int) -> float:
    """Linear interpolation on xs[:n] (non-decreasing); NaN outside the range, no extrapolation."""
    if n == 0 or not (xs[0] <= x0 <= xs[n - 1]):
        return math.nan
    for j in range(n - 1):
        if xs[j] <= x0 <= xs[j + 1]:
            span = xs[j + 1] - xs[j]
            if span == 0.0:
                return float(ys[j])
            w = (x0 - xs[j]) / span
            return float(ys[j] + w * (ys[j + 1] - ys[j]))
    return float(ys[n - 1])  # n == 1 and x0 == xs[0]


@njit(cache=True)
def _ls_slope(xs: FloatArray, ys: FloatArray, n: int, band: float) -> float:
    """Least-squares slope of ys on xs over |x| < band; NaN with fewer than two distinct x."""
    m = 0
    sx = 0.0
    sy = 0.0
    for i in range(n):
        if abs(xs[i]) < band:
            m += 1
            sx += xs[i]
            sy += ys[i]
    if m < 2:
        return math.nan
    mx = sx / m
    my = sy / m
    sxx = 0.0
    sxy = 0.0
    for i in range(n):
        if abs(xs[i]) < band:
            dx = xs[i] - mx
            sxx += dx * dx
            sxy += dx * (ys[i] - my)
    if sxx == 0.0:
        return math.nan
    return sxy / sxx


@njit(cache=True)
def _delta_iv(
    a: int,
    b: int,
    is_call: npt.NDArray[np.bool_],
    iv: FloatArray,
    delta: FloatArray,
    call: bool,
    target: float,
) -> float:
    """IV at `target` delta, interpolated linearly in delta over one side of one expiry."""
    ds = np.empty(b - a)
    vs = np.empty(b - a)
    n = 0
    for r in range(a, b):
        if is_call[r] == call and iv[r] > 0.0 and np.isfinite(iv[r]) and np.isfinite(delta[r]):
            ds[n] = delta[r]
            vs[n] = iv[r]
            n += 1
    # Sort by delta rather than trust strike order: quoted deltas are not always monotone.
    order = np.argsort(ds[:n])
    return _interp_sorted(target, ds[:n][order], vs[:n][order], n)


@njit(cache=True)
def _expiry_kernel(
    t: FloatArray,
    k: FloatArray,
    is_call: npt.NDArray[np.bool_],
    iv: FloatArray,
    delta: FloatArray,
    fwd: FloatArray,
    put_delta: float,
    call_delta: float,
    band: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Rows sorted by (t, strike), with finite positive t, strike and forward."""
    n = t.size
    m = 0
    for i in range(n):
        if i == 0 or t[i] != t[i - 1]:
            m += 1
    out_t = np.empty(m)
    out_f = np.empty(m)
    atm = np.full(m, np.nan)
    p25 = np.full(m, np.nan)
    c25 = np.full(m, np.nan)
    slope = np.full(m, np.nan)
    xs = np.empty(n)
    ys = np.empty(n)
    e = 0
    a = 0
    while a < n:
        b = a + 1
        while b < n and t[b] == t[a]:
            b += 1
        f = fwd[a]
        out_t[e] = t[a]
        out_f[e] = f
        # One smile point per strike: the out-of-the-money option's IV (ITM quotes are wider
        # and carry the early-exercise premium), the ITM one only when the OTM one is missing.
        npts = 0
        i = a
        while i < b:
            j = i + 1
            while j < b and k[j] == k[i]:
                j += 1
            otm_sum = 0.0
            otm_n = 0
            itm_sum = 0.0
            itm_n = 0
            for r in range(i, j):
                v = iv[r]
                if not (v > 0.0 and np.isfinite(v)):
                    continue
                otm = k[r] == f or (is_call[r] if k[r] > f else not is_call[r])
                if otm:
                    otm_sum += v
                    otm_n += 1
                else:
                    itm_sum += v
                    itm_n += 1
            if otm_n > 0 or itm_n > 0:
                xs[npts] = math.log(k[i] / f)
                ys[npts] = otm_sum / otm_n if otm_n > 0 else itm_sum / itm_n
                npts += 1
            i = j
        # Interpolating in ln K is exact for a smile linear in log-moneyness.
        atm[e] = _interp_sorted(0.0, xs, ys, npts)
        slope[e] = _ls_slope(xs, ys, npts, band)
        p25[e] = _delta_iv(a, b, is_call, iv, delta, False, put_delta)
        c25[e] = _delta_iv(a, b, is_call, iv, delta, True, call_delta)
        e += 1
        a = b
    return out_t, out_f, atm, p25, c25, slope


def expiry_features(
    t: npt.ArrayLike,
    strike: npt.ArrayLike,
    is_call: npt.ArrayLike,
    iv: npt.ArrayLike,
    delta: npt.ArrayLike,
    forward: npt.ArrayLike,
    *,
    put_delta: float = -0.25,
    call_delta: float = 0.25,
    band: float = SLOPE_BAND,
) -> ExpiryFeatures:
    """Features of each listed expiry of one chain at one time.

    Rows are contracts; `t` (years to expiry) identifies the expiry, so all rows of one expiry
    must carry the same T. Inputs broadcast (a scalar T or forward serves a single expiry).
    Rows with non-finite or non-positive T, strike or forward are dropped; IV <= 0 counts as
    missing (vendors print 0).

    - atm_iv: one smile point per strike (OTM option's IV, else the ITM one; the mean of both at
      K == F), interpolated linearly in ln K at the forward; NaN if the forward is outside the
      quoted strikes.
    - put/call 25-delta IV: IV interpolated linearly in delta at `put_delta` / `call_delta`
      over that side's contracts; NaN if the target is outside the quoted deltas.
    - skew_slope: least-squares slope of those smile points against ln(K/F) over
      |ln K/F| < band; NaN with fewer than two strikes in the band.
    """
    cols = np.broadcast_arrays(
        *(np.asarray(x, np.float64) for x in (t, strike, iv, delta, forward))
    )
    t_, k_, iv_, d_, f_ = (np.ravel(x) for x in cols)
    c_ = np.ravel(np.broadcast_to(np.asarray(is_call, dtype=np.bool_), cols[0].shape))
    keep = (t_ > 0) & np.isfinite(t_) & (k_ > 0) & np.isfinite(k_) & (f_ > 0) & np.isfinite(f_)
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((k_[idx], t_[idx]))]
    out = _expiry_kernel(
        t_[idx], k_[idx], c_[idx], iv_[idx], d_[idx], f_[idx], put_delta, call_delta, band
    )
    return ExpiryFeatures(*out)


def interp_maturity(
    t: npt.ArrayLike, values: npt.ArrayLike, target: float, *, total_variance: bool = True
) -> float:
    """A per-expiry quantity at maturity `target` (years), from the two expiries bracketing it.

    With `total_variance` the values are volatilities, interpolated linearly in total variance
    sigma^2 T (the calendar-spread-consistent way); otherwise linearly in T. Expiries with a NaN
    value are skipped; a target outside the listed maturities is NaN (no extrapolation).
    """
    t_ = np.asarray(t, dtype=np.float64).ravel()
    v_ = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(t_) & (t_ > 0) & np.isfinite(v_)
    if total_variance:
        ok &= v_ >= 0
    t_, v_ = t_[ok], v_[ok]
    if not (target > 0) or t_.size == 0:
        return math.nan
    exact = t_ == target
    if exact.any():
        return float(v_[exact][0])
    below = t_ < target
    above = t_ > target
    if not below.any() or not above.any():
        return math.nan
    ia = np.flatnonzero(below)[np.argmax(t_[below])]
    ib = np.flatnonzero(above)[np.argmin(t_[above])]
    ta, tb, va, vb = t_[ia], t_[ib], v_[ia], v_[ib]
    w = (target - ta) / (tb - ta)
    if not total_variance:
        return float(va + w * (vb - va))
    var = va * va * ta + w * (vb * vb * tb - va * va * ta)
    return float(math.sqrt(var / target)) if var >= 0 else math.nan


def _ratio(a: float, b: float) -> float:
    return a / b if b != 0 and math.isfinite(b) else math.nan


def chain_features(
    t: npt.ArrayLike,
    strike: npt.ArrayLike,
    is_call: npt.ArrayLike,
    iv: npt.ArrayLike,
    delta: npt.ArrayLike,
    forward: npt.ArrayLike,
    *,
    target_t: float = ATM_TARGET_T,
    far_t: float = FAR_TARGET_T,
    band: float = SLOPE_BAND,
) -> ChainFeatures:
    """ATM IV, 25-delta skew, smile slope and term structure of one chain at one time.

    Inputs as for `expiry_features`. ATM and 25-delta IVs at `target_t` interpolate the
    per-expiry values in total variance between the bracketing expiries; the slope interpolates
    linearly in T. skew_25d_ratio = IV(25D put) / IV(25D call); risk_reversal_25d =
    IV(25D call) - IV(25D put); term_slope = ATM IV(target_t) / ATM IV(far_t).
    """
    ex = expiry_features(t, strike, is_call, iv, delta, forward, band=band)
    atm = interp_maturity(ex.t, ex.atm_iv, target_t)
    put = interp_maturity(ex.t, ex.put_25d_iv, target_t)
    call = interp_maturity(ex.t, ex.call_25d_iv, target_t)
    slope = interp_maturity(ex.t, ex.skew_slope, target_t, total_variance=False)
    far = interp_maturity(ex.t, ex.atm_iv, far_t)
    return ChainFeatures(
        atm_iv=atm,
        put_25d_iv=put,
        call_25d_iv=call,
        skew_25d_ratio=_ratio(put, call),
        risk_reversal_25d=call - put,
        skew_slope=slope,
        atm_iv_far=far,
        term_slope=_ratio(atm, far),
        expiries=ex,
    )
