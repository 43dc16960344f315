"""Buying power: defined-risk max loss, Reg-T naked options and strangles, shares, futures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.execution.margin import (
    MarginError,
    MarginLeg,
    expiry_payoff_usd,
    margin_usd,
    max_loss_usd,
    min_expiry_payoff_usd,
    naked_requirement_usd,
)
from engine.execution.orders import Contract
from tests.execution.conftest import EXP, opt

S = 500.0


def leg(strike: float, call: bool, qty: int, mark: float, symbol: str = "SPY") -> MarginLeg:
    return MarginLeg(opt(strike, call, symbol=symbol), qty, mark)


def test_credit_put_vertical_uses_width_minus_credit() -> None:
    spread = [leg(480.0, False, -1, 2.00), leg(475.0, False, 1, 1.20)]  # credit 0.80
    assert min_expiry_payoff_usd(spread) == pytest.approx(-500.0)
    assert margin_usd(spread, S) == pytest.approx(500.0 - 80.0)
    assert max_loss_usd(spread) == pytest.approx(420.0)
    # Ten of them, any underlying price: defined risk does not read the price.
    ten = [MarginLeg(x.contract, 10 * x.quantity, x.mark) for x in spread]
    assert margin_usd(ten, None) == pytest.approx(4200.0)


def test_debit_spread_and_long_options_are_paid_in_full() -> None:
    debit = [leg(500.0, True, 1, 6.00), leg(510.0, True, -1, 2.50)]
    assert margin_usd(debit, S) == pytest.approx(350.0)
    assert margin_usd([leg(480.0, False, 2, 1.5)], S) == pytest.approx(300.0)


def test_iron_condor_charges_the_wider_side_minus_the_credit() -> None:
    condor = [
        leg(470.0, False, 1, 0.60),
        leg(475.0, False, -1, 0.90),
        leg(525.0, True, -1, 0.80),
        leg(535.0, True, 1, 0.30),
    ]  # credit 0.30 + 0.50 = 0.80, call side 10 wide
    assert min_expiry_payoff_usd(condor) == pytest.approx(-1000.0)
    assert margin_usd(condor, S) == pytest.approx(1000.0 - 80.0)


def test_naked_put_uses_reg_t() -> None:
    put = leg(480.0, False, -1, 2.00)  # 20 out of the money
    # premium + max(20% × 500 − 20, 10% × 480) = 2 + max(80, 48)
    assert naked_requirement_usd(put, S) == pytest.approx(8200.0)
    assert margin_usd([MarginLeg(put.contract, -3, 2.0)], S) == pytest.approx(3 * 8200.0)
    far = leg(300.0, False, -1, 0.05)  # 20% × 500 − 200 < 10% × 300
    assert naked_requirement_usd(far, S) == pytest.approx((0.05 + 30.0) * 100)
    # The put's payoff at 0 is bounded, so its max loss is finite: strike − premium.
    assert max_loss_usd([put]) == pytest.approx(48_000.0 - 200.0)


def test_naked_call_uses_reg_t_and_an_unbounded_payoff() -> None:
    call = leg(520.0, True, -1, 1.50)
    assert min_expiry_payoff_usd([call]) == -math.inf
    assert max_loss_usd([call]) == math.inf
    # premium + max(20% × 500 − 20, 10% × 500)
    assert margin_usd([call], S) == pytest.approx((1.5 + 80.0) * 100)


def test_index_options_use_fifteen_percent() -> None:
    put = leg(4800.0, False, -1, 20.0, symbol="SPX")
    # premium + max(15% × 5000 − 200, 10% × 4800)
    assert naked_requirement_usd(put, 5000.0) == pytest.approx((20.0 + 550.0) * 100)


def test_strangle_charges_the_larger_side_plus_the_other_premium() -> None:
    put, call = leg(480.0, False, -1, 2.00), leg(530.0, True, -1, 1.00)
    put_req = naked_requirement_usd(put, S)  # 8200
    call_req = naked_requirement_usd(call, S)  # (1 + 70) × 100 = 7100
    assert put_req > call_req
    assert margin_usd([put, call], S) == pytest.approx(put_req + 100.0)


def test_put_ratio_spread_is_a_vertical_plus_a_naked_put() -> None:
    legs = [leg(480.0, False, -2, 2.00), leg(485.0, False, 1, 3.00)]
    # one 480 put naked (8200) + long 485 / short 480 put debit spread worth 1.00 (max loss 100)
    assert margin_usd(legs, S) == pytest.approx(8200.0 + 100.0)


def test_a_long_leg_expiring_first_does_not_cover() -> None:
    short = leg(480.0, False, -1, 2.0)
    early_long = MarginLeg(opt(475.0, False, expiry=EXP.replace(day=14)), 1, 0.5)
    late_long = MarginLeg(opt(475.0, False, expiry=EXP.replace(day=28)), 1, 1.5)
    assert margin_usd([short, early_long], S) == pytest.approx(8200.0 + 50.0)
    assert margin_usd([short, late_long], S) == pytest.approx(500.0 - 50.0)


def test_jade_lizard_charges_the_naked_put_plus_the_call_premium() -> None:
    legs = [leg(480.0, False, -1, 2.00), leg(525.0, True, -1, 0.80), leg(530.0, True, 1, 0.30)]
    # naked put 8200 > call spread (500 − 50); the call side adds its short premium, 80
    assert margin_usd(legs, S) == pytest.approx(8200.0 + 80.0)


def test_shares_do_not_cover_a_short_call() -> None:
    legs = [MarginLeg(Contract("SPY", "stock"), 100, 500.0), leg(520.0, True, -1, 1.50)]
    assert margin_usd(legs, S) == pytest.approx(25_000.0 + (1.5 + 80.0) * 100)


def test_shares_and_futures() -> None:
    shares = MarginLeg(Contract("SPY", "stock"), -200, 500.0)
    assert margin_usd([shares], None) == pytest.approx(0.5 * 200 * 500.0)
    es = MarginLeg(Contract("ES", "future"), -2, 5300.0)
    assert margin_usd([es], None) == pytest.approx(24_000.0)
    with pytest.raises(MarginError, match="no initial margin for future 'YM'"):
        margin_usd([MarginLeg(Contract("YM", "future"), 1, 39_000.0)], None)


def test_naked_margin_needs_the_price() -> None:
    with pytest.raises(MarginError, match="needs the underlying's price"):
        margin_usd([leg(480.0, False, -1, 2.0)], None)


# ----------------------------------------------------------------------------- property

strikes = st.integers(80, 120).map(lambda k: 5.0 * k)  # 400 .. 600 on a $5 grid
widths = st.integers(1, 6).map(lambda w: 5.0 * w)
marks = st.floats(0.0, 20.0)


@st.composite
def verticals(draw: st.DrawFn, call: bool | None = None) -> list[MarginLeg]:
    is_call = draw(st.booleans()) if call is None else call
    k, w = draw(strikes), draw(widths)
    short_k, long_k = (k, k + w) if is_call else (k, k - w)
    if draw(st.booleans()):  # a debit spread: long nearer the money
        short_k, long_k = long_k, short_k
    q = draw(st.integers(1, 5))
    return [leg(short_k, is_call, -q, draw(marks)), leg(long_k, is_call, q, draw(marks))]


@st.composite
def structures(draw: st.DrawFn) -> list[MarginLeg]:
    if draw(st.booleans()):
        return draw(verticals())
    return draw(verticals(call=False)) + draw(verticals(call=True))  # condors, broken wings too


@settings(max_examples=150, deadline=None, derandomize=True)
@given(structures())
def test_max_loss_equals_the_brute_force_payoff_minimum(legs: list[MarginLeg]) -> None:
    grid = np.linspace(0.0, 1000.0, 20_001)  # 5 cents apart: every $5 strike is on it
    brute_min = float(expiry_payoff_usd(legs, grid).min())
    value = sum(x.quantity * x.mark * 100 for x in legs)
    assert min_expiry_payoff_usd(legs) == pytest.approx(brute_min, abs=1e-6)
    assert max_loss_usd(legs) == pytest.approx(max(0.0, value - brute_min), abs=1e-6)
    assert margin_usd(legs, S) == pytest.approx(max(0.0, value - brute_min), abs=1e-6)
