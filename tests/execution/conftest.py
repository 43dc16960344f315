"""Builders for the execution tests: contracts, small chains and snapshots, orders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

import numpy as np

from engine.execution.orders import Contract, Intent, Order, OrderLeg
from engine.state.snapshot import (
    EXCHANGE_TZ,
    Chain,
    FutureQuote,
    MarketState,
    Snapshot,
    UnderlyingState,
)

EXP = date(2024, 6, 21)  # a Friday
T0 = datetime(2024, 6, 3, 10, 0, tzinfo=EXCHANGE_TZ)  # 18 days before EXP

QuoteRow = tuple[Contract, float, float]  # contract, bid, ask (per share)


def opt(strike: float, call: bool, expiry: date = EXP, symbol: str = "SPY") -> Contract:
    return Contract(symbol, "option", expiry, strike, call)


def chain_of(symbol: str, rows: Sequence[QuoteRow]) -> Chain:
    """A chain holding exactly these contracts and quotes."""
    return Chain.from_columns(
        symbol,
        expiry=np.array([c.expiry for c, _, _ in rows], dtype="datetime64[D]"),
        strike=[float(c.strike or 0.0) for c, _, _ in rows],
        is_call=[bool(c.is_call) for c, _, _ in rows],
        bid=[b for _, b, _ in rows],
        ask=[a for _, _, a in rows],
    )


def make_snap(
    quotes: Sequence[QuoteRow] = (),
    *,
    time: datetime = T0,
    price: float | None = 500.0,
    symbol: str = "SPY",
    bid: float | None = None,
    ask: float | None = None,
    dividend_yield: float | None = None,
    futures: Mapping[str, float] | None = None,
    underlyings: Mapping[str, float] | None = None,
) -> Snapshot:
    """A snapshot of `symbol` at `price` whose chains quote exactly `quotes`."""
    by_symbol: dict[str, list[QuoteRow]] = {}
    for row in quotes:
        by_symbol.setdefault(row[0].symbol, []).append(row)
    unds = {
        symbol: UnderlyingState(
            symbol=symbol, price=price, bid=bid, ask=ask, dividend_yield=dividend_yield
        )
    }
    for other, p in (underlyings or {}).items():
        unds[other] = UnderlyingState(symbol=other, price=p)
    return Snapshot(
        time=time,
        market=MarketState(
            session="regular",
            futures={k: FutureQuote(symbol=k, price=v) for k, v in (futures or {}).items()},
        ),
        underlyings=unds,
        chains={s: chain_of(s, rows) for s, rows in by_symbol.items()},
    )


def make_order(
    legs: Sequence[tuple[Contract, int]],
    quantity: int = 1,
    *,
    intent: Intent = "open",
    order_id: str = "202406031000-1",
    position_id: str | None = "p1",
    time: datetime = T0,
) -> Order:
    return Order(
        id=order_id,
        time=time,
        intent=intent,
        symbol=legs[0][0].symbol,
        legs=tuple(OrderLeg(c, r, f"leg{i}") for i, (c, r) in enumerate(legs)),
        quantity=quantity,
        rule_id="test_rule",
        reason="test",
        position_id=position_id,
    )
