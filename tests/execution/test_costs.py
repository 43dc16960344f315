"""Commission and fee math: per contract with a per-order minimum, shares, futures."""

from __future__ import annotations

import math

import pytest

from engine.execution.costs import Costs, CostsError
from engine.execution.orders import Contract, OrderLeg
from tests.execution.conftest import opt

COSTS = Costs()


def legs(*items: tuple[Contract, int]) -> list[OrderLeg]:
    return [OrderLeg(c, r, "x") for c, r in items]


IRON_CONDOR = legs(
    (opt(470.0, False), 1), (opt(475.0, False), -1), (opt(525.0, True), -1), (opt(530.0, True), 1)
)


def test_defaults_are_the_documented_schedule() -> None:
    assert (COSTS.per_contract, COSTS.min_per_order, COSTS.fees_per_contract) == (0.65, 1.0, 0.05)
    assert (COSTS.per_share, COSTS.min_per_share_order, COSTS.per_future) == (0.005, 1.0, 2.25)


@pytest.mark.parametrize(
    ("order_legs", "units", "commission", "fees"),
    [
        (legs((opt(480.0, False), -1)), 1, 1.00, 0.05),  # 0.65 < the 1.00 minimum
        (legs((opt(480.0, False), -1)), 2, 1.30, 0.10),
        (IRON_CONDOR, 1, 2.60, 0.20),  # 4 contracts
        (IRON_CONDOR, 10, 26.00, 2.00),
        (legs((opt(480.0, False), -2), (opt(470.0, False), 1)), 3, 5.85, 0.45),  # ratio 2:1
        (legs((Contract("SPY", "stock"), 100)), 1, 1.00, 0.0),  # 0.50 < the 1.00 minimum
        (legs((Contract("SPY", "stock"), -300)), 1, 1.50, 0.0),
        (legs((Contract("ES", "future"), -1)), 2, 4.50, 0.0),
        # A buy-write: options and shares billed separately, each with its minimum.
        (legs((opt(520.0, True), -1), (Contract("SPY", "stock"), 100)), 1, 2.00, 0.05),
        (IRON_CONDOR, 0, 0.0, 0.0),
    ],
)
def test_commission(order_legs: list[OrderLeg], units: int, commission: float, fees: float) -> None:
    assert COSTS.commission(order_legs, units) == pytest.approx((commission, fees))


def test_a_custom_schedule() -> None:
    costs = Costs(per_contract=1.0, min_per_order=0.0, fees_per_contract=0.1, fees_per_future=1.4)
    assert costs.commission(IRON_CONDOR, 1) == (4.0, 0.4)
    assert costs.commission(legs((Contract("NQ", "future"), 1)), 1) == (2.25, 1.4)


@pytest.mark.parametrize("bad", [-0.65, math.nan, math.inf])
def test_bad_amounts_are_refused(bad: float) -> None:
    with pytest.raises(CostsError, match="per_contract must be a finite amount >= 0"):
        Costs(per_contract=bad)
    with pytest.raises(CostsError, match="units"):
        COSTS.commission(IRON_CONDOR, -1)


def test_describe_lists_every_amount() -> None:
    d = COSTS.describe()
    for key in ("per_contract", "min_per_order", "fees_per_contract", "per_share", "per_future"):
        assert key in d
    assert d["per_contract"] == 0.65
    assert "$0.65/option contract" in str(d["label"])
