"""Chain and time-series features against independent formulas on constructed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernels.features import (
    beta_weighted_delta,
    chain_features,
    expiry_features,
    interp_maturity,
    iv_rank_percentile,
    log_returns,
    realized_vol_close,
    realized_vol_parkinson,
    rolling_beta,
    rolling_beta_correlation,
    rolling_correlation,
)

S, R, Q = 100.0, 0.03, 0.01
_ncdf = np.vectorize(lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0)))


def bs_delta(is_call: np.ndarray, k: np.ndarray, t: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Spot delta of a European option under BSM with continuous dividend yield."""
    d1 = (np.log(S / k) + (R - Q + 0.5 * sigma**2) * t) / (sigma * np.sqrt(t))
    return np.exp(-Q * t) * np.where(is_call, _ncdf(d1), _ncdf(d1) - 1.0)


def grid(days: list[int], strikes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every (expiry, strike, call/put) row: t, strike, is_call, forward."""
    t = np.repeat(np.array(days, float) / 365.0, 2 * strikes.size)
    k = np.tile(np.concatenate([strikes, strikes]), len(days))
    c = np.tile(np.r_[np.ones(strikes.size, bool), np.zeros(strikes.size, bool)], len(days))
    return t, k, c, S * np.exp((R - Q) * t)


STRIKES = np.arange(50.0, 151.0, 1.0)
DAYS = [7, 14, 30, 60, 90, 180]


def test_flat_vol_chain() -> None:
    t, k, c, f = grid(DAYS, STRIKES)
    iv = np.full(t.size, 0.2)
    cf = chain_features(t, k, c, iv, bs_delta(c, k, t, iv), f)
    assert cf.atm_iv == pytest.approx(0.2, abs=1e-15)
    assert cf.put_25d_iv == pytest.approx(0.2, abs=1e-15)
    assert cf.call_25d_iv == pytest.approx(0.2, abs=1e-15)
    assert cf.skew_25d_ratio == pytest.approx(1.0, abs=1e-14)
    assert cf.risk_reversal_25d == pytest.approx(0.0, abs=1e-15)
    assert cf.skew_slope == pytest.approx(0.0, abs=1e-14)
    assert cf.term_slope == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(cf.expiries.t, np.array(DAYS) / 365.0, rtol=0, atol=0)
    np.testing.assert_allclose(cf.expiries.atm_iv, 0.2, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(
    a=st.floats(0.1, 1.0),
    b=st.floats(-0.8, 0.3),
    step=st.sampled_from([0.5, 1.0, 2.5, 5.0]),
)
def test_linear_smile_gives_level_and_slope(a: float, b: float, step: float) -> None:
    strikes = np.arange(60.0, 140.0 + step, step)
    t, k, c, f = grid(DAYS, strikes)
    iv = a + b * np.log(k / f)
    iv = np.where(iv > 0.01, iv, 0.01)  # keep the far wings positive; outside the slope band
    cf = chain_features(t, k, c, iv, bs_delta(c, k, t, iv), f)
    # Interpolation in ln K is exact for a smile linear in ln(K/F); so is least squares.
    np.testing.assert_allclose(cf.expiries.atm_iv, a, rtol=1e-13)
    np.testing.assert_allclose(cf.expiries.skew_slope, b, rtol=1e-10, atol=1e-12)
    assert cf.atm_iv == pytest.approx(a, rel=1e-13)
    assert cf.term_slope == pytest.approx(1.0, rel=1e-13)


def test_negative_smile_makes_put_skew() -> None:
    t, k, c, f = grid(DAYS, STRIKES)
    iv = 0.2 - 0.3 * np.log(k / f)
    cf = chain_features(t, k, c, iv, bs_delta(c, k, t, iv), f)
    assert cf.skew_25d_ratio > 1.0
    assert cf.risk_reversal_25d < 0.0
    assert cf.skew_25d_ratio == pytest.approx(cf.put_25d_iv / cf.call_25d_iv)
    assert cf.risk_reversal_25d == pytest.approx(cf.call_25d_iv - cf.put_25d_iv)


def test_25_delta_iv_interpolates_in_delta() -> None:
    # One expiry; puts at deltas -0.1..-0.4 and calls at 0.1..0.4 with IV linear in delta.
    pd = np.array([-0.4, -0.1, -0.3, -0.2])  # unsorted on purpose
    cd = np.array([0.1, 0.2, 0.3, 0.4])
    delta = np.r_[pd, cd]
    is_call = np.r_[np.zeros(4, bool), np.ones(4, bool)]
    iv = np.where(is_call, 0.15 + 0.1 * delta, 0.30 - 0.2 * delta)
    strike = np.r_[90.0, 95.0, 99.0, 100.0, 101.0, 105.0, 110.0, 115.0]
    ex = expiry_features(0.1, strike, is_call, iv, delta, 100.0)
    assert ex.put_25d_iv[0] == pytest.approx(0.30 + 0.2 * 0.25, abs=1e-15)
    assert ex.call_25d_iv[0] == pytest.approx(0.15 + 0.1 * 0.25, abs=1e-15)


def test_total_variance_interpolation_between_expiries() -> None:
    t, k, c, f = grid([20, 40], STRIKES)
    iv = np.where(t < 30 / 365, 0.25, 0.15)
    cf = chain_features(t, k, c, iv, bs_delta(c, k, t, iv), f)
    t1, t2, tau = 20 / 365, 40 / 365, 30 / 365
    w = 0.25**2 * t1 + (0.15**2 * t2 - 0.25**2 * t1) * (tau - t1) / (t2 - t1)
    assert cf.atm_iv == pytest.approx(math.sqrt(w / tau), rel=1e-14)
    assert math.isnan(cf.term_slope)  # 90 days is beyond the last expiry: no extrapolation


def test_term_slope_at_listed_expiries() -> None:
    t, k, c, f = grid([30, 90], STRIKES)
    iv = np.where(t < 60 / 365, 0.18, 0.20)
    cf = chain_features(t, k, c, iv, bs_delta(c, k, t, iv), f)
    assert cf.atm_iv == 0.18
    assert cf.atm_iv_far == 0.20
    assert cf.term_slope == pytest.approx(0.9, rel=1e-15)


def test_atm_prefers_out_of_the_money_side() -> None:
    t, k, c, f = grid([30], STRIKES)
    otm = np.where(k > f, c, ~c)
    iv = np.where(otm, 0.2, 0.5)  # garbage in-the-money IVs must not leak in
    ex = expiry_features(t, k, c, iv, np.nan, f)
    assert ex.atm_iv[0] == pytest.approx(0.2, abs=1e-15)
    # With the OTM put at the strike just below F missing, the ITM call there fills in.
    below = np.flatnonzero((k < f) & ~c)
    kb = k[below].max()
    iv2 = iv.copy()
    iv2[(k == kb) & ~c] = np.nan
    iv2[(k == kb) & c] = 0.3
    ex2 = expiry_features(t, k, c, iv2, np.nan, f)
    ka = k[(k > f)].min()
    x, xa, xb = 0.0, math.log(ka / f[0]), math.log(kb / f[0])
    assert ex2.atm_iv[0] == pytest.approx(0.3 + (0.2 - 0.3) * (x - xb) / (xa - xb), rel=1e-14)


def test_missing_data_is_nan_never_an_error() -> None:
    empty = np.empty(0)
    cf = chain_features(empty, empty, np.empty(0, bool), empty, empty, empty)
    assert all(math.isnan(v) for v in cf[:8])
    assert cf.expiries.t.size == 0

    t, k, c, f = grid([30, 90], STRIKES)
    nan_iv = np.full(t.size, np.nan)
    cf = chain_features(t, k, c, nan_iv, nan_iv, f)
    assert all(math.isnan(v) for v in cf[:8])
    zero_iv = np.zeros(t.size)  # vendors print IV = 0 for unquoted rows
    assert math.isnan(chain_features(t, k, c, zero_iv, zero_iv, f).atm_iv)

    iv = np.full(t.size, 0.2)
    d = bs_delta(c, k, t, iv)
    calls = chain_features(t[c], k[c], c[c], iv[c], d[c], f[c])  # no puts at all
    assert calls.atm_iv == pytest.approx(0.2)
    assert math.isnan(calls.put_25d_iv)
    assert math.isnan(calls.skew_25d_ratio)
    assert math.isnan(calls.risk_reversal_25d)

    far = chain_features(t, k, c, iv, d, f * 10.0)  # forward beyond every strike
    assert math.isnan(far.atm_iv)

    bad = t.copy()
    bad[:5] = np.nan  # rows without a usable T are dropped, not fatal
    assert chain_features(bad, k, c, iv, d, f).atm_iv == pytest.approx(0.2)
    assert math.isnan(chain_features(t, k, c, iv, d, f, target_t=-1.0).atm_iv)


def test_interp_maturity() -> None:
    t = [0.1, 0.2, 0.4]
    assert interp_maturity(t, [0.2, np.nan, 0.3], 0.2) == pytest.approx(
        math.sqrt((0.04 * 0.1 + (0.09 * 0.4 - 0.04 * 0.1) / 3) / 0.2), rel=1e-15
    )
    assert interp_maturity(t, [1.0, 2.0, 4.0], 0.3, total_variance=False) == pytest.approx(3.0)
    assert math.isnan(interp_maturity(t, [0.2, 0.2, 0.2], 0.5))
    assert math.isnan(interp_maturity(t, [0.2, 0.2, 0.2], 0.05))
    assert math.isnan(interp_maturity([], [], 0.1))


# ------------------------------------------------------------------------ time series
def test_iv_rank_and_percentile_by_hand() -> None:
    rank, pct = iv_rank_percentile([10, 12, 11, 15, 9, 13], lookback=4)
    nan = math.nan
    np.testing.assert_allclose(rank, [nan, nan, nan, 1.0, 0.0, 4 / 6], rtol=1e-15)
    np.testing.assert_allclose(pct, [nan, nan, nan, 0.75, 0.0, 0.5], rtol=1e-15)

    rank, pct = iv_rank_percentile([10, nan, 11, 15, 9, nan], lookback=4, min_obs=3)
    np.testing.assert_allclose(rank, [nan, nan, nan, 1.0, 0.0, nan], rtol=1e-15)
    np.testing.assert_allclose(pct, [nan, nan, nan, 2 / 3, 0.0, nan], rtol=1e-15)

    rank, pct = iv_rank_percentile([0.2, 0.2, 0.2], lookback=3)
    assert math.isnan(rank[-1])  # no range: rank undefined
    assert pct[-1] == 0.0
    assert iv_rank_percentile([], lookback=3)[0].size == 0


@settings(max_examples=50, deadline=None)
@given(
    xs=st.lists(st.one_of(st.floats(0.05, 1.0), st.just(math.nan)), min_size=1, max_size=40),
    lookback=st.integers(1, 12),
    min_obs=st.integers(1, 12),
)
def test_iv_rank_matches_naive(xs: list[float], lookback: int, min_obs: int) -> None:
    rank, pct = iv_rank_percentile(xs, lookback, min_obs)
    for i, x in enumerate(xs):
        w = [v for v in xs[max(0, i - lookback + 1) : i + 1] if not math.isnan(v)]
        if math.isnan(x) or len(w) < min_obs:
            assert math.isnan(rank[i]) and math.isnan(pct[i])
            continue
        assert pct[i] == sum(v < x for v in w) / len(w)
        if max(w) > min(w):
            assert rank[i] == pytest.approx((x - min(w)) / (max(w) - min(w)), abs=1e-15)
            assert 0.0 <= rank[i] <= 1.0


def test_realized_vol_close() -> None:
    constant = 100.0 * 1.003 ** np.arange(40)
    rv = realized_vol_close(constant, 20)
    assert np.isnan(rv[:20]).all()
    assert np.nanmax(np.abs(rv)) < 1e-12

    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    rv = realized_vol_close(close, 20)
    rets = np.diff(np.log(close))
    for i in range(20, 60):
        expect = np.std(rets[i - 20 : i], ddof=1) * math.sqrt(252)
        assert rv[i] == pytest.approx(expect, rel=1e-12)

    gap = close.copy()
    gap[30] = np.nan
    rv = realized_vol_close(gap, 20)
    assert np.isnan(rv[30:51]).all() and np.isfinite(rv[51:]).all() and np.isfinite(rv[20:30]).all()
    assert np.isnan(realized_vol_close([100.0, 101.0], 20)).all()
    assert realized_vol_close([], 20).size == 0


def test_realized_vol_parkinson() -> None:
    high = np.full(30, 102.0)
    low = np.full(30, 100.0)
    pk = realized_vol_parkinson(high, low, 10)
    expect = math.log(1.02) / math.sqrt(4 * math.log(2)) * math.sqrt(252)
    assert np.isnan(pk[:9]).all()
    np.testing.assert_allclose(pk[9:], expect, rtol=1e-14)

    rng = np.random.default_rng(3)
    lo = 100 + rng.random(25)
    hi = lo * (1 + 0.03 * rng.random(25))
    pk = realized_vol_parkinson(hi, lo, 5)
    hl = np.log(hi / lo) ** 2
    assert pk[-1] == pytest.approx(math.sqrt(hl[-5:].mean() / (4 * math.log(2)) * 252), rel=1e-13)

    lo[12] = hi[12] + 1.0  # a bad print (low above high) is missing data
    pk = realized_vol_parkinson(hi, lo, 5)
    assert np.isnan(pk[12:17]).all() and np.isfinite(pk[17:]).all()


def test_beta_and_correlation() -> None:
    rng = np.random.default_rng(11)
    bench = rng.normal(0, 0.01, 300)
    exact = 1.5 * bench + 0.002
    beta, corr = rolling_beta_correlation(exact, bench, 60)
    assert np.isnan(beta[:59]).all()
    np.testing.assert_allclose(beta[59:], 1.5, rtol=1e-12)
    np.testing.assert_allclose(corr[59:], 1.0, rtol=1e-12)

    noisy = 0.8 * bench + rng.normal(0, 0.01, 300)
    beta = rolling_beta(noisy, bench, 60)
    corr = rolling_correlation(noisy, bench, 60)
    for i in (59, 150, 299):
        a, b = noisy[i - 59 : i + 1], bench[i - 59 : i + 1]
        cov = np.cov(a, b)
        assert beta[i] == pytest.approx(cov[0, 1] / cov[1, 1], rel=1e-12)
        assert corr[i] == pytest.approx(np.corrcoef(a, b)[0, 1], rel=1e-12)

    flat = np.zeros(100)
    assert np.isnan(rolling_beta(noisy[:100], flat, 20)).all()
    noisy[100] = np.nan
    assert np.isnan(rolling_beta(noisy, bench, 60)[100:160]).all()
    assert np.isnan(rolling_beta(bench[:10], bench[:10], 60)).all()
    with pytest.raises(ValueError, match="length"):
        rolling_beta(bench, bench[:-1], 20)


def test_log_returns() -> None:
    np.testing.assert_allclose(log_returns([100.0, 110.0, 99.0]), [math.log(1.1), math.log(0.9)])
    r = log_returns([100.0, 0.0, 100.0, np.nan, 100.0])
    assert np.isnan(r[:2]).all() and np.isnan(r[2:]).all()
    assert log_returns([100.0]).size == 0


def test_beta_weighted_delta() -> None:
    # 100 QQQ-equivalent shares (beta 1.2, $400) and -50 IWM (beta 1.1, $200) vs SPY at $500.
    bw = beta_weighted_delta([100.0, -50.0], [1.2, 1.1], [400.0, 200.0], 500.0)
    assert bw == pytest.approx((100 * 1.2 * 400 - 50 * 1.1 * 200) / 500, rel=1e-15)
    assert bw == pytest.approx(74.0)
    assert beta_weighted_delta([], [], [], 500.0) == 0.0
    assert math.isnan(beta_weighted_delta([1.0], [math.nan], [10.0], 500.0))
    assert math.isnan(beta_weighted_delta([1.0], [1.0], [10.0], 0.0))
