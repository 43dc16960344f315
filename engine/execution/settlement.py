"""Expiry settlement and early-assignment risk of held option legs: pure functions of a tick.

A leg expires at the close (16:00 New York) of its expiry date: on a tick at or after 16:00 of
that date, or on any later tick (a daily replay that skipped the close settles on the next
tick, at that tick's price). Settlement is at intrinsic value against the underlying's price
in the snapshot (for a daily snapshot, the close):

- out of the money (intrinsic 0, at the money included): expired_worthless, no cash;
- index options (SPX, NDX, RUT, XSP): cash_settled at intrinsic × 100 per contract. Monthly
  SPX options really settle on the next morning's opening prints (SOQ); the close is used;
- equity and ETF options in the money: exercised (long) or assigned (short). The shares
  delivered are taken to be closed at once at the same price, so the account receives
  intrinsic × 100 per contract and holds no shares afterwards. This ignores the overnight gap
  a real holder of the delivered shares would carry until Monday's open.

A leg whose underlying has no price on the tick stays held and is settled on the first tick
that has one. No commission is charged on settlement.

Early assignment is only flagged: a short American call in the money whose time value
(mid − intrinsic) is below the coming dividend is likely to be assigned the day before the
ex-date. The dividend is estimated as a quarter of a year's (dividend_yield × price / 4), and
only expiries within 35 days are looked at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

from engine.execution.fill_models import QuoteBook, usable_mid
from engine.execution.orders import AssignmentRisk, Contract, Settlement
from engine.state.snapshot import EXCHANGE_TZ, Snapshot

INDEX_UNDERLYINGS = frozenset({"SPX", "SPXW", "NDX", "NDXP", "RUT", "XSP"})  # cash-settled
EXPIRY_CUTOFF = time(16, 0)  # New York: options stop trading and expire at the close
EARLY_ASSIGNMENT_DAYS = 35  # calendar days to expiry within which short calls are checked
DIVIDENDS_PER_YEAR = 4

How = Literal["expired_worthless", "cash_settled", "exercised", "assigned"]


@dataclass(frozen=True, slots=True)
class Holding:
    """What the account holds of one contract in one position."""

    position_id: str
    contract: Contract
    quantity: int  # signed: contracts (options, futures) or shares; + long, - short


def expires_now(contract: Contract, tick: datetime) -> bool:
    """Whether an option held at `tick` has expired (see the module docstring)."""
    if contract.kind != "option" or contract.expiry is None:
        return False
    local = tick.astimezone(EXCHANGE_TZ)
    today = local.date()
    return contract.expiry < today or (contract.expiry == today and local.time() >= EXPIRY_CUTOFF)


def intrinsic_value(contract: Contract, underlying_price: float) -> float:
    """Per share, >= 0."""
    strike = float(contract.strike or 0.0)
    gain = underlying_price - strike if contract.is_call else strike - underlying_price
    return max(gain, 0.0)


def settle_expired(holdings: Iterable[Holding], snap: Snapshot) -> list[Settlement]:
    """Settlements of every held option leg that expires at this tick (priced, see above)."""
    out: list[Settlement] = []
    for h in holdings:
        if h.quantity == 0 or not expires_now(h.contract, snap.time):
            continue
        und = snap.underlying(h.contract.symbol)
        if und is None or und.price is None:
            continue  # settled on the first tick that prices the underlying
        s = und.price
        intrinsic = intrinsic_value(h.contract, s)
        how: How
        if intrinsic <= 0.0:
            how = "expired_worthless"
        elif h.contract.symbol in INDEX_UNDERLYINGS:
            how = "cash_settled"
        else:
            how = "exercised" if h.quantity > 0 else "assigned"
        out.append(
            Settlement(
                time=snap.time,
                position_id=h.position_id,
                contract=h.contract,
                quantity=h.quantity,
                underlying_price=s,
                intrinsic=intrinsic,
                cash_flow=h.quantity * intrinsic * h.contract.multiplier,
                how=how,
            )
        )
    return out


def assignment_risks(
    holdings: Sequence[Holding], snap: Snapshot, quotes: QuoteBook | None = None
) -> list[AssignmentRisk]:
    """Short ITM equity/ETF calls likely to be assigned early for the dividend (flag only).

    A leg without a usable quote, or whose underlying has no price or dividend yield, cannot
    be judged and is not flagged.
    """
    book = quotes if quotes is not None and quotes.snap is snap else QuoteBook(snap)
    today = snap.time.astimezone(EXCHANGE_TZ).date()
    out: list[AssignmentRisk] = []
    for h in holdings:
        c = h.contract
        if (
            h.quantity >= 0
            or c.kind != "option"
            or not c.is_call
            or c.expiry is None
            or c.symbol in INDEX_UNDERLYINGS  # European: never assigned early
            or expires_now(c, snap.time)
            or (c.expiry - today).days > EARLY_ASSIGNMENT_DAYS
        ):
            continue
        und = snap.underlying(c.symbol)
        if und is None or und.price is None or not und.dividend_yield:
            continue
        intrinsic = intrinsic_value(c, und.price)
        mid = usable_mid(book.quote(c))
        if intrinsic <= 0.0 or mid is None:
            continue
        dividend = und.dividend_yield * und.price / DIVIDENDS_PER_YEAR
        extrinsic = mid - intrinsic
        if extrinsic < dividend:
            out.append(
                AssignmentRisk(
                    time=snap.time,
                    position_id=h.position_id,
                    contract=c,
                    extrinsic=extrinsic,
                    dividend_estimate=dividend,
                )
            )
    return out
