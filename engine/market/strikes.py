"""Listed strike grid around spot: fine steps near the money, coarser ones further out.

Each symbol has a few tiers (`STRIKE_TIERS`): strikes are multiples of a tier's step within
that tier's moneyness |K/S - 1|; the grid is the union of the tiers, clipped to the requested
range. The steps follow today's listings as seen in the real chains (SPY: $1 to about +/-12 %,
$5 beyond; SPX: 5 points to about +/-8 %, 25 beyond). Unknown symbols get steps scaled to the
spot (0.25 % near, 1.25 % far, rounded to 1-2.5-5 numbers), which gives SPY-like grids for any
price level. One grid serves every expiry of a chain (real dailies list fewer far strikes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class StrikeGridError(ValueError):
    """Spot or range the grid cannot be built from."""


@dataclass(frozen=True)
class StrikeTier:
    """Strikes every `step` (price) while |K/S - 1| <= max_moneyness (fraction)."""

    max_moneyness: float
    step: float


STRIKE_TIERS: dict[str, tuple[StrikeTier, ...]] = {
    "SPY": (StrikeTier(0.12, 1.0), StrikeTier(math.inf, 5.0)),
    "QQQ": (StrikeTier(0.12, 1.0), StrikeTier(math.inf, 5.0)),
    "IWM": (StrikeTier(0.12, 1.0), StrikeTier(math.inf, 5.0)),
    "SPX": (StrikeTier(0.08, 5.0), StrikeTier(math.inf, 25.0)),
    "RUT": (StrikeTier(0.08, 5.0), StrikeTier(math.inf, 25.0)),
}
DEFAULT_NEAR = (0.10, 0.0025)  # within 10 % of spot: steps of about 0.25 % of spot
DEFAULT_FAR_STEP = 0.0125  # beyond: about 1.25 % of spot
MAX_STRIKES = 5000  # a guard against absurd ranges, not a listing rule


def nice_step(x: float) -> float:
    """The largest of 1, 2.5, 5 x 10^n not above x (at least 0.5): a listable strike step."""
    if not (x > 0 and math.isfinite(x)):
        raise StrikeGridError(f"strike step must be positive and finite, got {x}")
    power = 10.0 ** math.floor(math.log10(x))
    for mult in (5.0, 2.5, 1.0):
        if mult * power <= x * (1 + 1e-12):
            return max(mult * power, 0.5)
    return max(power, 0.5)  # pragma: no cover - mult 1.0 always fits


def strike_tiers(symbol: str, spot: float) -> tuple[StrikeTier, ...]:
    """The symbol's tiers, or spot-scaled default tiers for an unknown symbol."""
    tiers = STRIKE_TIERS.get(symbol.upper())
    if tiers is not None:
        return tiers
    near, frac = DEFAULT_NEAR
    return (
        StrikeTier(near, nice_step(frac * spot)),
        StrikeTier(math.inf, nice_step(DEFAULT_FAR_STEP * spot)),
    )


def strike_grid(symbol: str, spot: float, strike_range: float = 0.20) -> FloatArray:
    """Sorted distinct strikes (price) with |K/S - 1| <= strike_range, on the listed grid.

    The at-the-money strike nearest spot is always included; so are the grid strikes just
    inside each end of the range. Raises StrikeGridError for a non-positive spot or range.
    """
    if not (spot > 0 and math.isfinite(spot)):
        raise StrikeGridError(f"spot must be positive and finite, got {spot}")
    if not (0 < strike_range < 1):
        raise StrikeGridError(f"strike_range must be in (0, 1), got {strike_range}")
    lo_all, hi_all = spot * (1 - strike_range), spot * (1 + strike_range)
    parts: list[FloatArray] = []
    inner = 0.0
    for tier in strike_tiers(symbol, spot):
        reach = min(tier.max_moneyness, strike_range)
        lo = math.ceil(spot * (1 - reach) / tier.step) * tier.step
        hi = math.floor(spot * (1 + reach) / tier.step) * tier.step
        count = round((hi - lo) / tier.step) + 1
        if count > MAX_STRIKES:
            raise StrikeGridError(
                f"{symbol}: {count} strikes of step {tier.step} for spot {spot}: range too wide"
            )
        if count > 0:
            grid = np.asarray(lo + tier.step * np.arange(count), dtype=np.float64)
            # A coarser tier only adds strikes outside the finer ones' reach.
            parts.append(grid[np.abs(grid / spot - 1) >= inner - 1e-12])
        inner = reach
        if reach >= strike_range:
            break
    strikes: FloatArray = np.unique(np.round(np.concatenate(parts), 6)) if parts else np.empty(0)
    strikes = strikes[(strikes >= lo_all - 1e-9) & (strikes <= hi_all + 1e-9) & (strikes > 0)]
    if strikes.size == 0:  # a range narrower than one step: the strike nearest spot
        step = strike_tiers(symbol, spot)[0].step
        strikes = np.array([max(round(spot / step), 1) * step], dtype=np.float64)
    return strikes
