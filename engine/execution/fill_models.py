"""Fill models and quotes: the price a simulated order gets for each leg against a snapshot.

A leg buys at mid + F·width and sells at mid − F·width, where width = ask − bid and F is the
model's fraction of the full width: F = 0 fills at mid (optimistic: a real combo rarely fills
there), F = 0.5 at the natural side (buy at the ask, sell at the bid). Applying F leg by leg
gives the same combo net price as applying it to the combo's own mid and natural width, since
both are sums over the legs.

Shares and futures are hedges: they trade as marketable orders, at the natural side of their
quote whatever the model (a hedge that waits for a better price is not a hedge).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

from engine.execution.orders import Contract
from engine.state.snapshot import Chain, Snapshot

FillModelName = Literal["mid", "natural", "mid_minus"]

DEFAULT_FRACTION = 0.25  # of the full bid-ask width, for the default mid_minus model
STOCK_HALF_SPREAD = 0.005  # price: assumed half-spread of shares when the snapshot has no bid/ask
FUTURE_TICKS = {"ES": 0.25, "NQ": 0.25, "RTY": 0.10}  # index points: CME minimum price moves
_STRIKE_TOLERANCE = 1e-6  # price: strikes equal within this are the same contract
_CALL_OFFSET = 1e7  # price: above any strike, so one sorted key holds the right and the strike

VALID_FORMS = (
    "mid | natural | mid-minus:F (0 <= F <= 0.5, a fraction of the bid-ask width, "
    "e.g. mid-minus:0.25 or mid-minus:25%), optionally followed by ,partial:N "
    "(at most N combo units filled per order per tick, N >= 1)"
)


class FillModelError(ValueError):
    """A fill model that cannot be used: an unknown name, a fraction out of range, bad text."""


@dataclass(frozen=True, slots=True)
class FillModel:
    """Where a leg fills inside its quote, and how many combo units an order may fill per tick.

    Use the constructors `FillModel.mid()`, `FillModel.natural()`, `FillModel.mid_minus(0.25)`,
    or `parse_fill_model(text)`. `fraction` is of the full width; mid implies 0, natural 0.5.
    """

    name: FillModelName
    fraction: float  # of the full bid-ask width, 0 <= fraction <= 0.5
    max_units: int | None = None  # combo units filled per order per tick; None: all

    def __post_init__(self) -> None:
        implied = {"mid": 0.0, "natural": 0.5}
        if self.name not in ("mid", "natural", "mid_minus"):
            raise FillModelError(f"unknown fill model {self.name!r}; valid: {VALID_FORMS}")
        if not (isinstance(self.fraction, int | float) and 0.0 <= self.fraction <= 0.5):
            raise FillModelError(
                f"fill model fraction must be between 0 and 0.5 of the bid-ask width, "
                f"got {self.fraction!r}"
            )
        if self.name in implied and self.fraction != implied[self.name]:
            raise FillModelError(
                f"fill model {self.name} fills at fraction {implied[self.name]} of the width, "
                f"got {self.fraction}; use mid_minus for another fraction"
            )
        if self.max_units is not None and (type(self.max_units) is not int or self.max_units < 1):
            raise FillModelError(f"partial fills need max_units >= 1, got {self.max_units!r}")
        object.__setattr__(self, "fraction", float(self.fraction))

    @classmethod
    def mid(cls, max_units: int | None = None) -> FillModel:
        return cls("mid", 0.0, max_units)

    @classmethod
    def natural(cls, max_units: int | None = None) -> FillModel:
        return cls("natural", 0.5, max_units)

    @classmethod
    def mid_minus(
        cls, fraction: float = DEFAULT_FRACTION, max_units: int | None = None
    ) -> FillModel:
        return cls("mid_minus", fraction, max_units)

    def price(self, bid: float, ask: float, buy: bool) -> float:
        """Fill price per share of one leg; the quote must be valid (see `quote_problem`).

        Clipped to [bid, ask] so float rounding can never fill outside the quote.
        """
        # Measured from the natural side, so natural (fraction 0.5) is exactly the bid or ask.
        give = (0.5 - self.fraction) * (ask - bid)
        return max(bid, min(ask, ask - give if buy else bid + give))

    def units(self, quantity: int) -> int:
        """Combo units filled this tick for an order of `quantity` units."""
        return quantity if self.max_units is None else min(quantity, self.max_units)

    @property
    def label(self) -> str:
        """A sentence for reports, e.g. 'mid − 25% of the spread, no partial fills'."""
        if self.name == "mid":
            head = "mid (optimistic: assumes every order fills at the mid)"
        elif self.name == "natural":
            head = "natural (buy at the ask, sell at the bid)"
        else:
            head = f"mid − {self.fraction * 100:g}% of the spread"
        if self.max_units is None:
            return f"{head}, no partial fills"
        return f"{head}, at most {self.max_units} units per order per tick"

    @property
    def text(self) -> str:
        """The CLI form, which `parse_fill_model` reads back to this model."""
        # repr: the shortest text that reads back to the same float
        head = f"mid-minus:{self.fraction!r}" if self.name == "mid_minus" else self.name
        return head if self.max_units is None else f"{head},partial:{self.max_units}"

    def describe(self) -> dict[str, object]:
        """For run.json and reports."""
        return {
            "name": self.name,
            "fraction": self.fraction,
            "partial": self.max_units is not None,
            "max_units": self.max_units,
            "text": self.text,
            "label": self.label,
        }


DEFAULT_FILL_MODEL = FillModel.mid_minus(DEFAULT_FRACTION)
NATURAL = FillModel.natural()

_FRACTION = re.compile(r"^(\d+(?:\.\d*)?(?:e-?\d+)?|\.\d+)(%?)$")  # 0.25, .1, 25%, 2.5e-1


def _fraction(text: str) -> float | None:
    """A non-negative fraction or percentage, or None when the text is not one."""
    m = _FRACTION.match(text.strip())
    return None if m is None else float(m.group(1)) / (100.0 if m.group(2) else 1.0)


def parse_fill_model(text: str) -> FillModel:
    """Read 'mid', 'natural', 'mid-minus:0.25' (or '25%'), each with optional ',partial:N'."""
    parts = [p.strip() for p in text.strip().lower().split(",")]
    head, extras = parts[0], parts[1:]
    if len(extras) > 1 or not head:
        raise FillModelError(f"invalid fill model {text!r}: expected {VALID_FORMS}")
    max_units: int | None = None
    if extras:
        key, _, value = extras[0].partition(":")
        if key.strip() != "partial" or not value.strip().isdigit() or int(value) < 1:
            raise FillModelError(
                f"invalid fill model {text!r}: {extras[0]!r} is not partial:N; "
                f"expected {VALID_FORMS}"
            )
        max_units = int(value)
    name, _, arg = head.partition(":")
    name = name.strip().replace("-", "_")
    if name in ("mid", "natural") and not arg:
        return FillModel.mid(max_units) if name == "mid" else FillModel.natural(max_units)
    fraction = _fraction(arg) if name == "mid_minus" else None
    if fraction is not None:
        if fraction <= 0.5:
            return FillModel.mid_minus(fraction, max_units)
        raise FillModelError(
            f"invalid fill model {text!r}: the fraction {fraction:g} is above 0.5 "
            f"(0.5 already fills at the natural side); expected {VALID_FORMS}"
        )
    raise FillModelError(f"invalid fill model {text!r}: expected {VALID_FORMS}")


# ----------------------------------------------------------------------------- quotes


@dataclass(frozen=True, slots=True)
class Quote:
    """A bid/ask per share (per index point for futures); NaN where the source had none."""

    bid: float
    ask: float

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


def quote_problem(contract: Contract, quote: Quote | None, buy: bool) -> str | None:
    """Why an order cannot trade `contract` at this quote, or None when it can."""
    if quote is None:
        return f"no quote for {contract.key} in the snapshot"
    bid, ask = quote.bid, quote.ask
    if math.isnan(bid) or math.isnan(ask):
        return f"{contract.key}: the quote has no bid or no ask (bid {bid}, ask {ask})"
    if bid < 0.0:
        return f"{contract.key}: negative bid {bid:g}"
    if bid > ask:
        return f"{contract.key}: crossed quote (bid {bid:g} > ask {ask:g})"
    if buy and ask <= 0.0:
        return f"{contract.key}: cannot buy at an ask of {ask:g}"
    return None


def usable_mid(quote: Quote | None) -> float | None:
    """The mid of a two-sided, uncrossed, non-negative quote; None otherwise."""
    if quote is None or not (0.0 <= quote.bid <= quote.ask):  # False for NaN too
        return None
    return quote.mid


UnlistedQuotes = Callable[[Contract, Snapshot], "Quote | None"]


class QuoteBook:
    """The quotes of one snapshot, looked up by contract, each looked up once.

    Chain rows are indexed per (symbol, expiry) when first asked for: one pass over the chain
    selects the expiry's rows, sorted by (right, strike), and each lookup is then a binary
    search among those few hundred rows. A tick's many lookups (fills, marks, settlement)
    cost one pass per expiry held.
    """

    def __init__(self, snap: Snapshot, unlisted: UnlistedQuotes | None = None) -> None:
        self.snap = snap
        # Quotes for options the snapshot's chain does not list (a synthetic chain lists a
        # window of strikes around spot); None: such contracts have no quote.
        self._unlisted = unlisted
        self._index: dict[tuple[str, date], tuple[list[float], npt.NDArray[np.intp]]] = {}
        self._quotes: dict[Contract, Quote | None] = {}

    def quote(self, contract: Contract) -> Quote | None:
        """The contract's quote, or None when the snapshot does not quote it."""
        if contract in self._quotes:
            return self._quotes[contract]
        quote = self._lookup(contract)
        self._quotes[contract] = quote
        return quote

    def mark(self, contract: Contract) -> float | None:
        """Value per share now: mid of a usable quote (shares: the last price), else None."""
        if contract.kind == "stock":
            und = self.snap.underlying(contract.symbol)
            if und is not None and und.price is not None:
                return und.price
        elif contract.kind == "future":
            future = self.snap.market.futures.get(contract.symbol)
            return None if future is None else future.price
        return usable_mid(self.quote(contract))

    def underlying_price(self, symbol: str) -> float | None:
        und = self.snap.underlying(symbol)
        return None if und is None else und.price

    def _lookup(self, contract: Contract) -> Quote | None:
        if contract.kind == "option":
            return self._option_quote(contract)
        if contract.kind == "stock":
            und = self.snap.underlying(contract.symbol)
            if und is None:
                return None
            if und.bid is not None and und.ask is not None:
                return Quote(und.bid, und.ask)
            if und.price is None:
                return None
            return Quote(und.price - STOCK_HALF_SPREAD, und.price + STOCK_HALF_SPREAD)
        future = self.snap.market.futures.get(contract.symbol)
        if future is None or future.price is None:
            return None
        tick = FUTURE_TICKS.get(contract.symbol, 0.25)
        return Quote(future.price - tick, future.price + tick)

    def row(self, contract: Contract) -> int | None:
        """The option's row in its chain, None when the chain does not list it."""
        chain = self.snap.chain(contract.symbol)
        if chain is None or contract.expiry is None or contract.strike is None:
            return None
        keys, rows = self._expiry_index(chain, contract.expiry)
        key = contract.strike + (_CALL_OFFSET if contract.is_call else 0.0)
        i = bisect_left(keys, key - _STRIKE_TOLERANCE)
        if i == len(keys) or keys[i] > key + _STRIKE_TOLERANCE:
            return None
        return int(rows[i])

    def _option_quote(self, contract: Contract) -> Quote | None:
        row = self.row(contract)
        if row is None:
            if self._unlisted is None or self.snap.chain(contract.symbol) is None:
                return None
            return self._unlisted(contract, self.snap)
        chain = self.snap.chains[contract.symbol]
        return Quote(float(chain.bid[row]), float(chain.ask[row]))

    def _expiry_index(self, chain: Chain, expiry: date) -> tuple[list[float], npt.NDArray[np.intp]]:
        index = self._index.get((chain.symbol, expiry))
        if index is None:
            rows = np.flatnonzero(chain.expiry == np.datetime64(expiry, "D"))
            keys = chain.strike[rows] + np.where(chain.is_call[rows], _CALL_OFFSET, 0.0)
            order = np.argsort(keys, kind="stable")  # stable: a duplicated row's first wins
            index = (keys[order].tolist(), rows[order])
            self._index[(chain.symbol, expiry)] = index
        return index
