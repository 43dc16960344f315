"""Metrics by regime and by year, and the in-sample / out-of-sample split, on built RunData."""

from __future__ import annotations

import math
import statistics
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from engine.report import breakdown as b
from engine.report.run_data import RunData, Trades

from .conftest import weekdays


def trades(close_dates: list[date], pnl: list[float]) -> Trades:
    n = len(pnl)
    obj = np.array(["x"] * n, dtype=object)
    t = np.array(close_dates, dtype="datetime64[us]")
    return Trades(obj, obj, obj, obj, obj, t, t, np.array(close_dates, "datetime64[D]"),
                  np.array(pnl, dtype=float))  # fmt: skip


def run(
    days: list[date],
    equity: list[float],
    regimes: list[str | None] | None = None,
    opens: list[int] | None = None,
    closed: Trades | None = None,
) -> RunData:
    return RunData(
        run_dir=Path("run"),
        meta={"status": "complete"},
        dates=np.array(days, dtype="datetime64[D]"),
        equity=np.array(equity, dtype=float),
        regime=np.array(regimes or [None] * len(days), dtype=object),
        open_positions=None if opens is None else np.array(opens),
        trades=closed or trades([], []),
        warnings=(),
    )


D = weekdays(date(2019, 3, 4), 6)


def test_by_regime_groups_each_days_return_under_that_days_regime() -> None:
    data = run(
        D,
        [100.0, 110.0, 99.0, 99.0, 108.9, 120.0],
        ["calm", "calm", "stress", "stress", "calm", None],
        closed=trades([D[0], D[1], D[2], date(2019, 3, 30)], [10.0, -4.0, 6.0, 1.0]),
    )
    regimes = {s.label: s for s in b.by_regime(data)}
    assert list(regimes) == ["calm", "stress", b.NO_REGIME]  # alphabetical, none last
    calm, stress, none = regimes["calm"], regimes["stress"], regimes[b.NO_REGIME]
    # calm: day 1 (+10%) and day 4 (+10%); day 0 has no return
    assert calm.days == 2
    assert calm.total_return == pytest.approx(0.21)
    assert calm.mean_return == pytest.approx(0.1)
    assert calm.max_drawdown == 0.0
    assert calm.pnl == pytest.approx(10.0 + 9.9)
    assert calm.sharpe is None  # two equal returns: no volatility
    assert (calm.first, calm.last) == (D[1], D[4])
    # stress: -10% then 0%
    assert stress.days == 2
    assert stress.total_return == pytest.approx(-0.1)
    assert stress.max_drawdown == pytest.approx(-0.1)
    r = [-0.1, 0.0]
    assert stress.sharpe == pytest.approx(statistics.fmean(r) / statistics.stdev(r) * 252**0.5)
    assert stress.sortino == pytest.approx(-0.05 / math.sqrt(0.01 / 2) * 252**0.5)
    assert none.days == 1 and none.total_return == pytest.approx(120 / 108.9 - 1)
    # trades by the regime of their closing day; day 0 is calm; 03-30 is no day of the curve,
    # so its regime is unknown
    assert (calm.trades, calm.trade_pnl, calm.win_rate) == (2, 6.0, 0.5)
    assert (stress.trades, stress.trade_pnl) == (1, 6.0)
    assert (none.trades, none.trade_pnl) == (1, 1.0)


def test_every_trade_lands_in_one_regime_and_one_year() -> None:
    closes = [D[0], D[5], date(2018, 6, 1), date(2020, 2, 3)]
    data = run(D, [100.0, 101, 102, 103, 104, 105], ["a", "b", "a", "b", "a", "c"],
               closed=trades(closes, [1.0, 2.0, 3.0, 4.0]))  # fmt: skip
    regimes = {s.label: s.trades for s in b.by_regime(data)}
    assert regimes == {"a": 1, "b": 0, "c": 1, b.NO_REGIME: 2}
    years = {s.label: (s.days, s.trades) for s in b.by_year(data)}
    assert years == {"2018": (0, 1), "2019": (5, 2), "2020": (0, 1)}


def test_regime_returns_compound_to_the_run_total() -> None:
    rng = np.random.default_rng(5)
    days = weekdays(date(2015, 1, 1), 400)
    equity = 1e5 * np.cumprod(1 + rng.normal(0.0003, 0.01, 400))
    regimes = list(rng.choice(["calm", "normal", "stress"], 400))
    data = run(days, list(equity), regimes)
    segments = b.by_regime(data)
    growth = math.prod(1 + s.total_return for s in segments if s.total_return is not None)
    assert growth == pytest.approx(equity[-1] / equity[0])
    assert sum(s.days for s in segments) == 399
    assert sum(s.pnl for s in segments) == pytest.approx(equity[-1] - equity[0])


def test_by_year_puts_the_first_day_of_a_year_in_that_year() -> None:
    days = [date(2016, 12, 29), date(2016, 12, 30), date(2017, 1, 3), date(2017, 1, 4)]
    data = run(days, [100.0, 102.0, 96.9, 100.0], closed=trades([days[2]], [3.0]))
    y2016, y2017 = b.by_year(data)
    assert (y2016.label, y2016.days, y2016.total_return) == ("2016", 1, pytest.approx(0.02))
    assert (y2017.label, y2017.days) == ("2017", 2)
    assert y2017.total_return == pytest.approx(100 / 102 - 1)  # from the 2016 close
    assert y2017.max_drawdown == pytest.approx(96.9 / 102 - 1)
    assert y2017.cagr == pytest.approx((100 / 102) ** (252 / 2) - 1)
    assert (y2016.trades, y2017.trades) == (0, 1)


def test_split_in_and_out_of_sample() -> None:
    days = [date(2016, 12, 29), date(2016, 12, 30), date(2017, 1, 3), date(2017, 1, 4)]
    data = run(
        days, [100.0, 110.0, 99.0, 104.0], opens=[1, 1, 0, 0],
        closed=trades([days[1], days[3], days[3]], [5.0, -1.0, 2.0]),
    )  # fmt: skip
    ins, out = b.split(data, date(2017, 1, 1))
    assert (ins.start, ins.end, ins.days) == (days[0], days[1], 2)
    assert ins.total_return == pytest.approx(0.1)
    assert (ins.trades, ins.exposure) == (1, 1.0)
    # out-of-sample starts from the last in-sample close: 2017-01-03's return counts
    assert (out.start, out.end, out.days) == (days[1], days[3], 3)
    assert out.total_return == pytest.approx(104 / 110 - 1)
    assert (1 + ins.total_return) * (1 + out.total_return) == pytest.approx(1.04)
    assert (out.trades, out.trade_pnl, out.exposure) == (2, 1.0, 0.0)


@pytest.mark.parametrize(("at", "n_in", "n_out"), [(date(2000, 1, 1), 0, 6),
                                                   (date(2030, 1, 1), 6, 0)])  # fmt: skip
def test_split_outside_the_run(at: date, n_in: int, n_out: int) -> None:
    ins, out = b.split(run(D, [100.0, 101, 102, 103, 104, 105]), at)
    assert (ins.days, out.days) == (n_in, n_out)
    empty = ins if n_in == 0 else out
    assert empty.total_return is None and empty.sharpe is None


def test_analyze_and_empty_runs() -> None:
    report = b.analyze(run(D, [100.0, 101, 99, 103, 104, 105], ["a"] * 6), split_at=D[3])
    assert report.metrics.days == 6
    assert [s.label for s in report.by_regime] == ["a"]
    assert [s.label for s in report.by_year] == ["2019"]
    assert report.in_sample is not None and report.in_sample.days == 3
    empty = b.analyze(run([], []))
    assert (empty.by_regime, empty.by_year, empty.in_sample) == ((), (), None)
    assert empty.metrics.total_return is None
    seg = report.by_regime[0].to_dict()
    assert (seg["first"], seg["last"]) == ("2019-03-05", "2019-03-11")
