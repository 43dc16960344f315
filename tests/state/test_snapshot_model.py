"""The Snapshot model, the example snapshots, value parsing, derived fields and round trips."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dsl.errors import DslError
from engine.paths import ROOT
from engine.state import (
    Chain,
    Leg,
    MarketState,
    Position,
    Snapshot,
    load_snapshot,
    snapshot_from_document,
    snapshot_to_document,
)

NY = ZoneInfo("America/New_York")
EXAMPLES = ROOT / "tests" / "snapshots"
RULE_BASES = ROOT / "rules" / "snapshots"
PAIRS = [("spy_calm", "calm"), ("spy_stressed", "stressed"), ("spy_ic_open", "ic_open")]
ALL_EXAMPLES = sorted(EXAMPLES.glob("*.json")) + sorted(RULE_BASES.glob("*.yaml"))


def minimal_doc(**sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "v6-snapshot/1",
        "time": "2024-03-15T15:45:00-04:00",
        "market": {"session": "regular"},
    }
    doc.update(sections)
    return doc


# --------------------------------------------------------------------------- example files


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("*.json")) + sorted(RULE_BASES.glob("*.yaml"))
)
def test_every_example_loads_with_three_underlyings(path: Path) -> None:
    snap = load_snapshot(path)
    assert set(snap.underlyings) == {"SPY", "QQQ", "IWM"}
    assert snap.time.tzinfo is not None
    spy = snap.chains["SPY"]
    assert len(spy) > 0
    assert np.all(spy.bid <= spy.ask)
    assert np.all(spy.iv > 0)
    # puts have negative delta, calls positive; deltas fall as the strike rises
    assert np.all(spy.delta[~spy.is_call] < 0) and np.all(spy.delta[spy.is_call] > 0)
    for exp in spy.expiries():
        for is_call in (False, True):
            rows = (spy.expiry == exp) & (spy.is_call == is_call)
            order = np.argsort(spy.strike[rows])
            assert np.all(np.diff(spy.delta[rows][order]) < 0)


@pytest.mark.parametrize(("json_name", "yaml_name"), PAIRS)
def test_json_and_yaml_versions_agree_except_chain_size(json_name: str, yaml_name: str) -> None:
    a = load_snapshot(EXAMPLES / f"{json_name}.json")
    b = load_snapshot(RULE_BASES / f"{yaml_name}.yaml")
    assert dataclasses.replace(a, chains={}) == dataclasses.replace(b, chains={})
    assert len(b.chains["SPY"].expiries()) == 1


def test_calm_example() -> None:
    snap = load_snapshot(EXAMPLES / "spy_calm.json")
    assert snap.market.vix is not None and 12 <= snap.market.vix <= 14
    spy = snap.underlying("SPY")
    assert spy is not None and spy.price == 510.0 and spy.iv_rank == 0.55
    chain = snap.chains["SPY"]
    dtes = [(d.astype(date) - snap.time.date()).days for d in chain.expiries()]
    assert len(dtes) == 2 and 28 <= dtes[0] <= 32 and 43 <= dtes[1] <= 47
    strikes = np.unique(chain.strike)
    assert np.all(np.diff(strikes) == 5.0)
    assert strikes.min() >= 510 * 0.9 and strikes.max() <= 510 * 1.1
    assert len(chain) == 2 * 2 * len(strikes)
    assert snap.positions == ()
    assert snap.portfolio.net_liq == 100_000 and snap.portfolio.open_positions == 0


def test_stressed_example() -> None:
    snap = load_snapshot(EXAMPLES / "spy_stressed.json")
    m = snap.market
    assert m.vix == 38.0 and m.vix3m is not None and m.vix / m.vix3m > 1
    spy = snap.underlyings["SPY"]
    assert spy.change_pct == pytest.approx(-0.04, abs=0.002)
    (ic,) = snap.positions
    assert ic.strategy == "iron_condor" and ic.pnl_pct_of_credit == -1.5
    assert ic.pnl is not None and ic.pnl < 0
    assert snap.portfolio.day_pnl_pct == -0.035
    assert snap.portfolio.positions_by_strategy == {"iron_condor": 1}


def test_ic_open_example_derives_dte() -> None:
    snap = load_snapshot(EXAMPLES / "spy_ic_open.json")
    assert snap.market.vix == 17.0
    (ic,) = snap.positions
    assert ic.pnl_pct_of_credit == 0.6 and ic.high_water_pnl_pct == 0.65
    assert ic.dte == 21.0  # not in the file: derived from the leg expiries
    assert {leg.role for leg in ic.legs} == {"short_put", "long_put", "short_call", "long_call"}
    short_put = ic.leg("short_put")
    assert short_put is not None and short_put.quantity == -1 and not short_put.is_call
    assert ic.leg("straddle") is None


# --------------------------------------------------------------------------- the model


def test_snapshot_is_immutable() -> None:
    snap = load_snapshot(EXAMPLES / "spy_ic_open.json")
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.market = snap.market  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.underlyings["TSLA"] = snap.underlyings["SPY"]  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        snap.chains["SPY"].bid[0] = 0.0
    with pytest.raises(TypeError):
        snap.portfolio.positions_by_symbol["QQQ"] = 1  # type: ignore[index]


def test_chain_validates_and_copies_its_columns() -> None:
    strikes = np.array([500.0, 505.0])
    chain = Chain.from_columns("SPY", ["2024-04-19", "2024-04-12"], strikes, [False, True])
    assert len(chain) == 2 and np.isnan(chain.bid).all()
    assert chain.expiries().tolist() == [date(2024, 4, 12), date(2024, 4, 19)]
    strikes[0] = 1.0  # the caller's array stays theirs
    assert chain.strike[0] == 500.0 and strikes.flags.writeable
    with pytest.raises(ValueError, match="equal length"):
        Chain.from_columns("SPY", ["2024-04-19"], [500.0, 505.0], [False, True])
    assert chain == Chain.from_columns("SPY", ["2024-04-19", "2024-04-12"], [500, 505], [0, 1])
    assert chain != Chain.from_columns("SPY", ["2024-04-19", "2024-04-12"], [500, 510], [0, 1])


def test_model_defaults_and_checks() -> None:
    snap = Snapshot(time=datetime(2024, 3, 15, 10, tzinfo=NY), market=MarketState(session="pre"))
    assert snap.risk.state == "ACTIVE" and snap.portfolio.open_positions == 0
    assert snap.underlying("SPY") is None and snap.chain("SPY") is None
    with pytest.raises(ValueError, match="timezone"):
        Snapshot(time=datetime(2024, 3, 15, 10), market=MarketState(session="pre"))
    with pytest.raises(ValueError, match="regime"):
        MarketState(session="regular", regime="panic")
    leg = Leg(role="short_put", is_call=False, strike=500, expiry=date(2024, 4, 19), quantity=-1)
    with pytest.raises(ValueError, match="quantity"):
        Position(id="x", strategy="s", symbol="SPY", opened_at=snap.time, quantity=0, legs=(leg,))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("*.json")) + sorted(RULE_BASES.glob("*.yaml"))
)
def test_examples_round_trip(path: Path, tmp_path: Path) -> None:
    snap = load_snapshot(path)
    doc = snapshot_to_document(snap)
    text = json.dumps(doc, allow_nan=False)  # JSON-able: no NaN, no datetimes
    assert snapshot_from_document(json.loads(text)) == snap
    out = tmp_path / "again.json"
    out.write_text(text, encoding="utf-8")
    assert load_snapshot(out) == snap  # and through the YAML/JSON file reader


def test_round_trip_keeps_missing_chain_values() -> None:
    chain = {"expiry": ["2024-04-19"] * 2, "strike": [500, 505], "right": ["P", "call"]}
    chain["bid"] = [1.0, None]
    snap = snapshot_from_document(minimal_doc(chains={"SPY": chain}))
    assert math.isnan(snap.chains["SPY"].bid[1]) and math.isnan(snap.chains["SPY"].ask[0])
    doc = snapshot_to_document(snap)
    assert doc["chains"]["SPY"]["bid"] == [1.0, None]
    assert doc["chains"]["SPY"]["right"] == ["P", "C"]
    assert snapshot_from_document(doc) == snap


maybe = st.none() | st.floats(allow_nan=True, allow_infinity=False, width=64)
percent_text = st.decimals(min_value=-1000, max_value=1000, places=3).map(lambda d: f"{d}%")
dollar_text = st.integers(-(10**9), 10**9).map(lambda cents: f"${cents / 100:,.2f}")
SCALARS = st.fixed_dictionaries(
    {
        "vix": st.none() | st.floats(min_value=0, max_value=1e6),
        "vix_change_pct": maybe | percent_text,
        "beta": maybe,
        "iv_rank": st.none() | st.floats(min_value=0, max_value=1),
        "risk_reversal_25d": maybe | percent_text,
        "net_liq": maybe | dollar_text,
        "day_pnl_pct": maybe | percent_text,
        "pnl": maybe | dollar_text,
    }
)


def expected(value: float | str | None) -> float | None:
    """What a document value should load as, computed independently of the loader."""
    if isinstance(value, str) and value.endswith("%"):
        return float(Decimal(value[:-1]).scaleb(-2))
    if isinstance(value, str):
        return float(value.replace("$", "").replace(",", ""))
    return None if value is None or math.isnan(value) else value


@settings(max_examples=80, deadline=None)
@given(SCALARS)
def test_scalar_fields_round_trip(v: dict[str, Any]) -> None:
    leg = {"role": "short_put", "right": "P", "strike": 500, "expiry": "2024-04-19", "quantity": -1}
    position = {
        "id": "P1",
        "strategy": "short_put",
        "symbol": "SPY",
        "quantity": 1,
        "legs": [leg],
        "opened_at": "2024-03-01T10:00:00",
        "entry_credit": 2.5,
        "pnl": v["pnl"],
    }
    doc = minimal_doc(
        market={"session": "regular", "vix": v["vix"], "vix_change_pct": v["vix_change_pct"]},
        underlyings={
            "SPY": {k: v[k] for k in ("beta", "iv_rank", "risk_reversal_25d")},
        },
        portfolio={"net_liq": v["net_liq"], "day_pnl_pct": v["day_pnl_pct"]},
        positions=[position],
    )
    snap = snapshot_from_document(doc)
    again = snapshot_from_document(json.loads(json.dumps(snapshot_to_document(snap))))
    assert again == snap

    spy = snap.underlyings["SPY"]
    assert snap.market.vix == expected(v["vix"])
    assert snap.market.vix_change_pct == expected(v["vix_change_pct"])
    assert spy.beta == expected(v["beta"])
    assert spy.iv_rank == expected(v["iv_rank"])
    assert spy.risk_reversal_25d == expected(v["risk_reversal_25d"])
    assert snap.portfolio.net_liq == expected(v["net_liq"])
    assert snap.portfolio.day_pnl_pct == expected(v["day_pnl_pct"])
    pnl = expected(v["pnl"])
    assert snap.positions[0].pnl == pnl
    assert snap.positions[0].pnl_pct_of_credit == (None if pnl is None else pnl / 250)


# --------------------------------------------------------------------------- values and units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42%", 0.42),
        ("-2.5%", -0.025),
        ("1.3%", 0.013),
        (0.42, 0.42),
        ("0.42", 0.42),
        (None, None),
        (".nan", None),
        ("NaN", None),
    ],
)
def test_percent_values(text: object, expected: float | None) -> None:
    snap = snapshot_from_document(
        minimal_doc(underlyings={"SPY": {"atm_iv": 0.1, "change_pct": text}})
    )
    assert snap.underlyings["SPY"].change_pct == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,000.50", 1000.5),
        ("-$350", -350.0),
        ("$-350", -350.0),
        ("$100,000", 100000.0),
        (-350, -350.0),
        ("1250.5", 1250.5),
    ],
)
def test_money_values(text: object, expected: float) -> None:
    snap = snapshot_from_document(minimal_doc(portfolio={"day_pnl": text}))
    assert snap.portfolio.day_pnl == expected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("day_pnl", "$1,00", "dollar amount"),
        ("day_pnl", "5%", "percentage"),
        ("day_pnl_pct", "$5", "dollar"),
        ("day_pnl_pct", "lots", "expected a number"),
        ("net_liq", True, "expected a number"),
        ("drawdown_pct", "-1%", ">= 0"),
    ],
)
def test_bad_values_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(DslError, match=message) as info:
        snapshot_from_document(minimal_doc(portfolio={field: value}))
    assert info.value.codes == ["V6E410"]
    assert f"portfolio.{field}" in str(info.value)


def test_rank_written_as_whole_percent_gets_a_hint() -> None:
    with pytest.raises(DslError) as info:
        snapshot_from_document(minimal_doc(underlyings={"SPY": {"iv_rank": 42}}))
    assert "write 42%" in str(info.value)


def test_times_are_new_york_exchange_time() -> None:
    naive = snapshot_from_document(minimal_doc(time="2024-03-15T15:45:00"))
    assert naive.time == datetime(2024, 3, 15, 15, 45, tzinfo=NY)
    utc = snapshot_from_document(minimal_doc(time="2024-03-15T19:45:00Z"))
    assert utc.time == naive.time and utc.time.tzinfo == NY and utc.time.hour == 15
    with pytest.raises(DslError, match="date and time"):
        snapshot_from_document(minimal_doc(time="2024-03-15"))


# --------------------------------------------------------------------------- derived fields


def _position_doc(**extra: Any) -> dict[str, Any]:
    legs = [
        {"role": "short_put", "right": "P", "strike": 480, "expiry": "2024-04-19", "quantity": -1},
        {"role": "long_put", "right": "P", "strike": 475, "expiry": "2024-04-12", "quantity": 1},
    ]
    doc = {"id": "P1", "strategy": "put_spread", "symbol": "SPY", "quantity": 2, "legs": legs}
    return doc | {"opened_at": "2024-03-01T15:45:00-05:00"} | extra


def test_position_fields_are_derived_when_absent() -> None:
    doc = minimal_doc(positions=[_position_doc(entry_credit=1.5, mark=0.9)])
    (p,) = snapshot_from_document(doc).positions
    assert p.dte == 28.0  # 2024-03-15 to the nearer expiry, 2024-04-12
    assert p.days_held == pytest.approx(14.0 - 1 / 24)  # across the DST change
    assert p.pnl == pytest.approx((1.5 - 0.9) * 100 * 2)
    assert p.pnl_pct_of_credit == pytest.approx(0.4)
    portfolio = snapshot_from_document(doc).portfolio
    assert portfolio.open_positions == 1
    assert portfolio.positions_by_symbol == {"SPY": 1}
    assert portfolio.positions_by_strategy == {"put_spread": 1}


def test_given_fields_win_over_derived_ones() -> None:
    pos = _position_doc(entry_credit=1.5, mark=0.9, pnl=50, dte=3, days_held=1)
    portfolio = {"open_positions": 4, "positions_by_symbol": {"QQQ": 3}}
    (p,) = snapshot_from_document(minimal_doc(positions=[pos], portfolio=portfolio)).positions
    assert (p.pnl, p.dte, p.days_held) == (50.0, 3.0, 1.0)
    assert p.pnl_pct_of_credit == pytest.approx(50 / 300)
    snap = snapshot_from_document(minimal_doc(positions=[pos], portfolio=portfolio))
    assert snap.portfolio.open_positions == 4 and snap.portfolio.positions_by_symbol == {"QQQ": 3}
    assert snap.portfolio.positions_by_strategy == {"put_spread": 1}


def test_unknown_credit_leaves_pnl_pct_unknown() -> None:
    (p,) = snapshot_from_document(minimal_doc(positions=[_position_doc(pnl=-20)])).positions
    assert p.pnl == -20 and p.pnl_pct_of_credit is None


def test_drawdown_is_derived_from_peak() -> None:
    snap = snapshot_from_document(
        minimal_doc(portfolio={"net_liq": 95_000, "peak_net_liq": "$100,000"})
    )
    assert snap.portfolio.drawdown_pct == pytest.approx(0.05)
