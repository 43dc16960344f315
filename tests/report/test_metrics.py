"""Metrics against independent formulas (statistics, math, plain loops) on known series."""

from __future__ import annotations

import csv
import json
import math
import statistics
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.report import metrics as m
from engine.report.metrics import MetricsInputError, compute_metrics

from .conftest import weekdays

SQRT252 = math.sqrt(252)


def days(n: int) -> np.ndarray:
    return np.array(weekdays(date(2019, 1, 1), n), dtype="datetime64[D]")


def test_hand_computed_five_days() -> None:
    equity = [100.0, 110.0, 99.0, 104.5, 115.0]
    d = days(5)
    got = compute_metrics(equity, d)
    r = [110 / 100 - 1, 99 / 110 - 1, 104.5 / 99 - 1, 115 / 104.5 - 1]
    assert got.days == 5
    assert got.total_return == pytest.approx(0.15)
    assert got.cagr == pytest.approx(1.15 ** (252 / 4) - 1)
    assert got.volatility == pytest.approx(statistics.stdev(r) * SQRT252)
    assert got.sharpe == pytest.approx(statistics.fmean(r) / statistics.stdev(r) * SQRT252)
    downside = math.sqrt(sum(min(x, 0) ** 2 for x in r) / 4)  # only -10% is below zero
    assert downside == pytest.approx(0.05)
    assert got.sortino == pytest.approx(statistics.fmean(r) / 0.05 * SQRT252)
    assert got.max_drawdown == pytest.approx(-0.1)
    assert (got.max_drawdown_peak, got.max_drawdown_trough) == (d[1].item(), d[2].item())
    assert got.max_drawdown_recovery == d[4].item()  # 104.5 < 110; 115 >= 110
    assert got.calmar == pytest.approx(got.cagr / 0.1)
    assert (got.start, got.end, got.start_equity, got.end_equity) == (
        d[0].item(),
        d[4].item(),
        100.0,
        115.0,
    )


def test_risk_free_rate_is_annual_and_applied_per_day() -> None:
    equity = [100.0, 110.0, 99.0, 104.5, 115.0]
    r = [110 / 100 - 1, 99 / 110 - 1, 104.5 / 99 - 1, 115 / 104.5 - 1]
    rf = 0.05
    excess = [x - rf / 252 for x in r]
    got = compute_metrics(equity, days(5), risk_free_rate=rf)
    assert got.sharpe == pytest.approx(statistics.fmean(excess) / statistics.stdev(r) * SQRT252)
    downside = math.sqrt(sum(min(x, 0) ** 2 for x in excess) / len(excess))
    assert got.sortino == pytest.approx(statistics.fmean(excess) / downside * SQRT252)
    assert got.risk_free_rate == rf


def test_constant_daily_return_has_no_volatility_so_no_sharpe() -> None:
    g = 0.001
    equity = 1000.0 * (1 + g) ** np.arange(253)
    got = compute_metrics(equity, days(253))
    assert got.cagr == pytest.approx((1 + g) ** 252 - 1)
    assert got.total_return == pytest.approx((1 + g) ** 252 - 1)
    assert got.volatility == pytest.approx(0.0, abs=1e-12)
    assert got.sharpe is None  # zero volatility: undefined, not inf
    assert got.sortino is None  # no day below the risk-free rate
    assert got.max_drawdown == 0.0
    assert got.max_drawdown_peak is None and got.max_drawdown_recovery is None
    assert got.calmar is None


def test_known_drawdown_with_flat_top_and_recovery() -> None:
    equity = [100, 120, 120, 90, 60, 60, 80, 119, 120, 130]
    d = days(10)
    dd = m.max_drawdown(np.array(equity, dtype=float), d)
    assert dd is not None
    assert dd.depth == pytest.approx(-0.5)
    assert dd.peak == d[2].item()  # the last day at 120 before the fall
    assert dd.trough == d[4].item()  # the first day at 60
    assert dd.recovery == d[8].item()  # back to 120 (119 is not enough)


def test_drawdown_never_recovered() -> None:
    d = days(4)
    got = compute_metrics([100.0, 120.0, 60.0, 100.0], d)
    assert got.max_drawdown == pytest.approx(-0.5)
    assert got.max_drawdown_recovery is None
    assert got.max_drawdown_peak == d[1].item()


def test_of_two_equal_drawdowns_the_first_counts() -> None:
    # both falls are -3.125%; the second's, computed at another scale, differs by rounding
    d = days(4)
    for scale in (1.0, 0.001, 17.0):
        got = compute_metrics(scale * curve([-0.03125, 0.293886, -0.03125]), d)
        assert (got.max_drawdown_peak, got.max_drawdown_trough) == (d[0].item(), d[1].item())
        assert got.max_drawdown == pytest.approx(-0.03125)


def test_the_deepest_drawdown_wins_over_the_first() -> None:
    d = days(7)
    got = compute_metrics([100, 90, 100, 200, 150, 120, 210], d)
    assert got.max_drawdown == pytest.approx(-0.4)
    assert (got.max_drawdown_peak, got.max_drawdown_trough, got.max_drawdown_recovery) == (
        d[3].item(),
        d[5].item(),
        d[6].item(),
    )


@pytest.mark.parametrize("n", [0, 1, 2])
def test_short_series_give_none_not_errors(n: int) -> None:
    got = compute_metrics([100.0, 101.0][:n], days(n))
    assert got.days == n
    assert got.volatility is None and got.sharpe is None  # fewer than two returns
    if n == 0:
        assert got.total_return is None and got.max_drawdown is None and got.start is None
    json.dumps(got.to_dict(), allow_nan=False)


def test_wiped_out_account_keeps_return_and_drawdown_only() -> None:
    got = compute_metrics([100.0, 50.0, -10.0, 5.0], days(4))
    assert got.total_return == pytest.approx(-0.95)
    assert got.max_drawdown == pytest.approx(-1.1)  # lost more than the peak
    assert got.cagr is None and got.volatility is None and got.sharpe is None
    assert got.sortino is None and got.calmar is None


@pytest.mark.parametrize(
    ("equity", "dates", "message"),
    [
        ([100.0, math.nan], days(2), "position 1 is not finite"),
        ([100.0, math.inf], days(2), "position 1 is not finite"),
        ([100.0, 101.0], days(3), "3 dates for 2 equity values"),
        ([100.0, 101.0], days(2)[::-1], "not increasing at position 1"),
        ([[100.0]], days(1), "1-d array"),
    ],
)
def test_bad_input_is_a_clear_error(equity: list[float], dates: np.ndarray, message: str) -> None:
    with pytest.raises(MetricsInputError, match=message):
        compute_metrics(equity, dates)


def test_trade_stats() -> None:
    s = m.trade_stats([100.0, -50.0, 0.0, 200.0, -25.0])
    assert s.trades == 5
    assert s.win_rate == pytest.approx(0.4)  # the scratch trade is a trade, not a win
    assert s.avg_win == pytest.approx(150.0)
    assert s.avg_loss == pytest.approx(-37.5)
    assert s.profit_factor == pytest.approx(300 / 75)
    assert s.total_pnl == pytest.approx(225.0)
    none = m.trade_stats([])
    assert (none.trades, none.win_rate, none.avg_win, none.avg_loss, none.profit_factor) == (
        0,
        None,
        None,
        None,
        None,
    )
    assert m.trade_stats([10.0, 5.0]).profit_factor is None  # no losses: undefined


def test_exposure_and_trades_in_compute_metrics() -> None:
    got = compute_metrics([100.0, 101, 102, 103], days(4), [5.0, -2.0], [0, 1, 2, 0])
    assert got.exposure == 0.5
    assert (got.trades, got.win_rate, got.trade_pnl) == (2, 0.5, 3.0)
    assert compute_metrics([100.0], days(1)).exposure is None
    with pytest.raises(MetricsInputError, match="open positions for 3 days"):
        compute_metrics([100.0, 101], days(2), open_positions=[0, 1, 2])


def test_to_dict_is_plain_json() -> None:
    got = compute_metrics([100.0, 90.0, 95.0], days(3), [1.0])
    data = got.to_dict()
    assert data["max_drawdown_peak"] == "2019-01-01"
    assert data["max_drawdown_recovery"] is None
    assert json.loads(json.dumps(data, allow_nan=False)) == data


# Returns rounded to 1e-6 (a cent on $10,000): a return of 1e-10 is rounding noise, and the
# ratios built on it are ill-conditioned (scaling the curve moves them by 1e-6 relative).
returns_lists = st.lists(
    st.floats(min_value=-0.5, max_value=0.5).map(lambda x: round(x, 6)), min_size=1, max_size=60
)


def curve(returns: list[float]) -> np.ndarray:
    return 1000.0 * np.cumprod(np.r_[1.0, 1.0 + np.array(returns)])


@settings(max_examples=150, deadline=None)
@given(returns_lists)
def test_max_drawdown_is_a_fraction_between_minus_one_and_zero(returns: list[float]) -> None:
    eq = curve(returns)
    got = compute_metrics(eq, days(eq.size))
    assert got.max_drawdown is not None and -1.0 <= got.max_drawdown <= 0.0
    # an independent loop: the worst fall from the running peak
    peak, worst = eq[0], 0.0
    for x in eq:
        peak = max(peak, x)
        worst = min(worst, x / peak - 1)
    assert got.max_drawdown == pytest.approx(worst, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(returns_lists, st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_equity_changes_no_metric(returns: list[float], scale: float) -> None:
    eq = curve(returns)
    a = compute_metrics(eq, days(eq.size)).to_dict()
    b = compute_metrics(eq * scale, days(eq.size)).to_dict()
    keys = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar",
            "max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery")  # fmt: skip
    for key in keys:
        if isinstance(a[key], float):
            assert b[key] == pytest.approx(a[key], rel=1e-7, abs=1e-12), key
        else:
            assert b[key] == a[key], key


@settings(max_examples=150, deadline=None)
@given(returns_lists)
def test_sharpe_has_the_sign_of_the_mean_return(returns: list[float]) -> None:
    eq = curve(returns)
    got = compute_metrics(eq, days(eq.size))
    r = eq[1:] / eq[:-1] - 1
    if got.sharpe is not None:
        assert np.sign(got.sharpe) == np.sign(np.mean(r))
        assert got.sortino is None or np.sign(got.sortino) == np.sign(np.mean(r))


def test_spy_2008_drawdown_on_real_closes(shared_data) -> None:
    """SPY's traded closes 2007–2014: the 2007-10-09 peak, the 2009-03-09 trough."""
    path = next((shared_data / "daily").glob("spy_unadjusted_*.csv"))
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if "2007-01-01" <= r["Date"] <= "2014-12-31"]
    d = np.array([r["Date"] for r in rows], dtype="datetime64[D]")
    close = np.array([float(r["Close"]) for r in rows])
    got = compute_metrics(close, d)
    assert got.max_drawdown_peak == date(2007, 10, 9)
    assert got.max_drawdown_trough == date(2009, 3, 9)
    assert got.max_drawdown == pytest.approx(68.11 / 156.4799 - 1, abs=1e-6)
    # the first close back at the 2007 peak, found by a plain scan
    first_back = next(r["Date"] for r in rows if r["Date"] > "2009-03-09"
                      and float(r["Close"]) >= 156.4799)  # fmt: skip
    assert str(got.max_drawdown_recovery) == first_back
    assert first_back.startswith("2013-")
