"""Black–Scholes–Merton prices and Greeks with a continuous dividend yield, as Numba kernels."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange
from numba.np.numpy_support import carray
from numpy.typing import ArrayLike, NDArray

from engine.kernels.broadcast import flatten
from engine.kernels.normal import INV_SQRT_2PI, norm_cdf_from_pdf
from engine.kernels.vecmath import exp_v, inlined, log_ratio_v, stack_f64

F64 = NDArray[np.float64]

DAYS_PER_YEAR = 365.0  # calendar days: theta per day = theta per year / 365
VOL_POINTS = 100.0  # vega per vol point (0.01) = vega per 1.00 vol / 100

# Below this many contracts the serial kernel wins: waking the (OpenMP) pool costs ~2-3 µs,
# about as much as pricing 300-500 contracts in 8-wide lanes (2 cores; `v6 bench kernels`
# re-measures the crossover).
PARALLEL_MIN_SIZE = 512


class Greeks(NamedTuple):
    """Price and first-order Greeks, float64 arrays of the broadcast input shape.

    price: option value, in the currency of S and K.
    delta: dV/dS.        gamma: d2V/dS2.
    vega:  dV/dsigma per 1.00 of volatility (use `vega_per_vol_point()` for per 0.01).
    theta: dV/dt per year of calendar time, t = -T (usually negative; use `theta_per_day()`).
    rho:   dV/dr per 1.00 of continuously compounded rate (per 1% is rho / 100).
    Elements whose inputs cannot be quoted are NaN in every field.
    """

    price: F64
    delta: F64
    gamma: F64
    vega: F64
    theta: F64
    rho: F64

    def vega_per_vol_point(self) -> F64:
        """dV per 0.01 (one vol point) of volatility: vega / 100."""
        return self.vega / VOL_POINTS

    def theta_per_day(self) -> F64:
        """dV per calendar day elapsed: theta / 365."""
        return self.theta / DAYS_PER_YEAR


def dividend_rho(spot: ArrayLike, years: ArrayLike, delta: ArrayLike) -> F64:
    """dV/dq per 1.00 of dividend yield, from the BSM identity dV/dq = -T * S * delta."""
    s, t, d = (np.asarray(x, dtype=np.float64) for x in (spot, years, delta))
    return -t * s * d


# ------------------------------------------------------------------ scalar bodies
# Everything below is branch-free (selects, not ifs) and inlined, so the chunk loops vectorize:
# libm calls would keep them scalar, hence exp_v/log_ratio_v (see vecmath).
jit_serial = njit(cache=True, fastmath=False, error_model="numpy")
jit_parallel = njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
CHUNK = 256  # contracts per vectorized pass
CHUNK_OUT = 6 * CHUNK  # its six outputs: 12 KB of stack


@inlined
def _quotable(s: float, k: float, t: float, r: float, q: float, sg: float) -> bool:
    # Positive comparisons so NaN fails them; the upper bounds reject inf.
    return (
        s > 0.0
        and k > 0.0
        and t > 0.0
        and sg > 0.0
        and s < math.inf
        and k < math.inf
        and t < math.inf
        and sg < math.inf
        and abs(r) < math.inf
        and abs(q) < math.inf
    )


@inlined
def _cdfs(w: float, d1: float, d2: float, sdq: float, kdr: float) -> tuple[float, float, float]:
    """phi(d1), N(w d1), N(w d2) for w = +1 (call) or -1 (put).

    N(w d) keeps relative precision on the OTM side, and each side gets its own formula (no
    parity), so deep OTM prices do not cancel against S - K. phi(d2) = phi(d1) S e^{-qT} /
    (K e^{-rT}) exactly in BSM; the direct exp(-d2^2/2) is used only where that product
    under/overflows.
    """
    pdf1 = INV_SQRT_2PI * exp_v(-0.5 * d1 * d1)
    pdf2 = pdf1 * (sdq / kdr)
    direct = pdf1 < 1e-280 or not pdf2 < 1e280
    pdf2 = INV_SQRT_2PI * exp_v(-0.5 * d2 * d2) if direct else pdf2
    return pdf1, norm_cdf_from_pdf(w * d1, pdf1), norm_cdf_from_pdf(w * d2, pdf2)


@inlined
def _greeks_one(
    c: bool, s: float, k: float, t: float, r: float, q: float, sg: float
) -> tuple[float, float, float, float, float, float]:
    ok = _quotable(s, k, t, r, q, sg)
    # Unquotable lanes compute on harmless stand-ins and are replaced by NaN at the end.
    s, k, t = (s, k, t) if ok else (1.0, 1.0, 1.0)
    r, q, sg = (r, q, sg) if ok else (0.0, 0.0, 0.2)
    sqrt_t = math.sqrt(t)
    v = sg * sqrt_t
    d1 = (log_ratio_v(s, k) + (r - q) * t) / v + 0.5 * v
    d2 = d1 - v
    dq = exp_v(-q * t)
    sdq = s * dq  # spot discounted for the dividend yield
    kdr = k * exp_v(-r * t)  # strike discounted to today
    w = 1.0 if c else -1.0
    pdf1, n1, n2 = _cdfs(w, d1, d2, sdq, kdr)
    nan = math.nan
    return (
        w * (sdq * n1 - kdr * n2) if ok else nan,
        w * dq * n1 if ok else nan,
        dq * pdf1 / (s * v) if ok else nan,
        sdq * pdf1 * sqrt_t if ok else nan,
        -0.5 * sdq * pdf1 * sg / sqrt_t + w * (q * sdq * n1 - r * kdr * n2) if ok else nan,
        w * kdr * t * n2 if ok else nan,
    )


@inlined
def _price_one(c: bool, s: float, k: float, t: float, r: float, q: float, sg: float) -> float:
    ok = _quotable(s, k, t, r, q, sg)
    s, k, t = (s, k, t) if ok else (1.0, 1.0, 1.0)
    r, q, sg = (r, q, sg) if ok else (0.0, 0.0, 0.2)
    v = sg * math.sqrt(t)
    d1 = (log_ratio_v(s, k) + (r - q) * t) / v + 0.5 * v
    sdq = s * exp_v(-q * t)
    kdr = k * exp_v(-r * t)
    w = 1.0 if c else -1.0
    _, n1, n2 = _cdfs(w, d1, d1 - v, sdq, kdr)
    return w * (sdq * n1 - kdr * n2) if ok else math.nan


# ------------------------------------------------------------------ array kernels
# Each input is a flat array of length n (step 1) or 1 (step 0, a broadcast scalar), so
# scalars are never materialised and one compiled signature serves every call.
@jit_serial
def _greeks_range(
    c: NDArray[np.bool_], s: F64, k: F64, t: F64, r: F64, q: F64, sg: F64,
    steps: tuple[int, int, int, int, int, int, int],
    price: F64, delta: F64, gamma: F64, vega: F64, theta: F64, rho: F64, lo: int, hi: int,
) -> None:  # fmt: skip
    """Elements lo..hi-1, CHUNK at a time: a vectorized pass into a stack buffer, then a copy
    out (writing the six outputs directly would need overlap checks LLVM gives up on)."""
    a, b, e, f, g, h, m = steps
    buf = carray(stack_f64(CHUNK_OUT), (6, CHUNK))
    for start in range(lo, hi, CHUNK):
        size = min(CHUNK, hi - start)
        for j in range(size):
            i = start + j
            out = _greeks_one(c[i * a], s[i * b], k[i * e], t[i * f], r[i * g], q[i * h], sg[i * m])
            buf[0, j], buf[1, j], buf[2, j], buf[3, j], buf[4, j], buf[5, j] = out
        for j in range(size):
            i = start + j
            price[i], delta[i], gamma[i] = buf[0, j], buf[1, j], buf[2, j]
            vega[i], theta[i], rho[i] = buf[3, j], buf[4, j], buf[5, j]


@jit_parallel
def _greeks_parallel(
    c: NDArray[np.bool_], s: F64, k: F64, t: F64, r: F64, q: F64, sg: F64,
    steps: tuple[int, int, int, int, int, int, int],
    price: F64, delta: F64, gamma: F64, vega: F64, theta: F64, rho: F64,
) -> None:  # fmt: skip
    n = price.shape[0]
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        _greeks_range(c, s, k, t, r, q, sg, steps, price, delta, gamma, vega, theta, rho,
                      lo, min(lo + CHUNK, n))  # fmt: skip


@jit_serial
def _greeks_serial(
    c: NDArray[np.bool_], s: F64, k: F64, t: F64, r: F64, q: F64, sg: F64,
    steps: tuple[int, int, int, int, int, int, int],
    price: F64, delta: F64, gamma: F64, vega: F64, theta: F64, rho: F64,
) -> None:  # fmt: skip
    _greeks_range(c, s, k, t, r, q, sg, steps, price, delta, gamma, vega, theta, rho,
                  0, price.shape[0])  # fmt: skip


@jit_serial
def _price_range(
    c: NDArray[np.bool_], s: F64, k: F64, t: F64, r: F64, q: F64, sg: F64,
    steps: tuple[int, int, int, int, int, int, int], price: F64, lo: int, hi: int,
) -> None:  # fmt: skip
    a, b, e, f, g, h, m = steps
    buf = carray(stack_f64(CHUNK), (CHUNK,))  # as in _greeks_range: in place stays scalar
    for start in range(lo, hi, CHUNK):
        size = min(CHUNK, hi - start)
        for j in range(size):
            i = start + j
            buf[j] = _price_one(c[i * a], s[i * b], k[i * e], t[i * f], r[i * g], q[i * h],
                                sg[i * m])  # fmt: skip
        price[start : start + size] = buf[:size]


@jit_parallel
def _price_parallel(
    c: NDArray[np.bool_], s: F64, k: F64, t: F64, r: F64, q: F64, sg: F64,
    steps: tuple[int, int, int, int, int, int, int], price: F64,
) -> None:  # fmt: skip
    n = price.shape[0]
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        _price_range(c, s, k, t, r, q, sg, steps, price, lo, min(lo + CHUNK, n))


@jit_serial
def _price_serial(
    c: NDArray[np.bool_], s: F64, k: F64, t: F64, r: F64, q: F64, sg: F64,
    steps: tuple[int, int, int, int, int, int, int], price: F64,
) -> None:  # fmt: skip
    _price_range(c, s, k, t, r, q, sg, steps, price, 0, price.shape[0])


# ------------------------------------------------------------------ public API
Flat = tuple[NDArray[np.bool_], F64, F64, F64, F64, F64, F64]


def _flatten(
    is_call: ArrayLike, *xs: ArrayLike
) -> tuple[tuple[int, ...], Flat, tuple[int, int, int, int, int, int, int]]:
    """Broadcast shape, flat inputs (length n or 1) and their steps (1 or 0)."""
    arrays = [np.asarray(is_call, dtype=np.bool_), *(np.asarray(x, dtype=np.float64) for x in xs)]
    shape, flat, steps = flatten(arrays)
    return shape, tuple(flat), steps  # type: ignore[return-value]


def bsm_greeks(
    is_call: ArrayLike,
    S: ArrayLike,  # noqa: N803 - the conventional symbols of the model
    K: ArrayLike,  # noqa: N803
    T: ArrayLike,  # noqa: N803
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
) -> Greeks:
    """Black–Scholes–Merton price and Greeks of European options, in one pass.

    Inputs broadcast against each other (NumPy rules; scalars are free):
    is_call: True for a call, False for a put.   S: spot.   K: strike.
    T: time to expiry in years (e.g. calendar days / 365).
    r: risk-free rate, q: dividend yield, both continuously compounded per year (0.05 = 5%).
    sigma: volatility per sqrt(year) (0.20 = 20%).

    Returns `Greeks` of freshly allocated float64 arrays of the broadcast shape (C-contiguous
    rows of one new block, shared with nothing else): vega per 1.00 vol, theta per year, rho
    per 1.00 rate (see `Greeks` for per-point and per-day helpers).
    Unquotable elements (T <= 0, sigma <= 0, S <= 0, K <= 0, any NaN or inf input) are NaN in
    every field; nothing raises for bad values.
    """
    shape, flat, steps = _flatten(is_call, S, K, T, r, q, sigma)
    n = math.prod(shape)
    # One block, not six arrays: six separate mid-size buffers are returned to the OS on free
    # and page-faulted back on every call (~8 ns/option at N = 10k); one block is recycled.
    block = np.empty((6, n), dtype=np.float64)
    kernel = _greeks_parallel if n >= PARALLEL_MIN_SIZE else _greeks_serial
    kernel(*flat, steps, *block)
    return Greeks(*(row.reshape(shape) for row in block))


def bsm_price(
    is_call: ArrayLike,
    S: ArrayLike,  # noqa: N803 - the conventional symbols of the model
    K: ArrayLike,  # noqa: N803
    T: ArrayLike,  # noqa: N803
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
) -> F64:
    """Black–Scholes–Merton price only (the fast path of `bsm_greeks`, same inputs and units).

    Returns a freshly allocated float64 array of the broadcast shape; NaN where unquotable.
    """
    shape, flat, steps = _flatten(is_call, S, K, T, r, q, sigma)
    n = math.prod(shape)
    out = np.empty(shape, dtype=np.float64)
    kernel = _price_parallel if n >= PARALLEL_MIN_SIZE else _price_serial
    kernel(*flat, steps, out.reshape(-1))
    return out
