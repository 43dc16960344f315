"""The synthetic market: schema, determinism, calendar, and the market's statistical shape."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine.market.bars import DAILY_BARS
from engine.market.generator import (
    DEFAULT_PARAMS,
    DEMO_SEED,
    GeneratorParams,
    SyntheticMarketError,
    generate_market,
    regimes,
    write_synthetic_store,
)
from engine.market.regime_model import CRASH, DEFAULT_REGIMES, RegimeSpec, stationary_distribution

START, END = date(2007, 1, 1), date(2019, 12, 31)
KINDS = {
    "SPY": "underlying", "QQQ": "underlying", "IWM": "underlying",
    "VIX": "index", "VIX9D": "index", "VIX3M": "index", "VVIX": "index", "SKEW": "index",
    "ES": "future", "NQ": "future", "RTY": "future",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo() -> pa.Table:
    return generate_market(DEMO_SEED, START, END)


@pytest.fixture(scope="module")
def demo_regimes() -> np.ndarray:
    return regimes(DEMO_SEED, START, END)[1]


def column(table: pa.Table, symbol: str, name: str = "close") -> np.ndarray:
    rows = table.filter(pc.equal(table.column("symbol"), symbol))
    return np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def log_returns(prices: np.ndarray) -> np.ndarray:
    return np.diff(np.log(prices))


def qualifying_crashes(table: pa.Table) -> list[tuple[int, int, float]]:
    """(peak, trough, drawdown) of each 20%+ SPY drawdown with VIX > 40 and VIX > VIX3M in it."""
    spy, vix, vix3m = (column(table, s) for s in ("SPY", "VIX", "VIX3M"))
    drawdown = spy / np.maximum.accumulate(spy) - 1.0
    highs = [*np.flatnonzero(drawdown == 0.0).tolist(), len(spy)]
    found = []
    for peak, next_high in itertools.pairwise(highs):
        trough = peak + int(np.argmin(drawdown[peak:next_high]))
        window = slice(peak, trough + 1)
        stressed = (vix[window] > 40.0) & (vix[window] > vix3m[window])
        if drawdown[trough] <= -0.20 and trough - peak > 1 and stressed.any():
            found.append((peak, trough, float(drawdown[trough])))
    return found


# --- shape of the table ---------------------------------------------------------------------


def test_schema_symbols_kinds_and_source(demo: pa.Table) -> None:
    assert demo.schema.equals(DAILY_BARS)
    pairs = demo.group_by(["symbol", "kind"]).aggregate([]).to_pylist()
    assert {p["symbol"]: p["kind"] for p in pairs} == KINDS
    assert set(demo.column("source").to_pylist()) == {f"synthetic:{DEMO_SEED}"}


def test_nulls_follow_what_real_sources_publish(demo: pa.Table) -> None:
    for symbol, kind in KINDS.items():
        rows = demo.filter(pc.equal(demo.column("symbol"), symbol))
        nulls = {name: rows.column(name).null_count for name in ("open", "volume", "dividend")}
        close_only = symbol in ("VVIX", "SKEW")
        assert nulls["open"] == (rows.num_rows if close_only else 0), symbol
        assert nulls["volume"] == (rows.num_rows if kind == "index" else 0), symbol
        assert nulls["dividend"] == (0 if kind == "underlying" else rows.num_rows), symbol
        assert not pc.any(pc.is_nan(rows.column("close"))).as_py()


def test_sessions_are_the_xnys_sessions(demo: pa.Table) -> None:
    calendar = xcals.get_calendar("XNYS", start="2000-01-03", end="2030-12-31")
    expected = calendar.sessions_in_range("2007-01-01", "2019-12-31").values.astype("M8[D]")
    dates, _ = regimes(DEMO_SEED, START, END)
    np.testing.assert_array_equal(dates, expected)
    for symbol in KINDS:
        rows = demo.filter(pc.equal(demo.column("symbol"), symbol))
        np.testing.assert_array_equal(rows.column("date").to_numpy().astype("M8[D]"), expected)
    days = set(demo.column("date").to_pylist())
    assert date(2008, 11, 27) not in days  # Thanksgiving
    assert date(2012, 10, 29) not in days  # Hurricane Sandy closure
    assert all(d.weekday() < 5 for d in days)


@pytest.mark.parametrize("seed", [0, 1, DEMO_SEED, 2024])
def test_ohlc_consistent_and_positive(seed: int) -> None:
    table = generate_market(seed, date(2018, 1, 1), date(2020, 12, 31))
    for symbol in KINDS:
        o, h, lo, c = (column(table, symbol, n) for n in ("open", "high", "low", "close"))
        assert (c > 0).all(), symbol
        if symbol in ("VVIX", "SKEW"):
            continue
        assert (lo > 0).all(), symbol
        assert (lo <= np.minimum(o, c)).all(), symbol
        assert (np.maximum(o, c) <= h).all(), symbol


# --- determinism and input checks ------------------------------------------------------------


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def test_same_seed_same_bytes_other_seed_differs(demo: pa.Table) -> None:
    again = generate_market(DEMO_SEED, START, END)
    assert ipc_bytes(again) == ipc_bytes(demo)
    other = generate_market(DEMO_SEED + 1, START, END)
    assert not np.array_equal(column(other, "SPY"), column(demo, "SPY"))
    assert not np.array_equal(column(other, "VIX"), column(demo, "VIX"))


def test_regimes_are_the_path_that_drove_the_market(
    demo: pa.Table, demo_regimes: np.ndarray
) -> None:
    names = {r.name for r in DEFAULT_REGIMES}
    assert names == {"calm", "normal", "stressed", "crash", "recovery"}
    assert set(demo_regimes.tolist()) == names  # every regime visited in 13 years
    assert demo_regimes[0] == DEFAULT_PARAMS.initial_regime
    vix = column(demo, "VIX")
    medians = [np.median(vix[demo_regimes == n]) for n in ("calm", "normal", "stressed", CRASH)]
    assert medians == sorted(medians)


def test_bad_dates_are_reported() -> None:
    with pytest.raises(SyntheticMarketError, match="after end"):
        generate_market(1, date(2020, 1, 2), date(2020, 1, 1))
    with pytest.raises(SyntheticMarketError, match="no NYSE session"):
        generate_market(1, date(2021, 1, 2), date(2021, 1, 3))  # a weekend


def test_bad_params_are_reported() -> None:
    calm = dataclasses.replace(DEFAULT_REGIMES[0], exits=(("normal", 0.7), ("stressed", 0.6)))
    with pytest.raises(SyntheticMarketError, match="sum to"):
        GeneratorParams(regimes=(calm, *DEFAULT_REGIMES[1:]))
    with pytest.raises(SyntheticMarketError, match="initial regime"):
        GeneratorParams(initial_regime="boom")
    with pytest.raises(SyntheticMarketError, match="spot_vol_corr"):
        GeneratorParams(spot_vol_corr=-1.5)
    lost = RegimeSpec("lost", 0.0, 15.0, 0.1, 0.05, 0.0, 0.0, 0.0, 125.0, (("nowhere", 0.1),))
    with pytest.raises(ValueError, match="nowhere"):
        GeneratorParams(regimes=(lost,), initial_regime="lost")


# --- the market's shape ------------------------------------------------------------------------


def test_demo_path_has_a_crash_and_a_recovery(demo: pa.Table, demo_regimes: np.ndarray) -> None:
    crashes = qualifying_crashes(demo)
    assert crashes, "no 20%+ drawdown with VIX > 40 and an inverted VIX curve"
    spy = column(demo, "SPY")
    _, trough, _ = min(crashes, key=lambda c: c[2])
    assert spy[trough:].max() >= 1.2 * spy[trough]  # it recovers at least 20% off the low
    assert (demo_regimes == CRASH).any()


def test_demo_path_has_a_calm_stretch(demo: pa.Table) -> None:
    calm = (column(demo, "VIX") >= 11.0) & (column(demo, "VIX") <= 14.0)
    longest = run = 0
    for flag in calm.tolist():
        run = run + 1 if flag else 0
        longest = max(longest, run)
    assert longest >= 20  # a month of VIX between 11 and 14


def test_most_seeds_have_a_crash_in_thirteen_years() -> None:
    with_crash = sum(bool(qualifying_crashes(generate_market(s, START, END))) for s in range(20))
    assert with_crash >= 17  # about 3 crash entries per 13 years: ~5% of paths have none
    shares = stationary_distribution(DEFAULT_REGIMES)
    crash_share = shares[[r.name for r in DEFAULT_REGIMES].index(CRASH)]
    assert 0.01 < crash_share < 0.06


def test_term_structure_contango_when_calm_inverted_in_stress(
    demo: pa.Table, demo_regimes: np.ndarray
) -> None:
    vix, vix9d, vix3m = (column(demo, s) for s in ("VIX", "VIX9D", "VIX3M"))
    calm = demo_regimes == "calm"
    assert np.mean((vix9d[calm] < vix[calm]) & (vix[calm] < vix3m[calm])) > 0.9
    crash = demo_regimes == CRASH
    assert np.mean((vix9d[crash] > vix[crash]) & (vix[crash] > vix3m[crash])) > 0.9
    high = vix > 30.0
    assert np.mean(vix[high] > vix3m[high]) > 0.95
    assert 11.0 <= np.median(vix[calm]) <= 14.0


def test_vix_moves_against_spy_and_prices_above_realized(demo: pa.Table) -> None:
    spy, vix = column(demo, "SPY"), column(demo, "VIX")
    assert np.corrcoef(log_returns(spy), log_returns(vix))[0, 1] < -0.5
    # Realized vol over the next month against the VIX that priced it: the variance premium.
    r = log_returns(spy)
    windows = np.lib.stride_tricks.sliding_window_view(r, 21)
    realized = windows.std(axis=1) * np.sqrt(252) * 100.0
    assert realized.mean() < vix[: len(realized)].mean()
    assert r.std() * np.sqrt(252) * 100.0 < vix.mean()


def test_qqq_and_iwm_follow_spy(demo: pa.Table, demo_regimes: np.ndarray) -> None:
    spy = log_returns(column(demo, "SPY"))
    normal, crash = demo_regimes[1:] == "normal", demo_regimes[1:] == CRASH
    for symbol, beta in (("QQQ", 1.15), ("IWM", 1.2)):
        other = log_returns(column(demo, symbol))
        corr_normal = np.corrcoef(spy[normal], other[normal])[0, 1]
        corr_crash = np.corrcoef(spy[crash], other[crash])[0, 1]
        assert 0.84 <= corr_normal <= 0.92, symbol
        assert corr_crash > corr_normal, symbol
        fitted = np.cov(spy, other)[0, 1] / spy.var()
        assert abs(fitted - beta) < 0.08, symbol


def test_vvix_and_skew_in_range_and_vvix_rises_with_vol_of_vol(
    demo: pa.Table, demo_regimes: np.ndarray
) -> None:
    vvix, skew = column(demo, "VVIX"), column(demo, "SKEW")
    assert vvix.min() >= 75.0 and vvix.max() <= 170.0
    assert skew.min() >= 115.0 and skew.max() <= 150.0
    calm, crash = demo_regimes == "calm", demo_regimes == CRASH
    assert np.median(vvix[crash]) > np.median(vvix[calm]) + 20.0
    assert np.median(skew[calm]) > np.median(skew[crash])


def test_quarterly_dividends(demo: pa.Table) -> None:
    years = 13
    for symbol, low, high in (("SPY", 0.013, 0.018), ("QQQ", 0.004, 0.012), ("IWM", 0.008, 0.016)):
        rows = demo.filter(pc.equal(demo.column("symbol"), symbol))
        dividend = column(rows, symbol, "dividend")
        paid = dividend > 0
        assert paid.sum() in (4 * years - 1, 4 * years), symbol
        ex_dates = np.array(rows.column("date").to_pylist())[paid]
        assert {d.month for d in ex_dates} == {3, 6, 9, 12}, symbol
        assert all(d.day >= 15 for d in ex_dates), symbol  # on or after the third Friday
        close = column(rows, symbol)
        assert low < (dividend[paid] / close[paid]).mean() * 4 < high, symbol
    spy = demo.filter(pc.equal(demo.column("symbol"), "SPY"))
    paid_on = pc.filter(spy.column("date"), pc.greater(spy.column("dividend"), 0.0))
    assert date(2019, 3, 15) in paid_on.to_pylist()  # SPY: the third Friday itself


def test_futures_track_their_index_with_carry(demo: pa.Table) -> None:
    for future, etf, multiple in (("ES", "SPY", 10.0), ("NQ", "QQQ", 40.0), ("RTY", "IWM", 10.0)):
        ratio = column(demo, future) / column(demo, etf) / multiple
        assert ratio.min() > 0.98 and ratio.max() < 1.03, future
    es = demo.filter(pc.equal(demo.column("symbol"), "ES"))
    assert set(np.round(es.column("close").to_numpy() * 4) % 1) == {0.0}  # 0.25 ticks


# --- the store ---------------------------------------------------------------------------------


def test_round_trip_through_the_market_store(tmp_path: Path) -> None:
    from engine.market.store import MarketStore

    table = write_synthetic_store(tmp_path, 3, date(2019, 1, 1), date(2019, 6, 30))
    store = MarketStore(tmp_path)
    assert store.symbols() == dict(sorted(KINDS.items()))
    for symbol in KINDS:
        expected = table.filter(pc.equal(table.column("symbol"), symbol))
        assert store.bars(symbol).equals(expected), symbol
    dates, closes = store.closes(["SPY", "VIX"], date(2019, 3, 1), date(2019, 3, 31))
    march = table.filter(
        (pc.field("date") >= date(2019, 3, 1)) & (pc.field("date") <= date(2019, 3, 31))
    )
    assert len(dates) == 21  # March 2019 sessions
    for symbol in ("SPY", "VIX"):
        np.testing.assert_array_equal(closes[symbol], column(march, symbol))
