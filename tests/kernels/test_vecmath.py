"""Branch-free exp/log: within 1 ulp of libm over the whole range, special values exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from engine.kernels.vecmath import exp_v, log_ratio_v, log_v


@njit(cache=False)
def _exp_all(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = exp_v(x[i])
    return out


@njit(cache=False)
def _log_all(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = log_v(x[i])
    return out


@njit(cache=False)
def _log_ratio_all(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        out[i] = log_ratio_v(a[i], b[i])
    return out


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_exp_within_one_ulp_of_libm_across_the_range() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-745.0, 709.7, 200_000), rng.uniform(-1, 1, 100_000),
                        rng.uniform(-1e-8, 1e-8, 10_000)])  # fmt: skip
    want = np.exp(x)
    normal = want >= np.finfo(np.float64).tiny
    assert _ulps(_exp_all(x)[normal], want[normal]).max() <= 1.0
    # subnormal results: absolute error within one subnormal step
    assert np.abs(_exp_all(x)[~normal] - want[~normal]).max() <= 5e-324


def test_exp_special_values() -> None:
    x = np.array([-np.inf, -800.0, -745.2, 0.0, -0.0, 709.78, 709.8, 1e300, np.inf, np.nan])
    got = _exp_all(x)
    with np.errstate(over="ignore"):
        want = np.exp(x)
    assert np.array_equal(got[:-1], want[:-1])
    assert math.isnan(got[-1])


def test_log_within_one_ulp_of_libm_for_normal_and_subnormal_inputs() -> None:
    rng = np.random.default_rng(4)
    edges = [5e-324, 1e-310, 2.2250738585072014e-308, 1.0, 2.0, 1.7e308]
    x = np.concatenate([np.exp(rng.uniform(-700, 700, 200_000)), rng.uniform(0.5, 2.0, 100_000),
                        np.array(edges)])  # fmt: skip
    want = np.log(x)
    got = _log_all(x)
    tiny = np.abs(want) < 1e-300
    assert _ulps(got[~tiny], want[~tiny]).max() <= 1.0
    assert np.all(got[tiny] == 0.0)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-3, 1e4), st.floats(-0.3, 0.3))
def test_log_ratio_keeps_relative_precision_near_the_money(k: float, rel: float) -> None:
    s = k * (1.0 + rel)
    got = float(_log_ratio_all(np.array([s]), np.array([k]))[0])
    want = math.log1p((s - k) / k)
    assert got == pytest.approx(want, rel=4e-16, abs=1e-300)


def test_log_ratio_far_from_the_money_is_the_plain_log() -> None:
    a = np.array([1.0, 1e-5, 300.0, 7.0])
    b = np.array([3.0, 2.0, 1.0, 1e-9])
    assert np.allclose(_log_ratio_all(a, b), np.log(a / b), rtol=3e-16, atol=0)
