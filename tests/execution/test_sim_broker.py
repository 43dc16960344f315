"""SimBroker: fills as one unit, partial fills, rejections, buying power, settlement, account."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.execution.costs import Costs
from engine.execution.fill_models import FillModel
from engine.execution.margin import MarginLeg, margin_usd
from engine.execution.orders import Broker, Contract, Order, OrderResult
from engine.execution.settlement import Holding
from engine.execution.sim_broker import Account, SimBroker, SimBrokerError
from engine.state.snapshot import EXCHANGE_TZ, Snapshot
from tests.execution.conftest import QuoteRow, make_order, make_snap, opt

P470, P475, C525, C530 = opt(470.0, False), opt(475.0, False), opt(525.0, True), opt(530.0, True)
P480 = opt(480.0, False)
QUOTES: list[QuoteRow] = [
    (P470, 0.55, 0.65),  # mids 0.60, 0.90, 0.80, 0.30: the condor's mid credit is 0.80
    (P475, 0.85, 0.95),
    (C525, 0.75, 0.85),
    (C530, 0.25, 0.35),
    (P480, 1.90, 2.10),
]
SNAP = make_snap(QUOTES)
CONDOR = [(P470, 1), (P475, -1), (C525, -1), (C530, 1)]
CLOSE = datetime(2024, 6, 21, 16, 0, tzinfo=EXCHANGE_TZ)


def only(results: list[OrderResult]) -> OrderResult:
    assert len(results) == 1
    return results[0]


def test_is_a_broker() -> None:
    broker: Broker = SimBroker()
    assert broker.describe()["broker"] == "sim"


def test_iron_condor_fills_as_one_unit_at_mid_minus_a_quarter() -> None:
    broker = SimBroker()
    result = only(broker.execute([make_order(CONDOR, quantity=2)], SNAP))
    assert result.status == "filled" and result.reason is None
    fill = result.fill
    assert fill is not None and fill.quantity == 2 and fill.time == SNAP.time
    assert [lf.price for lf in fill.legs] == pytest.approx([0.625, 0.875, 0.775, 0.325])
    assert fill.net_price == pytest.approx(0.70)  # mid credit 0.80 less 4 legs × 0.025
    assert (fill.commission, fill.fees) == (5.20, 0.40)  # 8 contracts
    assert fill.cash_flow == pytest.approx(140.0 - 5.60)
    assert broker.cash == pytest.approx(100_000.0 + 134.40)
    assert broker.holdings() == (
        Holding("p1", P470, 2), Holding("p1", P475, -2),
        Holding("p1", C525, -2), Holding("p1", C530, 2),
    )  # fmt: skip
    account = broker.account(SNAP)
    assert account.market_value == pytest.approx(-160.0)  # the condor at mid
    assert account.net_liq == pytest.approx(100_000.0 + 134.40 - 160.0)
    assert account.margin_used == pytest.approx(2 * (500.0 - 80.0))
    assert account.buying_power_available == pytest.approx(account.net_liq - 840.0)
    assert broker.position_margins(SNAP) == {"p1": pytest.approx(840.0)}


@pytest.mark.parametrize(
    ("model", "net"),
    [(FillModel.mid(), 0.80), (FillModel.natural(), 0.60), (FillModel.mid_minus(0.1), 0.76)],
)
def test_net_price_per_model(model: FillModel, net: float) -> None:
    fill = only(SimBroker(model).execute([make_order(CONDOR)], SNAP)).fill
    assert fill is not None and fill.net_price == pytest.approx(net)


def test_partial_fill_fills_at_most_max_units() -> None:
    broker = SimBroker(FillModel.mid(max_units=5))
    result = only(broker.execute([make_order(CONDOR, quantity=8)], SNAP))
    assert result.status == "partial" and result.fill is not None
    assert result.fill.quantity == 5
    assert result.reason == "filled 5 of 8 units (partial fills: at most 5 per order per tick)"
    assert Holding("p1", P475, -5) in broker.holdings()
    assert only(broker.execute([make_order(CONDOR, quantity=3)], SNAP)).status == "filled"


@pytest.mark.parametrize(
    ("snap", "legs", "fragment"),
    [
        (SNAP, [(P475, -1), (opt(465.0, False), 1)], "no quote for SPY 2024-06-21 465P"),
        (SNAP, [(opt(475.0, False, symbol="QQQ"), -1)], "no quote for QQQ 2024-06-21 475P"),
        (make_snap([(P475, float("nan"), 0.95)]), [(P475, -1)], "no bid or no ask"),
        (make_snap([(P475, 0.95, 0.85)]), [(P475, -1)], "crossed quote (bid 0.95 > ask 0.85)"),
        (make_snap([(P475, 0.0, 0.0)]), [(P475, 1)], "cannot buy at an ask of 0"),
        (make_snap(price=None), [(Contract("SPY", "stock"), 100)], "no quote for SPY"),
        (SNAP, [(Contract("ES", "future"), 1)], "no quote for ES"),
        (SNAP, [(Contract("YM", "future"), 1)], "unknown future 'YM'"),
    ],
)
def test_rejections_name_the_leg_and_change_nothing(
    snap: Snapshot, legs: list[tuple[Contract, int]], fragment: str
) -> None:
    broker = SimBroker()
    result = only(broker.execute([make_order(legs)], snap))
    assert result.status == "rejected" and result.fill is None
    assert fragment in str(result.reason)
    assert broker.cash == 100_000.0 and broker.holdings() == ()


def test_a_rejected_order_does_not_stop_the_next() -> None:
    broker = SimBroker()
    bad = make_order([(opt(465.0, False), 1)], order_id="o1")
    good = make_order(CONDOR, order_id="o2", position_id="p2")
    results = broker.execute([bad, good], SNAP)
    assert [r.status for r in results] == ["rejected", "filled"]
    assert [r.order.id for r in results] == ["o1", "o2"]
    assert {h.position_id for h in broker.holdings()} == {"p2"}


def test_shares_and_futures_trade_at_the_natural_side() -> None:
    broker = SimBroker(FillModel.mid())
    snap = make_snap(bid=499.98, ask=500.02, futures={"ES": 5300.0})
    shares = make_order([(Contract("SPY", "stock"), 100)], intent="hedge", position_id="hedge")
    short_es = make_order(
        [(Contract("ES", "future"), -1)], intent="hedge", order_id="o2", position_id="hedge"
    )
    r1, r2 = broker.execute([shares, short_es], snap)
    assert r1.fill is not None and r1.fill.legs[0].price == 500.02
    assert r1.fill.cash_flow == pytest.approx(-50_002.0 - 1.00)
    assert r2.fill is not None and r2.fill.legs[0].price == 5299.75
    assert r2.fill.cash_flow == pytest.approx(5299.75 * 50 - 2.25)
    account = broker.account(snap)
    # Shares marked at the last price, the future at its price: net liq loses the half
    # spreads paid and the commissions.
    assert account.net_liq == pytest.approx(100_000.0 - 2.0 - 1.0 - 12.5 - 2.25)
    assert account.margin_used == pytest.approx(0.5 * 50_000.0 + 12_000.0)
    no_quote = make_snap()  # no bid/ask: half a cent around the price
    fill = only(SimBroker().execute([make_order([(Contract("SPY", "stock"), -10)])], no_quote))
    assert fill.fill is not None and fill.fill.legs[0].price == pytest.approx(499.995)


# ----------------------------------------------------------------------------- buying power


def test_an_order_beyond_the_buying_power_is_rejected() -> None:
    broker = SimBroker(initial_cash=1_000.0)
    spread = [(P475, -1), (P470, 1)]  # 5 wide, mid credit 0.30: requirement 470 per unit
    too_big = only(broker.execute([make_order(spread, quantity=3)], SNAP))
    assert too_big.status == "rejected"
    assert "not enough buying power" in str(too_big.reason)
    assert "available $1,000.00" in str(too_big.reason)
    assert broker.cash == 1_000.0 and broker.holdings() == ()
    ok = only(broker.execute([make_order(spread, quantity=2)], SNAP))
    assert ok.status == "filled"
    assert broker.account(SNAP).buying_power_available >= 0.0


def test_closing_is_allowed_when_the_buying_power_is_gone() -> None:
    broker = SimBroker(initial_cash=10_000.0)
    assert only(broker.execute([make_order([(P480, -1)], position_id="np")], SNAP)).fill
    crash = make_snap([(P480, 14.0, 14.4)], price=470.0)
    assert broker.account(crash).buying_power_available < 0  # naked requirement ~10,820
    more = make_order([(P480, -1)], order_id="o2", position_id="np")
    assert only(broker.execute([more], crash)).status == "rejected"
    close = make_order([(P480, 1)], order_id="o3", intent="close", position_id="np")
    assert only(broker.execute([close], crash)).status == "filled"
    assert broker.holdings() == ()
    assert broker.account(crash).margin_used == 0.0


# ----------------------------------------------------------------------------- settlement, marks


def test_settle_applies_expiry_to_cash_and_holdings() -> None:
    broker = SimBroker(FillModel.mid(), Costs())
    broker.execute([make_order(CONDOR, quantity=2)], SNAP)
    cash = broker.cash
    expiry = make_snap(time=CLOSE, price=527.0)  # the 525 call finishes 2.00 in the money
    settlements, risks = broker.settle(expiry)
    assert risks == []
    by = {s.contract: (s.how, s.cash_flow) for s in settlements}
    assert by == {
        P470: ("expired_worthless", 0.0),
        P475: ("expired_worthless", 0.0),
        C525: ("assigned", -400.0),
        C530: ("expired_worthless", 0.0),
    }
    assert broker.cash == pytest.approx(cash - 400.0)
    assert broker.holdings() == ()
    assert broker.account(expiry) == Account(broker.cash, 0.0, broker.cash, 0.0)
    assert broker.settle(expiry) == ([], [])


def test_settle_flags_early_assignment_without_assigning() -> None:
    deep = opt(450.0, True)
    snap = make_snap([(deep, 50.0, 50.2)], dividend_yield=0.02)
    broker = SimBroker()
    broker.execute([make_order([(deep, -1)])], snap)
    settlements, risks = broker.settle(snap)
    assert settlements == []
    assert [(r.position_id, r.contract) for r in risks] == [("p1", deep)]
    assert broker.holdings() == (Holding("p1", deep, -1),)


def test_unquoted_contracts_are_marked_at_intrinsic() -> None:
    broker = SimBroker(FillModel.mid())
    broker.execute([make_order(CONDOR)], SNAP)
    # The next tick quotes only the puts; the calls are valued at intrinsic (527 - 525 = 2).
    later = make_snap(QUOTES[:2], price=527.0)
    account = broker.account(later)
    assert account.market_value == pytest.approx((0.60 - 0.90 - 2.0 + 0.0) * 100)
    legs = [MarginLeg(c, q, m) for (c, q), m in zip(CONDOR, [0.60, 0.90, 2.0, 0.0], strict=True)]
    assert account.margin_used == pytest.approx(margin_usd(legs, 527.0))


def test_describe_states_fill_model_costs_and_cash() -> None:
    d = SimBroker(FillModel.natural(max_units=2), initial_cash=50_000).describe()
    assert d["initial_cash"] == 50_000.0
    assert d["fill_model"] == FillModel.natural(max_units=2).describe()
    assert d["costs"] == Costs().describe()


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_initial_cash(bad: float) -> None:
    with pytest.raises(SimBrokerError, match="initial cash"):
        SimBroker(initial_cash=bad)


# ----------------------------------------------------------------------------- conservation

CONTRACTS = [c for c, _, _ in QUOTES]
TICKS = [make_snap(QUOTES, price=p) for p in (500.0, 492.0, 508.0)]
EXPIRY_TICK = make_snap(time=CLOSE, price=472.0)  # puts 475, 480 in the money


@st.composite
def order_batches(draw: st.DrawFn) -> list[list[Order]]:
    batches: list[list[Order]] = []
    for t in range(len(TICKS)):
        batch = []
        for i in range(draw(st.integers(0, 3))):
            picked = draw(st.lists(st.sampled_from(CONTRACTS), min_size=1, max_size=4, unique=True))
            legs = [(c, draw(st.sampled_from([-2, -1, 1, 2]))) for c in picked]
            batch.append(
                make_order(
                    legs,
                    quantity=draw(st.integers(1, 4)),
                    order_id=f"t{t}-{i}",
                    position_id=draw(st.sampled_from(["a", "b", None])),
                    time=TICKS[t].time,
                )
            )
        batches.append(batch)
    return batches


@settings(max_examples=60, deadline=None, derandomize=True)
@given(order_batches(), st.sampled_from([FillModel.mid_minus(0.25, 3), FillModel.natural()]))
def test_cash_moves_only_by_fills_and_settlements(
    batches: list[list[Order]], model: FillModel
) -> None:
    broker = SimBroker(model, initial_cash=20_000.0)
    flows = 0.0
    for snap, batch in zip(TICKS, batches, strict=True):
        before = broker.account(snap)
        results = broker.execute(batch, snap)
        assert [r.order for r in results] == batch
        filled = [r.fill for r in results if r.fill is not None]
        flows += sum(f.cash_flow for f in filled)
        after = broker.account(snap)
        # At unchanged quotes a fill loses exactly its costs and the part of the spread paid.
        lost = sum(
            f.commission + f.fees
            + sum(lf.ratio * f.quantity * (lf.price - _mid(snap, lf.contract)) * 100
                  for lf in f.legs)
            for f in filled
        )  # fmt: skip
        assert after.net_liq == pytest.approx(before.net_liq - lost, abs=1e-6)
        assert after.net_liq == pytest.approx(after.cash + after.market_value)
        assert all(r.status == "rejected" or r.fill for r in results)
    settlements, _ = broker.settle(EXPIRY_TICK)
    flows += sum(s.cash_flow for s in settlements)
    assert broker.cash == pytest.approx(20_000.0 + flows, abs=1e-6)
    assert broker.holdings() == ()


def _mid(snap: Snapshot, contract: Contract) -> float:
    chain = snap.chain(contract.symbol)
    assert chain is not None
    for i in range(len(chain)):
        if chain.strike[i] == contract.strike and bool(chain.is_call[i]) == contract.is_call:
            return float(chain.bid[i] + chain.ask[i]) / 2
    raise AssertionError(contract)


def test_deterministic() -> None:
    def run() -> list[OrderResult]:
        broker = SimBroker()
        out = broker.execute([make_order(CONDOR, quantity=3)], SNAP)
        out += broker.execute([make_order(CONDOR, intent="close", order_id="o2")], TICKS[1])
        return out

    assert run() == run()
