"""Performance metrics of a daily equity curve and of closed trades: pure functions on arrays.

Conventions (also in docs/report/metrics.md):

- equity: one value per trading day (net liquidation value in USD at the day's last tick);
- returns are simple daily returns r_t = E_t / E_{t-1} - 1, so n equity values give n - 1
  returns; a year has 252 trading days;
- the risk-free rate is an annual fraction (0 by default), applied per day as rf / 252;
- total_return = E_end / E_0 - 1; cagr = (E_end / E_0) ** (252 / n_returns) - 1;
- volatility = std(r, ddof=1) * sqrt(252);
- sharpe = mean(r - rf_d) / std(r, ddof=1) * sqrt(252);
- sortino = mean(r - rf_d) / sqrt(mean(min(r - rf_d, 0) ** 2)) * sqrt(252), the downside
  deviation taken over ALL days (days above the target count as zero);
- max_drawdown = min(E / cummax(E) - 1), a negative fraction (0 when equity never fell), with the
  dates of its peak, trough and recovery (None if equity never got back to the peak);
- calmar = cagr / |max_drawdown|.

A value that is undefined is None, never NaN, inf or an exception: fewer than two returns for a
standard deviation, a volatility that is zero (below `ZERO_VOL`, i.e. numerical noise), no
downside days for sortino, no drawdown for calmar, no trades for the trade statistics. Returns
after the account's equity fell to zero or below are undefined too: such a series keeps its
total return and drawdown, and every return-based metric is None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

TRADING_DAYS = 252
# A daily standard deviation below this is rounding noise (a constant-return series computed
# in floating point has std ~1e-17), not risk: a Sharpe ratio divided by it would be ~1e15.
ZERO_VOL = 1e-12

# Drawdowns (fractions) closer than this are equally deep: the first of them is the maximum.
DD_TIE = 1e-12

FloatArray = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]  # datetime64[D]


class MetricsInputError(ValueError):
    """Equity or trade values the metrics cannot be computed from (NaN, inf, bad shapes)."""


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest fall from a running peak: depth is a negative fraction (0.0 if none)."""

    depth: float
    peak: date | None  # the last day at the peak's value before the fall
    trough: date | None  # the first day at the lowest point
    recovery: date | None  # the first day back at or above the peak; None if never


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Statistics of closed trades' realized P&L (USD, all costs included)."""

    trades: int
    win_rate: float | None  # share of trades with P&L > 0 (a scratch trade is not a win)
    avg_win: float | None  # USD, mean of the winning trades
    avg_loss: float | None  # USD, mean of the losing trades (negative)
    profit_factor: float | None  # gross wins / |gross losses|
    total_pnl: float  # USD


@dataclass(frozen=True, slots=True)
class Metrics:
    """The headline metrics of one equity curve and its trades."""

    start: date | None
    end: date | None
    days: int  # equity values (trading days)
    start_equity: float | None  # USD
    end_equity: float | None  # USD
    total_return: float | None  # fraction
    cagr: float | None  # fraction per year
    volatility: float | None  # annualised fraction
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None  # negative fraction, 0.0 when equity never fell
    max_drawdown_peak: date | None
    max_drawdown_trough: date | None
    max_drawdown_recovery: date | None
    calmar: float | None
    trades: int
    win_rate: float | None
    avg_win: float | None  # USD
    avg_loss: float | None  # USD
    profit_factor: float | None
    trade_pnl: float  # USD, sum of closed trades' realized P&L
    exposure: float | None  # share of days with at least one open position
    risk_free_rate: float  # annual fraction

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: dates as ISO strings, undefined values as None."""
        return {k: _plain(v) for k, v in asdict(self).items()}


def _plain(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def as_equity(values: npt.ArrayLike, what: str = "equity") -> FloatArray:
    """`values` as a 1-d float64 array, or MetricsInputError naming the first bad position."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise MetricsInputError(f"{what}: expected a 1-d array, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise MetricsInputError(f"{what}: value {arr[bad[0]]} at position {bad[0]} is not finite")
    return arr


def daily_returns(equity: FloatArray) -> FloatArray:
    """Simple returns E_t / E_{t-1} - 1 (n - 1 of them); empty if any equity is <= 0."""
    if equity.size < 2 or np.any(equity <= 0):
        return np.empty(0, dtype=np.float64)
    return equity[1:] / equity[:-1] - 1.0


def total_return(equity: FloatArray) -> float | None:
    """E_end / E_0 - 1; None without at least one value or with E_0 <= 0."""
    if equity.size == 0 or equity[0] <= 0:
        return None
    return float(equity[-1] / equity[0] - 1.0)


def cagr(equity: FloatArray) -> float | None:
    """(E_end / E_0) ** (252 / n_returns) - 1; None for fewer than two days or a wiped-out
    account (no real root of a negative growth factor)."""
    if equity.size < 2 or np.any(equity <= 0):
        return None
    growth = float(equity[-1] / equity[0])
    return _finite(growth ** (TRADING_DAYS / (equity.size - 1)) - 1.0)


def compounded_cagr(returns: FloatArray) -> float | None:
    """The annualised growth of a sequence of daily returns (not necessarily contiguous)."""
    if returns.size == 0 or np.any(returns <= -1.0):
        return None
    growth = float(np.prod(1.0 + returns))
    return _finite(growth ** (TRADING_DAYS / returns.size) - 1.0)


def volatility(returns: FloatArray) -> float | None:
    """std(r, ddof=1) * sqrt(252); None for fewer than two returns."""
    if returns.size < 2:
        return None
    return float(np.std(returns, ddof=1) * math.sqrt(TRADING_DAYS))


def sharpe(returns: FloatArray, risk_free_rate: float = 0.0) -> float | None:
    """mean(r - rf/252) / std(r, ddof=1) * sqrt(252); None when the volatility is zero."""
    if returns.size < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if std < ZERO_VOL:
        return None
    excess = float(np.mean(returns - risk_free_rate / TRADING_DAYS))
    return excess / std * math.sqrt(TRADING_DAYS)


def sortino(returns: FloatArray, risk_free_rate: float = 0.0) -> float | None:
    """mean(r - rf_d) / sqrt(mean(min(r - rf_d, 0)^2)) * sqrt(252), over all days; None when
    no day fell below the risk-free rate."""
    if returns.size == 0:
        return None
    excess = returns - risk_free_rate / TRADING_DAYS
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside < ZERO_VOL:
        return None
    return float(np.mean(excess)) / downside * math.sqrt(TRADING_DAYS)


def drawdown_series(equity: FloatArray) -> FloatArray:
    """E / cummax(E) - 1 for each day (0 at a new high); for charts and max_drawdown."""
    if equity.size == 0:
        return np.empty(0, dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, equity / peak - 1.0, 0.0)
    return np.asarray(dd, dtype=np.float64)


def _day(dates: DateArray, i: int) -> date:
    return dates[i].astype("datetime64[D]").item()  # type: ignore[no-any-return]


def max_drawdown(equity: FloatArray, dates: DateArray) -> Drawdown | None:
    """The deepest drawdown and its dates; None for an empty series.

    The peak is the last day at the peak's value before the trough (a flat top counts from its
    end); the trough is the first day at the lowest point (of equally deep drawdowns, within
    DD_TIE, the first); recovery the first day after the trough with equity back at or above
    the peak.
    """
    if equity.size == 0:
        return None
    dd = drawdown_series(equity)
    depth = float(np.min(dd))
    # Of two equally deep drawdowns the first counts; "equal" allows for rounding, else scaling
    # the curve (or a cent's rounding) could flip the dates from one to the other.
    trough = int(np.flatnonzero(dd <= depth + DD_TIE)[0])
    if depth >= 0.0:
        return Drawdown(0.0, None, None, None)
    top = float(np.max(equity[: trough + 1]))
    peak = int(np.flatnonzero(equity[: trough + 1] == top)[-1])
    back = np.flatnonzero(equity[trough + 1 :] >= top)
    recovery = _day(dates, trough + 1 + int(back[0])) if back.size else None
    return Drawdown(depth, _day(dates, peak), _day(dates, trough), recovery)


def returns_drawdown(returns: FloatArray) -> float | None:
    """Max drawdown of the series compounded from `returns` (starting at 1 before the first)."""
    if returns.size == 0:
        return None
    curve = np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    return float(np.min(drawdown_series(curve)))


def trade_stats(pnl: npt.ArrayLike) -> TradeStats:
    """Win rate, average win and loss, profit factor of closed trades' realized P&L (USD)."""
    p = as_equity(pnl, "trade P&L")
    wins, losses = p[p > 0], p[p < 0]
    n = int(p.size)
    return TradeStats(
        trades=n,
        win_rate=wins.size / n if n else None,
        avg_win=float(np.mean(wins)) if wins.size else None,
        avg_loss=float(np.mean(losses)) if losses.size else None,
        profit_factor=float(np.sum(wins) / -np.sum(losses)) if losses.size else None,
        total_pnl=float(np.sum(p)),
    )


def exposure(open_positions: npt.ArrayLike | None) -> float | None:
    """Share of days with at least one open position; None when unknown or no days."""
    if open_positions is None:
        return None
    arr = np.asarray(open_positions)
    return float(np.mean(arr > 0)) if arr.size else None


def compute_metrics(
    equity: npt.ArrayLike,
    dates: npt.ArrayLike,
    trade_pnl: npt.ArrayLike = (),
    open_positions: npt.ArrayLike | None = None,
    risk_free_rate: float = 0.0,
) -> Metrics:
    """Every metric of a daily equity curve (USD, one value per trading day, dates ascending)
    and of the realized P&L of the trades closed over it."""
    eq = as_equity(equity)
    days = np.asarray(dates, dtype="datetime64[D]")
    if days.shape != eq.shape:
        raise MetricsInputError(f"{days.size} dates for {eq.size} equity values")
    if days.size > 1 and np.any(days[1:] <= days[:-1]):
        i = int(np.flatnonzero(days[1:] <= days[:-1])[0]) + 1
        raise MetricsInputError(f"dates are not increasing at position {i} ({days[i]})")
    if open_positions is not None and np.asarray(open_positions).shape != eq.shape:
        raise MetricsInputError(
            f"open positions for {np.asarray(open_positions).size} days, equity for {eq.size}"
        )
    r = daily_returns(eq)
    dd = max_drawdown(eq, days)
    growth = cagr(eq)
    calmar = growth / abs(dd.depth) if growth is not None and dd and dd.depth < 0 else None
    trades = trade_stats(trade_pnl)
    return Metrics(
        start=_day(days, 0) if days.size else None,
        end=_day(days, -1) if days.size else None,
        days=int(eq.size),
        start_equity=float(eq[0]) if eq.size else None,
        end_equity=float(eq[-1]) if eq.size else None,
        total_return=total_return(eq),
        cagr=growth,
        volatility=volatility(r),
        sharpe=sharpe(r, risk_free_rate),
        sortino=sortino(r, risk_free_rate),
        max_drawdown=dd.depth if dd else None,
        max_drawdown_peak=dd.peak if dd else None,
        max_drawdown_trough=dd.trough if dd else None,
        max_drawdown_recovery=dd.recovery if dd else None,
        calmar=calmar,
        trades=trades.trades,
        win_rate=trades.win_rate,
        avg_win=trades.avg_win,
        avg_loss=trades.avg_loss,
        profit_factor=trades.profit_factor,
        trade_pnl=trades.total_pnl,
        exposure=exposure(open_positions),
        risk_free_rate=risk_free_rate,
    )
