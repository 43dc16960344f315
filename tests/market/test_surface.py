"""The IV surface: term structure through the index anchors, put skew, defaults, no arbitrage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernels.bsm import bsm_price
from engine.market.surface import (
    DEFAULT,
    DEFAULT_SKEW,
    T9,
    T30,
    T93,
    VolIndexError,
    VolIndices,
    atm_anchors,
    atm_total_variance,
    complete,
    implied_vols,
)

FULL = VolIndices(vix=18.0, vix9d=16.0, vix3m=20.5, vvix=95.0, skew=130.0)
DAYS = 1.0 / 365.0


def test_atm_hits_the_index_anchors() -> None:
    iv = implied_vols(FULL, 0.0, np.array([T9, T30, T93]))
    expected = DEFAULT.atm_to_vix * np.array([16.0, 18.0, 20.5]) / 100
    np.testing.assert_allclose(iv, expected, rtol=1e-12)


def test_total_variance_is_linear_between_anchors() -> None:
    w9, w30, w93 = atm_anchors(FULL)
    mid = 0.5 * (T30 + T93)
    assert atm_total_variance(FULL, mid) == pytest.approx(0.5 * (w30 + w93), rel=1e-12)
    assert atm_total_variance(FULL, 0.5 * (T9 + T30)) == pytest.approx(0.5 * (w9 + w30))
    # Below 9 days the 9-day vol is held flat.
    np.testing.assert_allclose(
        implied_vols(FULL, 0.0, np.array([1, 3, 9]) * DAYS), implied_vols(FULL, 0.0, T9)
    )


def test_total_variance_never_decreases_in_maturity() -> None:
    t = np.linspace(0.5, 800, 2000) * DAYS
    for idx in (FULL, VolIndices(vix=45, vix9d=70, vix3m=35), VolIndices(vix=10.5)):
        assert np.all(np.diff(atm_total_variance(idx, t)) > 0)
        anchors = atm_anchors(idx)
        assert np.all(np.diff(anchors) > 0)


def test_inverted_anchor_is_raised_not_kept() -> None:
    # 9-day vol so high that its total variance exceeds the 30-day one: the 30-day anchor moves.
    idx = VolIndices(vix=20.0, vix9d=60.0, vix3m=22.0)
    w9, w30, _ = atm_anchors(idx)
    assert w30 > w9
    assert implied_vols(idx, 0.0, T9) == pytest.approx(DEFAULT.atm_to_vix * 0.60)


@pytest.mark.parametrize("vix", [10.0, 16.0, 30.0, 60.0])
@pytest.mark.parametrize("days", [1, 7, 30, 70, 180])
def test_put_skew_iv_rises_as_moneyness_falls(vix: float, days: int) -> None:
    t = days * DAYS
    k = np.linspace(-0.4, 0.0, 200) * math.sqrt(t) * 4  # about four ATM deviations down
    iv = implied_vols(VolIndices(vix=vix), k, t)
    assert np.all(np.diff(iv) < 0)
    # and the call wing is lower than the put wing at the same distance
    assert implied_vols(VolIndices(vix=vix), 0.05 * math.sqrt(t * 12), t) < implied_vols(
        VolIndices(vix=vix), -0.05 * math.sqrt(t * 12), t
    )


def test_higher_skew_index_steepens_the_put_side_only_around_atm() -> None:
    t = T30
    low, high = VolIndices(vix=16, skew=115), VolIndices(vix=16, skew=150)
    assert implied_vols(low, 0.0, t) == pytest.approx(implied_vols(high, 0.0, t))
    assert implied_vols(high, -0.08, t) > implied_vols(low, -0.08, t)


def test_higher_vix_raises_every_iv() -> None:
    k = np.linspace(-0.3, 0.2, 51)
    for t in (3 * DAYS, T30, 0.5):
        assert np.all(
            implied_vols(VolIndices(vix=25, skew=125), k, t)
            > implied_vols(VolIndices(vix=15, skew=125), k, t)
        )


def test_missing_indices_take_vix_based_defaults() -> None:
    filled = complete(VolIndices(vix=13.0))
    assert filled.vix9d == pytest.approx(13.0 * 0.916)
    assert filled.vix3m == pytest.approx(13.0 * 1.171)
    assert filled.skew == pytest.approx(126.6)
    assert filled.vvix is None
    # Defaults are flat beyond the table's ends.
    assert complete(VolIndices(vix=80.0)).skew == DEFAULT_SKEW[-1][1]
    k, t = np.linspace(-0.2, 0.2, 9), T30
    np.testing.assert_array_equal(
        implied_vols(VolIndices(vix=13.0), k, t), implied_vols(filled, k, t)
    )
    # Given levels are kept.
    assert complete(FULL) == FULL


def test_nan_means_unknown() -> None:
    idx = VolIndices(vix=20.0, vix9d=math.nan, vix3m=None, skew=float("nan"))
    assert idx.vix9d is None and idx.skew is None
    assert np.isfinite(implied_vols(idx, np.linspace(-0.3, 0.3, 7), T30)).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vix": 0.0}, "vix must be"),
        ({"vix": math.nan}, "vix must be"),
        ({"vix": 20.0, "vix3m": -1.0}, "vix3m must be"),
        ({"vix": 20.0, "vix9d": math.inf}, "vix9d must be"),
        ({"vix": 20.0, "skew": 95.0}, "skew"),
        ({"vix": "high"}, "vix must be a number"),
    ],
)
def test_bad_index_levels_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(VolIndexError, match=match):
        VolIndices(**kwargs)  # type: ignore[arg-type]


def test_expired_maturities_are_nan() -> None:
    iv = implied_vols(FULL, 0.0, np.array([0.0, -0.1, math.nan, T30]))
    assert np.isnan(iv[:3]).all() and np.isfinite(iv[3])


@settings(max_examples=60, deadline=None)
@given(
    vix=st.floats(9.0, 90.0),
    vix9d=st.none() | st.floats(7.0, 120.0),
    vix3m=st.none() | st.floats(9.0, 70.0),
    skew=st.none() | st.floats(100.5, 190.0),
)
def test_finite_positive_everywhere(
    vix: float, vix9d: float | None, vix3m: float | None, skew: float | None
) -> None:
    idx = VolIndices(vix=vix, vix9d=vix9d, vix3m=vix3m, skew=skew)
    k = np.linspace(-3.0, 3.0, 61)[:, None]
    t = np.array([1e-4, 1 * DAYS, 7 * DAYS, T30, T93, 1.0, 3.0])[None, :]
    iv = implied_vols(idx, k, t)
    assert iv.shape == (61, 7)
    assert np.isfinite(iv).all() and (iv > 0).all()
    # Lee's moment bound: total variance at most 2 |k| far out in the wings.
    far = np.abs(k[:, 0]) >= 1.5
    assert np.all(iv[far] ** 2 * t <= 2 * np.abs(k[far]) + 1e-12)


@pytest.mark.parametrize("idx", [VolIndices(vix=11.0), VolIndices(vix=20.0, skew=150), FULL])
@pytest.mark.parametrize("days", [2, 9, 30, 70])
def test_no_butterfly_arbitrage_on_a_fine_grid(idx: VolIndices, days: int) -> None:
    t, spot = days * DAYS, 100.0
    strikes = np.linspace(60.0, 140.0, 801)
    iv = implied_vols(idx, np.log(strikes / spot), t)
    calls = bsm_price(True, spot, strikes, t, 0.0, 0.0, iv)
    assert np.all(np.diff(calls) <= 1e-12)  # decreasing in strike
    assert np.all(np.diff(calls, 2) >= -1e-9)  # convex in strike: a non-negative density


def test_no_calendar_arbitrage_at_fixed_moneyness() -> None:
    t = np.linspace(1, 400, 400) * DAYS
    for k in (-0.3, -0.1, 0.0, 0.1):
        w = implied_vols(FULL, k, t) ** 2 * t
        assert np.all(np.diff(w) > 0)
