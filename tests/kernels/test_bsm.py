"""BSM kernel: reference values, a 50-digit mpmath oracle, parity identities, NaN and shapes."""

# S, K, T: the model's conventional symbols read better than lower-case renamings here.
# ruff: noqa: N803, N806

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.kernels import bsm
from engine.kernels.bsm import Greeks, bsm_greeks, bsm_price, dividend_rho
from engine.kernels.normal import norm_cdf, norm_cdf_from_pdf, norm_pdf

FIELDS = Greeks._fields


def _data_dir() -> Path:
    env = os.environ.get("V6_DATA")
    return Path(env) if env else Path(__file__).parents[2] / ".." / "shared" / "data"


REFERENCE_CSV = _data_dir() / "reference" / "bsm_reference_values.csv"


def _reference_rows() -> list[dict[str, str]]:
    if not REFERENCE_CSV.is_file():
        return []
    with REFERENCE_CSV.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------ (1) published values
def _quantity(row: dict[str, str]) -> float:
    """Our value for the row, converted to the unit its `quantity`/`units` columns name."""
    S, K, q, r, T, sigma = (float(row[c]) for c in ("S", "K", "q", "r", "T", "sigma"))
    g = bsm_greeks(row["type"] == "call", S, K, T, r, q, sigma)
    quantity, units = row["quantity"], row["units"]
    if quantity == "elasticity":  # units: delta*S/V
        return float(g.delta * S / g.price)
    if quantity == "dividend_rho":  # dV/dq per 1.00
        return float(dividend_rho(S, T, g.delta))
    if quantity in ("theta_per_day",) or (quantity == "theta" and "per day" in units):
        return float(g.theta_per_day())
    if quantity == "vega" and "vol point" in units:
        return float(g.vega_per_vol_point())
    if quantity == "rho" and "1.00" not in units:
        raise AssertionError(f"unexpected rho units {units!r}")
    assert quantity in FIELDS, f"unknown quantity {quantity!r}: teach the test its unit"
    return float(getattr(g, quantity))


@pytest.mark.skipif(
    not REFERENCE_CSV.is_file(),
    reason=f"reference data absent: {REFERENCE_CSV} (set V6_DATA to the shared data folder)",
)
@pytest.mark.parametrize("row", _reference_rows(), ids=lambda row: row["id"])
def test_reference_values(row: dict[str, str]) -> None:
    got = _quantity(row)
    assert abs(got - float(row["expected"])) <= float(row["tol"]), (row, got)


def test_reference_file_has_every_kind() -> None:
    rows = _reference_rows()
    if not rows:
        pytest.skip(f"reference data absent: {REFERENCE_CSV}")
    kinds = {row["quantity"] for row in rows}
    assert {"price", "delta", "gamma", "vega", "theta", "rho"} <= kinds


# ------------------------------------------------------------------ (2) 50-digit oracle
def _mp_bsm(c: bool, S: float, K: float, T: float, r: float, q: float, sigma: float) -> list[Any]:
    """Exact (50 digits) BSM on the float inputs: price, delta, gamma, vega, theta, rho, and
    the magnitude of theta's three terms (the scale at which its sum is conditioned)."""
    with mpmath.workdps(50):
        S_, K_, T_, r_, q_, s_ = (mpmath.mpf(x) for x in (S, K, T, r, q, sigma))
        st_ = mpmath.sqrt(T_)
        v = s_ * st_
        d1 = (mpmath.log(S_ / K_) + (r_ - q_ + s_ * s_ / 2) * T_) / v
        d2 = d1 - v
        w = 1 if c else -1
        sdq, kdr = S_ * mpmath.exp(-q_ * T_), K_ * mpmath.exp(-r_ * T_)
        n1, n2 = mpmath.ncdf(w * d1), mpmath.ncdf(w * d2)
        pdf = mpmath.npdf(d1)
        terms = (-sdq * pdf * s_ / (2 * st_), w * q_ * sdq * n1, -w * r_ * kdr * n2)
        return [
            w * (sdq * n1 - kdr * n2), w * sdq / S_ * n1, sdq / S_ * pdf / (S_ * v),
            sdq * pdf * st_, sum(terms), w * kdr * T_ * n2, sum(abs(x) for x in terms),
        ]  # fmt: skip


_contract = st.tuples(
    st.booleans(),
    st.floats(1.0, 5000.0),  # S
    st.floats(0.3, 3.0),  # K / S
    st.floats(1.0 / 8760.0, 5.0),  # T: one hour to five years
    st.floats(-0.01, 0.10),  # r
    st.floats(0.0, 0.08),  # q
    st.floats(0.01, 3.0),  # sigma
)
REL_TOL, FLOOR = 1e-10, 1e-6


@settings(
    max_examples=100, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(st.lists(_contract, min_size=50, max_size=50))
def test_against_mpmath(
    contracts: list[tuple[bool, float, float, float, float, float, float]],
) -> None:
    """5,000 contracts: relative error <= 1e-10 wherever the exact |value| > 1e-6.

    Theta is a sum of terms of both signs and crosses zero (deep ITM, q > 0 or r > 0 puts):
    there any float64 evaluation carries an absolute error ~1e-16 of its largest term, so its
    error is measured against max(|theta|, 1e-4 * sum of |terms|) — still 1e-10 relative
    everywhere except within a 1e-4 relative band of a zero crossing.
    """
    cols = list(zip(*contracts, strict=True))
    c = np.array(cols[0], dtype=bool)
    S = np.array(cols[1])
    K = S * np.array(cols[2])
    T, r, q, sigma = (np.array(x) for x in cols[3:])
    got = bsm_greeks(c, S, K, T, r, q, sigma)
    for i in range(len(contracts)):
        exact = _mp_bsm(bool(c[i]), S[i], K[i], T[i], r[i], q[i], sigma[i])
        for j, name in enumerate(FIELDS):
            ref = float(exact[j])
            if abs(ref) <= FLOOR:
                continue
            scale = max(abs(ref), 1e-4 * float(exact[6])) if name == "theta" else abs(ref)
            err = abs(float(getattr(got, name)[i]) - ref) / scale
            assert err <= REL_TOL, (name, err, ref, contracts[i])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.floats(-37.5, 8.5))
def test_normal_cdf_pdf_relative_precision_in_tails(x: float) -> None:
    with mpmath.workdps(40):
        cdf, pdf = mpmath.ncdf(x), mpmath.npdf(x)
    # The scaling x/sqrt(2) (and x*x) is rounded: that is ~x^2 ulps of relative error.
    tol = 2.5e-16 * (2.0 + x * x)
    assert abs(norm_cdf(x) - float(cdf)) <= tol * float(cdf)
    assert abs(norm_pdf(x) - float(pdf)) <= tol * float(pdf)
    # The kernels' fused form (Cephes rational x shared exp): a few ulps more at most.
    assert abs(norm_cdf_from_pdf(x, norm_pdf(x)) - float(cdf)) <= 2 * tol * float(cdf)


# ------------------------------------------------------------------ (3) parity, identities
def _random_book(n: int, seed: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    S = rng.uniform(1.0, 5000.0, n)
    T = rng.uniform(1 / 8760, 5.0, n)
    return (
        S,
        S * rng.uniform(0.3, 3.0, n),
        T,
        rng.uniform(-0.01, 0.1, n),
        rng.uniform(0.0, 0.08, n),
        rng.uniform(0.01, 3.0, n),
    )


def test_put_call_parity_and_greek_identities() -> None:
    S, K, T, r, q, sigma = _random_book(20_000)
    call = bsm_greeks(True, S, K, T, r, q, sigma)
    put = bsm_greeks(False, S, K, T, r, q, sigma)
    dq, dr = np.exp(-q * T), np.exp(-r * T)
    scale = S * dq + K * dr
    np.testing.assert_array_less(
        np.abs((call.price - put.price) - (S * dq - K * dr)), 1e-13 * scale
    )
    np.testing.assert_allclose(put.delta, call.delta - dq, rtol=0, atol=1e-15)
    np.testing.assert_allclose(put.gamma, call.gamma, rtol=1e-15, atol=0)
    np.testing.assert_allclose(put.vega, call.vega, rtol=1e-15, atol=0)
    np.testing.assert_allclose(call.rho - put.rho, K * T * dr, rtol=1e-12, atol=0)
    theta_gap = q * S * dq - r * K * dr  # d/dt of S e^{-qT} - K e^{-rT}
    theta_scale = np.abs(call.theta) + np.abs(put.theta) + scale
    np.testing.assert_array_less(np.abs(call.theta - put.theta - theta_gap), 1e-13 * theta_scale)
    assert np.all(call.gamma >= 0) and np.all(call.vega >= 0)  # may underflow to 0
    assert np.all((call.delta >= 0) & (call.delta <= dq * (1 + 1e-15))) and np.all(put.price >= 0)


def test_price_fast_path_and_both_kernels_agree_exactly() -> None:
    S, K, T, r, q, sigma = _random_book(1000)
    c = np.arange(1000) % 2 == 0
    g = bsm_greeks(c, S, K, T, r, q, sigma)  # parallel kernel (n >= PARALLEL_MIN_SIZE)
    assert len(S) >= bsm.PARALLEL_MIN_SIZE
    np.testing.assert_array_equal(bsm_price(c, S, K, T, r, q, sigma), g.price)
    for i in range(0, 1000, 97):  # serial kernel, one element at a time
        one = bsm_greeks(c[i], S[i], K[i], T[i], r[i], q[i], sigma[i])
        for name in FIELDS:
            assert float(getattr(one, name)) == getattr(g, name)[i]


def test_unit_helpers() -> None:
    g = bsm_greeks(True, 100.0, 100.0, 0.5, 0.03, 0.01, 0.2)
    assert g.vega_per_vol_point() == pytest.approx(g.vega / 100.0, rel=1e-15)
    assert g.theta_per_day() == pytest.approx(g.theta / 365.0, rel=1e-15)
    assert float(dividend_rho(100.0, 0.5, g.delta)) == pytest.approx(-50.0 * float(g.delta))


# ------------------------------------------------------------------ (4) NaN, shapes, dtypes
GOOD = {"S": 100.0, "K": 95.0, "T": 0.5, "r": 0.03, "q": 0.01, "sigma": 0.25}
BAD = {
    "S": [0.0, -1.0, math.nan, math.inf],
    "K": [0.0, -5.0, math.nan, math.inf],
    "T": [0.0, -0.0, -1 / 365, math.nan, math.inf],
    "r": [math.nan, math.inf, -math.inf],
    "q": [math.nan, math.inf, -math.inf],
    "sigma": [0.0, -0.2, math.nan, math.inf],
}


@pytest.mark.parametrize("n", [1, 7, 300])  # serial and parallel kernels
@pytest.mark.parametrize("name", sorted(BAD))
def test_unquotable_inputs_give_nan_not_zero(name: str, n: int) -> None:
    for bad in BAD[name]:
        args = {k: np.full(n, v) for k, v in GOOD.items()}
        args[name][n // 2] = bad
        for is_call in (True, False):
            g = bsm_greeks(is_call, **args)
            p = bsm_price(is_call, **args)
            for arr in (*g, p):
                assert np.isnan(arr[n // 2]), (name, bad, is_call)
                assert np.isfinite(np.delete(arr, n // 2)).all()


def test_unquotable_scalar_returns_nan_without_warnings() -> None:
    with np.errstate(all="raise"):
        g = bsm_greeks(True, 100.0, 100.0, 0.0, 0.03, 0.0, 0.2)
    assert all(np.isnan(x) for x in g)


def test_broadcasting_dtype_shape_and_fresh_outputs() -> None:
    K = np.array([[90.0], [100.0], [110.0]])  # strikes down, expiries across
    T = np.array([0.1, 0.25, 0.5, 1.0])
    is_call = np.array([True, False, True, False])
    g = bsm_greeks(is_call, 100, K, T, 0.03, 0.0, 0.2)  # int S broadcasts too
    assert isinstance(g, Greeks) and g._fields == (
        "price",
        "delta",
        "gamma",
        "vega",
        "theta",
        "rho",
    )
    for arr in g:
        assert arr.shape == (3, 4) and arr.dtype == np.float64 and arr.flags.c_contiguous
    for i in range(3):
        for j in range(4):
            one = bsm_greeks(bool(is_call[j]), 100.0, K[i, 0], T[j], 0.03, 0.0, 0.2)
            for name in FIELDS:
                assert float(getattr(one, name)) == getattr(g, name)[i, j]
    assert not any(np.shares_memory(a, b) for k, a in enumerate(g) for b in list(g)[k + 1 :])
    S = np.full(5, 100.0)
    out = bsm_greeks(True, S, 100.0, 0.5, 0.03, 0.0, 0.2)
    assert not np.shares_memory(out.price, S) and S.tolist() == [100.0] * 5
    scalar = bsm_greeks(True, 100.0, 100.0, 0.5, 0.03, 0.0, 0.2)
    assert all(a.shape == () and a.dtype == np.float64 for a in scalar)
    assert bsm_price(True, 100.0, K, T, 0.03, 0.0, 0.2).shape == (3, 4)
    empty = bsm_greeks(True, np.empty(0), 100.0, 0.5, 0.03, 0.0, 0.2)
    assert all(a.shape == (0,) for a in empty)


def test_strided_and_mixed_inputs() -> None:
    S = np.linspace(50.0, 150.0, 40)[::2]  # non-contiguous view
    g = bsm_greeks([1, 0] * 10, S, 100.0, 0.5, 0.03, 0.01, np.float32(0.25))
    ref = bsm_greeks(np.array([True, False] * 10), S.copy(), 100.0, 0.5, 0.03, 0.01, 0.25)
    for a, b in zip(g, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        bsm_greeks(True, np.ones(3), np.ones(4), 0.5, 0.03, 0.0, 0.2)
