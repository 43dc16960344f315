"""Runtime helpers that vocabulary accessors call; each returns None for unknown, never raises."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def min_(*xs: float | None) -> float | None:
    return None if any(x is None for x in xs) else min(xs)  # type: ignore[type-var]


def max_(*xs: float | None) -> float | None:
    return None if any(x is None for x in xs) else max(xs)  # type: ignore[type-var]


def future(m: Any, symbol: str, attr: str) -> float | None:
    q = m.futures.get(symbol)
    return None if q is None else getattr(q, attr)


def underlying_field(s: Any, symbol: str, attr: str) -> float | None:
    u = s.underlyings.get(symbol)
    return None if u is None else getattr(u, attr)


def leg(p: Any, role: str, attr: str) -> float | None:
    for lg in p.legs:
        if lg.role == role:
            v: float | None = getattr(lg, attr)
            return v
    return None


def otm_pct(p: Any, u: Any, role: str) -> float | None:
    """How far the leg's strike is out of the money, as a share of spot (negative: ITM)."""
    strike = leg(p, role, "strike")
    if strike is None or u.price is None or not u.price:
        return None
    dist = (u.price - strike) if role.endswith("put") else (strike - u.price)
    return float(dist / u.price)


def short_delta_max(p: Any) -> float | None:
    # A plain loop: this runs for every position on every tick.
    best: float | None = None
    for lg in p.legs:
        if lg.quantity < 0:
            d = lg.delta
            if d is None:
                return None
            if d < 0:
                d = -d
            if best is None or d > best:
                best = d
    return best


def breaker_tripped(s: Any, u: Any, name: str | None) -> bool:
    return name in s.risk.breakers_tripped


# ------------------------------------------------------------------ chain selectors
def _expiry_rows(s: Any, u: Any, dte: float | None) -> tuple[Any, Any] | None:
    chain = s.chains.get(u.symbol) if u.symbol else None
    if chain is None or dte is None or len(chain) == 0:
        return None
    today = np.datetime64(s.time.date(), "D")
    expiries = chain.expiries()
    days = (expiries - today).astype(np.int64)
    live = days >= 0
    if not live.any():
        return None
    pick = expiries[live][np.argmin(np.abs(days[live] - dte))]
    return chain, np.flatnonzero(chain.expiry == pick)


def _by_delta(
    s: Any, u: Any, delta: float | None, dte: float | None, call: bool
) -> tuple[Any, int] | None:
    found = _expiry_rows(s, u, dte)
    if found is None or delta is None:
        return None
    chain, rows = found
    rows = rows[chain.is_call[rows] == call]
    d = np.abs(chain.delta[rows])
    ok = ~np.isnan(d)
    if not ok.any():
        return None
    rows, d = rows[ok], d[ok]
    return chain, int(rows[np.argmin(np.abs(d - abs(delta)))])


def _field(found: tuple[Any, int] | None, name: str) -> float | None:
    if found is None:
        return None
    chain, i = found
    if name == "mid":
        v = 0.5 * (chain.bid[i] + chain.ask[i])
    elif name == "spread_pct":
        mid = 0.5 * (chain.bid[i] + chain.ask[i])
        v = (chain.ask[i] - chain.bid[i]) / mid if mid > 0 else math.nan
    else:
        v = getattr(chain, name)[i]
    return None if math.isnan(v) else float(v)


def chain_atm_iv(s: Any, u: Any, dte: float | None) -> float | None:
    found = _expiry_rows(s, u, dte)
    if found is None or u.price is None:
        return None
    chain, rows = found
    iv = chain.iv[rows]
    ok = ~np.isnan(iv)
    if not ok.any():
        return None
    rows = rows[ok]
    return float(chain.iv[rows[np.argmin(np.abs(chain.strike[rows] - u.price))]])


def chain_put_iv(s: Any, u: Any, delta: float | None, dte: float | None) -> float | None:
    return _field(_by_delta(s, u, delta, dte, False), "iv")


def chain_call_iv(s: Any, u: Any, delta: float | None, dte: float | None) -> float | None:
    return _field(_by_delta(s, u, delta, dte, True), "iv")


def chain_put_strike(s: Any, u: Any, delta: float | None, dte: float | None) -> float | None:
    return _field(_by_delta(s, u, delta, dte, False), "strike")


def chain_call_strike(s: Any, u: Any, delta: float | None, dte: float | None) -> float | None:
    return _field(_by_delta(s, u, delta, dte, True), "strike")


def chain_put_mid(s: Any, u: Any, delta: float | None, dte: float | None) -> float | None:
    return _field(_by_delta(s, u, delta, dte, False), "mid")


def chain_call_mid(s: Any, u: Any, delta: float | None, dte: float | None) -> float | None:
    return _field(_by_delta(s, u, delta, dte, True), "mid")


def chain_spread_pct(s: Any, u: Any, delta: float | None, dte: float | None) -> float | None:
    return _field(_by_delta(s, u, delta, dte, False), "spread_pct")
