"""SimBroker: fills orders against a snapshot's quotes and keeps the account like a broker.

Each order trades as one unit: every leg is priced by the fill model inside its quote, or the
whole order is rejected with a reason (a leg without a usable quote, or not enough buying
power). Several orders on one tick fill at the same quotes, one after the other: the
simulation has no market impact. Nothing is left working: units beyond the fill model's
partial-fill limit are simply not filled (status "partial") and the engine may ask again.

The account is the broker's own: cash and holdings per (position id, contract), changed only
by fills (cash flow = premium ± commission and fees) and expiry settlements. The engine keeps
its own book; the two can be reconciled like a live account. Futures are booked at notional
(buying one ES pays price × 50 in cash and holds it as market value), so net liq is right but
cash is not a futures broker's cash balance. Deterministic: no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from engine.execution.costs import Costs
from engine.execution.fill_models import (
    DEFAULT_FILL_MODEL,
    NATURAL,
    FillModel,
    QuoteBook,
    UnlistedQuotes,
    quote_problem,
)
from engine.execution.margin import MarginLeg, margin_usd
from engine.execution.orders import (
    FUTURE_MULTIPLIERS,
    AssignmentRisk,
    Contract,
    Fill,
    LegFill,
    Order,
    OrderResult,
    Settlement,
)
from engine.execution.settlement import (
    Holding,
    assignment_risks,
    intrinsic_value,
    settle_expired,
)
from engine.state.snapshot import Snapshot

DEFAULT_INITIAL_CASH = 100_000.0  # USD
_BP_TOLERANCE = 1e-6  # USD: float noise allowed when an order uses exactly what is available


class SimBrokerError(ValueError):
    """A simulated broker that cannot be set up (initial cash not a finite amount >= 0)."""


@dataclass(frozen=True, slots=True)
class Account:
    """The broker's account at one tick, in USD."""

    cash: float
    market_value: float  # holdings at mid; intrinsic (then the last mark) when not quoted
    net_liq: float  # cash + market_value
    margin_used: float  # the positions' requirements, see engine/execution/margin.py

    @property
    def buying_power_available(self) -> float:
        return self.net_liq - self.margin_used


class SimBroker:
    """The Broker of dry runs (engine.execution.orders.Broker), see the module docstring."""

    def __init__(
        self,
        fill_model: FillModel = DEFAULT_FILL_MODEL,
        costs: Costs | None = None,
        initial_cash: float = DEFAULT_INITIAL_CASH,
        unlisted: UnlistedQuotes | None = None,
    ) -> None:
        if not (isinstance(initial_cash, int | float) and math.isfinite(initial_cash)) or (
            initial_cash < 0
        ):
            raise SimBrokerError(f"initial cash must be a finite USD amount >= 0: {initial_cash!r}")
        self.fill_model = fill_model
        self.costs = costs if costs is not None else Costs()
        self.initial_cash = float(initial_cash)
        self.unlisted = unlisted  # quotes for options a (synthetic) chain does not list
        self._cash = float(initial_cash)
        self._holdings: dict[tuple[str, Contract], int] = {}  # signed contracts or shares
        self._last_mark: dict[Contract, float] = {}  # per share: the fallback when unquoted
        self._last_price: dict[str, float] = {}  # per share: underlyings, for naked margin
        # Per snapshot (reset with the quote book): marks, and margins kept up to date by fills.
        self._book: QuoteBook | None = None
        self._marks: dict[Contract, float] = {}
        self._margins: dict[str, float] | None = None

    # ------------------------------------------------------------------------- queries

    @property
    def connected(self) -> bool:
        """A simulated broker never loses its connection (the IB broker reports its own)."""
        return True

    @property
    def cash(self) -> float:
        """USD."""
        return self._cash

    def holdings(self) -> tuple[Holding, ...]:
        """Every non-zero holding, sorted by position id and contract."""
        items = sorted(self._holdings.items(), key=lambda kv: (kv[0][0], _sort_key(kv[0][1])))
        return tuple(Holding(pid, c, q) for (pid, c), q in items)

    def account(self, snap: Snapshot) -> Account:
        """Cash, market value, net liq and margin in use at this snapshot's quotes."""
        book = self._quotes(snap)
        value = self._market_value(book)
        margin = float(sum(self._position_margins(book).values()))
        return Account(
            cash=self._cash,
            market_value=value,
            net_liq=self._cash + value,
            margin_used=margin,
        )

    def position_margins(self, snap: Snapshot) -> dict[str, float]:
        """Buying power used per position id (USD)."""
        return dict(self._position_margins(self._quotes(snap)))

    def describe(self) -> dict[str, object]:
        """For run.json and reports: the fill model, the costs and the starting cash."""
        return {
            "broker": "sim",
            "fill_model": self.fill_model.describe(),
            "costs": self.costs.describe(),
            "initial_cash": self.initial_cash,
        }

    # ------------------------------------------------------------------------- trading

    def execute(self, orders: Sequence[Order], snap: Snapshot) -> list[OrderResult]:
        """Fill (or reject) each order, in sequence, against this snapshot's quotes."""
        if not orders:
            return []
        book = self._quotes(snap)
        margins = self._position_margins(book)
        return [self._execute_one(order, book, margins) for order in orders]

    def settle(self, snap: Snapshot) -> tuple[list[Settlement], list[AssignmentRisk]]:
        """Settle the option legs that expire at this tick; flag early-assignment risks."""
        book = self._quotes(snap)
        settlements = settle_expired(self.holdings(), snap)
        for s in settlements:
            self._cash += s.cash_flow
            del self._holdings[(s.position_id, s.contract)]
        if settlements:
            self._margins = None
        return settlements, assignment_risks(self.holdings(), snap, book)

    # ------------------------------------------------------------------------- internals

    def _execute_one(self, order: Order, book: QuoteBook, margins: dict[str, float]) -> OrderResult:
        legs: list[LegFill] = []
        for leg in order.legs:
            problem = _leg_problem(leg.contract, leg.ratio)
            quote = book.quote(leg.contract)
            problem = problem or quote_problem(leg.contract, quote, buy=leg.ratio > 0)
            if problem is not None or quote is None:
                return OrderResult(order, "rejected", reason=problem)
            model = self.fill_model if leg.contract.kind == "option" else NATURAL
            price = model.price(quote.bid, quote.ask, buy=leg.ratio > 0)
            legs.append(LegFill(leg.contract, leg.ratio, leg.role, price))
        units = order.quantity if _all_or_none(order) else self.fill_model.units(order.quantity)
        commission, fees = self.costs.commission(order.legs, units)
        fill = Fill(order.id, book.snap.time, units, tuple(legs), commission, fees)

        pid = order.position_id or order.id
        after = dict(self._position_quantities(pid))
        for lf in legs:
            after[lf.contract] = after.get(lf.contract, 0) + lf.ratio * units
        fill_marks = {lf.contract: lf.price for lf in legs}
        before_margin = margins.get(pid, 0.0)
        after_margin = self._margin_of(after, book, fill_marks)
        if after_margin > before_margin:
            reason = self._buying_power_problem(
                fill, book, margins, after_margin - before_margin, fill_marks
            )
            if reason is not None:
                return OrderResult(order, "rejected", reason=reason)

        self._cash += fill.cash_flow
        for lf in legs:
            self._last_mark.setdefault(lf.contract, lf.price)
            key = (pid, lf.contract)
            q = self._holdings.get(key, 0) + lf.ratio * units
            if q == 0:
                self._holdings.pop(key, None)
            else:
                self._holdings[key] = q
        if any(p == pid for p, _ in self._holdings):
            margins[pid] = after_margin
        else:
            margins.pop(pid, None)
        if units == order.quantity:
            return OrderResult(order, "filled", fill=fill)
        return OrderResult(
            order,
            "partial",
            fill=fill,
            reason=f"filled {units} of {order.quantity} units "
            f"(partial fills: at most {self.fill_model.max_units} per order per tick)",
        )

    def _buying_power_problem(
        self,
        fill: Fill,
        book: QuoteBook,
        margins: dict[str, float],
        extra_margin: float,
        fill_marks: dict[Contract, float],
    ) -> str | None:
        """Why the account cannot carry this fill, or None when it can."""
        net_liq = self._cash + self._market_value(book)
        in_use = sum(margins.values())
        available = net_liq - in_use
        # Net liq moves by the cash flow plus the traded legs' value at their marks: the
        # costs and the part of the spread paid are lost at once.
        traded_value = sum(
            lf.ratio
            * fill.quantity
            * self._mark(lf.contract, book, fill_marks)
            * lf.contract.multiplier
            for lf in fill.legs
        )
        needed = extra_margin - (fill.cash_flow + traded_value)
        if needed <= available + _BP_TOLERANCE:
            return None
        return (
            f"not enough buying power: the order needs ${needed:,.2f} "
            f"(margin +${extra_margin:,.2f}, costs and spread paid), available "
            f"${available:,.2f} (net liq ${net_liq:,.2f} − margin in use ${in_use:,.2f})"
        )

    def _quotes(self, snap: Snapshot) -> QuoteBook:
        """The snapshot's quote book, built once per snapshot."""
        if self._book is None or self._book.snap is not snap:
            self._book = QuoteBook(snap, self.unlisted)
            self._marks = {}
            self._margins = None
            for symbol, und in snap.underlyings.items():
                if und.price is not None:
                    self._last_price[symbol] = und.price
        return self._book

    def _mark(
        self, contract: Contract, book: QuoteBook, fallback: dict[Contract, float] | None = None
    ) -> float:
        """Per share: mid, else intrinsic at the underlying's price, else the last mark known.

        `fallback` (the fill prices of an order being checked) prices a contract never held.
        """
        cached = self._marks.get(contract)
        if cached is not None:
            return cached
        mark = book.mark(contract)
        if mark is None and contract.kind == "option":
            price = self._last_price.get(contract.symbol)
            if price is not None:
                mark = intrinsic_value(contract, price)
        if mark is None:
            mark = self._last_mark.get(contract)
        if mark is not None:
            self._last_mark[contract] = self._marks[contract] = mark
            return mark
        known = None if fallback is None else fallback.get(contract)
        if known is None:  # a held contract always has one (its fill price): a bug
            raise SimBrokerError(f"no price at all for {contract.key}")
        return known

    def _market_value(self, book: QuoteBook) -> float:
        """USD: every holding at its mark."""
        return float(
            sum(q * self._mark(c, book) * c.multiplier for (_, c), q in self._holdings.items())
        )

    def _position_quantities(self, pid: str) -> dict[Contract, int]:
        return {c: q for (p, c), q in self._holdings.items() if p == pid}

    def _position_margins(self, book: QuoteBook) -> dict[str, float]:
        """Requirement per position id at this book's marks (kept, and updated by fills)."""
        if self._margins is None:
            by_pid: dict[str, dict[Contract, int]] = {}
            for (pid, c), q in self._holdings.items():
                by_pid.setdefault(pid, {})[c] = q
            self._margins = {
                pid: self._margin_of(held, book) for pid, held in sorted(by_pid.items())
            }
        return self._margins

    def _margin_of(
        self,
        held: dict[Contract, int],
        book: QuoteBook,
        fallback: dict[Contract, float] | None = None,
    ) -> float:
        """A position's requirement; options grouped by underlying (margin.py's unit)."""
        by_symbol: dict[str, list[MarginLeg]] = {}
        for c, q in held.items():
            if q != 0:
                leg = MarginLeg(c, q, self._mark(c, book, fallback))
                by_symbol.setdefault(c.symbol, []).append(leg)
        total = 0.0
        for symbol, legs in by_symbol.items():
            price = self._last_price.get(symbol)
            if price is None:  # the underlying was never priced: the top strike stands in
                price = max((c.strike or 0.0) for c in held if c.symbol == symbol) or None
            total += margin_usd(legs, price)
        return total


def _all_or_none(order: Order) -> bool:
    """Orders the partial-fill limit does not split: a roll or adjustment changes the legs of
    every structure of its position at once, and share or futures orders (hedges) count in
    shares or contracts, not in option structures."""
    return order.intent in ("roll", "adjust") or any(
        leg.contract.kind != "option" for leg in order.legs
    )


def _sort_key(c: Contract) -> tuple[str, str, date, float, bool]:
    return (c.symbol, c.kind, c.expiry or date.min, c.strike or 0.0, bool(c.is_call))


def _leg_problem(contract: Contract, ratio: int) -> str | None:
    """A leg no broker would accept, whatever the quotes."""
    if contract.kind == "option" and (
        contract.expiry is None or contract.strike is None or contract.is_call is None
    ):
        return f"option on {contract.symbol} without expiry, strike and right"
    if contract.kind == "future" and contract.symbol not in FUTURE_MULTIPLIERS:
        known = ", ".join(sorted(FUTURE_MULTIPLIERS))
        return f"unknown future {contract.symbol!r}; known: {known}"
    if ratio == 0:
        return f"{contract.key}: a leg with ratio 0"
    return None
