"""One synthetic option chain at one tick: listed expiries x strike grid, priced off the surface.

`synth_chain` takes a timestamp and a spot (a daily chain uses the 16:00 close; an intraday
tick its own time and price), lists the expiries (`expiries`) and strikes (`strikes`), reads
the IV of every contract from the surface (`surface`), prices it and its Greeks with the BSM
kernel (European, continuous rate and dividend yield, T to the 16:00 New York close in
ACT/365 years, as `engine.state.enrich` does) and quotes it (`spreads`). The chain's iv
column is the model IV, so its Greeks are exact for the model; mids differ from the model
value by at most half a tick. Everything is vectorised and deterministic: no randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from engine.kernels.bsm import bsm_greeks
from engine.market.expiries import listed_expiries
from engine.market.spreads import model_width, quotes, spread_params
from engine.market.strikes import strike_grid
from engine.market.surface import DEFAULT, SurfaceParams, VolIndices, implied_vols
from engine.state.enrich import DAYS_PER_YEAR, VOL_POINTS, year_fractions
from engine.state.snapshot import EXCHANGE_TZ, Chain

FloatArray = npt.NDArray[np.float64]

# The VIX family measures the S&P 500; other underlyings scale it (rough long-run ratios of
# VXN and RVX to VIX). A caller with the symbol's own index passes vol_scale=1.0.
VOL_SCALE: dict[str, float] = {"SPY": 1.0, "SPX": 1.0, "QQQ": 1.25, "IWM": 1.35, "RUT": 1.35}
DEFAULT_VOL_SCALE = 1.3
TRAILING_DAYS = 365  # window of the trailing dividend yield


class SynthChainError(ValueError):
    """Bad input to the synthetic chain builder (spot, time, spec, output path)."""


@dataclass(frozen=True)
class ChainSpec:
    """What to list and the market inputs besides spot and the indices.

    max_days: calendar days of expiries from asof.  strike_range: fraction of spot either side.
    rate: flat continuously compounded risk-free rate per year.  vol_scale: multiplier of the
    index levels for this symbol (None: VOL_SCALE by symbol).  surface: the surface constants.
    """

    max_days: int = 70
    strike_range: float = 0.20
    rate: float = 0.04
    vol_scale: float | None = None
    surface: SurfaceParams = DEFAULT

    def __post_init__(self) -> None:
        if not (isinstance(self.max_days, int) and 0 <= self.max_days <= 1100):
            raise SynthChainError(f"max_days must be an integer 0..1100, got {self.max_days!r}")
        if not (0 < self.strike_range < 1):
            raise SynthChainError(f"strike_range must be in (0, 1), got {self.strike_range!r}")
        if not (math.isfinite(self.rate) and -0.5 < self.rate < 1):
            raise SynthChainError(f"rate must be a finite yearly rate, got {self.rate!r}")
        if self.vol_scale is not None and not (0 < self.vol_scale < 20):
            raise SynthChainError(f"vol_scale must be positive, got {self.vol_scale!r}")


def _scaled(indices: VolIndices, scale: float) -> VolIndices:
    if scale == 1.0:
        return indices
    return replace(
        indices,
        vix=indices.vix * scale,
        vix9d=indices.vix9d * scale if indices.vix9d is not None else None,
        vix3m=indices.vix3m * scale if indices.vix3m is not None else None,
    )


def symbol_indices(symbol: str, indices: VolIndices, spec: ChainSpec) -> VolIndices:
    """The index levels scaled to this symbol's volatility (SPX-based VIX x VOL_SCALE)."""
    scale = spec.vol_scale if spec.vol_scale is not None else VOL_SCALE.get(symbol.upper())
    return _scaled(indices, scale if scale is not None else DEFAULT_VOL_SCALE)


def synth_chain(
    symbol: str,
    asof: datetime,
    spot: float,
    indices: VolIndices,
    dividend_yield: float = 0.0,
    spec: ChainSpec = ChainSpec(),  # frozen, so one shared default is safe
) -> Chain:
    """The listed chain of `symbol` at `asof` (tz-aware), enriched: bid, ask, iv and Greeks.

    Rows are ordered by expiry, strike, then call before put. Expiries whose 16:00 close is
    not after `asof` are left out. Units as `Chain`: vega per vol point, theta per calendar
    day. Raises SynthChainError for a naive asof, a non-positive spot or a bad yield.
    """
    if asof.tzinfo is None or asof.utcoffset() is None:
        raise SynthChainError(f"asof must be timezone-aware (America/New_York), got {asof}")
    if not (spot > 0 and math.isfinite(spot)):
        raise SynthChainError(f"spot must be positive and finite, got {spot!r}")
    if not (math.isfinite(dividend_yield) and -0.5 < dividend_yield < 1):
        raise SynthChainError(f"dividend_yield must be a finite yearly yield: {dividend_yield!r}")
    local_day = asof.astimezone(EXCHANGE_TZ).date()
    days = np.array(listed_expiries(local_day, spec.max_days, symbol), dtype="datetime64[D]")
    t_all = year_fractions(days, asof) if days.size else np.empty(0)
    live = t_all > 0
    days, t = days[live], t_all[live]
    strikes = strike_grid(symbol, spot, spec.strike_range)
    idx = symbol_indices(symbol, indices, spec)

    # Grid (expiry x strike), then two contracts per node: the call, then the put.
    r, q = spec.rate, dividend_yield
    forward = spot * np.exp((r - q) * t)
    k_log = np.log(strikes[None, :] / forward[:, None])
    t_grid = np.broadcast_to(t[:, None], k_log.shape)
    iv_grid = implied_vols(idx, k_log, t_grid, spec.surface)
    n = k_log.size
    expiry = np.repeat(np.broadcast_to(days[:, None], k_log.shape).ravel(), 2)
    strike = np.repeat(np.broadcast_to(strikes[None, :], k_log.shape).ravel(), 2)
    years = np.repeat(t_grid.ravel(), 2)
    iv = np.repeat(iv_grid.ravel(), 2)
    x = np.repeat((k_log / (iv_grid * np.sqrt(t_grid))).ravel(), 2)
    is_call = np.tile(np.array([True, False]), n)

    g = bsm_greeks(is_call, spot, strike, years, r, q, iv)
    vega = g.vega / VOL_POINTS
    sp = spread_params(symbol)
    width = model_width(vega, g.delta, x, years, spot, idx.vix, sp)
    bid, ask = quotes(g.price, width, sp)
    return Chain.from_columns(
        symbol,
        expiry,
        strike,
        is_call,
        bid=bid,
        ask=ask,
        iv=iv,
        delta=g.delta,
        gamma=g.gamma,
        vega=vega,
        theta=g.theta / DAYS_PER_YEAR,
    )


CHAIN_COLUMNS = pa.schema(
    [
        pa.field("expiry", pa.date32(), nullable=False),
        pa.field("strike", pa.float64(), nullable=False),  # price
        pa.field("right", pa.string(), nullable=False),  # "C" or "P"
        pa.field("bid", pa.float64(), nullable=False),  # price per share
        pa.field("ask", pa.float64(), nullable=False),
        pa.field("mid", pa.float64(), nullable=False),
        pa.field("iv", pa.float64()),  # fraction
        pa.field("delta", pa.float64()),  # per share
        pa.field("gamma", pa.float64()),  # per $1 of the underlying
        pa.field("theta", pa.float64()),  # price per calendar day
        pa.field("vega", pa.float64()),  # price per vol point
        pa.field("underlying_price", pa.float64(), nullable=False),
    ]
)


def chain_table(chain: Chain, spot: float) -> pa.Table:
    """The chain as an Arrow table (CHAIN_COLUMNS), for `v6 synth-chain --out`."""
    n = len(chain)
    cols = {
        "expiry": pa.array(chain.expiry.astype("datetime64[D]"), type=pa.date32()),
        "strike": chain.strike,
        "right": np.where(chain.is_call, "C", "P"),
        "bid": chain.bid,
        "ask": chain.ask,
        "mid": np.round(0.5 * (chain.bid + chain.ask), 6),
        "iv": chain.iv,
        "delta": chain.delta,
        "gamma": chain.gamma,
        "theta": chain.theta,
        "vega": chain.vega,
        "underlying_price": np.full(n, float(spot)),
    }
    return pa.table(
        {f.name: pa.array(cols[f.name], type=f.type) for f in CHAIN_COLUMNS},
        schema=CHAIN_COLUMNS,
    )


def write_chain(table: pa.Table, out: Path) -> None:
    """Write `table` to `out` as CSV or Parquet (by suffix), atomically: all or nothing."""
    import os
    import tempfile

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise SynthChainError(f"{out}: unknown output format {out.suffix!r}; use .csv or .parquet")
    if not out.parent.is_dir():
        raise SynthChainError(f"{out}: folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        if suffix == ".csv":
            pacsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise SynthChainError(f"{out}: cannot write: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def trailing_dividend_yield(
    dates: npt.ArrayLike, closes: npt.ArrayLike, dividends: npt.ArrayLike, asof: date
) -> float:
    """Trailing-12-month cash dividends / spot: ex-dates in (asof - 365 days, asof], spot the
    last close on or before asof (fraction per year; used as the continuous yield q).

    dates: session dates (anything numpy reads as datetime64[D]); dividends: cash per share on
    its ex-date, 0 (or NaN) otherwise. Raises SynthChainError without a positive close by asof.
    """
    d = np.asarray(dates, dtype="datetime64[D]")
    c = np.asarray(closes, dtype=np.float64)
    dv = np.nan_to_num(np.asarray(dividends, dtype=np.float64), nan=0.0)
    if not (d.shape == c.shape == dv.shape and d.ndim == 1):
        raise SynthChainError(
            f"dates, closes and dividends must be 1-D of one length: {d.shape}, {c.shape}, "
            f"{dv.shape}"
        )
    a = np.datetime64(asof, "D")
    upto = (d <= a) & np.isfinite(c) & (c > 0)
    if not upto.any():
        raise SynthChainError(f"no positive close on or before {asof}")
    spot = float(c[upto][np.argmax(d[upto])])
    window = (d > a - np.timedelta64(TRAILING_DAYS, "D")) & (d <= a)
    return float(dv[window].sum()) / spot
