"""The book: fills open, change and close positions; marks value them; cash is conserved."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import numpy as np
import pytest

from engine.execution.orders import Contract, Fill, LegFill, Order, OrderLeg, Settlement
from engine.portfolio.book import Book, to_position
from engine.state.snapshot import EXCHANGE_TZ, Chain, MarketState, Snapshot, UnderlyingState

T0 = datetime(2019, 3, 1, 16, 0, tzinfo=EXCHANGE_TZ)
T1 = datetime(2019, 3, 4, 16, 0, tzinfo=EXCHANGE_TZ)
EXP = date(2019, 4, 18)


def opt(strike: float, call: bool) -> Contract:
    return Contract("SPY", "option", EXP, strike, call)


CONDOR = (
    (opt(260, False), 1, "long_put"),
    (opt(265, False), -1, "short_put"),
    (opt(290, True), -1, "short_call"),
    (opt(295, True), 1, "long_call"),
)


def order(intent: str, legs: tuple[tuple[Contract, int, str], ...], qty: int = 2) -> Order:
    return Order(
        id=f"{intent}-1",
        time=T0,
        intent=intent,  # type: ignore[arg-type]
        symbol="SPY",
        legs=tuple(OrderLeg(c, r, role) for c, r, role in legs),
        quantity=qty,
        rule_id="r",
        reason="test",
        strategy="iron_condor",
        position_id="SPY-1",
    )


def fill(o: Order, prices: tuple[float, ...], time: datetime = T0) -> Fill:
    legs = tuple(
        LegFill(leg.contract, leg.ratio, leg.role, p) for leg, p in zip(o.legs, prices, strict=True)
    )
    return Fill(o.id, time, o.quantity, legs, commission=2.6 * o.quantity, fees=0.2 * o.quantity)


def snapshot(mids: dict[float, float], time: datetime = T1, spot: float = 278.0) -> Snapshot:
    strikes = sorted(mids)
    calls = [k >= 290 for k in strikes]
    chain = Chain.from_columns(
        "SPY",
        expiry=np.full(len(strikes), np.datetime64(EXP, "D")),
        strike=strikes,
        is_call=calls,
        bid=[mids[k] - 0.05 for k in strikes],
        ask=[mids[k] + 0.05 for k in strikes],
        delta=[0.1 if c else -0.1 for c in calls],
        vega=[0.2] * len(strikes),
        theta=[-0.01] * len(strikes),
        iv=[0.15] * len(strikes),
    )
    return Snapshot(
        time=time,
        market=MarketState(session="regular"),
        underlyings={"SPY": UnderlyingState(symbol="SPY", price=spot, dividend_yield=0.018)},
        chains={"SPY": chain},
    )


OPEN_PRICES = (0.60, 1.00, 0.90, 0.45)  # credit 1.00 - 0.60 + 0.90 - 0.45 = 0.85


def test_open_mark_and_close_conserve_cash() -> None:
    book = Book(100_000.0)
    o = order("open", CONDOR)
    f = fill(o, OPEN_PRICES)
    assert f.net_price == pytest.approx(0.85)
    assert book.apply_fill(o, f, entry_regime="normal", entry_iv=0.15) is None
    assert book.cash == pytest.approx(100_000 + 0.85 * 100 * 2 - 5.6)
    snap = snapshot({260: 0.30, 265: 0.50, 290: 0.40, 295: 0.20})
    (m,) = book.mark(snap)
    # cost to close one condor: 0.50 + 0.40 - 0.30 - 0.20 = 0.40 per share
    assert m.mark == pytest.approx(0.40)
    assert m.pnl == pytest.approx((0.85 - 0.40) * 200 - 5.6)
    assert m.pnl_pct_of_credit == pytest.approx(m.pnl / 170.0)
    assert book.net_liq([m]) == pytest.approx(100_000 + m.pnl)
    pos = to_position(m, snap.time)
    assert pos.dte == (EXP - T1.date()).days and pos.quantity == 2
    assert pos.leg("short_put") is not None and pos.leg("short_put").mark == pytest.approx(0.5)
    close = order("close", tuple((c, -r, role) for c, r, role in CONDOR))
    closed = book.apply_fill(close, fill(close, (0.30, 0.50, 0.40, 0.20), T1))
    assert closed is not None and not book.positions
    assert closed.realized_pnl == pytest.approx((0.85 - 0.40) * 200 - 11.2)
    assert book.cash == pytest.approx(100_000 + closed.realized_pnl)


def test_high_water_mark_only_rises() -> None:
    book = Book(100_000.0)
    o = order("open", CONDOR)
    book.apply_fill(o, fill(o, OPEN_PRICES))
    good = book.mark(snapshot({260: 0.10, 265: 0.20, 290: 0.15, 295: 0.05}))
    book.update_high_water(good)
    best = book.positions["SPY-1"].high_water_pnl_pct
    assert best is not None and best > 0.5
    bad = book.mark(snapshot({260: 0.50, 265: 1.50, 290: 0.90, 295: 0.40}))
    book.update_high_water(bad)
    assert book.positions["SPY-1"].high_water_pnl_pct == best


def test_settlement_removes_legs_and_closes_with_the_last() -> None:
    book = Book(100_000.0)
    o = order("open", CONDOR)
    book.apply_fill(o, fill(o, OPEN_PRICES))
    cash = book.cash
    closed = None
    for c, r, _ in CONDOR:
        s = Settlement(T1, "SPY-1", c, r * 2, 280.0, 0.0, 0.0, "expired_worthless")
        closed = book.apply_settlement(s)
    assert closed is not None and closed.rule_id == "expiry"
    assert closed.realized_pnl == pytest.approx(0.85 * 200 - 5.6)
    assert book.cash == cash


def test_adjustment_replaces_only_the_closed_legs() -> None:
    book = Book(100_000.0)
    o = order("open", CONDOR)
    book.apply_fill(o, fill(o, OPEN_PRICES))
    tested = order("adjust", ((opt(290, True), 1, "short_call"), (opt(295, True), -1, "long_call")))
    assert book.apply_fill(tested, fill(tested, (1.5, 0.7), T1)) is None
    held = book.positions["SPY-1"]
    assert {hl.role for hl in held.legs} == {"long_put", "short_put"}
    assert held.adjustments == 1 and held.entry_credit == pytest.approx(0.85)


def test_day_pnl_base_rolls_at_the_session_change() -> None:
    book = Book(1_000.0)
    book.begin_tick(T0)
    book.end_tick(1_010.0)
    assert book.prev_close_net_liq == 1_000.0
    book.begin_tick(T1)
    assert book.prev_close_net_liq == 1_010.0
    book.end_tick(990.0)
    assert book.peak_net_liq == 1_010.0


def test_reducing_a_position_keeps_its_pnl_percentage() -> None:
    """P&L keeps the closed units' cash flows, so its basis keeps their credit too."""
    book = Book(100_000.0)
    o = order("open", CONDOR, qty=10)
    f = fill(o, OPEN_PRICES)
    book.apply_fill(o, Fill(f.order_id, T0, 10, f.legs, 0.0, 0.0))
    half = {260: 0.30, 265: 0.50, 290: 0.45, 295: 0.225}  # the condor at 0.425: half the credit
    (before,) = book.mark(snapshot(half))
    assert before.pnl_pct_of_credit == pytest.approx(0.5)
    close = order("reduce", tuple((c, -r, role) for c, r, role in CONDOR), qty=5)
    prices = (0.30, 0.50, 0.45, 0.225)
    legs = tuple(
        LegFill(leg.contract, leg.ratio, leg.role, p)
        for leg, p in zip(close.legs, prices, strict=True)
    )
    assert book.apply_fill(close, Fill(close.id, T1, 5, legs, 0.0, 0.0)) is None
    (after,) = book.mark(snapshot(half))
    assert book.positions["SPY-1"].quantity == 5
    assert after.pnl_pct_of_credit == pytest.approx(0.5)


def test_a_leg_without_any_price_keeps_its_last_mark() -> None:
    """A missing futures bar must not count the hedge at $0 (net liq would collapse)."""
    from engine.state.snapshot import FutureQuote

    book = Book(1_000_000.0)
    es = Contract("ES", "future")
    o = Order("h-1", T0, "hedge", "ES", (OrderLeg(es, 1, "hedge"),), 2, "r", "hedge",
              "hedge", "hedge-ES")  # fmt: skip
    book.apply_fill(o, Fill("h-1", T0, 2, (LegFill(es, 1, "hedge", 2800.0),), 0.0, 0.0))
    quoted = replace(
        snapshot({265: 1.0}),
        market=MarketState(
            session="regular", futures={"ES": FutureQuote(symbol="ES", price=2810.0)}
        ),
    )
    net_quoted = book.net_liq(book.mark(quoted))
    missing = snapshot({265: 1.0})  # no ES in this snapshot
    (m,) = book.mark(missing)
    assert book.net_liq([m]) == pytest.approx(net_quoted)
    assert m.model_marks == 1 and m.delta == pytest.approx(100.0)  # 2 contracts × 50


def test_a_hedge_flatten_goes_by_shares() -> None:
    book = Book(100_000.0)
    spy = Contract("SPY", "stock")
    buy = Order("h-1", T0, "hedge", "SPY", (OrderLeg(spy, 1, "hedge"),), 300, "r", "hedge",
                "hedge", "hedge-SPY")  # fmt: skip
    book.apply_fill(buy, Fill("h-1", T0, 300, (LegFill(spy, 1, "hedge", 280.0),), 1.5, 0.0))
    sell = Order("h-2", T1, "flatten", "SPY", (OrderLeg(spy, -1, "hedge"),), 300, "r", "flat",
                 "hedge", "hedge-SPY")  # fmt: skip
    assert (
        book.apply_fill(sell, Fill("h-2", T1, 100, (LegFill(spy, -1, "hedge", 281.0),), 1.0, 0.0))
        is None
    )
    assert book.positions["hedge-SPY"].legs[0].per_unit == 200
    closed = book.apply_fill(
        sell, Fill("h-2", T1, 200, (LegFill(spy, -1, "hedge", 281.0),), 1.0, 0.0)
    )
    assert closed is not None and closed.realized_pnl == pytest.approx(300 * 1.0 - 3.5)


def test_a_fill_for_a_position_the_book_does_not_hold_is_refused() -> None:
    book = Book(100_000.0)
    o = order("close", CONDOR)
    with pytest.raises(ValueError, match="not in the book"):
        book.apply_fill(o, fill(o, OPEN_PRICES))
    assert book.positions == {} and book.cash == 100_000.0
