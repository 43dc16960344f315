"""Health signals: data age from fresh quotes, the day's broker rejects."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from engine.execution.orders import Contract, Order, OrderLeg, OrderResult
from engine.risk.health import Health, fresh
from engine.state.snapshot import UnderlyingState
from tests.dsl.conftest import T0, make_snapshot


def snap(minutes: float, risk: dict[str, Any] | None = None, **prices: float | None) -> Any:
    return make_snapshot(
        underlyings={s: {"price": p} for s, p in prices.items()},
        risk=risk,
        time=T0 + timedelta(minutes=minutes),
    )


def test_a_quote_is_fresh_when_priced_and_not_crossed() -> None:
    assert fresh(UnderlyingState(symbol="SPY", price=500.0, bid=499.9, ask=500.1))
    assert not fresh(UnderlyingState(symbol="SPY", price=500.0, bid=500.2, ask=500.1))
    assert not fresh(UnderlyingState(symbol="SPY", price=None))
    assert not fresh(None)


def test_data_age_is_the_stalest_watched_symbol() -> None:
    h = Health()
    assert h.data_age(snap(0, SPY=None), ()) == 0.0  # never quoted: stale from now on
    assert h.data_age(snap(1, SPY=500.0, QQQ=400.0), ["QQQ"]) == 0.0
    assert h.data_age(snap(3, SPY=501.0, QQQ=None), ["QQQ"]) == 120.0
    assert h.data_age(snap(6, SPY=None, QQQ=401.0), []) == 180.0  # SPY is always watched
    # A feed that knows its tick times reports an age itself; the larger one counts.
    assert h.data_age(snap(7, {"data_age_seconds": 900.0}, SPY=502.0), []) == 900.0


def test_rejects_count_per_new_york_day() -> None:
    h = Health()
    leg = OrderLeg(Contract("SPY", "stock"), 1, "hedge")
    o = Order("o-1", T0, "hedge", "SPY", (leg,), 1, "r", "test")
    results = [OrderResult(o, "rejected", None, "no quote"), OrderResult(o, "filled")]
    assert h.count_rejects(T0, results) == 1
    assert h.count_rejects(T0 + timedelta(hours=1), results) == 2
    assert h.rejects_so_far(T0 + timedelta(hours=2)) == 2
    assert h.rejects_so_far(T0 + timedelta(days=1)) == 0
    assert h.count_rejects(T0 + timedelta(days=1), []) == 0


def test_a_symbol_never_quoted_goes_stale_and_a_futures_hedge_is_watched() -> None:
    h = Health()
    assert h.data_age(snap(0, SPY=500.0), ["IWM"]) == 0.0
    assert h.data_age(snap(5, SPY=500.0), ["IWM"]) == 300.0  # IWM never had a quote
    es = make_snapshot(underlyings={"SPY": {"price": 500.0}},
                       market={"futures": {"ES": {"price": None}}}, time=T0)  # fmt: skip
    h2 = Health()
    assert h2.data_age(es, ["ES"]) == 0.0
    later = replace(es, time=T0 + timedelta(minutes=3))
    assert h2.data_age(later, ["ES"]) == 180.0
