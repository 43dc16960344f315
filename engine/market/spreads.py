"""Bid/ask model: a width in vol points times vega, plus a hedge cost, on the tick grid.

Width before rounding (price per share), for an option of model value `theo`:

    width = vol_points * (1 + wing * x^2) * (T / 30d)^-term_power * (VIX / 20)^vix_power * vega
            + itm_bps / 10^4 * spot * max(2 |delta| - 1, 0)

with vega per vol point and x = ln(K/F) / (iv sqrt(T)), the strike's distance from the forward
in standard deviations. Market makers quote a volatility width, so the dollar width follows
vega; it widens away from the money (wing), for short expiries whose vega is small (term_power),
in volatile markets (vix_power, a prior: the calibration days span VIX 12.8-17.2 only). In-the-
money options are quoted wider than their vega says (little volume; the quote also carries the
delta hedge): itm_bps of spot for a deep ITM option, from nothing at 50 delta.

Rounding to the tick: n = max(min_ticks, round(width / tick)) ticks, centred on theo with the
bid on the grid, so ask - bid = n ticks >= one tick (0.01 at least), mid is within half a tick
of theo and theo lies inside [bid, ask]. A bid that would be negative is 0 and the ask stays
n ticks above it. Quotes are never crossed, negative or NaN for finite inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

T30 = 30.0 / 365.0
MIN_T = 1.0 / 365.0  # the term factor stops growing below one day
VIX_REF = 20.0


@dataclass(frozen=True)
class SpreadParams:
    """Width model of one symbol (see the module docstring); ticks in price per share."""

    vol_points: float  # vol points of vega at the money, 30 days, VIX 20
    wing: float  # relative widening per x^2
    term_power: float  # vol-point width ~ (T / 30d)^-term_power
    vix_power: float  # vol-point width ~ (VIX / 20)^vix_power (prior)
    itm_bps: float  # basis points of spot added at |delta| = 1, linear from |delta| = 0.5
    tick: float = 0.01  # tick below tick_break
    tick_above: float = 0.01  # tick at or above tick_break
    tick_break: float = 3.0  # price where the tick changes (SPX: 0.05 below 3, 0.10 above)
    min_ticks: int = 1

    def __post_init__(self) -> None:
        if not (self.tick >= 0.01 and self.tick_above >= 0.01 and self.min_ticks >= 1):
            raise ValueError(f"ticks must be >= 0.01 and min_ticks >= 1: {self}")


# vol_points and term_power fitted on the real chains' OTM quotes, 1-100 days (median relative
# width per expiry, docs/market/synthetic_chains.md); wing is near zero in that fit (the
# relative width already grows away from the money through vega and the tick) and is kept
# small; itm_bps from the ITM widths. Penny-pilot ETFs quote in cents everywhere, SPX in 0.05
# below $3 and 0.10 above.
SPREADS: dict[str, SpreadParams] = {
    "SPY": SpreadParams(vol_points=0.06, wing=0.02, term_power=0.3, vix_power=0.5, itm_bps=7.0),
    "SPX": SpreadParams(
        vol_points=0.17, wing=0.02, term_power=0.15, vix_power=0.5, itm_bps=16.0,
        tick=0.05, tick_above=0.10,
    ),
}  # fmt: skip
SPREADS["QQQ"] = SPREADS["SPY"]
SPREADS["IWM"] = SPREADS["SPY"]
SPREADS["RUT"] = SPREADS["SPX"]
# Less liquid underlyings: about twice SPY's width.
DEFAULT_SPREAD = SpreadParams(
    vol_points=0.12, wing=0.05, term_power=0.3, vix_power=0.5, itm_bps=14.0
)


def spread_params(symbol: str) -> SpreadParams:
    """The symbol's width model, or DEFAULT_SPREAD."""
    return SPREADS.get(symbol.upper(), DEFAULT_SPREAD)


def model_width(
    vega_per_point: FloatArray,
    delta: FloatArray,
    std_moneyness: FloatArray,
    years: FloatArray,
    spot: float,
    vix: float,
    params: SpreadParams,
) -> FloatArray:
    """The quoted width (price per share) before tick rounding; inputs broadcast."""
    term = (np.maximum(years, MIN_T) / T30) ** -params.term_power
    level = (vix / VIX_REF) ** params.vix_power
    vol_width = params.vol_points * (1.0 + params.wing * std_moneyness**2) * term * level
    hedge = params.itm_bps * 1e-4 * spot * np.maximum(2.0 * np.abs(delta) - 1.0, 0.0)
    return np.asarray(vol_width * np.abs(vega_per_point) + hedge, dtype=np.float64)


def quotes(
    theo: FloatArray, width: FloatArray, params: SpreadParams
) -> tuple[FloatArray, FloatArray]:
    """Bid and ask on the tick grid around the model value `theo` (see the module docstring)."""
    tick = np.where(theo < params.tick_break, params.tick, params.tick_above)
    n = np.maximum(np.rint(width / tick), params.min_ticks)
    bid_ticks = np.rint(theo / tick - n / 2.0)
    bid = np.maximum(bid_ticks, 0.0) * tick
    ask = bid + n * tick
    # Round to 1/10000: tick multiples are exact decimals, their float products are not.
    return np.round(bid, 4), np.round(ask, 4)
