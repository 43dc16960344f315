"""Buying power a position uses: max loss for defined risk, Reg-T rules otherwise (USD).

Conventions. A position's requirement is held against the account's net liquidation value,
which already counts every leg at its mark: buying power available = net liq − the sum of the
requirements. All amounts are USD for the whole position.

- Options, defined risk (every short covered by a long of the same right that expires no
  earlier): the worst loss from the legs' current value to expiry, value − min payoff. The
  payoff at expiry is piecewise linear in the underlying's price with kinks at the strikes, so
  its minimum over [0, ∞) is at 0 or at a strike, unless it falls without bound above the top
  strike (more short calls than long ones). A credit vertical uses width − credit, an iron
  condor its wider side − credit, a long option or debit spread what it is worth (paid in
  full). Legs of several expiries are all valued at intrinsic at expiry, conservative for a
  calendar whose long leg outlives the short one.
- Options, naked (uncovered short calls, or more short puts than long puts): CBOE/Reg-T naked
  margin per uncovered contract, premium + max(r·S − out-of-the-money amount, 10%·S for calls
  or 10%·strike for puts) × 100, with r = 20% (15% on broad-based indices). The uncovered
  contracts are the shorts with the largest requirement; the covered rest of that side is
  charged as a defined-risk spread. With both sides at risk (a strangle) the larger side is
  charged plus the premium of the other side's shorts, as only one side can lose at expiry.
- Shares: 50% of their value (Reg-T initial margin, long or short). The maintenance level
  (25%) would let the engine open more than a broker allows, so the initial level is kept.
  Shares do not cover short calls here (a covered call is charged as a naked call plus 50%):
  conservative, and the engine does not open covered calls.
- Index futures: a fixed initial margin per contract, FUTURES_INITIAL_MARGIN_USD (CME levels of
  2024-25; they were lower in the past and change with volatility).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from engine.execution.orders import Contract
from engine.execution.settlement import INDEX_UNDERLYINGS
from engine.state.snapshot import CONTRACT_MULTIPLIER

FloatArray = npt.NDArray[np.float64]

STOCK_MARGIN_RATE = 0.50  # fraction of the shares' value (Reg-T initial)
FUTURES_INITIAL_MARGIN_USD = {"ES": 12_000.0, "NQ": 17_000.0, "RTY": 6_000.0}  # per contract
NAKED_RATE = 0.20  # fraction of the underlying's price, equity and ETF options
NAKED_RATE_INDEX = 0.15  # broad-based index options
NAKED_MIN_RATE = 0.10  # of the price (calls) or of the strike (puts)
_NO_DATE = date.min  # a leg without an expiry never covers a short


class MarginError(ValueError):
    """A position whose requirement cannot be computed (an unknown future, a missing price)."""


@dataclass(frozen=True, slots=True)
class MarginLeg:
    """One contract of a position, as margin sees it."""

    contract: Contract
    quantity: int  # signed: contracts (options, futures) or shares
    mark: float  # per share (per index point for futures): what the leg is worth now


def expiry_payoff_usd(legs: Sequence[MarginLeg], prices: npt.ArrayLike) -> FloatArray:
    """The option legs' value at expiry (USD) for each underlying price; other legs ignored."""
    opts = [leg for leg in legs if leg.contract.kind == "option"]
    p = np.atleast_1d(np.asarray(prices, dtype=np.float64))[:, None]
    if not opts:
        return np.zeros(p.shape[0])
    strike = np.array([float(leg.contract.strike or 0.0) for leg in opts])
    call = np.array([bool(leg.contract.is_call) for leg in opts])
    size = np.array([leg.quantity * leg.contract.multiplier for leg in opts], dtype=np.float64)
    intrinsic = np.where(call, np.maximum(p - strike, 0.0), np.maximum(strike - p, 0.0))
    return np.asarray(intrinsic @ size, dtype=np.float64)


def min_expiry_payoff_usd(legs: Sequence[MarginLeg]) -> float:
    """The lowest payoff at expiry over prices in [0, ∞); -inf when it falls without bound."""
    opts = [leg for leg in legs if leg.contract.kind == "option"]
    if not opts:
        return 0.0
    if sum(leg.quantity for leg in opts if leg.contract.is_call) < 0:
        return -math.inf  # more short calls than long: the payoff falls forever above the top
    # A few legs at a few points: plain Python beats NumPy's per-call overhead here.
    # Options only, so the multiplier is CONTRACT_MULTIPLIER.
    terms = [
        (
            float(leg.contract.strike or 0.0),
            bool(leg.contract.is_call),
            leg.quantity * CONTRACT_MULTIPLIER,
        )
        for leg in opts
    ]
    return min(
        sum(n * (max(p - k, 0.0) if call else max(k - p, 0.0)) for k, call, n in terms)
        for p in (0.0, *(k for k, _, _ in terms))
    )


def value_usd(legs: Sequence[MarginLeg]) -> float:
    """What the legs are worth now at their marks (USD, shorts negative)."""
    return float(sum(leg.quantity * leg.mark * leg.contract.multiplier for leg in legs))


def max_loss_usd(legs: Sequence[MarginLeg]) -> float:
    """Worst loss of the option legs from their current value to expiry (USD >= 0; inf if none).

    Finite for naked puts too (the underlying falling to 0); brokers still charge those with
    the naked rule, see `option_margin_usd`.
    """
    opts = [leg for leg in legs if leg.contract.kind == "option"]
    return max(0.0, value_usd(opts) - min_expiry_payoff_usd(opts))


def naked_requirement_usd(leg: MarginLeg, underlying_price: float) -> float:
    """Reg-T requirement of one uncovered short option contract, premium included (USD)."""
    c = leg.contract
    strike = float(c.strike or 0.0)
    s = underlying_price
    rate = NAKED_RATE_INDEX if c.symbol in INDEX_UNDERLYINGS else NAKED_RATE
    if c.is_call:
        per_share = max(rate * s - max(0.0, strike - s), NAKED_MIN_RATE * s)
    else:
        per_share = max(rate * s - max(0.0, s - strike), NAKED_MIN_RATE * strike)
    return (max(leg.mark, 0.0) + per_share) * c.multiplier


def _uncovered(side: Sequence[MarginLeg]) -> int:
    """Short contracts of one right not covered by longs that expire no earlier."""
    shorts = [leg for leg in side if leg.quantity < 0]
    if not shorts:
        return 0
    last_short = max(leg.contract.expiry or _NO_DATE for leg in shorts)
    cover = sum(
        leg.quantity
        for leg in side
        if leg.quantity > 0 and (leg.contract.expiry or _NO_DATE) >= last_short
    )
    return max(0, -sum(leg.quantity for leg in shorts) - cover)


def _defined_requirement(legs: Sequence[MarginLeg]) -> float:
    return max(0.0, value_usd(legs) - min_expiry_payoff_usd(legs)) if legs else 0.0


def _side_requirement(side: list[MarginLeg], uncovered: int, underlying_price: float) -> float:
    """One right's requirement: naked rule on the uncovered shorts, max loss on the rest."""
    if uncovered == 0:
        return _defined_requirement(side)
    # The uncovered contracts are taken from the shorts that cost the most as naked ones.
    quantities = [leg.quantity for leg in side]
    ranked = sorted(
        (i for i, leg in enumerate(side) if leg.quantity < 0),
        key=lambda i: (-naked_requirement_usd(side[i], underlying_price), side[i].contract.key),
    )
    naked, left = 0.0, uncovered
    for i in ranked:
        take = min(left, -quantities[i])
        naked += take * naked_requirement_usd(side[i], underlying_price)
        quantities[i] += take
        left -= take
        if left == 0:
            break
    rest = [
        MarginLeg(leg.contract, q, leg.mark)
        for leg, q in zip(side, quantities, strict=True)
        if q != 0
    ]
    return naked + _defined_requirement(rest)


def option_margin_usd(legs: Sequence[MarginLeg], underlying_price: float | None) -> float:
    """Requirement of a position's option legs (one underlying), per the module docstring.

    `underlying_price` (per share) is read only when some short is uncovered.
    """
    opts = [leg for leg in legs if leg.contract.kind == "option" and leg.quantity != 0]
    puts = [leg for leg in opts if not leg.contract.is_call]
    calls = [leg for leg in opts if leg.contract.is_call]
    open_puts, open_calls = _uncovered(puts), _uncovered(calls)
    if open_puts == 0 and open_calls == 0:
        return _defined_requirement(opts)
    if underlying_price is None or not math.isfinite(underlying_price):
        raise MarginError(
            f"margin of naked {opts[0].contract.symbol} options needs the underlying's price"
        )
    put_req = _side_requirement(puts, open_puts, underlying_price)
    call_req = _side_requirement(calls, open_calls, underlying_price)
    other = calls if put_req >= call_req else puts
    other_premium = -value_usd([leg for leg in other if leg.quantity < 0])
    return max(put_req, call_req) + other_premium


def margin_usd(legs: Sequence[MarginLeg], underlying_price: float | None) -> float:
    """The whole position's requirement: options, shares and futures (USD >= 0).

    `underlying_price` (price per share) is needed only for naked options (MarginError
    without it).
    """
    total = option_margin_usd(legs, underlying_price)
    for leg in legs:
        if leg.contract.kind == "stock":
            total += STOCK_MARGIN_RATE * abs(leg.quantity * leg.mark)
        elif leg.contract.kind == "future":
            per_contract = FUTURES_INITIAL_MARGIN_USD.get(leg.contract.symbol)
            if per_contract is None:
                known = ", ".join(sorted(FUTURES_INITIAL_MARGIN_USD))
                raise MarginError(
                    f"no initial margin for future {leg.contract.symbol!r}; known: {known}"
                )
            total += per_contract * abs(leg.quantity)
    return total
