"""Portfolio exposure on arrays: aggregation, beta weighting, what-if, clusters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk.exposure import LegRows, Market, cluster_exposure, concentration, exposure

MARKET = Market(("IWM", "QQQ", "SPY"), np.array([150.0, 300.0, 400.0]),
                np.array([1.25, 1.2, 1.0]))  # fmt: skip


def legs(rows: list[tuple[int, float, float, float]]) -> LegRows:
    """(underlying, signed quantity, multiplier, delta) rows; gamma, vega, theta derived."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    d = a[:, 3]
    return LegRows(a[:, 0].astype(np.intp), a[:, 1], a[:, 2], d, 0.01 * np.abs(d), 0.1 * d,
                   -0.02 * np.abs(d))  # fmt: skip


def test_beta_weighted_delta_in_spy_shares() -> None:
    ex = exposure(legs([(2, 100, 1, 1.0), (1, -2, 100, -0.5)]), MARKET)
    assert ex.of("SPY")["bw_delta"] == pytest.approx(100.0)
    # short 2 puts of delta -0.5: +100 QQQ shares = $30,000 × beta 1.2 / $400 = 90 SPY shares
    assert ex.of("QQQ")["bw_delta"] == pytest.approx(90.0)
    assert ex.total_bw_delta == pytest.approx(190.0) and not ex.beta_guessed.any()


def test_an_unknown_beta_counts_as_one_and_says_so() -> None:
    market = Market(MARKET.symbols, MARKET.price, np.array([np.nan, 1.2, 1.0]))
    ex = exposure(legs([(0, 100, 1, 1.0)]), market)
    assert ex.of("IWM")["bw_delta"] == pytest.approx(100 * 150 / 400)
    assert ex.beta_guessed.tolist() == [True, False, False]


row = st.tuples(st.integers(0, 2), st.integers(-20, 20).map(float), st.sampled_from([1.0, 100.0]),
                st.floats(-1, 1))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(row, max_size=30), st.lists(row, min_size=1, max_size=6))
def test_aggregation_matches_a_loop_and_what_if_is_additive(
    held: list[tuple[int, float, float, float]], order: list[tuple[int, float, float, float]]
) -> None:
    a = legs(held) if held else legs([(0, 0.0, 1.0, 0.0)])
    ex = exposure(a, MARKET)
    for i in range(len(MARKET.symbols)):
        expected = sum(q * m * d for u, q, m, d in held if u == i)
        assert ex.delta[i] == pytest.approx(expected, abs=1e-9)
        assert ex.vega[i] == pytest.approx(0.1 * expected, abs=1e-9)
    after = exposure(a + legs(order), MARKET)
    alone = exposure(legs(order), MARKET)
    np.testing.assert_allclose(after.bw_delta, ex.bw_delta + alone.bw_delta, atol=1e-9)
    np.testing.assert_allclose(after.theta, ex.theta + alone.theta, atol=1e-9)


def test_cluster_exposure_between_sum_and_root_sum_square() -> None:
    ex = exposure(legs([(0, 100, 1, 1.0), (1, 100, 1, 1.0), (2, 100, 1, 1.0)]), MARKET)
    x = np.array([15_000.0, 30_000.0, 40_000.0])
    gross, same = cluster_exposure(ex, ("IWM", "QQQ", "SPY"), np.ones((3, 3)))
    assert gross == pytest.approx(x.sum()) and same == pytest.approx(x.sum())
    _, independent = cluster_exposure(ex, ("IWM", "QQQ", "SPY"), np.eye(3))
    assert independent == pytest.approx(math.sqrt((x**2).sum()))
    rho = np.full((3, 3), 0.9) + 0.1 * np.eye(3)
    _, typical = cluster_exposure(ex, ("IWM", "QQQ", "SPY"), rho)
    assert independent < typical < same
    with pytest.raises(ValueError, match="3×3"):
        cluster_exposure(ex, ("IWM", "QQQ", "SPY"), np.eye(2))


def test_concentration_shares() -> None:
    assert concentration(np.array([1_000.0, 3_000.0, 0.0])).tolist() == [0.25, 0.75, 0.0]
    assert concentration(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
