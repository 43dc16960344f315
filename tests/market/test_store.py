"""MarketStore on a real Delta table in tmp_path: validation, replace-by-symbol, readers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from engine.market.bars import DAILY_BARS, TABLE
from engine.market.store import (
    BarsSchemaError,
    MarketStore,
    StoreNotFoundError,
    UnknownSymbolError,
    validate_bars,
)


def bars(symbol: str, kind: str, days: list[str], closes: list[float] | None = None) -> pa.Table:
    n = len(days)
    closes = closes or [100.0 + i for i in range(n)]
    return pa.table(
        {
            "symbol": [symbol] * n,
            "kind": [kind] * n,
            "date": [date.fromisoformat(d) for d in days],
            "open": [None] * n,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [1000.0] * n,
            "dividend": [0.0] * n,
            "source": ["test.csv"] * n,
        },
        schema=DAILY_BARS,
    )


WEEK = ["2019-12-02", "2019-12-03", "2019-12-04", "2019-12-05", "2019-12-06"]


@pytest.fixture
def store(tmp_path: Path) -> MarketStore:
    store = MarketStore(tmp_path / "store")
    store.write_bars(
        pa.concat_tables(
            [
                bars("SPY", "underlying", WEEK),
                bars("VIX", "index", [WEEK[0], WEEK[2], WEEK[3]], [12.0, 14.0, 15.0]),
                bars("ES", "future", ["2019-12-01", *WEEK[:2]]),  # a Sunday row
            ]
        )
    )
    return store


def test_new_store_does_not_exist(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "nothing")
    assert not store.exists()
    with pytest.raises(StoreNotFoundError, match="import-history --out"):
        store.symbols()


def test_round_trip(store: MarketStore) -> None:
    assert store.exists()
    assert store.symbols() == {"ES": "future", "SPY": "underlying", "VIX": "index"}
    spy = store.bars("SPY")
    assert spy.schema == DAILY_BARS
    assert spy.column("close").to_pylist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert spy.column("open").null_count == 5
    part = store.bars("SPY", date(2019, 12, 3), date(2019, 12, 5))
    assert [d.isoformat() for d in part.column("date").to_pylist()] == WEEK[1:4]


def test_partitioned_by_symbol(store: MarketStore) -> None:
    table = DeltaTable(str(store.path / TABLE))
    assert table.metadata().partition_columns == ["symbol"]
    assert sorted(p.name for p in (store.path / TABLE).glob("symbol=*")) == [
        "symbol=ES",
        "symbol=SPY",
        "symbol=VIX",
    ]


def test_unknown_symbol_is_a_clear_key_error(store: MarketStore) -> None:
    with pytest.raises(KeyError) as caught:
        store.bars("QQQ")
    assert isinstance(caught.value, UnknownSymbolError)
    assert str(caught.value).startswith("symbol 'QQQ' is not in the market store")
    assert "ES, SPY, VIX" in str(caught.value)
    with pytest.raises(UnknownSymbolError):
        store.closes(["SPY", "QQQ"])


def test_known_symbol_outside_range_is_empty(store: MarketStore) -> None:
    assert store.bars("SPY", date(2020, 1, 1)).num_rows == 0


def test_closes_aligned_on_the_union_of_dates(store: MarketStore) -> None:
    dates, closes = store.closes(["VIX", "ES"])
    assert [str(d) for d in dates] == ["2019-12-01", *WEEK[:4]]
    assert dates.dtype == np.dtype("datetime64[D]")
    np.testing.assert_array_equal(closes["VIX"], [np.nan, 12.0, np.nan, 14.0, 15.0])
    np.testing.assert_array_equal(closes["ES"], [100.0, 101.0, 102.0, np.nan, np.nan])
    dates, closes = store.closes([])
    assert len(dates) == 0 and closes == {}
    dates, closes = store.closes(["SPY"], start=date(2019, 12, 5))
    assert [str(d) for d in dates] == WEEK[3:]
    assert closes["SPY"].tolist() == [103.0, 104.0]


def test_sessions_come_from_underlyings_only(store: MarketStore) -> None:
    assert [str(d) for d in store.sessions()] == WEEK  # not ES's Sunday
    assert [str(d) for d in store.sessions(end=date(2019, 12, 3))] == WEEK[:2]


def test_rewrite_replaces_only_the_symbols_written(store: MarketStore) -> None:
    before = store.version()
    store.write_bars(bars("VIX", "index", ["2019-12-09"], [20.0]))
    assert store.version() == before + 1  # one commit
    assert store.bars("VIX").column("close").to_pylist() == [20.0]  # replaced, not merged
    assert store.bars("SPY").num_rows == 5
    assert store.bars("ES").num_rows == 3


def test_same_write_twice_is_idempotent(store: MarketStore) -> None:
    table = DeltaTable(str(store.path / TABLE))
    first = table.to_pyarrow_table().sort_by([("symbol", "ascending"), ("date", "ascending")])
    spy = store.bars("SPY")
    store.write_bars(spy)
    store.write_bars(spy)
    table = DeltaTable(str(store.path / TABLE))
    again = table.to_pyarrow_table().sort_by([("symbol", "ascending"), ("date", "ascending")])
    assert again.equals(first)
    assert [h["operation"] for h in table.history()] == ["WRITE"] * 3


def valid() -> pa.Table:
    return bars("SPY", "underlying", WEEK[:2])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda t: t.drop_columns(["source"]), "missing ['source']"),
        (lambda t: t.append_column("extra", pa.array([1, 2])), "unexpected ['extra']"),
        (
            lambda t: t.set_column(7, "volume", pa.array(["a", "b"])),
            "column 'volume': string does not fit double",
        ),
        (
            # A timestamp with a time of day would be truncated into a date.
            lambda t: t.set_column(
                2, "date", pa.array([datetime(2019, 12, 2, 15), datetime(2019, 12, 3, 15)])
            ),
            "column 'date'",
        ),
        (
            lambda t: t.set_column(
                6, pa.field("close", pa.float64()), pa.array([1.0, None], pa.float64())
            ),
            "column 'close' has 1 nulls",
        ),
        (
            lambda t: t.set_column(3, "open", pa.array([1.0, float("nan")])),
            "'open' holds NaN",
        ),
        (
            lambda t: t.set_column(1, "kind", pa.array(["underlying", "stock"])),
            "kinds ['stock']",
        ),
        (lambda t: t.set_column(0, "symbol", pa.array(["spy", "spy"])), "symbol 'spy'"),
        (
            lambda t: t.set_column(1, "kind", pa.array(["underlying", "index"])),
            "symbol 'SPY' has 2 kinds",
        ),
        (
            lambda t: t.set_column(7, "volume", pa.array([2**53 + 1, 1], pa.int64())),
            "column 'volume': int64 does not fit double",
        ),
        (lambda t: pa.concat_tables([t, t.slice(0, 1)]), "1 repeated (symbol, date)"),
    ],
)
def test_validation_rejects(change: Callable[[pa.Table], pa.Table], words: str) -> None:
    with pytest.raises(BarsSchemaError) as caught:
        validate_bars(change(valid()))
    assert words in str(caught.value)


def test_validation_accepts_and_orders(store: MarketStore) -> None:
    shuffled = valid().select(list(reversed(DAILY_BARS.names))).take([1, 0])
    shuffled = shuffled.set_column(2, "volume", pa.array([7, 8], pa.int64()))  # exact in float
    table = validate_bars(shuffled)
    assert table.schema == DAILY_BARS
    assert table.column("volume").to_pylist() == [8.0, 7.0]
    assert [d.isoformat() for d in table.column("date").to_pylist()] == WEEK[:2]


def test_a_rejected_write_changes_nothing(store: MarketStore) -> None:
    before = store.version()
    bad = pa.concat_tables([bars("SPY", "underlying", ["2019-12-09"]), valid().slice(0, 1)])
    bad = bad.set_column(3, "open", pa.array([float("nan"), 1.0]))
    with pytest.raises(BarsSchemaError):
        store.write_bars(bad)
    with pytest.raises(BarsSchemaError, match="empty"):
        store.write_bars(valid().slice(0, 0))
    assert store.version() == before
    assert store.bars("SPY").num_rows == 5
