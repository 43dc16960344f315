"""Orders, fills and broker events: the values that pass between the engine and a broker.

Prices are per share (per unit for futures), quantities in contracts (or shares, or futures),
money in USD. A combo's net price is signed like cash: positive is a credit received,
negative a debit paid. Every order is one unit: its legs fill together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from engine.state.snapshot import CONTRACT_MULTIPLIER, Snapshot

Kind = Literal["option", "stock", "future"]
Intent = Literal["open", "close", "reduce", "roll", "adjust", "hedge", "flatten"]
Status = Literal["filled", "partial", "rejected"]

FUTURE_MULTIPLIERS = {"ES": 50, "NQ": 20, "RTY": 50}  # USD per index point


@dataclass(frozen=True, slots=True)
class Contract:
    """One tradable instrument: an option on `symbol`, its shares, or an index future."""

    symbol: str
    kind: Kind = "option"
    expiry: date | None = None
    strike: float | None = None  # price
    is_call: bool | None = None

    @property
    def multiplier(self) -> int:
        if self.kind == "option":
            return CONTRACT_MULTIPLIER
        if self.kind == "future":
            return FUTURE_MULTIPLIERS[self.symbol]
        return 1

    @property
    def key(self) -> str:
        """A readable, unique name: 'SPY 2019-01-18 250P', 'SPY', 'ES'."""
        if self.kind != "option":
            return self.symbol
        right = "C" if self.is_call else "P"
        return f"{self.symbol} {self.expiry} {self.strike:g}{right}"


@dataclass(frozen=True, slots=True)
class OrderLeg:
    contract: Contract
    ratio: int  # signed per combo unit: +1 buy, -1 sell (shares: the signed share count)
    role: str  # short_put, long_call, hedge, …


@dataclass(frozen=True, slots=True)
class Order:
    """A request to trade `quantity` units of the combo `legs`, as one unit."""

    id: str  # deterministic: '<tick yyyymmddHHMM>-<seq>'
    time: datetime  # the tick that produced it
    intent: Intent
    symbol: str  # underlying
    legs: tuple[OrderLeg, ...]
    quantity: int  # combo units, > 0
    rule_id: str  # the rule (or control) that asked for it
    reason: str
    strategy: str | None = None
    position_id: str | None = None  # the position it opens, changes or closes

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"order {self.id}: quantity must be > 0, got {self.quantity}")
        if not self.legs:
            raise ValueError(f"order {self.id}: no legs")


@dataclass(frozen=True, slots=True)
class LegFill:
    contract: Contract
    ratio: int  # as in the order leg
    role: str
    price: float  # per share (per index point for futures), >= 0


@dataclass(frozen=True, slots=True)
class Fill:
    """What was traded for an order: `quantity` units (≤ the order's) at these leg prices."""

    order_id: str
    time: datetime
    quantity: int
    legs: tuple[LegFill, ...]
    commission: float  # USD, >= 0
    fees: float  # USD, >= 0 (exchange and regulatory)

    @property
    def net_price(self) -> float:
        """Per combo unit, per share: + credit received, - debit paid."""
        return sum(-lf.ratio * lf.price for lf in self.legs)

    @property
    def cash_flow(self) -> float:
        """USD into the account: premium received minus paid, minus commission and fees."""
        gross = sum(-lf.ratio * lf.price * lf.contract.multiplier for lf in self.legs)
        return gross * self.quantity - self.commission - self.fees


@dataclass(frozen=True, slots=True)
class OrderResult:
    order: Order
    status: Status
    fill: Fill | None = None
    reason: str | None = None  # why rejected, or why only partly filled


@dataclass(frozen=True, slots=True)
class Settlement:
    """An option leg that expired: settled in cash at intrinsic value, or exercised/assigned."""

    time: datetime
    position_id: str
    contract: Contract
    quantity: int  # signed contracts held at expiry
    underlying_price: float  # the settlement price
    intrinsic: float  # per share, >= 0
    cash_flow: float  # USD into the account
    how: Literal["expired_worthless", "cash_settled", "exercised", "assigned"]


@dataclass(frozen=True, slots=True)
class AssignmentRisk:
    """A short call deep in the money with less time value than the coming dividend."""

    time: datetime
    position_id: str
    contract: Contract
    extrinsic: float  # per share
    dividend_estimate: float  # per share


class Broker(Protocol):
    """Where orders go. SimBroker fills against the snapshot; IBBroker will talk to TWS.

    `execute` hands over this tick's orders and returns every result known by now: a
    simulated broker answers at once, a live one may answer earlier orders on a later tick.
    """

    def execute(self, orders: Sequence[Order], snap: Snapshot) -> list[OrderResult]: ...

    def describe(self) -> dict[str, object]: ...
