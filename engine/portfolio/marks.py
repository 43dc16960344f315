"""Marks for held contracts: each leg's mid, IV and Greeks looked up in the tick's chain.

A held contract can drop out of a synthetic chain's listed strikes (spot moved far) or be
unquoted on a tick; it is then priced with the kernels at the IV of the nearest listed strike
of its expiry, and failing that at intrinsic value. `source` says which, so a report can
count model marks instead of hiding them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from engine.execution.fill_models import Quote, QuoteBook, usable_mid
from engine.execution.orders import Contract
from engine.kernels import bsm_greeks
from engine.state.snapshot import Chain, Snapshot

_DAYS_PER_YEAR = 365.0
DEFAULT_RATE = 0.02  # continuous, per year: only for model marks of unlisted contracts


@dataclass(frozen=True, slots=True)
class Mark:
    """One contract's value now. Option values per share; Greeks per share, chain units."""

    mid: float  # price per share (per unit for shares and futures)
    delta: float  # per share (shares: 1)
    gamma: float  # per $1, per share
    vega: float  # price per vol point, per share
    theta: float  # price per calendar day, per share
    iv: float | None  # fraction
    source: str  # chain | model | intrinsic | underlying | future


def _quoted_mid(chain: Chain, i: int) -> float | None:
    """Mid of a usable quote with a positive ask: a 0/0 quote says nothing about value."""
    mid = usable_mid(Quote(float(chain.bid[i]), float(chain.ask[i])))
    return mid if mid is not None and chain.ask[i] > 0.0 else None


def model_mark(c: Contract, chain: Chain | None, spot: float, time: datetime, q: float) -> Mark:
    assert c.expiry is not None and c.strike is not None
    intrinsic = max(0.0, (spot - c.strike) if c.is_call else (c.strike - spot))
    days = (c.expiry - time.date()).days + (16 - time.hour) / 24.0
    iv = _nearest_iv(chain, c.expiry, c.strike) if chain is not None else None
    if iv is None or days <= 0:
        d = (1.0 if c.is_call else -1.0) * float(intrinsic > 0)
        return Mark(intrinsic, d, 0.0, 0.0, 0.0, None, "intrinsic")
    g = bsm_greeks(
        bool(c.is_call), np.array([spot]), c.strike, days / _DAYS_PER_YEAR, DEFAULT_RATE, q, iv
    )
    price = float(g.price[0])
    if not math.isfinite(price):
        return Mark(intrinsic, 0.0, 0.0, 0.0, 0.0, None, "intrinsic")
    return Mark(
        max(price, intrinsic),
        float(g.delta[0]),
        float(g.gamma[0]),
        float(g.vega_per_vol_point()[0]),
        float(g.theta_per_day()[0]),
        iv,
        "model",
    )


def _nearest_iv(chain: Chain, expiry: date, strike: float) -> float | None:
    rows = np.flatnonzero(chain.expiry == np.datetime64(expiry, "D"))
    rows = rows[np.isfinite(chain.iv[rows])]
    if rows.size == 0:
        return None
    i = rows[np.argmin(np.abs(chain.strike[rows] - strike))]
    return float(chain.iv[i])


def mark_contracts(
    snap: Snapshot, contracts: Sequence[Contract], book: QuoteBook | None = None
) -> list[Mark | None]:
    """Marks for `contracts` at this tick; None where the snapshot has no price at all.
    `book`: the tick's quote book, when the caller has one (its chain index is reused)."""
    out: list[Mark | None] = [None] * len(contracts)
    book = book if book is not None and book.snap is snap else QuoteBook(snap)
    options: dict[str, list[int]] = {}
    for i, c in enumerate(contracts):
        if c.kind == "option":
            options.setdefault(c.symbol, []).append(i)
        elif c.kind == "stock":
            u = snap.underlyings.get(c.symbol)
            if u is not None and u.price is not None:
                out[i] = Mark(u.price, 1.0, 0.0, 0.0, 0.0, None, "underlying")
        else:
            f = snap.market.futures.get(c.symbol)
            if f is not None and f.price is not None:
                out[i] = Mark(f.price, 1.0, 0.0, 0.0, 0.0, None, "future")
    for symbol, idx in options.items():
        u = snap.underlyings.get(symbol)
        spot = u.price if u is not None else None
        q = (u.dividend_yield or 0.0) if u is not None else 0.0
        chain = snap.chains.get(symbol)
        for i in idx:
            row = book.row(contracts[i])
            mid = _quoted_mid(chain, row) if chain is not None and row is not None else None
            if chain is not None and row is not None and mid is not None:
                out[i] = Mark(
                    mid,
                    _nan_to(chain.delta[row]),
                    _nan_to(chain.gamma[row]),
                    _nan_to(chain.vega[row]),
                    _nan_to(chain.theta[row]),
                    float(chain.iv[row]) if math.isfinite(chain.iv[row]) else None,
                    "chain",
                )
            elif spot is not None:
                out[i] = model_mark(contracts[i], chain, spot, snap.time, q)
    return out


def _nan_to(x: float, default: float = 0.0) -> float:
    x = float(x)
    return x if math.isfinite(x) else default
