"""SimBroker on a real CBOE chain (SPY, 2023-09-14): lookups, condor fills, buying power."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from engine.execution.fill_models import FillModel, QuoteBook
from engine.execution.orders import Contract
from engine.execution.sim_broker import SimBroker
from engine.feeds.cboe_chains import OptionChain, load_cboe_chain
from engine.state.snapshot import EXCHANGE_TZ, Chain, MarketState, Snapshot, UnderlyingState
from tests.execution.conftest import make_order

SPOT = 450.36  # the chain file's close


@pytest.fixture(scope="module")
def real(shared_data: Path) -> tuple[OptionChain, Snapshot]:
    raw = load_cboe_chain(shared_data / "option_chains" / "spy_chain_2023-09-14_cboe_delayed.csv")
    chain = Chain.from_columns(
        "SPY", raw.expiry, raw.strike, raw.is_call, bid=raw.bid, ask=raw.ask,
        delta=np.where(raw.vendor_iv > 0, raw.vendor_delta, np.nan),
    )  # fmt: skip
    snap = Snapshot(
        time=datetime(2023, 9, 14, 16, 0, tzinfo=EXCHANGE_TZ),
        market=MarketState(session="regular"),
        underlyings={"SPY": UnderlyingState(symbol="SPY", price=SPOT)},
        chains={"SPY": chain},
    )
    return raw, snap


def test_every_contract_is_found_with_its_own_quote(real: tuple[OptionChain, Snapshot]) -> None:
    raw, snap = real
    book = QuoteBook(snap)
    for i in range(len(raw)):
        expiry = raw.expiry[i].astype("datetime64[D]").item()
        quote = book.quote(Contract("SPY", "option", expiry, float(raw.strike[i]), raw.is_call[i]))
        assert quote is not None
        assert (quote.bid, quote.ask) == (raw.bid[i], raw.ask[i])


def _strike_near_delta(chain: Chain, expiry: date, call: bool, delta: float) -> float:
    rows = np.flatnonzero(
        (chain.expiry == np.datetime64(expiry)) & (chain.is_call == call) & ~np.isnan(chain.delta)
    )
    return float(chain.strike[rows[np.argmin(np.abs(chain.delta[rows] - delta))]])


def test_a_16_delta_condor_fills_by_model_and_uses_width_minus_credit(
    real: tuple[OptionChain, Snapshot],
) -> None:
    _, snap = real
    chain = snap.chain("SPY")
    assert chain is not None
    expiry = date(2023, 10, 20)  # 36 days
    sp = _strike_near_delta(chain, expiry, False, -0.16)
    sc = _strike_near_delta(chain, expiry, True, 0.16)
    legs = [
        (Contract("SPY", "option", expiry, sp - 5, False), 1),
        (Contract("SPY", "option", expiry, sp, False), -1),
        (Contract("SPY", "option", expiry, sc, True), -1),
        (Contract("SPY", "option", expiry, sc + 5, True), 1),
    ]
    nets = {}
    for model in (FillModel.mid(), FillModel.mid_minus(0.25), FillModel.natural()):
        broker = SimBroker(model)
        result = broker.execute([make_order(legs, quantity=10, time=snap.time)], snap)[0]
        assert result.status == "filled" and result.fill is not None
        nets[model.name] = result.fill.net_price
        mid_credit = nets.get("mid", result.fill.net_price)
        # Defined risk: 10 × (5 wide − the credit at mid), whatever the fill model.
        assert broker.account(snap).margin_used == pytest.approx(10 * (5.0 - mid_credit) * 100)
    assert nets["mid"] > nets["mid_minus"] > nets["natural"] > 0.0
