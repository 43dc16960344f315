"""Commissions and fees of a simulated fill: IBKR-Pro-like fixed pricing, in USD.

Sources and assumptions (US markets, figures as published by Interactive Brokers in 2024-25):

- Options: IBKR charges USD 0.65 per contract (premium >= USD 0.10; 0.50 and 0.25 below 0.10
  and 0.05) with a USD 1.00 minimum per order. The flat 0.65 is used for every premium, which
  overstates the cost of cheap wings a little; conservative, and the commission then does not
  depend on the fill price.
- Option fees, passed through on top: OCC clearing USD 0.02, Options Regulatory Fee about USD
  0.02-0.04, FINRA CAT about USD 0.005, FINRA trading activity fee USD 0.00279 per contract
  sold, SEC fee on sales (negligible at option premiums): about USD 0.05 per contract in all.
  Index options (SPX, NDX, RUT) carry exchange fees of USD 0.40-0.60 per contract on top at
  most brokers; a run on them should raise `fees_per_contract`.
- Shares: USD 0.005 per share, USD 1.00 minimum per order (IBKR fixed; its 1%-of-value cap is
  not applied: hedges are hundreds of shares, far from it). Regulatory fees on share sales
  (fractions of a cent per hundred shares) are left out.
- Index futures (ES, NQ, RTY): USD 2.25 per contract per side, all-in: IBKR's 0.85 plus the CME
  exchange fee (about 1.38 for E-minis) and the NFA fee (0.02). `fees_per_future` is 0 for that
  reason; set it for a broker that bills exchange fees apart.

Expiry settlements (exercise, assignment, cash settlement) carry no commission here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Protocol

from engine.execution.orders import Contract


class CostsError(ValueError):
    """A cost schedule with a negative or non-finite amount."""


class _Leg(Protocol):
    """What the commission depends on: an OrderLeg or a LegFill."""

    @property
    def contract(self) -> Contract: ...

    @property
    def ratio(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Costs:
    """Commission and fee schedule, all amounts in USD."""

    per_contract: float = 0.65  # commission per option contract
    min_per_order: float = 1.00  # minimum option commission per order
    fees_per_contract: float = 0.05  # exchange, clearing and regulatory fees per option contract
    per_share: float = 0.005  # commission per share
    min_per_share_order: float = 1.00  # minimum share commission per order
    per_future: float = 2.25  # per futures contract, all-in (commission + exchange + NFA)
    fees_per_future: float = 0.0  # per futures contract, when billed apart from per_future

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise CostsError(f"costs: {f.name} must be a finite amount >= 0 USD, got {value!r}")

    def commission(self, order_legs: Sequence[_Leg], units: int) -> tuple[float, float]:
        """(commission, fees) in USD for `units` combo units of these legs, rounded to cents.

        Contracts (shares, futures) traded per leg are |ratio| × units. The per-order minimum
        applies to the order's options and to its shares separately, as a broker bills them.
        """
        if units < 0:
            raise CostsError(f"costs: units must be >= 0, got {units}")
        options = shares = futures = 0
        for leg in order_legs:
            n = abs(leg.ratio) * units
            if leg.contract.kind == "option":
                options += n
            elif leg.contract.kind == "stock":
                shares += n
            else:
                futures += n
        commission = 0.0
        if options:
            commission += max(self.per_contract * options, self.min_per_order)
        if shares:
            commission += max(self.per_share * shares, self.min_per_share_order)
        commission += self.per_future * futures
        fees = self.fees_per_contract * options + self.fees_per_future * futures
        return round(commission, 2), round(fees, 2)

    @property
    def label(self) -> str:
        """A sentence for reports."""
        return (
            f"${self.per_contract:.2f}/option contract (min ${self.min_per_order:.2f}/order) "
            f"+ ${self.fees_per_contract:.2f} fees; ${self.per_share:.3f}/share "
            f"(min ${self.min_per_share_order:.2f}); ${self.per_future:.2f}/future"
        )

    def describe(self) -> dict[str, object]:
        """For run.json and reports: every amount (USD) and the label."""
        return {**asdict(self), "label": self.label}
