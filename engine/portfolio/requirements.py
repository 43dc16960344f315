"""Buying power of the book's positions and of proposed structures, via engine.execution.margin.

The margin rules live with the broker simulation (they are what a broker charges); this
module only translates the book's and the strategy selector's shapes into margin legs.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.dsl.strategy import LegChoice
from engine.execution.margin import MarginLeg, margin_usd
from engine.execution.orders import Contract
from engine.portfolio.book import HeldPosition, PositionMark
from engine.state.snapshot import Snapshot


def position_margin(held: HeldPosition, mark: PositionMark, snap: Snapshot) -> float:
    """USD of buying power the position uses now (marks at mid, or model/intrinsic)."""
    units = 1 if held.is_hedge else held.quantity
    legs = [
        MarginLeg(hl.contract, hl.per_unit * units, m.mid if m is not None else 0.0)
        for hl, m in mark.legs
    ]
    u = snap.underlyings.get(held.symbol)
    return margin_usd(legs, u.price if u is not None else None)


def max_loss_per_unit(symbol: str, legs: Sequence[LegChoice], spot: float) -> float:
    """USD of buying power one structure of `legs` needs, valued at mid: its max loss when
    defined-risk, the Reg-T naked requirement otherwise."""
    margin_legs = [
        MarginLeg(
            Contract(
                symbol=symbol,
                kind="option",
                expiry=lc.expiry,
                strike=lc.strike,
                is_call=lc.is_call,
            ),
            (1 if lc.side == "buy" else -1) * lc.ratio,
            lc.mid,
        )
        for lc in legs
    ]
    return margin_usd(margin_legs, spot)
