"""Black–Scholes–Merton implied volatility (continuous r and q) of "Let's Be Rational" quality."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from engine.kernels.broadcast import flatten
from engine.kernels.iv_solver import normalised_implied_vol

__all__ = ["PARALLEL_THRESHOLD", "implied_vol", "implied_vol_from_quotes"]

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

# Below this many options the serial driver is used. On the idle 2-core machine the prange
# fork/join costs ~2 µs and the parallel driver already wins at 64 options (13 vs 23 µs);
# 128 keeps a margin. When another process holds a core, OpenMP's barrier can make the
# parallel driver many times slower at small N (seen: 4 ms for 2,000 options).
PARALLEL_THRESHOLD = 128

_DBL_MIN = 2.2250738585072014e-308


@njit(cache=True)
def _iv_one(price: float, is_call: bool, s: float, k: float, t: float, r: float, q: float) -> float:
    """σ of one European option, NaN when unquotable. T in years, r and q continuous."""
    if not (
        math.isfinite(price)
        and math.isfinite(s)
        and math.isfinite(k)
        and math.isfinite(t)
        and math.isfinite(r)
        and math.isfinite(q)
    ):
        return math.nan
    if not (price > 0.0 and s > 0.0 and k > 0.0 and t > 0.0):
        return math.nan
    # x = ln(F/K). log1p keeps the relative accuracy of x near the money (S - K is exact there
    # by Sterbenz), which the intrinsic value of slightly-ITM options depends on.
    ratio = s / k
    x = math.log1p((s - k) / k) if 0.5 <= ratio <= 2.0 else math.log(ratio)
    x += (r - q) * t
    # Undiscounted price over sqrt(F K): price · e^{(r+q)T/2} / sqrt(S K).
    beta = price * math.exp(0.5 * (r + q) * t) / (math.sqrt(s) * math.sqrt(k))
    theta = 1.0 if is_call else -1.0
    if theta * x > 0.0:
        # In the money: keep only the time value (put–call symmetry turns it into the OTM
        # option of the other kind).
        beta -= 2.0 * math.sinh(0.5 * abs(x))
        theta = -theta
    if not beta >= _DBL_MIN:
        return math.nan  # at or below intrinsic, or underflowed
    if theta < 0.0:
        x = -x
    sn = normalised_implied_vol(beta, -abs(x))
    return sn / math.sqrt(t)


@njit(cache=True)
def _iv_serial(
    price: FloatArray,
    is_call: npt.NDArray[np.bool_],
    s: FloatArray,
    k: FloatArray,
    t: FloatArray,
    r: FloatArray,
    q: FloatArray,
    out: FloatArray,
) -> None:
    # Inputs have length n or 1 (a broadcast scalar): the stride is 1 or 0.
    p0, c0, s0 = int(price.size > 1), int(is_call.size > 1), int(s.size > 1)
    k0, t0, r0, q0 = int(k.size > 1), int(t.size > 1), int(r.size > 1), int(q.size > 1)
    for i in range(out.size):
        out[i] = _iv_one(
            price[i * p0], is_call[i * c0], s[i * s0], k[i * k0], t[i * t0], r[i * r0], q[i * q0]
        )


@njit(cache=True, parallel=True)
def _iv_parallel(
    price: FloatArray,
    is_call: npt.NDArray[np.bool_],
    s: FloatArray,
    k: FloatArray,
    t: FloatArray,
    r: FloatArray,
    q: FloatArray,
    out: FloatArray,
) -> None:
    p0, c0, s0 = int(price.size > 1), int(is_call.size > 1), int(s.size > 1)
    k0, t0, r0, q0 = int(k.size > 1), int(t.size > 1), int(r.size > 1), int(q.size > 1)
    for i in prange(out.size):
        out[i] = _iv_one(
            price[i * p0], is_call[i * c0], s[i * s0], k[i * k0], t[i * t0], r[i * r0], q[i * q0]
        )


def implied_vol(
    price: ArrayLike,
    is_call: ArrayLike,
    S: ArrayLike,  # noqa: N803 - the conventional symbols of the model
    K: ArrayLike,  # noqa: N803
    T: ArrayLike,  # noqa: N803
    r: ArrayLike,
    q: ArrayLike,
) -> FloatArray:
    """Black–Scholes–Merton implied volatility, per 1.00 (0.2 = 20 %), as a new float64 array.

    price: option premium; is_call: True for calls; S: spot; K: strike; T: years to expiry;
    r: continuously compounded rate; q: continuous dividend yield. Inputs broadcast (numpy
    rules). Unquotable elements give NaN, never 0 and never an exception: price at or below
    intrinsic (against the discounted forward), at or above S·e^{-qT} (calls) or K·e^{-rT}
    (puts), T <= 0, S or K <= 0, NaN or inf anywhere, or a time value that underflows.
    """
    arrays = [
        np.asarray(price, dtype=np.float64),
        np.asarray(is_call, dtype=np.bool_),
        np.asarray(S, dtype=np.float64),
        np.asarray(K, dtype=np.float64),
        np.asarray(T, dtype=np.float64),
        np.asarray(r, dtype=np.float64),
        np.asarray(q, dtype=np.float64),
    ]
    shape, flat, _ = flatten(arrays)  # the kernels derive their steps from the sizes
    out = np.empty(shape, dtype=np.float64)
    flat_out = out.reshape(-1)
    if flat_out.size == 0:
        return out
    driver: Callable[..., None] = (
        _iv_parallel if flat_out.size >= PARALLEL_THRESHOLD else _iv_serial
    )
    driver(*flat, flat_out)
    return out


def implied_vol_from_quotes(
    bid: ArrayLike,
    ask: ArrayLike,
    is_call: ArrayLike,
    S: ArrayLike,  # noqa: N803
    K: ArrayLike,  # noqa: N803
    T: ArrayLike,  # noqa: N803
    r: ArrayLike,
    q: ArrayLike,
) -> FloatArray:
    """Implied volatility of the mid quote (bid + ask)/2; see `implied_vol` for units.

    NaN where the quote is crossed (bid > ask), empty (both sides <= 0 or NaN) or one-sided
    (one side <= 0 or NaN): none of those has a meaningful mid.
    """
    b = np.asarray(bid, dtype=np.float64)
    a = np.asarray(ask, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        two_sided = (b > 0.0) & (a > 0.0) & (b <= a) & np.isfinite(b) & np.isfinite(a)
        mid = np.where(two_sided, 0.5 * (b + a), np.nan)
    return implied_vol(mid, is_call, S, K, T, r, q)
