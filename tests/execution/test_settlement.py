"""Expiry settlement (worthless, exercised, assigned, cash-settled) and early-assignment flags."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.execution.orders import Contract
from engine.execution.settlement import (
    Holding,
    assignment_risks,
    expires_now,
    intrinsic_value,
    settle_expired,
)
from engine.state.snapshot import EXCHANGE_TZ
from tests.execution.conftest import make_snap, opt

CLOSE = datetime(2024, 6, 21, 16, 0, tzinfo=EXCHANGE_TZ)  # EXP's close


@pytest.mark.parametrize(
    ("tick", "expected"),
    [
        (CLOSE - timedelta(minutes=1), False),
        (CLOSE, True),
        (CLOSE + timedelta(hours=2), True),
        (datetime(2024, 6, 21, 19, 59, tzinfo=UTC), False),  # 15:59 New York (EDT)
        (datetime(2024, 6, 21, 20, 0, tzinfo=UTC), True),  # 16:00 New York
        (datetime(2024, 6, 24, 9, 31, tzinfo=EXCHANGE_TZ), True),  # the next session
        (datetime(2024, 6, 20, 16, 0, tzinfo=EXCHANGE_TZ), False),  # the day before
    ],
)
def test_expires_at_the_new_york_close(tick: datetime, expected: bool) -> None:
    assert expires_now(opt(500.0, True), tick) is expected


def test_only_options_expire() -> None:
    assert not expires_now(Contract("SPY", "stock"), CLOSE)
    assert not expires_now(Contract("ES", "future"), CLOSE)


def test_intrinsic() -> None:
    assert intrinsic_value(opt(500.0, True), 512.5) == 12.5
    assert intrinsic_value(opt(500.0, False), 512.5) == 0.0
    assert intrinsic_value(opt(500.0, False), 490.0) == 10.0


def holdings(*items: tuple[Contract, int]) -> list[Holding]:
    return [Holding(f"p{i}", c, q) for i, (c, q) in enumerate(items)]


def test_settlement_cases_on_an_etf() -> None:
    long_call, short_call = opt(500.0, True), opt(505.0, True)
    short_put, long_put = opt(510.0, False), opt(495.0, False)
    held = holdings((long_call, 2), (short_call, -1), (short_put, -3), (long_put, 1))
    out = settle_expired(held, make_snap(time=CLOSE, price=507.0))
    by = {s.contract: s for s in out}
    assert len(out) == 4
    assert (by[long_call].how, by[long_call].intrinsic, by[long_call].cash_flow) == (
        "exercised", 7.0, 1400.0,
    )  # fmt: skip
    assert (by[short_call].how, by[short_call].cash_flow) == ("assigned", -200.0)
    assert (by[short_put].how, by[short_put].cash_flow) == ("assigned", -900.0)
    assert (by[long_put].how, by[long_put].cash_flow) == ("expired_worthless", 0.0)
    assert all(s.underlying_price == 507.0 and s.time == CLOSE for s in out)
    assert by[short_put].quantity == -3 and by[short_put].position_id == "p2"


def test_at_the_money_expires_worthless() -> None:
    out = settle_expired(holdings((opt(500.0, True), -1)), make_snap(time=CLOSE, price=500.0))
    assert [(s.how, s.cash_flow) for s in out] == [("expired_worthless", 0.0)]


def test_index_options_settle_in_cash() -> None:
    put = opt(5000.0, False, symbol="SPX")
    snap = make_snap(time=CLOSE, price=4950.0, symbol="SPX")
    long_out = settle_expired(holdings((put, 1)), snap)
    short_out = settle_expired(holdings((put, -2)), snap)
    assert [(s.how, s.cash_flow) for s in long_out] == [("cash_settled", 5000.0)]
    assert [(s.how, s.cash_flow) for s in short_out] == [("cash_settled", -10_000.0)]


def test_before_the_close_and_later_expiries_are_left_alone() -> None:
    later = opt(500.0, True, expiry=date(2024, 7, 19))
    held = holdings((opt(500.0, True), 1), (later, -1), (Contract("SPY", "stock"), 100))
    assert settle_expired(held, make_snap(time=CLOSE - timedelta(seconds=1), price=510)) == []
    assert [s.contract for s in settle_expired(held, make_snap(time=CLOSE, price=510))] == [
        opt(500.0, True)
    ]


def test_a_missed_expiry_settles_on_the_next_priced_tick() -> None:
    held = holdings((opt(500.0, False), -1))
    monday = datetime(2024, 6, 24, 16, 0, tzinfo=EXCHANGE_TZ)
    assert settle_expired(held, make_snap(time=monday, price=None)) == []
    out = settle_expired(held, make_snap(time=monday, price=498.0))
    assert [(s.how, s.cash_flow, s.time) for s in out] == [("assigned", -200.0, monday)]


# ----------------------------------------------------------------------------- early assignment

DEEP_CALL = opt(450.0, True)  # 50 in the money at 500; EXP is 18 days after T0


@pytest.mark.parametrize(
    ("qty", "bid", "ask", "dividend_yield", "flagged"),
    [
        (-1, 50.0, 50.2, 0.02, True),  # extrinsic 0.10 < dividend 500 × 2% / 4 = 2.50
        (-1, 52.0, 53.0, 0.02, False),  # extrinsic 2.50: not below the dividend
        (-1, 50.0, 50.2, None, False),  # no dividend known
        (-1, 50.0, 50.2, 0.0, False),
        (1, 50.0, 50.2, 0.02, False),  # long: the holder decides, never assigned
        (-1, float("nan"), 50.2, 0.02, False),  # no usable quote: cannot judge
    ],
)
def test_early_assignment_flag(
    qty: int, bid: float, ask: float, dividend_yield: float | None, flagged: bool
) -> None:
    snap = make_snap([(DEEP_CALL, bid, ask)], dividend_yield=dividend_yield)
    risks = assignment_risks([Holding("ic1", DEEP_CALL, qty)], snap)
    assert bool(risks) is flagged
    if flagged:
        (risk,) = risks
        assert risk.position_id == "ic1" and risk.contract == DEEP_CALL
        assert risk.extrinsic == pytest.approx(0.10)
        assert risk.dividend_estimate == pytest.approx(2.50)


def test_no_flag_for_puts_otm_calls_far_expiries_or_index_options() -> None:
    put = opt(550.0, False)
    otm = opt(520.0, True)
    far = opt(450.0, True, expiry=date(2024, 7, 19))  # 46 days
    spx = opt(4500.0, True, symbol="SPX")
    snap = make_snap(
        [(put, 49.9, 50.0), (otm, 0.5, 0.6), (far, 50.1, 50.3), (spx, 500.0, 500.5)],
        dividend_yield=0.02,
        underlyings={"SPX": 5000.0},
    )
    held = [Holding("p", c, -1) for c in (put, otm, far, spx)]
    assert assignment_risks(held, snap) == []
    near = opt(450.0, True, expiry=date(2024, 7, 8))  # 35 days: still looked at
    snap2 = make_snap([(near, 50.0, 50.2)], dividend_yield=0.02)
    assert len(assignment_risks([Holding("p", near, -1)], snap2)) == 1
