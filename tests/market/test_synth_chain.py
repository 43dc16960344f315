"""Synthetic chains: strike grid, quote invariants, parity, Greeks, determinism, output files."""

from __future__ import annotations

import csv
import math
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.spreads import SPREADS
from engine.market.strikes import StrikeGridError, nice_step, strike_grid
from engine.market.surface import VolIndices
from engine.market.synth_chain import (
    CHAIN_COLUMNS,
    ChainSpec,
    SynthChainError,
    chain_table,
    synth_chain,
    trailing_dividend_yield,
    write_chain,
)
from engine.state.enrich import enrich_chain, year_fractions
from engine.state.snapshot import Chain

NY = ZoneInfo("America/New_York")
CLOSE = datetime(2025, 6, 9, 16, 0, tzinfo=NY)
SPOT, VIX, Q = 599.68, VolIndices(vix=17.16), 0.013
SPEC = ChainSpec(rate=0.043)


@pytest.fixture(scope="module")
def spy() -> Chain:
    return synth_chain("SPY", CLOSE, SPOT, VIX, Q, SPEC)


# ------------------------------------------------------------------ strike grid
def test_spy_grid_is_dollars_near_and_fives_far() -> None:
    k = strike_grid("SPY", SPOT, 0.20)
    assert k.min() >= SPOT * 0.8 and k.max() <= SPOT * 1.2
    assert np.all(np.diff(k) > 0)
    near = k[np.abs(k / SPOT - 1) <= 0.12]
    far = k[np.abs(k / SPOT - 1) > 0.121]
    assert set(np.diff(near)) == {1.0}
    assert np.all(far % 5 == 0)
    assert {600.0, 480.0, 715.0} <= set(k)


def test_spx_grid_is_fives_near_and_twenty_fives_far() -> None:
    k = strike_grid("SPX", 4505.10, 0.20)
    near = k[np.abs(k / 4505.10 - 1) <= 0.08]
    assert set(np.diff(near)) == {5.0}
    assert np.all(k[np.abs(k / 4505.10 - 1) > 0.081] % 25 == 0)


def test_unknown_symbol_grid_scales_with_price() -> None:
    assert nice_step(0.26) == 0.5 and nice_step(3.0) == 2.5 and nice_step(12.0) == 10.0
    k = strike_grid("XYZ", 40.0, 0.2)
    assert set(np.diff(k[np.abs(k / 40 - 1) <= 0.1])) == {0.5}
    k2 = strike_grid("XYZ", 4000.0, 0.2)
    assert 4000.0 in k2 and set(np.diff(k2[np.abs(k2 / 4000 - 1) <= 0.1])) == {10.0}


def test_narrow_range_still_has_the_nearest_strike() -> None:
    np.testing.assert_array_equal(strike_grid("SPX", 4503.0, 0.0005), [4505.0])


@pytest.mark.parametrize(("spot", "rng"), [(0.0, 0.2), (math.nan, 0.2), (100.0, 0.0), (100, 1.5)])
def test_bad_grid_input(spot: float, rng: float) -> None:
    with pytest.raises(StrikeGridError):
        strike_grid("SPY", spot, rng)


# ------------------------------------------------------------------ chain invariants
def _parity_gap(chain: Chain, spot: float, r: float, q: float, asof: datetime) -> np.ndarray:
    """|C - P - (S e^-qT - K e^-rT)| minus the half-spreads of both, per strike and expiry."""
    calls, puts = chain.is_call, ~chain.is_call
    assert np.array_equal(chain.strike[calls], chain.strike[puts])
    assert np.array_equal(chain.expiry[calls], chain.expiry[puts])
    t = year_fractions(chain.expiry[calls], asof)
    k = chain.strike[calls]
    mid = 0.5 * (chain.bid + chain.ask)
    half = 0.5 * (chain.ask - chain.bid)
    gap = np.abs(mid[calls] - mid[puts] - (spot * np.exp(-q * t) - k * np.exp(-r * t)))
    return np.asarray(gap - half[calls] - half[puts])


def check_invariants(chain: Chain, spot: float, r: float, q: float, asof: datetime) -> None:
    cols = ("bid", "ask", "iv", "delta", "gamma", "vega", "theta")
    assert all(np.isfinite(getattr(chain, c)).all() for c in cols)
    assert (chain.bid >= 0).all()
    assert (chain.ask - chain.bid >= 0.01 - 1e-9).all()  # never crossed, at least a tick
    mid = 0.5 * (chain.bid + chain.ask)
    assert ((chain.bid <= mid) & (mid <= chain.ask)).all()
    c, p = chain.is_call, ~chain.is_call
    assert ((chain.delta[c] >= 0) & (chain.delta[c] <= 1)).all()
    assert ((chain.delta[p] >= -1) & (chain.delta[p] <= 0)).all()
    assert (chain.gamma >= 0).all() and (chain.vega >= 0).all() and (chain.iv > 0).all()
    assert (year_fractions(chain.expiry, asof) > 0).all()
    assert (_parity_gap(chain, spot, r, q, asof) <= 1e-9).all()


def test_daily_chain_invariants(spy: Chain) -> None:
    check_invariants(spy, SPOT, 0.043, Q, CLOSE)
    assert len(np.unique(spy.expiry)) == 15
    # Ordered by expiry, strike, call before put.
    order = np.lexsort((~spy.is_call, spy.strike, spy.expiry))
    np.testing.assert_array_equal(order, np.arange(len(spy)))


def test_quotes_are_on_the_tick_grid(spy: Chain) -> None:
    for col in (spy.bid, spy.ask):
        np.testing.assert_allclose(col * 100, np.rint(col * 100), atol=1e-7)
    spx = synth_chain("SPX", CLOSE, 6000.0, VIX, Q, SPEC)
    check_invariants(spx, 6000.0, 0.043, Q, CLOSE)
    np.testing.assert_allclose(spx.bid * 20, np.rint(spx.bid * 20), atol=1e-7)
    above = spx.ask - spx.bid  # SPX: 0.05 ticks below $3, 0.10 at or above
    mid = 0.5 * (spx.bid + spx.ask)
    np.testing.assert_allclose(above[mid > 5] * 10, np.rint(above[mid > 5] * 10), atol=1e-7)


def test_greeks_match_the_kernel_enrichment(spy: Chain) -> None:
    # Inverting the quoted mids (engine.state.enrich) recovers the model IV within the tick.
    again = enrich_chain(spy, SPOT, CLOSE, 0.043, Q)
    t = year_fractions(spy.expiry, CLOSE)
    liquid = (np.abs(spy.delta) > 0.1) & (np.abs(spy.delta) < 0.9) & (t > 7 / 365)
    assert np.max(np.abs(again.iv[liquid] - spy.iv[liquid])) < 0.003
    assert np.max(np.abs(again.delta[liquid] - spy.delta[liquid])) < 0.01


def test_spread_widens_with_volatility_and_away_from_the_money() -> None:
    calm = synth_chain("SPY", CLOSE, SPOT, VolIndices(vix=12), Q, SPEC)
    wild = synth_chain("SPY", CLOSE, SPOT, VolIndices(vix=40), Q, SPEC)
    e = calm.expiry == np.unique(calm.expiry)[10]  # 2025-07-03, 24 days
    atm = e & calm.is_call & (calm.strike == 600)
    # In vol points (width / vega) and in dollars, the ATM quote is wider when VIX is high.
    assert (wild.ask - wild.bid)[atm] > (calm.ask - calm.bid)[atm]
    vol_points = lambda c: ((c.ask - c.bid) / c.vega)[atm]  # noqa: E731
    assert vol_points(wild) > 1.3 * vol_points(calm)
    puts = e & ~calm.is_call
    rel = (calm.ask - calm.bid)[puts] / (0.5 * (calm.ask + calm.bid))[puts]
    k = calm.strike[puts]
    assert rel[k == 560].item() > rel[k == 590].item() > rel[k == 600].item()


def test_deterministic(spy: Chain) -> None:
    assert synth_chain("SPY", CLOSE, SPOT, VIX, Q, SPEC) == spy


def test_intraday_tick_keeps_the_same_day_expiry() -> None:
    morning = datetime(2025, 6, 9, 10, 30, tzinfo=NY)
    chain = synth_chain("SPY", morning, 597.10, VIX, Q, SPEC)
    assert np.datetime64("2025-06-09") in chain.expiry
    check_invariants(chain, 597.10, 0.043, Q, morning)
    assert np.datetime64("2025-06-09") not in synth_chain("SPY", CLOSE, SPOT, VIX, Q, SPEC).expiry


def test_other_timezones_are_read_in_new_york_time() -> None:
    utc = CLOSE.astimezone(ZoneInfo("UTC"))
    assert synth_chain("SPY", utc, SPOT, VIX, Q, SPEC) == synth_chain(
        "SPY", CLOSE, SPOT, VIX, Q, SPEC
    )


@settings(max_examples=25, deadline=None)
@given(
    spot=st.floats(20.0, 5000.0),
    vix=st.floats(9.0, 85.0),
    minute=st.integers(9 * 60 + 30, 16 * 60 - 1),
    day=st.dates(date(2012, 1, 3), date(2026, 12, 20)),
    symbol=st.sampled_from(["SPY", "SPX", "QQQ", "XYZ"]),
    rate=st.floats(0.0, 0.08),
    q=st.floats(0.0, 0.04),
)
def test_invariants_hold_for_any_day_and_market(
    spot: float, vix: float, minute: int, day: date, symbol: str, rate: float, q: float
) -> None:
    asof = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=NY)
    chain = synth_chain(symbol, asof, spot, VolIndices(vix=vix), q, ChainSpec(rate=rate))
    check_invariants(chain, spot, rate, q, asof)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"asof": datetime(2025, 6, 9, 16)}, "timezone-aware"),
        ({"spot": 0.0}, "spot"),
        ({"spot": math.nan}, "spot"),
        ({"dividend_yield": math.inf}, "dividend_yield"),
    ],
)
def test_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"asof": CLOSE, "spot": SPOT, "dividend_yield": Q}
    args |= kwargs
    with pytest.raises(SynthChainError, match=match):
        synth_chain("SPY", indices=VIX, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"max_days": -1}, {"strike_range": 0.0}, {"rate": math.nan}, {"vol_scale": 0.0}]
)
def test_bad_spec(kwargs: dict[str, float]) -> None:
    with pytest.raises(SynthChainError):
        ChainSpec(**kwargs)  # type: ignore[arg-type]


def test_symbols_share_spread_tables() -> None:
    assert SPREADS["QQQ"] is SPREADS["SPY"] and SPREADS["RUT"] is SPREADS["SPX"]


# ------------------------------------------------------------------ table and files
def test_chain_table_columns(spy: Chain) -> None:
    table = chain_table(spy, SPOT)
    assert table.schema == CHAIN_COLUMNS
    assert table.num_rows == len(spy)
    rights = set(table.column("right").to_pylist())
    assert rights == {"C", "P"}
    mid = table.column("mid").to_numpy()
    assert np.all(mid >= table.column("bid").to_numpy())
    assert table.column("expiry").to_pylist()[0] == date(2025, 6, 10)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_chain_round_trip(spy: Chain, tmp_path: Path, suffix: str) -> None:
    table = chain_table(spy, SPOT)
    out = tmp_path / f"chain{suffix}"
    write_chain(table, out)
    back = pq.read_table(out) if suffix == ".parquet" else pacsv.read_csv(out)
    assert back.num_rows == table.num_rows
    np.testing.assert_allclose(back.column("ask").to_numpy(), table.column("ask").to_numpy())
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_write_chain_errors(spy: Chain, tmp_path: Path) -> None:
    table = chain_table(spy, SPOT)
    with pytest.raises(SynthChainError, match=r"unknown output format '\.xlsx'"):
        write_chain(table, tmp_path / "chain.xlsx")
    with pytest.raises(SynthChainError, match="does not exist"):
        write_chain(table, tmp_path / "missing" / "chain.csv")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ dividends
def test_trailing_dividend_yield() -> None:
    dates = np.arange("2023-01-02", "2024-06-29", dtype="datetime64[D]")
    closes = np.full(dates.size, 400.0)
    closes[-1] = 500.0
    divs = np.zeros(dates.size)
    for d in ("2023-03-17", "2023-06-16", "2023-09-15", "2023-12-15", "2024-03-15"):
        divs[dates == np.datetime64(d)] = 1.5
    # Ex-dates in (asof - 365 days, asof]: Jun, Sep, Dec 2023 and Mar 2024.
    assert trailing_dividend_yield(dates, closes, divs, date(2024, 6, 14)) == pytest.approx(
        6.0 / 400.0
    )
    assert trailing_dividend_yield(dates, closes, divs, date(2024, 6, 28)) == pytest.approx(
        4.5 / 500.0
    )
    with pytest.raises(SynthChainError, match="no positive close"):
        trailing_dividend_yield(dates, closes, divs, date(2022, 1, 1))
    with pytest.raises(SynthChainError, match="one length"):
        trailing_dividend_yield(dates[:-1], closes, divs, date(2024, 1, 2))


def test_trailing_dividend_yield_of_real_spy(shared_data: Path) -> None:
    path = next((shared_data / "daily").glob("spy_unadjusted_*.csv"))
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    dates = np.array([r["Date"] for r in rows], dtype="datetime64[D]")
    closes = np.array([float(r["Close"]) for r in rows])
    divs = np.array([float(r["Dividend"]) for r in rows])
    # SPY paid about $5.6 in 2019 on a ~$322 close: a yield near 1.75 %.
    assert 0.015 < trailing_dividend_yield(dates, closes, divs, date(2019, 12, 31)) < 0.02
