"""Normalised Black function for the implied-volatility solver, accurate to a few ulps in s."""

from __future__ import annotations

import math

from numba import njit

from engine.kernels.normal import norm_cdf

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_PI_OVER_2 = math.sqrt(0.5 * math.pi)
_EPS = 2.220446049250313e-16
# Below this t = s/2 the Taylor expansion in t (to t^13) is exact to double precision.
_TAU = 2.0 * _EPS**0.0625
# Below this h = x/s (with h + t < _ETA + _TAU) the asymptotic expansion is exact to double.
_ETA = -10.0
# Veltkamp splitter for the exact square u*u = hi + lo.
_SPLIT = 134217729.0

# Inverse factorials for the small-t expansion (odd orders 3..13).
_F3 = 1.0 / 6.0
_F5 = 1.0 / 120.0
_F7 = 1.0 / 5040.0
_F9 = 1.0 / 362880.0
_F11 = 1.0 / 39916800.0
_F13 = 1.0 / 6227020800.0


@njit(cache=True)
def _square_lo(u: float, hi: float) -> float:
    """Rounding error of hi = fl(u*u), so that u*u == hi + lo exactly (Dekker)."""
    c = _SPLIT * u
    uh = c - (c - u)
    ul = u - uh
    return ((uh * uh - hi) + 2.0 * uh * ul) + ul * ul


@njit(cache=True)
def _erfcx(u: float) -> float:
    """Scaled complementary error function exp(u^2)·erfc(u), a few ulps accurate for u > -26."""
    if u < 0.5:
        return math.exp(u * u) * math.erfc(u)
    if u < 26.0:
        # exp(fl(u^2)) alone would carry a relative error of u^2·eps: add the exact low part.
        hi = u * u
        lo = _square_lo(u, hi)
        return math.exp(hi) * (1.0 + lo) * math.erfc(u)
    # erfc underflows beyond ~26.5; the asymptotic series has converged to eps by its 8th term.
    w = 0.5 / (u * u)
    ser = 1.0 - 15.0 * w
    ser = 1.0 - 13.0 * w * ser
    ser = 1.0 - 11.0 * w * ser
    ser = 1.0 - 9.0 * w * ser
    ser = 1.0 - 7.0 * w * ser
    ser = 1.0 - 5.0 * w * ser
    ser = 1.0 - 3.0 * w * ser
    ser = 1.0 - w * ser
    return ser / (u * _SQRT_PI)


@njit(cache=True)
def _inv_norm_cdf(p: float) -> float:
    """Inverse normal CDF, Wichura's AS241 (PPND16), relative accuracy about 1e-16."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (
            (
                (
                    (
                        (
                            (2509.0809287301226727 * r + 33430.575583588128105) * r
                            + 67265.770927008700853
                        )
                        * r
                        + 45921.953931549871457
                    )
                    * r
                    + 13731.693765509461125
                )
                * r
                + 1971.5909503065514427
            )
            * r
            + 133.14166789178437745
        ) * r + 3.387132872796366608
        den = (
            (
                (
                    (
                        (
                            (5226.495278852854561 * r + 28729.085735721942674) * r
                            + 39307.89580009271061
                        )
                        * r
                        + 21213.794301586595867
                    )
                    * r
                    + 5394.1960214247511077
                )
                * r
                + 687.1870074920579083
            )
            * r
            + 42.313330701600911252
        ) * r + 1.0
        return q * num / den
    r = p if q < 0.0 else 1.0 - p
    if r <= 0.0:
        return -math.inf if q < 0.0 else math.inf
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        num = (
            (
                (
                    (
                        (
                            (7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r
                            + 0.24178072517745061177
                        )
                        * r
                        + 1.27045825245236838258
                    )
                    * r
                    + 3.64784832476320460504
                )
                * r
                + 5.7694972214606914055
            )
            * r
            + 4.6303378461565452959
        ) * r + 1.42343711074968357734
        den = (
            (
                (
                    (
                        (
                            (1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r
                            + 0.0151986665636164571966
                        )
                        * r
                        + 0.14810397642748007459
                    )
                    * r
                    + 0.68976733498510000455
                )
                * r
                + 1.6763848301838038494
            )
            * r
            + 2.05319162663775882187
        ) * r + 1.0
    else:
        r -= 5.0
        num = (
            (
                (
                    (
                        (
                            (2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                            + 0.0012426609473880784386
                        )
                        * r
                        + 0.026532189526576123093
                    )
                    * r
                    + 0.29656057182850489123
                )
                * r
                + 1.7848265399172913358
            )
            * r
            + 5.4637849111641143699
        ) * r + 6.6579046435011037772
        den = (
            (
                (
                    (
                        (
                            (2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r
                            + 1.8463183175100546818e-5
                        )
                        * r
                        + 7.868691311456132591e-4
                    )
                    * r
                    + 0.0148753612908506148525
                )
                * r
                + 0.13692988092273580531
            )
            * r
            + 0.59983220655588793769
        ) * r + 1.0
    z = num / den
    return -z if q < 0.0 else z


@njit(cache=True)
def _asymptotic_dy(h: float, t: float) -> float:
    """Y(h+t) - Y(h-t) for h+t << 0, with Y = Φ/φ, from the asymptotic series of Y.

    Y(z) ~ Σ_k (-1)^(k+1) (2k-1)!! z^-(2k+1). With u = 1/(h+t), v = 1/(h-t) the difference of
    powers u^m - v^m is built from the mean and half-difference of u and v, whose recurrence
    only adds terms of one sign, so nothing cancels even when t << |h|.
    """
    r = (h + t) * (h - t)
    mean = h / r  # (u + v) / 2
    half = -t / r  # (u - v) / 2
    d = 2.0 * half  # u^m - v^m, m = 1
    sm = 2.0 * mean  # u^m + v^m, m = 1
    total = -d
    dfact = 1.0  # (2k-1)!!
    for k in range(1, 18):
        # Two steps of m -> m + 1 take us from m = 2k - 1 to m = 2k + 1.
        d, sm = mean * d + half * sm, mean * sm + half * d
        d, sm = mean * d + half * sm, mean * sm + half * d
        dfact *= 2.0 * k - 1.0
        term = dfact * d
        total += term if k % 2 == 1 else -term
    return total


@njit(cache=True)
def _small_t_dy(h: float, t: float) -> float:
    """Y(h+t) - Y(h-t) for t < _TAU by its Taylor series in t (odd orders up to 13).

    The derivatives of Y follow Y' = 1 + hY, Y^(n+1) = h Y^(n) + n Y^(n-1).
    """
    y0 = _SQRT_PI_OVER_2 * _erfcx(-h * _INV_SQRT_2)
    y1 = 1.0 + h * y0
    y2 = h * y1 + y0
    y3 = h * y2 + 2.0 * y1
    y4 = h * y3 + 3.0 * y2
    y5 = h * y4 + 4.0 * y3
    y6 = h * y5 + 5.0 * y4
    y7 = h * y6 + 6.0 * y5
    y8 = h * y7 + 7.0 * y6
    y9 = h * y8 + 8.0 * y7
    y10 = h * y9 + 9.0 * y8
    y11 = h * y10 + 10.0 * y9
    y12 = h * y11 + 11.0 * y10
    y13 = h * y12 + 12.0 * y11
    w = t * t
    ser = y11 * _F11 + w * y13 * _F13
    ser = y9 * _F9 + w * ser
    ser = y7 * _F7 + w * ser
    ser = y5 * _F5 + w * ser
    ser = y3 * _F3 + w * ser
    ser = y1 + w * ser
    return 2.0 * t * ser


@njit(cache=True)
def _black_parts(x: float, s: float, ex2: float) -> tuple[float, float, float]:
    """Normalised out-of-the-money Black call b(x, s) = exp(e)·m for x <= 0, s > 0, and its
    vega db/ds.

    ex2 = exp(x/2). Returning the exponent separately lets the lowest branch work with ln b
    even where b itself would underflow; outside the plain-formula region the vega shares it.
    """
    h = x / s
    t = 0.5 * s
    e = -0.5 * (h * h + t * t)
    if h + t > 0.85:
        # b is mostly its first term here: the plain formula loses nothing.
        b = ex2 * norm_cdf(h + t) - norm_cdf(h - t) / ex2
        return 0.0, max(b, 0.0), _INV_SQRT_2PI * math.exp(e)
    v = _INV_SQRT_2PI * math.exp(e)
    if h < _ETA and h + t < _ETA + _TAU:
        return e, _INV_SQRT_2PI * _asymptotic_dy(h, t), v
    if t < _TAU:
        return e, _INV_SQRT_2PI * _small_t_dy(h, t), v
    m = 0.5 * (_erfcx(-(h + t) * _INV_SQRT_2) - _erfcx(-(h - t) * _INV_SQRT_2))
    return e, max(m, 0.0), v


@njit(cache=True)
def _black(x: float, s: float, ex2: float) -> float:
    if s <= 0.0:
        return 0.0
    e, m, _ = _black_parts(x, s, ex2)
    return math.exp(e) * m


@njit(cache=True)
def _black_vega(x: float, s: float, ex2: float) -> tuple[float, float]:
    """b(x, s) and db/ds together (they share the Gaussian factor)."""
    if s <= 0.0:
        return 0.0, (_INV_SQRT_2PI if x == 0.0 else 0.0)
    e, m, v = _black_parts(x, s, ex2)
    return (m if e == 0.0 else math.exp(e) * m), v


@njit(cache=True)
def _black_complement(x: float, s: float, ex2: float) -> float:
    """b_max - b(x, s) = exp(x/2)Φ(-h-t) + exp(-x/2)Φ(h-t): a sum, so exact near the bound."""
    if s <= 0.0:
        return ex2
    h = x / s
    t = 0.5 * s
    return ex2 * norm_cdf(-(h + t)) + norm_cdf(h - t) / ex2


@njit(cache=True)
def _vega(x: float, s: float) -> float:
    """db/ds of the normalised Black function."""
    if s <= 0.0:
        return _INV_SQRT_2PI if x == 0.0 else 0.0
    h = x / s
    t = 0.5 * s
    return _INV_SQRT_2PI * math.exp(-0.5 * (h * h + t * t))
