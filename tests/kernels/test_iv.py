"""Implied volatility: round trip against a 30-digit reference, unquotable input, broadcasting."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernels.iv import PARALLEL_THRESHOLD, implied_vol, implied_vol_from_quotes

EPS = float(np.finfo(np.float64).eps)
ONE_HOUR = 1.0 / 8760.0

# Identifiability. The solver receives the price rounded to float64 (½ ulp) and normalises it
# (e^{(r+q)T/2}, √S·√K, minus the intrinsic value 2·sinh(|x|/2) in the money): the price it
# inverts is known to a few ulps of the *full* price p, and a price error δp moves σ by
# δp / vega. So σ is pinned down to 1e-12 only where vega · 1e-12 >= a few ulps of p. We ask
# for ULPS = 8; the errors measured over 10^5 random contracts behave like ≤ 2 ulps / vega, so
# this leaves a factor 4. It excludes exactly the contracts no float64 solver can invert to
# 1e-12: deep in the money (the time value drowns in the rounding of the intrinsic value) and
# σ√T so large that the price sits at its upper bound (vega → 0). Prices must also be normal
# numbers with room for the normalisation (> 1e-250).
ULPS = 8.0
TOL = 1e-12
MIN_PRICE = 1e-250
BATCH = 1500


def _reference(
    is_call: bool, s: float, k: float, t: float, r: float, q: float, sigma: float
) -> tuple[float, float]:
    """Exact (30-digit) BSM price and vega (per 1.00 vol) of float64 inputs, rounded once."""
    with mpmath.workdps(30):
        s_, k_, t_, r_, q_, v_ = (mpmath.mpf(a) for a in (s, k, t, r, q, sigma))
        sd = v_ * mpmath.sqrt(t_)
        fwd = s_ * mpmath.exp((r_ - q_) * t_)
        d1 = mpmath.log(fwd / k_) / sd + sd / 2
        d2 = d1 - sd
        df = mpmath.exp(-r_ * t_)
        if is_call:
            price = df * (fwd * mpmath.ncdf(d1) - k_ * mpmath.ncdf(d2))
        else:
            price = df * (k_ * mpmath.ncdf(-d2) - fwd * mpmath.ncdf(-d1))
        vega = s_ * mpmath.exp(-q_ * t_) * mpmath.npdf(d1) * mpmath.sqrt(t_)
        return float(price), float(vega)


def _batch(seed: int, n: int) -> dict[str, np.ndarray]:
    """Random contracts over the whole required domain (log-uniform where scale matters)."""
    rng = np.random.default_rng(seed)
    spot = np.exp(rng.uniform(0.0, math.log(5000.0), n))
    out = {
        "is_call": rng.random(n) < 0.5,
        "S": spot,
        "K": spot * np.exp(rng.uniform(math.log(0.3), math.log(3.0), n)),
        "T": np.exp(rng.uniform(math.log(ONE_HOUR), math.log(5.0), n)),
        "r": rng.uniform(-0.01, 0.10, n),
        "q": rng.uniform(0.0, 0.08, n),
        "sigma": np.exp(rng.uniform(math.log(0.01), math.log(3.0), n)),
    }
    ref = np.array(
        [
            _reference(bool(c), s, k, t, r, q, v)
            for c, s, k, t, r, q, v in zip(
                out["is_call"],
                out["S"],
                out["K"],
                out["T"],
                out["r"],
                out["q"],
                out["sigma"],
                strict=True,
            )
        ]
    )
    out["price"], out["vega"] = ref[:, 0], ref[:, 1]
    return out


def _quotable(price: np.ndarray, vega: np.ndarray) -> np.ndarray:
    return (price > MIN_PRICE) & (vega * TOL >= ULPS * EPS * price)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_round_trip_batches(seed: int) -> None:
    c = _batch(seed, BATCH)
    iv = implied_vol(c["price"], c["is_call"], c["S"], c["K"], c["T"], c["r"], c["q"])
    ok = _quotable(c["price"], c["vega"])
    # The domain is wide (σ√T from 1e-4 to 3.9, |ln K/S| up to 1.2): many prices underflow,
    # but most of the rest must be quotable, or the criterion would be hiding failures.
    assert ok.sum() >= 0.4 * BATCH
    err = np.abs(iv - c["sigma"])
    assert np.all(np.isfinite(iv[ok]))
    worst = int(np.argmax(np.where(ok, err, -1.0)))
    assert err[worst] <= TOL, {k: v[worst] for k, v in c.items()} | {"iv": iv[worst]}
    # Beyond identifiability the error is still only what the price's last bits allow.
    finite = np.isfinite(iv) & (c["price"] > MIN_PRICE)
    bound = TOL + 4.0 * EPS * c["price"] / np.maximum(c["vega"], 1e-300)
    assert np.all(err[finite] <= bound[finite])
    # Unquotable results are NaN, never 0.
    assert not np.any(iv == 0.0)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    is_call=st.booleans(),
    sigma=st.floats(0.01, 3.0),
    t=st.floats(ONE_HOUR, 5.0),
    moneyness=st.floats(0.3, 3.0),
    r=st.floats(-0.01, 0.10),
    q=st.floats(0.0, 0.08),
)
def test_round_trip_single(
    is_call: bool, sigma: float, t: float, moneyness: float, r: float, q: float
) -> None:
    # Hypothesis drives single contracts to the edges of the domain (T = 1 hour, σ = 3, ...).
    spot = 100.0
    strike = spot * moneyness
    price, vega = _reference(is_call, spot, strike, t, r, q, sigma)
    iv = float(implied_vol(price, is_call, spot, strike, t, r, q))
    if _quotable(np.array(price), np.array(vega)):
        assert abs(iv - sigma) <= TOL
    else:
        assert math.isnan(iv) or iv > 0.0


@pytest.mark.parametrize(
    ("price", "is_call", "s", "k", "t", "r", "q", "why"),
    [
        (50.0, True, 100.0, 50.0, 1.0, 0.0, 0.0, "price == intrinsic (time value 0)"),
        (49.0, True, 100.0, 50.0, 1.0, 0.0, 0.0, "call below intrinsic"),
        (20.0, False, 100.0, 120.0, 1.0, 0.0, 0.0, "put at intrinsic"),
        (19.5, False, 100.0, 120.0, 1.0, 0.0, 0.0, "put below intrinsic"),
        # Intrinsic against the discounted forward: S e^{-qT} - K e^{-rT} = 52.38...
        (52.0, True, 100.0, 50.0, 1.0, 0.05, 0.0, "below forward intrinsic"),
        (100.0, True, 100.0, 100.0, 1.0, 0.0, 0.0, "call at upper bound S"),
        (101.0, True, 100.0, 100.0, 1.0, 0.0, 0.0, "call above upper bound S"),
        (99.0, True, 100.0, 100.0, 1.0, 0.0, 0.02, "call above S e^{-qT}"),
        (100.0, False, 100.0, 100.0, 1.0, 0.0, 0.0, "put at upper bound K"),
        (99.0, False, 100.0, 100.0, 1.0, 0.02, 0.0, "put above K e^{-rT}"),
        (5.0, True, 100.0, 100.0, 0.0, 0.0, 0.0, "T == 0"),
        (5.0, True, 100.0, 100.0, -1.0, 0.0, 0.0, "T < 0"),
        (0.0, True, 100.0, 100.0, 1.0, 0.0, 0.0, "price 0"),
        (-1.0, True, 100.0, 100.0, 1.0, 0.0, 0.0, "price < 0"),
        (5.0, True, 0.0, 100.0, 1.0, 0.0, 0.0, "S == 0"),
        (5.0, True, -100.0, 100.0, 1.0, 0.0, 0.0, "S < 0"),
        (5.0, True, 100.0, 0.0, 1.0, 0.0, 0.0, "K == 0"),
        (5.0, False, 100.0, -5.0, 1.0, 0.0, 0.0, "K < 0"),
        (math.nan, True, 100.0, 100.0, 1.0, 0.0, 0.0, "price NaN"),
        (math.inf, True, 100.0, 100.0, 1.0, 0.0, 0.0, "price inf"),
        (5.0, True, math.nan, 100.0, 1.0, 0.0, 0.0, "S NaN"),
        (5.0, True, math.inf, 100.0, 1.0, 0.0, 0.0, "S inf"),
        (5.0, True, 100.0, math.nan, 1.0, 0.0, 0.0, "K NaN"),
        (5.0, True, 100.0, math.inf, 1.0, 0.0, 0.0, "K inf"),
        (5.0, True, 100.0, 100.0, math.nan, 0.0, 0.0, "T NaN"),
        (5.0, True, 100.0, 100.0, math.inf, 0.0, 0.0, "T inf"),
        (5.0, True, 100.0, 100.0, 1.0, math.nan, 0.0, "r NaN"),
        (5.0, True, 100.0, 100.0, 1.0, -math.inf, 0.0, "r -inf"),
        (5.0, True, 100.0, 100.0, 1.0, 0.0, math.nan, "q NaN"),
        (5.0, True, 100.0, 100.0, 1.0, 0.0, math.inf, "q inf"),
        (5e-324, True, 1e6, 1e6, 1.0, 0.0, 0.0, "time value underflows"),
        (50.0 + 1e-15, True, 100.0, 50.0, 1.0, 0.0, 0.0, "time value lost below 1 ulp"),
    ],
)
def test_unquotable_is_nan(
    price: float, is_call: bool, s: float, k: float, t: float, r: float, q: float, why: str
) -> None:
    assert math.isnan(float(implied_vol(price, is_call, s, k, t, r, q))), why


def test_unquotable_in_arrays_does_not_disturb_neighbours() -> None:
    good, _ = _reference(True, 100.0, 105.0, 0.5, 0.03, 0.01, 0.25)
    prices = np.array([good, -1.0, good, math.nan, good, 1e9])
    iv = implied_vol(prices, True, 100.0, 105.0, 0.5, 0.03, 0.01)
    assert np.isnan(iv[[1, 3, 5]]).all()
    np.testing.assert_allclose(iv[[0, 2, 4]], 0.25, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    ("bid", "ask", "why"),
    [
        (2.1, 2.0, "crossed"),
        (0.0, 0.0, "empty"),
        (-1.0, 0.0, "empty, negative"),
        (math.nan, math.nan, "empty, NaN"),
        (0.0, 2.0, "one-sided: no bid"),
        (math.nan, 2.0, "one-sided: bid NaN"),
        (2.0, 0.0, "one-sided: no ask"),
        (2.0, math.nan, "one-sided: ask NaN"),
        (2.0, math.inf, "one-sided: ask inf"),
    ],
)
def test_bad_quotes_are_nan(bid: float, ask: float, why: str) -> None:
    iv = implied_vol_from_quotes(bid, ask, True, 100.0, 105.0, 0.5, 0.03, 0.01)
    assert math.isnan(float(iv)), why


def test_quotes_use_the_mid() -> None:
    bid = np.array([2.0, 3.0, 4.0])
    ask = np.array([2.2, 3.0, 4.4])
    got = implied_vol_from_quotes(bid, ask, [True, False, True], 100.0, 105.0, 0.5, 0.03, 0.01)
    want = implied_vol((bid + ask) / 2, [True, False, True], 100.0, 105.0, 0.5, 0.03, 0.01)
    np.testing.assert_array_equal(got, want)


def test_broadcasting_shapes_and_dtype() -> None:
    strikes = np.array([[90.0], [100.0], [110.0]])  # (3, 1)
    expiries = np.array([[0.1, 0.5, 1.0, 2.0]])  # (1, 4)
    prices = np.empty((3, 4))
    for i, k in enumerate(strikes[:, 0]):
        for j, t in enumerate(expiries[0]):
            prices[i, j] = _reference(True, 100.0, k, t, 0.04, 0.01, 0.3)[0]
    iv = implied_vol(prices, True, 100, strikes, expiries, 0.04, 0.01)
    assert iv.shape == (3, 4) and iv.dtype == np.float64
    np.testing.assert_allclose(iv, 0.3, rtol=0, atol=TOL)
    # All-scalar input gives a 0-d float64 array; integer and list inputs are accepted.
    scalar = implied_vol(prices[1, 1], 1, 100, 100, 0.5, 0.04, 0.01)
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar.dtype == np.float64
    listed = implied_vol(list(prices[1]), [1, 1, 1, 1], 100, 100, list(expiries[0]), 0.04, 0.01)
    np.testing.assert_array_equal(listed, iv[1])
    # The output is a new array, never a view of an input.
    flat = prices[1].copy()
    out = implied_vol(flat, True, 100.0, 100.0, expiries[0], 0.04, 0.01)
    assert not np.shares_memory(out, flat)
    # Empty input gives an empty result.
    assert implied_vol(np.empty(0), True, 100.0, 100.0, 1.0, 0.0, 0.0).shape == (0,)
    with pytest.raises(ValueError, match="broadcast"):
        implied_vol(np.ones(3), True, 100.0, np.ones(4), 1.0, 0.0, 0.0)


def test_parallel_and_serial_drivers_agree() -> None:
    c = _batch(7, 400)
    args = ("price", "is_call", "S", "K", "T", "r", "q")
    n = max(PARALLEL_THRESHOLD, 1000) // 400 + 2
    big = {k: np.tile(c[k], n) for k in args}
    whole = implied_vol(*(big[a] for a in args))  # parallel driver
    assert whole.size >= PARALLEL_THRESHOLD
    step = max(PARALLEL_THRESHOLD // 2, 1)  # chunks below the threshold: serial driver
    chunks = [
        implied_vol(*(big[a][i : i + step] for a in args)) for i in range(0, whole.size, step)
    ]
    np.testing.assert_array_equal(whole, np.concatenate(chunks))
