"""A deterministic synthetic market: daily bars for ETFs, the VIX family and index futures.

`v6 demo` runs on this when there is no real data. One seed gives one market, byte for byte:
a hidden regime chain (engine/market/regime_model.py) drives SPY's drift, its gaps and the
level the VIX is pulled toward; SPY's daily volatility is a fraction of yesterday's VIX (the
variance risk premium), and the VIX moves against SPY. QQQ and IWM follow SPY with a beta and
their own noise; the rest of the VIX family, VVIX, SKEW and the ES/NQ/RTY futures are derived
from these paths. The output has the `daily_bars` schema of engine/market/bars.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from engine.market.bars import DAILY_BARS, KIND_FUTURE, KIND_INDEX, KIND_UNDERLYING
from engine.market.calendar import xnys_sessions
from engine.market.regime_model import (
    DEFAULT_PARAMS,
    DEMO_SEED,
    SESSIONS_PER_YEAR,
    GeneratorParams,
    SyntheticMarketError,
    UnderlyingSpec,
    regime_column,
    simulate_chain,
)
from engine.market.store import MarketStore

__all__ = [
    "DEFAULT_PARAMS",
    "DEMO_SEED",
    "GeneratorParams",
    "SyntheticMarketError",
    "UnderlyingSpec",
    "generate_market",
    "regimes",
    "write_synthetic_store",
]

F64 = npt.NDArray[np.float64]
Dates = npt.NDArray[np.datetime64]

# Rows of the matrix of standard normal draws shared by all symbols.
_SPOT, _VOL, _JUMP, _VIX9D, _VIX3M, _VVIX, _SKEW, _INDEX_OHLC = range(8)
_N_SHARED = _INDEX_OHLC + 3 * 3  # open, high, low noise for VIX, VIX9D, VIX3M
# Rows of each underlying's own draws: own noise, overnight gap, high, low, volumes.
_IDIO, _GAP, _HIGH, _LOW, _VOLUME, _FUTURE_VOLUME = range(6)
_N_OWN = 6

_VOLUME_VIX = 18.0  # VIX level at which volumes are their typical size
_IDIO_VIX = 20.0  # VIX level at which an underlying's own noise is its `idio_vol`


@dataclass(frozen=True)
class _Bars:
    """One symbol's columns over the sessions; None is a column that is null throughout."""

    symbol: str
    kind: str
    close: F64
    open: F64 | None = None
    high: F64 | None = None
    low: F64 | None = None
    volume: F64 | None = None
    dividend: F64 | None = None

    @classmethod
    def cents(
        cls,
        symbol: str,
        kind: str,
        open_: F64,
        high: F64,
        low: F64,
        close: F64,
        volume: F64 | None = None,
        dividend: F64 | None = None,
    ) -> _Bars:
        """Prices rounded to 0.01; rounding is monotone, so low <= open, close <= high holds."""
        o, h, lo, c = (np.round(x, 2) for x in (open_, high, low, close))
        return cls(symbol, kind, close=c, open=o, high=h, low=lo, volume=volume, dividend=dividend)


def generate_market(
    seed: int, start: date, end: date, params: GeneratorParams = DEFAULT_PARAMS
) -> pa.Table:
    """Daily bars for every XNYS session in [start, end]: SPY QQQ IWM, the VIX family, ES NQ RTY.

    The same (seed, start, end, params) always gives the same table, byte for byte (with the
    same NumPy on the same kind of CPU); a different start or end gives a different path, not a
    slice of a longer one.
    """
    sessions = _sessions(start, end)
    rng = np.random.default_rng(seed)
    path = _regime_path(rng, sessions, params)
    bars = _simulate(rng, sessions, path, params)
    return _to_table(bars, sessions, f"synthetic:{seed}")


def regimes(
    seed: int, start: date, end: date, params: GeneratorParams = DEFAULT_PARAMS
) -> tuple[Dates, npt.NDArray[np.str_]]:
    """The sessions and the hidden regime name of each, as `generate_market` draws them."""
    sessions = _sessions(start, end)
    path = _regime_path(np.random.default_rng(seed), sessions, params)
    names = np.array([r.name for r in params.regimes])
    return sessions, names[path]


def write_synthetic_store(
    path: Path, seed: int, start: date, end: date, params: GeneratorParams = DEFAULT_PARAMS
) -> pa.Table:
    """Generate the synthetic market and write it to the market store at `path`; return it."""
    table = generate_market(seed, start, end, params)
    MarketStore(path).write_bars(table)
    return table


def _sessions(start: date, end: date) -> Dates:
    """The NYSE sessions in [start, end]; raises SyntheticMarketError if there are none."""
    if start > end:
        raise SyntheticMarketError(f"start {start} is after end {end}")
    sessions = xnys_sessions(start, end)
    if len(sessions) == 0:
        raise SyntheticMarketError(f"no NYSE session between {start} and {end}")
    return sessions


def _regime_path(
    rng: np.random.Generator, sessions: Dates, params: GeneratorParams
) -> npt.NDArray[np.int64]:
    # Always the first draw from the seed, so `regimes` sees the path `generate_market` uses.
    return simulate_chain(rng.random(len(sessions)), params.regimes, params.initial_regime)


def _simulate(
    rng: np.random.Generator, sessions: Dates, path: npt.NDArray[np.int64], p: GeneratorParams
) -> list[_Bars]:
    """All symbols' bars from one regime path; the draws happen in a fixed order."""
    n = len(sessions)
    per_regime = partial(regime_column, path, p.regimes)
    jump_u = rng.random(n)
    shared = rng.standard_normal((_N_SHARED, n))
    own = rng.standard_normal((len(p.underlyings), _N_OWN, n))

    # SPY's overnight gaps: at most one per session, mostly down.
    is_jump = jump_u < per_regime("jumps_per_year") / SESSIONS_PER_YEAR
    jump = np.where(is_jump, per_regime("jump_mean") + per_regime("jump_sd") * shared[_JUMP], 0.0)

    # log VIX reverts toward the regime's level; its shock is SPY's shock turned around
    # (spot/vol correlation) plus a kick up on every gap down.
    vol_of_vol = per_regime("vol_of_vol")
    rho = p.spot_vol_corr
    vol_shock = vol_of_vol * (rho * shared[_SPOT] + math.sqrt(1 - rho * rho) * shared[_VOL])
    vol_shock -= p.vol_jump_beta * jump
    kappa = per_regime("vix_reversion")
    log_vix0 = math.log(p.regimes[path[0]].vix_level)
    log_vix = _ar1(
        1.0 - kappa,
        kappa * np.log(per_regime("vix_level")) + vol_shock,
        log_vix0,
        floor=math.log(p.vix_floor),
    )
    vix = np.exp(log_vix)
    vix_prev = np.exp(np.concatenate([[log_vix0], log_vix[:-1]]))

    # SPY's diffusive vol is below the VIX it was priced at: the variance risk premium.
    sigma = p.variance_premium * vix_prev / 100.0 / math.sqrt(SESSIONS_PER_YEAR)
    market = per_regime("drift_per_year") / SESSIONS_PER_YEAR + sigma * shared[_SPOT] + jump

    fridays = _quarterly_third_fridays(sessions)
    expiry = fridays[np.searchsorted(fridays, sessions, side="left")]
    days_to_expiry = (expiry - sessions).astype(np.float64)
    etfs, futures = [], []
    volume_scale = (vix / _VOLUME_VIX) ** 0.9  # more shares change hands when VIX is high
    for spec, draws in zip(p.underlyings, own, strict=True):
        ex_index = _ex_dates(sessions, fridays, spec.ex_date_offset)
        etf, index = _underlying(spec, draws, market, jump, sigma, vix_prev, volume_scale, ex_index)
        volume = spec.future_volume * volume_scale * np.exp(0.25 * draws[_FUTURE_VOLUME])
        etfs.append(etf)
        futures.append(_future(etf, index, volume, spec, days_to_expiry, p.rate))
    return etfs + _indices(shared, log_vix, log_vix0, vol_of_vol, path, p) + futures


def _underlying(
    spec: UnderlyingSpec,
    draws: F64,
    market: F64,
    jump: F64,
    sigma: F64,
    vix_prev: F64,
    volume_scale: F64,
    ex_index: npt.NDArray[np.intp],
) -> tuple[_Bars, F64]:
    """The ETF's bars, and the level of the index its future is on (before the future's carry)."""
    own_sigma = spec.idio_vol / math.sqrt(SESSIONS_PER_YEAR) * np.sqrt(vix_prev / _IDIO_VIX)
    log_return = spec.alpha_per_year / SESSIONS_PER_YEAR + spec.beta * market
    log_return += own_sigma * draws[_IDIO]
    ex_fraction = np.zeros_like(market)
    ex_fraction[ex_index] = spec.dividend_yield / 4.0
    # Traded prices drop by the dividend on its ex-date; the index instead loses the yield a
    # little every day, as its constituents go ex one by one.
    close = spec.start_price * np.exp(np.cumsum(log_return + np.log1p(-ex_fraction)))
    index = (spec.future_multiple * spec.start_price) * np.exp(
        np.cumsum(log_return - spec.dividend_yield / SESSIONS_PER_YEAR)
    )
    prev_close = np.concatenate([[spec.start_price], close[:-1]])
    dividend = close * ex_fraction / (1.0 - ex_fraction)
    # Gaps happen overnight: most of a jump, and some of the day's noise.
    own_scale = spec.beta * sigma
    gap = 0.7 * spec.beta * jump + 0.35 * own_scale * draws[_GAP]
    open_ = prev_close * (1.0 - ex_fraction) * np.exp(gap)
    high, low = _envelope(open_, close, 0.5 * own_scale, draws[_HIGH], draws[_LOW])
    volume = spec.volume * volume_scale * np.exp(0.25 * draws[_VOLUME])
    etf = _Bars.cents(
        spec.symbol,
        KIND_UNDERLYING,
        open_,
        high,
        low,
        close,
        np.round(volume),
        np.round(dividend, 4),
    )
    return etf, index


def _future(
    etf: _Bars, index: F64, volume: F64, spec: UnderlyingSpec, days_to_expiry: F64, rate: float
) -> _Bars:
    """The front-month future: index × carry to the next quarterly expiry, rounded to ticks.

    Its day has the ETF's shape (open, high, low in proportion to the close). Not
    back-adjusted, like a real continuous front-month series: it jumps on roll days.
    """
    assert etf.open is not None and etf.high is not None and etf.low is not None
    close = index * np.exp((rate - spec.dividend_yield) * days_to_expiry / 365.0)

    def ticks(ratio: F64 | float) -> F64:
        in_ticks = np.round(close * ratio / spec.future_tick)
        return np.asarray(np.round(in_ticks * spec.future_tick, 6), dtype=np.float64)

    return _Bars(
        spec.future,
        KIND_FUTURE,
        close=ticks(1.0),
        open=ticks(etf.open / etf.close),
        high=ticks(etf.high / etf.close),
        low=ticks(etf.low / etf.close),
        volume=np.round(volume),
    )


def _indices(
    shared: F64,
    log_vix: F64,
    log_vix0: float,
    vol_of_vol: F64,
    path: npt.NDArray[np.int64],
    p: GeneratorParams,
) -> list[_Bars]:
    """VIX, VIX9D, VIX3M (with open/high/low), VVIX and SKEW (close only, like CBOE's files)."""
    vix = np.exp(log_vix)
    # The short end overshoots the VIX away from the anchor and the long end lags it: contango
    # when calm, inverted in stress. Small independent noise keeps the curve from being rigid.
    vix9d = np.maximum(vix + p.vix9d_tilt * (vix - p.term_anchor), 0.5 * vix)
    vix9d *= np.exp(0.025 * shared[_VIX9D])
    vix3m = (vix + p.vix3m_tilt * (p.term_anchor - vix)) * np.exp(0.01 * shared[_VIX3M])
    bars = []
    for i, (symbol, close, scale) in enumerate(
        (("VIX", vix, 1.0), ("VIX9D", vix9d, 1.3), ("VIX3M", vix3m, 0.6))
    ):
        row = _INDEX_OHLC + 3 * i
        prev = np.concatenate([[close[0]], close[:-1]])
        open_ = prev * np.exp(0.35 * scale * vol_of_vol * shared[row])
        high, low = _envelope(open_, close, 0.5 * scale * vol_of_vol, *shared[row + 1 : row + 3])
        bars.append(_Bars.cents(symbol, KIND_INDEX, open_, high, low, close))
    # VVIX tracks how much the VIX has been moving lately (an EWMA of squared log changes).
    change = np.diff(log_vix, prepend=log_vix0)
    alpha = 2.0 / (p.vvix_span + 1.0)
    vov0 = p.regimes[path[0]].vol_of_vol
    ewma = _ar1(np.full_like(change, 1.0 - alpha), alpha * change**2, vov0 * vov0)
    vol_of_vix = np.sqrt(ewma * SESSIONS_PER_YEAR) * 100.0
    vvix: F64 = (p.vvix_base + p.vvix_per_vol_of_vol * vol_of_vix) * np.exp(0.02 * shared[_VVIX])
    # SKEW drifts toward the regime's level: high when calm, lower in a sell-off.
    k = p.skew_reversion
    skew_level = regime_column(path, p.regimes, "skew_level")
    skew = _ar1(
        np.full_like(change, 1.0 - k),
        k * skew_level + p.skew_noise * shared[_SKEW],
        float(skew_level[0]),
    )
    # Bounded to the ranges the real indices keep to (VVIX 75-170, SKEW 115-150).
    vvix = np.minimum(np.maximum(vvix, 75.0), 170.0)
    skew = np.minimum(np.maximum(skew, 115.0), 150.0)
    bars.append(_Bars("VVIX", KIND_INDEX, close=np.round(vvix, 2)))
    bars.append(_Bars("SKEW", KIND_INDEX, close=np.round(skew, 2)))
    return bars


def _envelope(open_: F64, close: F64, scale: F64, z_high: F64, z_low: F64) -> tuple[F64, F64]:
    """High and low around the open and close: low <= min(open, close), high >= max."""
    high = np.maximum(open_, close) * np.exp(scale * np.abs(z_high))
    low = np.minimum(open_, close) * np.exp(-scale * np.abs(z_low))
    return high, low


def _ar1(phi: F64, inputs: F64, y0: float, floor: float = -math.inf) -> F64:
    """y[t] = max(phi[t] · y[t-1] + inputs[t], floor) with y[-1] = y0."""
    out = [0.0] * len(phi)
    y = y0
    # A loop over sessions (each value needs the last); ~3,300 steps take about a millisecond.
    for t, (a, b) in enumerate(zip(phi.tolist(), inputs.tolist(), strict=True)):
        y = max(a * y + b, floor)
        out[t] = y
    return np.asarray(out, dtype=np.float64)


def _quarterly_third_fridays(sessions: Dates) -> Dates:
    """Third Fridays of Mar/Jun/Sep/Dec from the year before the first session to after the last.

    They are the ETFs' dividend dates and the futures' expiries.
    """
    first = int(sessions[0].astype("datetime64[Y]").astype(int)) + 1970 - 1
    last = int(sessions[-1].astype("datetime64[Y]").astype(int)) + 1970 + 1
    fridays = []
    for year in range(first, last + 1):
        for month in (3, 6, 9, 12):
            day1 = date(year, month, 1)
            fridays.append(day1 + timedelta(days=(4 - day1.weekday()) % 7 + 14))
    return np.array(fridays, dtype="datetime64[D]")


def _ex_dates(sessions: Dates, fridays: Dates, offset: int) -> npt.NDArray[np.intp]:
    """Session index of each ex-date: `offset` sessions after the third Friday's session.

    When the Friday is a holiday (Good Friday) the session before it stands in.
    """
    inside = fridays[(fridays >= sessions[0]) & (fridays <= sessions[-1])]
    index = np.searchsorted(sessions, inside, side="right") - 1 + offset
    return np.asarray(index[index < len(sessions)], dtype=np.intp)


def _to_table(bars: list[_Bars], sessions: Dates, source: str) -> pa.Table:
    n = len(sessions)
    rows = n * len(bars)

    def column(name: str) -> pa.Array:
        parts = [getattr(b, name) for b in bars]
        values = np.concatenate([np.zeros(n) if v is None else v for v in parts])
        is_null = np.repeat([v is None for v in parts], n)
        return pa.array(values, type=pa.float64(), mask=is_null)

    table = pa.Table.from_arrays(
        [
            pa.array(np.repeat([b.symbol for b in bars], n), type=pa.string()),
            pa.array(np.repeat([b.kind for b in bars], n), type=pa.string()),
            pa.array(np.tile(sessions, len(bars)), type=pa.date32()),
            column("open"),
            column("high"),
            column("low"),
            column("close"),
            column("volume"),
            column("dividend"),
            pa.array([source] * rows, type=pa.string()),
        ],
        schema=DAILY_BARS,
    )
    table.validate(full=True)
    return table
