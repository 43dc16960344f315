"""Quotes for options a synthetic chain does not list: the same surface, a wider spread.

A synthetic chain lists strikes within a window around spot. A position opened inside it can
drift outside when the market moves, yet it must still be closable, as it would be in a real
market. Such a contract is quoted at its model value (the IV of the nearest listed strike of
its expiry, see engine.portfolio.marks) with a deliberately wide spread: 10% of the value, at
least $0.05, on the cent grid. Used by dry runs on synthetic chains only; a recording or a live
feed quotes what it quotes.
"""

from __future__ import annotations

import math

from engine.execution.fill_models import Quote
from engine.execution.orders import Contract
from engine.portfolio.marks import model_mark
from engine.state.snapshot import Snapshot

WIDTH_FRACTION = 0.10  # of the model value
MIN_WIDTH = 0.05  # price per share


def off_chain_quote(contract: Contract, snap: Snapshot) -> Quote | None:
    if contract.kind != "option" or contract.expiry is None:
        return None
    if contract.expiry < snap.time.date():
        return None  # expired: settlement's business, not a quote
    u = snap.underlyings.get(contract.symbol)
    if u is None or u.price is None:
        return None
    m = model_mark(contract, snap.chains.get(contract.symbol), u.price, snap.time,
                   u.dividend_yield or 0.0)  # fmt: skip
    if not math.isfinite(m.mid):
        return None
    width = max(MIN_WIDTH, WIDTH_FRACTION * m.mid)
    bid = max(0.0, math.floor((m.mid - width / 2) * 100) / 100)
    ask = max(bid + 0.01, math.ceil((m.mid + width / 2) * 100) / 100)
    return Quote(bid, ask)
