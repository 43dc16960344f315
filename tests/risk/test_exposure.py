"""Portfolio exposure on arrays: aggregation, beta weighting, what-if, clusters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk.exposure import LegRows, Market, concentration, exposure
from tests.dsl.conftest import make_snapshot

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
    from engine.risk.exposure import Cluster

    x = np.array([150.0, 300.0, 400.0])  # USD per 1% move
    syms = ("IWM", "QQQ", "SPY")
    same = Cluster(syms, x, np.ones((3, 3))).exposure
    assert same == pytest.approx(x.sum())  # correlation 1: they add up
    independent = Cluster(syms, x, np.eye(3)).exposure
    assert independent == pytest.approx(math.sqrt((x**2).sum()))
    rho = np.full((3, 3), 0.9) + 0.1 * np.eye(3)
    typical = Cluster(syms, x, rho).exposure
    assert independent < typical < same


def test_concentration_shares() -> None:
    assert concentration(np.array([1_000.0, 3_000.0, 0.0])).tolist() == [0.25, 0.75, 0.0]
    assert concentration(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_single_index_correlation_is_a_clipped_correlation_matrix() -> None:
    from engine.risk.exposure import single_index_correlation

    rho = single_index_correlation(np.array([1.0, 1.2, 1.1]), np.array([0.15, 0.20, 0.22]), 0.15)
    assert np.allclose(np.diag(rho), 1.0) and np.allclose(rho, rho.T)
    assert np.isclose(rho[0, 1], 1.2 * 0.15 / 0.20)  # SPY with QQQ: β σₘ / σ
    assert np.isclose(rho[1, 2], 1.2 * 1.1 * 0.15**2 / (0.20 * 0.22))
    assert rho.max() <= 1.0


def test_cluster_exposure_adds_orders_and_maps_futures_to_their_etf() -> None:
    from engine.risk.exposure import Cluster

    beta, vol = np.array([1.0, 1.2, np.nan]), np.array([0.15, 0.20, np.nan])
    c = Cluster.of(("SPY", "QQQ", "IWM"), np.array([100.0, 50.0, 0.0]), beta, vol, 0.15)
    rho = 1.2 * 0.15 / 0.20
    assert np.isclose(c.exposure, np.sqrt(100.0**2 + 50.0**2 + 2 * rho * 100.0 * 50.0))
    hedged = c.plus("ES", -100.0)  # an ES hedge counts for SPY
    assert np.isclose(hedged.exposure, 50.0)  # one symbol held: no correlation needed
    assert np.isnan(c.plus("IWM", 10.0).exposure)  # IWM held with QQQ, but no vol known
    assert c.plus("GLD", 10.0) is c  # outside the cluster
    only_iwm = Cluster.of(c.symbols, np.array([0.0, 0.0, -30.0]), beta, vol, float("nan"))
    assert only_iwm.exposure == 30.0  # unknown vols do not matter for a single holding


def test_account_cluster_delta_from_the_snapshot_betas_and_vols() -> None:
    from engine.risk.exposure import cluster_of

    snap = make_snapshot(underlyings={
        "SPY": {"price": 500.0, "realized_vol_20d": 0.15},
        "QQQ": {"price": 400.0, "beta": 1.2, "realized_vol_20d": 0.20},
        "IWM": {"price": 200.0}})  # fmt: skip
    market = Market(("QQQ", "SPY"), np.array([400.0, 500.0]), np.array([1.2, 1.0]))
    legs = LegRows(np.array([0, 1]), np.ones(2), np.ones(2), np.array([-10.0, -20.0]),
                   np.zeros(2), np.zeros(2), np.zeros(2))  # fmt: skip
    c = cluster_of(exposure(legs, market), snap)
    assert c is not None
    x = np.array([-20.0 * 500.0 / 100.0, -10.0 * 400.0 / 100.0])  # USD per 1% move
    rho = 1.2 * 0.15 / 0.20
    assert np.isclose(c.exposure, np.sqrt(x[0] ** 2 + x[1] ** 2 + 2 * rho * x[0] * x[1]))
    unpriced = Market(("QQQ",), np.array([np.nan]), np.array([1.2]))
    held = LegRows(np.array([0]), np.ones(1), np.ones(1), np.array([5.0]), np.zeros(1),
                   np.zeros(1), np.zeros(1))  # fmt: skip
    assert cluster_of(exposure(held, unpriced), snap) is None  # held, but no price: unknown
