"""The run's metrics broken down by market regime and by calendar year, and split at a date.

A day's return r_t = E_t / E_{t-1} - 1 belongs to day t: to its regime (the regime of day t's
last tick) and to its year, so the first day of a run, having no return, belongs to no segment.
A segment's days need not be contiguous (a regime comes and goes): its return is the
compounded product of its daily returns, and its drawdown that of the curve compounded from
them, as if the account had been invested only on those days. A trade belongs to the segment
of the day it closed. The metrics follow engine/report/metrics.py's conventions.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.report import metrics as m
from engine.report.run_data import RunData

NO_REGIME = "(none)"  # days whose ticks carried no regime, or with no tick in the journal


@dataclass(frozen=True, slots=True)
class SegmentMetrics:
    """The metrics of the daily returns that fall in one regime or one year."""

    label: str
    days: int  # daily returns in the segment
    first: date | None  # first and last day of the segment
    last: date | None
    total_return: float | None  # fraction, compounded over the segment's days
    mean_return: float | None  # fraction per day
    cagr: float | None  # the compounded return annualised over 252 days
    volatility: float | None  # annualised
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None  # negative fraction, of the compounded sub-series
    pnl: float  # USD, sum of the equity's daily changes on the segment's days
    trades: int  # trades closed on the segment's days
    win_rate: float | None
    avg_win: float | None  # USD
    avg_loss: float | None  # USD
    profit_factor: float | None
    trade_pnl: float  # USD, realized by those trades

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("first", "last"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


@dataclass(frozen=True, slots=True, eq=False)
class RunReport:
    """A run's data and everything computed from it, ready to render."""

    data: RunData
    metrics: m.Metrics
    by_regime: tuple[SegmentMetrics, ...]
    by_year: tuple[SegmentMetrics, ...]
    split_at: date | None = None
    in_sample: m.Metrics | None = None  # days before split_at
    out_of_sample: m.Metrics | None = None  # days from split_at on


def segment_metrics(
    label: str,
    returns: npt.NDArray[np.float64],
    days: npt.NDArray[np.datetime64],
    pnl_usd: float,
    trade_pnl: npt.NDArray[np.float64],
    risk_free_rate: float = 0.0,
) -> SegmentMetrics:
    """The metrics of one segment's daily returns (on `days`) and of the trades closed in it."""
    trades = m.trade_stats(trade_pnl)
    total = float(np.prod(1.0 + returns) - 1.0) if returns.size else None
    return SegmentMetrics(
        label=label,
        days=int(returns.size),
        first=days[0].astype("datetime64[D]").item() if days.size else None,
        last=days[-1].astype("datetime64[D]").item() if days.size else None,
        total_return=total,
        mean_return=float(np.mean(returns)) if returns.size else None,
        cagr=m.compounded_cagr(returns),
        volatility=m.volatility(returns),
        sharpe=m.sharpe(returns, risk_free_rate),
        sortino=m.sortino(returns, risk_free_rate),
        max_drawdown=m.returns_drawdown(returns),
        pnl=pnl_usd,
        trades=trades.trades,
        win_rate=trades.win_rate,
        avg_win=trades.avg_win,
        avg_loss=trades.avg_loss,
        profit_factor=trades.profit_factor,
        trade_pnl=trades.total_pnl,
    )


def _segments(
    data: RunData,
    day_key: npt.NDArray[Any],
    trade_key: npt.NDArray[Any],
    label: Callable[[Any], str],
    risk_free_rate: float,
) -> tuple[SegmentMetrics, ...]:
    """One SegmentMetrics per distinct key (sorted, None last) of the days with a return and
    of the trades; `day_key` holds one key per day, `trade_key` one per trade."""
    returns = m.daily_returns(data.equity)
    keys = day_key[1:] if returns.size else day_key[:0]
    changes = np.diff(data.equity) if returns.size else np.empty(0)
    seen = {*keys, *trade_key}
    distinct: list[Hashable] = sorted(k for k in seen if k is not None)
    if None in seen:
        distinct.append(None)
    out = []
    for key in distinct:
        mask = np.array([k == key for k in keys], dtype=bool)
        closed = np.array([k == key for k in trade_key], dtype=bool)
        out.append(
            segment_metrics(
                label(key),
                returns[mask],
                data.dates[1:][mask],
                float(np.sum(changes[mask])),
                data.trades.pnl[closed],
                risk_free_rate,
            )
        )
    return tuple(out)


def _day_of_trades(data: RunData) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """For each trade, the index of its closing day in the curve and whether it is there."""
    if data.dates.size == 0:
        return np.zeros(len(data.trades), dtype=np.intp), np.zeros(len(data.trades), dtype=bool)
    at = np.clip(np.searchsorted(data.dates, data.trades.close_date), 0, data.dates.size - 1)
    return at, data.dates[at] == data.trades.close_date


def by_regime(data: RunData, risk_free_rate: float = 0.0) -> tuple[SegmentMetrics, ...]:
    """The metrics of the days of each regime (alphabetical; days without a regime last).

    A trade counts in the regime of the day it closed; one closed on a day missing from the
    curve has no known regime and counts under NO_REGIME, so every trade is somewhere.
    """
    at, on_day = _day_of_trades(data)
    trade_key = np.full(on_day.size, None, dtype=object)
    trade_key[on_day] = data.regime[at[on_day]]
    return _segments(
        data,
        data.regime,
        trade_key,
        lambda k: NO_REGIME if k is None else str(k),
        risk_free_rate,
    )


def _years(days: npt.NDArray[np.datetime64]) -> npt.NDArray[Any]:
    return np.asarray(days.astype("datetime64[Y]").astype(int) + 1970, dtype=object)


def by_year(data: RunData, risk_free_rate: float = 0.0) -> tuple[SegmentMetrics, ...]:
    """The metrics of each calendar year's days (the first year starts with its second day);
    a trade counts in the year it closed."""
    return _segments(data, _years(data.dates), _years(data.trades.close_date), str, risk_free_rate)


def run_metrics(data: RunData, risk_free_rate: float = 0.0) -> m.Metrics:
    """The headline metrics of the whole run."""
    return m.compute_metrics(
        data.equity, data.dates, data.trades.pnl, data.open_positions, risk_free_rate
    )


def split(data: RunData, at: date, risk_free_rate: float = 0.0) -> tuple[m.Metrics, m.Metrics]:
    """(in-sample, out-of-sample) metrics: the days before `at`, and the days from `at` on.

    The out-of-sample curve starts from the last in-sample day's equity, so the first
    out-of-sample day's return counts and the two samples' returns add up to the run's. Trades
    are split by the day they closed; exposure counts each sample's own days.
    """
    cut = np.datetime64(at, "D")
    before = data.dates < cut
    n_in = int(before.sum())
    # No out-of-sample day: an empty curve, not the last in-sample day alone.
    base = max(n_in - 1, 0) if n_in < data.dates.size else n_in
    closed_in = data.trades.close_date < cut
    opens = data.open_positions
    in_sample = m.compute_metrics(
        data.equity[:n_in],
        data.dates[:n_in],
        data.trades.pnl[closed_in],
        None if opens is None else opens[:n_in],
        risk_free_rate,
    )
    out = m.compute_metrics(
        data.equity[base:],
        data.dates[base:],
        data.trades.pnl[~closed_in],
        None,
        risk_free_rate,
    )
    out = replace(out, exposure=None if opens is None else m.exposure(opens[n_in:]))
    return in_sample, out


def analyze(data: RunData, risk_free_rate: float = 0.0, split_at: date | None = None) -> RunReport:
    """Every metric and breakdown of one run."""
    samples = split(data, split_at, risk_free_rate) if split_at else (None, None)
    return RunReport(
        data=data,
        metrics=run_metrics(data, risk_free_rate),
        by_regime=by_regime(data, risk_free_rate),
        by_year=by_year(data, risk_free_rate),
        split_at=split_at,
        in_sample=samples[0],
        out_of_sample=samples[1],
    )
