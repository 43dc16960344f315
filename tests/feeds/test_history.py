"""HistoryFeed and `v6 synth-chain`/`v6 import-history`: snapshots from a store, end to end."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.feeds.feed import Feed
from engine.feeds.history import HistoryFeed, HistoryFeedError, HistorySpec, export_synth_chain
from engine.feeds.recording import Recorder, RecordingFeed
from engine.market.generator import generate_market, write_synthetic_store
from engine.market.store import MarketStore
from engine.market.synth_chain import ChainSpec
from engine.state.enrich import UnderlyingHistory, enrich_underlying
from engine.state.snapshot import Snapshot

NY = ZoneInfo("America/New_York")
START, END = date(2013, 3, 1), date(2013, 3, 28)
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    path = tmp_path_factory.mktemp("synthetic") / "store"
    write_synthetic_store(path, 6, date(2011, 1, 3), date(2013, 12, 31))
    return MarketStore(path)


@pytest.fixture(scope="module")
def snaps(store: MarketStore) -> list[Snapshot]:
    return list(HistoryFeed(store, START, END).ticks())


def test_one_snapshot_per_session_at_the_close(store: MarketStore, snaps: list[Snapshot]) -> None:
    sessions = store.sessions(START, END)
    assert [s.time.date() for s in snaps] == [d.astype(date) for d in sessions]
    assert all(s.time.time() == time(16, 0) and s.time.tzinfo == NY for s in snaps)
    assert all(s.market.session == "regular" for s in snaps)
    assert isinstance(HistoryFeed(store, START, END), Feed)


def test_snapshot_carries_the_stores_closes(store: MarketStore, snaps: list[Snapshot]) -> None:
    snap = snaps[5]
    day = snap.time.date()
    close = {s: store.bars(s, day, day).column("close")[0].as_py() for s in ("SPY", "VIX", "ES")}
    bar = store.bars("SPY", day, day).to_pylist()[0]
    spy = snap.underlyings["SPY"]
    assert (spy.open, spy.high, spy.low) == (bar["open"], bar["high"], bar["low"])
    assert snap.underlyings["SPY"].price == close["SPY"]
    assert snap.market.vix == close["VIX"]
    assert snap.market.futures["ES"].price == close["ES"]
    prev = snaps[4].underlyings["SPY"].price
    assert snap.underlyings["SPY"].prev_close == prev
    assert snap.underlyings["SPY"].change_pct == pytest.approx(close["SPY"] / prev - 1)
    assert set(snap.underlyings) == {"SPY", "QQQ", "IWM"}


def test_chain_is_synthesised_and_enriched(snaps: list[Snapshot]) -> None:
    for snap in snaps:
        chain = snap.chains["SPY"]
        assert len(chain) > 100
        assert np.all(chain.bid <= chain.ask) and np.all(chain.bid >= 0)
        assert np.all(np.isfinite(chain.iv)) and np.all(np.abs(chain.delta) <= 1)
        spy = snap.underlyings["SPY"]
        assert spy.atm_iv is not None and 0.03 < spy.atm_iv < 1.5
        assert spy.iv_rank is not None and 0 <= spy.iv_rank <= 1
        assert spy.dividend_yield is not None and 0.005 < spy.dividend_yield < 0.04


def test_rolling_features_match_the_per_tick_enrichment(
    store: MarketStore, snaps: list[Snapshot]
) -> None:
    """The feed computes realized vol and beta for the whole window at once; they must equal
    what enrich_underlying computes from the history one tick at a time."""
    feed = HistoryFeed(store, START, END)
    i = feed.first + 7
    snap = snaps[7]
    for sym in ("SPY", "QQQ", "IWM"):
        u = snap.underlyings[sym]
        bare = type(u)(symbol=sym, price=u.price)
        history = UnderlyingHistory(close=feed.closes[sym][: i + 1])
        ref = enrich_underlying(
            bare, None, history, snap.time, benchmark_close=feed.closes["SPY"][: i + 1]
        )
        assert u.realized_vol_20d is not None and u.beta is not None
        assert u.realized_vol_20d == pytest.approx(ref.realized_vol_20d, rel=1e-12)
        assert u.beta == pytest.approx(ref.beta, rel=1e-12)
    assert snap.underlyings["SPY"].beta == pytest.approx(1.0)


def test_deterministic(store: MarketStore, snaps: list[Snapshot]) -> None:
    again = list(HistoryFeed(store, START, END).ticks())
    assert [s.time for s in again] == [s.time for s in snaps]
    for a, b in zip(again, snaps, strict=True):
        assert a.underlyings == b.underlyings and a.market == b.market
        np.testing.assert_array_equal(a.chains["SPY"].ask, b.chains["SPY"].ask)


def test_recorded_history_replays_identically(tmp_path: Path, snaps: list[Snapshot]) -> None:
    """A recording and the history feed are interchangeable behind the Feed interface."""
    with Recorder(tmp_path / "rec", batch_ticks=7) as recorder:
        for snap in snaps:
            recorder.record(snap)
    replay: Feed = RecordingFeed(tmp_path / "rec")
    got = list(replay.ticks())
    assert len(got) == len(snaps)
    for a, b in zip(got, snaps, strict=True):
        assert a.time == b.time and a.market == b.market and a.underlyings == b.underlyings
        for col in ("expiry", "strike", "bid", "ask", "iv", "delta", "gamma", "vega", "theta"):
            np.testing.assert_array_equal(
                getattr(a.chains["SPY"], col), getattr(b.chains["SPY"], col)
            )


def test_errors(tmp_path: Path, store: MarketStore) -> None:
    bars = generate_market(1, date(2013, 1, 2), date(2013, 2, 1))
    no_vix = tmp_path / "novix"
    MarketStore(no_vix).write_bars(bars.filter(pa.compute.not_equal(bars["symbol"], "VIX")))
    with pytest.raises(HistoryFeedError, match="has no VIX"):
        HistoryFeed(MarketStore(no_vix), date(2013, 1, 2), date(2013, 2, 1))
    with pytest.raises(HistoryFeedError, match="no underlying TSLA"):
        HistoryFeed(store, START, END, HistorySpec(chains=("TSLA",)))
    with pytest.raises(HistoryFeedError, match="no session"):
        HistoryFeed(store, date(2030, 1, 1), date(2030, 2, 1))


def test_export_synth_chain(tmp_path: Path, store: MarketStore) -> None:
    out = tmp_path / "chain.csv"
    rows = export_synth_chain(store, "SPY", date(2013, 3, 15), out, ChainSpec(max_days=30))
    with out.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == rows > 50
    assert list(table[0]) == ["expiry", "strike", "right", "bid", "ask", "mid", "iv", "delta",
                              "gamma", "theta", "vega", "underlying_price"]  # fmt: skip
    assert {r["right"] for r in table} == {"C", "P"}
    assert max(date.fromisoformat(r["expiry"]) for r in table) <= date(2013, 4, 14)
    with pytest.raises(HistoryFeedError, match="not a session"):
        export_synth_chain(store, "SPY", date(2013, 3, 16), out)  # a Saturday


def test_synth_chain_command(tmp_path: Path, store: MarketStore) -> None:
    out = tmp_path / "chain.parquet"
    args = ["synth-chain", "--store", str(store.path), "--symbol", "spy", "--out", str(out)]
    result = runner.invoke(app, [*args, "--date", "2013-03-15"])
    assert result.exit_code == 0, result.output
    assert "contracts of SPY on 2013-03-15" in result.output
    assert pa.parquet.read_table(out).num_rows > 100
    bad = runner.invoke(app, [*args, "--date", "15/03/2013"])
    assert bad.exit_code == 1 and "not a date in YYYY-MM-DD form" in bad.output
    missing = runner.invoke(app, [*args[:2], str(tmp_path / "nowhere"), *args[3:], "--date",
                                  "2013-03-15"])  # fmt: skip
    assert missing.exit_code == 1 and "error:" in missing.output
    assert "Traceback" not in bad.output + missing.output


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["Date,Open,High,Low,Close,Volume", *rows]) + "\n")
    return path


def test_import_history_command(tmp_path: Path) -> None:
    good = _csv(
        tmp_path / "spy.csv", ["2019-12-30,322,323,320,321,1", "2019-12-31,321,322,320,322,1"]
    )
    out = tmp_path / "store"
    result = runner.invoke(
        app, ["import-history", "--out", str(out), "--underlying", f"SPY={good}"]
    )
    assert result.exit_code == 0, result.output
    assert "SPY" in result.output
    assert MarketStore(out).bars("SPY").num_rows == 2
    bad = _csv(tmp_path / "bad.csv", ["2019-12-30,322,323,320,321,1", "2019-12-31,321,322,320,x,1"])
    result = runner.invoke(app, ["import-history", "--out", str(out), "--underlying", f"SPY={bad}"])
    assert result.exit_code == 1
    assert f"{bad}:3:" in result.output and "Traceback" not in result.output
    assert MarketStore(out).bars("SPY").column("close").to_pylist() == [321.0, 322.0]


@pytest.fixture(scope="module")
def real_store(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MarketStore]:
    from engine.market.import_command import run_import_history

    out = tmp_path_factory.mktemp("real") / "store"
    daily = shared_data / "daily"
    run_import_history(out, [f"SPY={next(daily.glob('spy_unadjusted_*.csv'))}"],
                       [f"VIX={next(daily.glob('vix_cboe_*.csv'))}",
                        f"VIX3M={next(daily.glob('vix3m_cboe_*.csv'))}"])  # fmt: skip
    yield MarketStore(out)


def test_real_history_on_lehman_weekend(real_store: MarketStore) -> None:
    feed = HistoryFeed(real_store, date(2008, 10, 10), date(2008, 10, 10))
    (snap,) = list(feed.ticks())
    assert snap.time == datetime(2008, 10, 10, 16, 0, tzinfo=NY)
    assert snap.underlyings["SPY"].price == pytest.approx(88.50, abs=0.005)
    assert snap.market.vix is not None and snap.market.vix > 60
    assert snap.market.vix3m is None  # VIX3M starts in 2009: the surface falls back to VIX
    spy = snap.underlyings["SPY"]
    assert spy.atm_iv is not None and spy.atm_iv > 0.4
    assert spy.realized_vol_20d is not None and spy.realized_vol_20d > 0.4
