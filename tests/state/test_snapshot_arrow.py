"""Snapshot <-> Arrow: exact round trips (values, NaN, dtypes, zones), the schema, bad input."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.paths import ROOT
from engine.state import (
    Chain,
    FutureQuote,
    Leg,
    MarketState,
    PortfolioState,
    Position,
    RiskState,
    Snapshot,
    UnderlyingState,
    load_snapshot,
)
from engine.state.enrich import enrich_chain
from engine.state.snapshot import CONTRACT_MULTIPLIER
from engine.state.snapshot_arrow import (
    CHAIN_COLUMNS,
    SNAPSHOTS,
    SnapshotEncodingError,
    iter_snapshots,
    snapshots_to_table,
    table_to_snapshots,
    tz_from_name,
    tz_name,
)

NY = ZoneInfo("America/New_York")
EXAMPLES = sorted((ROOT / "tests" / "snapshots").glob("*.json")) + sorted(
    (ROOT / "rules" / "snapshots").glob("*.yaml")
)
assert CONTRACT_MULTIPLIER == 100


def assert_identical(a: Snapshot, b: Snapshot) -> None:
    """Equal, and equal in what == does not see: zones, wall times, dtypes, mapping order."""
    assert a == b
    assert a.time.tzinfo == b.time.tzinfo and a.time.utcoffset() == b.time.utcoffset()
    assert a.time.replace(tzinfo=None) == b.time.replace(tzinfo=None)  # same wall time
    assert list(a.underlyings) == list(b.underlyings) and list(a.chains) == list(b.chains)
    assert list(a.market.futures) == list(b.market.futures)
    for x, y in zip(a.chains.values(), b.chains.values(), strict=True):
        for name in CHAIN_COLUMNS:
            u, v = getattr(x, name), getattr(y, name)
            assert u.dtype == v.dtype and not v.flags.writeable
            if u.dtype.kind == "f":  # NaN where NaN, and the same bits (-0.0 stays -0.0)
                assert np.array_equal(u.view(np.int64), v.view(np.int64))
    for p, q in zip(a.positions, b.positions, strict=True):
        assert p.opened_at.utcoffset() == q.opened_at.utcoffset()


def round_trip(snaps: list[Snapshot]) -> list[Snapshot]:
    table = snapshots_to_table(snaps)
    assert table.schema.equals(SNAPSHOTS) and table.num_rows == len(snaps)
    back = table_to_snapshots(table)
    assert len(back) == len(snaps)
    for a, b in zip(snaps, back, strict=True):
        assert_identical(a, b)
    return back


def bare(time: datetime, **parts: Any) -> Snapshot:
    return Snapshot(time=time, market=MarketState(session="regular"), **parts)


# ----------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_snapshots_round_trip(path: Path) -> None:
    round_trip([load_snapshot(path)])


def test_examples_round_trip_together_in_one_table() -> None:
    snaps = [load_snapshot(p) for p in EXAMPLES]
    table = snapshots_to_table(snaps)
    # Batches cut mid-table (offsets into shared child arrays) read back the same.
    sliced = list(iter_snapshots(pa.Table.from_batches(table.to_batches(max_chunksize=2))))
    for a, b in zip(snaps, sliced, strict=True):
        assert_identical(a, b)
    assert [s.time.date() for s in snaps] == table.column("date").to_pylist()
    assert table.column("tz").to_pylist() == ["America/New_York"] * len(snaps)


def test_enriched_chain_with_missing_values_round_trips() -> None:
    snap = load_snapshot(ROOT / "tests" / "snapshots" / "spy_ic_open.json")
    chain = snap.chains["SPY"]
    bid = chain.bid.copy()
    bid[::7] = np.nan  # quotes missing: enrichment leaves NaN IV and Greeks there
    bid[1] = -0.0
    raw = dataclasses.replace(chain, bid=bid, iv=np.full(len(chain), np.nan))
    enriched = enrich_chain(raw, snap.underlyings["SPY"].price, snap.time, 0.05, 0.013)
    assert np.isnan(enriched.iv).any() and np.isfinite(enriched.iv).any()
    [back] = round_trip([dataclasses.replace(snap, chains={"SPY": enriched})])
    assert np.array_equal(np.isnan(back.chains["SPY"].iv), np.isnan(enriched.iv))


def test_empty_and_missing_parts_round_trip() -> None:
    empty = Chain.from_columns("SPY", [], [], [])
    snaps = [
        bare(datetime(2024, 6, 3, 9, 30, tzinfo=NY)),
        bare(datetime(2024, 6, 3, 9, 31, tzinfo=NY), chains={"SPY": empty}),
        bare(
            datetime(2024, 6, 3, 9, 32, tzinfo=NY),
            underlyings={"SPY": UnderlyingState(symbol="SPY")},
        ),
    ]
    back = round_trip(snaps)
    assert len(back[1].chains["SPY"]) == 0 and back[1].chains["SPY"].expiry.dtype == "datetime64[D]"
    assert back[2].underlyings["SPY"].price is None


# ----------------------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    "time",
    [
        datetime(2024, 11, 3, 1, 30, tzinfo=NY, fold=0),  # the first 01:30 (EDT)
        datetime(2024, 11, 3, 1, 30, tzinfo=NY, fold=1),  # the second 01:30 (EST), an hour on
        datetime(2024, 3, 15, 15, 45, 0, 123456, tzinfo=NY),  # microseconds kept
        datetime(2024, 3, 15, 19, 45, tzinfo=UTC),
        datetime(2024, 3, 15, 23, 15, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 3, 15, 2, 0, tzinfo=timezone(-timedelta(hours=3, seconds=7))),
        datetime(2024, 7, 1, 8, 0, tzinfo=ZoneInfo("Europe/London")),
    ],
    ids=str,
)
def test_times_come_back_in_their_own_zone(time: datetime) -> None:
    [back] = round_trip([bare(time)])
    assert back.time.timestamp() == time.timestamp() and back.time.fold == time.fold
    assert snapshots_to_table([bare(time)]).column("date").to_pylist() == [time.date()]


def test_zone_names_round_trip() -> None:
    for tz in [NY, UTC, timezone(timedelta(hours=-4)), timezone(timedelta(seconds=3661))]:
        assert tz_from_name(tz_name(tz)) == tz
    assert tz_name(UTC) == "+00:00" and tz_from_name("+00:00") is UTC


def test_unrecordable_snapshots_are_refused() -> None:
    class Odd(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

    with pytest.raises(SnapshotEncodingError, match="time zone"):
        snapshots_to_table([bare(datetime(2024, 1, 2, tzinfo=Odd()))])
    chain = Chain.from_columns("QQQ", ["2024-02-16"], [400.0], [True])
    with pytest.raises(SnapshotEncodingError, match="chain keyed 'SPY' has symbol 'QQQ'"):
        snapshots_to_table([bare(datetime(2024, 1, 2, tzinfo=NY), chains={"SPY": chain})])
    # A float in a whole-number field would be truncated by Arrow: refused, field named.
    snap = load_snapshot(ROOT / "tests" / "snapshots" / "spy_ic_open.json")
    position = dataclasses.replace(snap.positions[0], adjustments=1.5)
    odd = dataclasses.replace(snap, positions=(position,))
    with pytest.raises(SnapshotEncodingError, match=r"Position.adjustments: .* got 1\.5"):
        snapshots_to_table([odd])


def test_a_table_without_snapshot_columns_is_refused() -> None:
    table = snapshots_to_table([bare(datetime(2024, 1, 2, tzinfo=NY))]).drop_columns(["chains"])
    with pytest.raises(SnapshotEncodingError, match="no column 'chains'"):
        table_to_snapshots(table)


# ----------------------------------------------------------------------------- schema


def test_schema_follows_the_model() -> None:
    """Every model field has a column or struct field, so a new field cannot be dropped."""
    market = [f.name for f in dataclasses.fields(MarketState)]
    assert SNAPSHOTS.names == [
        "time",
        "date",
        "tz",
        *market,
        "underlyings",
        "chains",
        "positions",
        "portfolio",
        "risk",
    ]
    underlying = SNAPSHOTS.field("underlyings").type.item_type
    assert [f.name for f in underlying] == [f.name for f in dataclasses.fields(UnderlyingState)]
    position = SNAPSHOTS.field("positions").type.value_type
    assert [f.name for f in position] == [f.name for f in dataclasses.fields(Position)]
    leg = position.field("legs").type.value_type
    assert [f.name for f in leg] == [f.name for f in dataclasses.fields(Leg)]
    for part, cls in [("portfolio", PortfolioState), ("risk", RiskState)]:
        names = [f.name for f in SNAPSHOTS.field(part).type]
        assert names == [f.name for f in dataclasses.fields(cls)]


def test_chains_are_columnar() -> None:
    chain = SNAPSHOTS.field("chains").type.value_type
    assert chain.field("symbol").type == pa.string()

    def items(name: str) -> pa.DataType:
        t = chain.field(name).type
        assert pa.types.is_list(t), name
        return t.value_type

    assert items("expiry") == pa.date32() and items("is_call") == pa.bool_()
    for name in (
        "strike",
        "bid",
        "ask",
        "last",
        "volume",
        "open_interest",
        "iv",
        "delta",
        "gamma",
        "vega",
        "theta",
    ):
        assert items(name) == pa.float64(), name
    assert SNAPSHOTS.field("time").type == pa.timestamp("us", tz="UTC")
    assert SNAPSHOTS.field("positions").type.value_type.field("quantity").type == pa.int64()


# ----------------------------------------------------------------------------- hypothesis

MAYBE = st.none() | st.floats(width=64)  # NaN is the model's None; inf is kept
CELL = st.floats(allow_nan=True, allow_infinity=True, width=64)
NAMES = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_.", min_size=1, max_size=5)
DAYS = st.dates(date(2000, 1, 1), date(2040, 12, 31))


@st.composite
def chains(draw: st.DrawFn, symbol: str) -> Chain:
    n = draw(st.integers(0, 6))
    cells = {c: draw(st.lists(CELL, min_size=n, max_size=n)) for c in CHAIN_COLUMNS[3:]}
    return Chain(
        symbol=symbol,
        expiry=np.array(
            [d.isoformat() for d in draw(st.lists(DAYS, min_size=n, max_size=n))],
            dtype="datetime64[D]",
        ),
        strike=draw(st.lists(CELL, min_size=n, max_size=n)),
        is_call=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        **cells,
    )


def scalars(cls: type, **fixed: Any) -> st.SearchStrategy[Any]:
    floats = {
        f.name: MAYBE
        for f in dataclasses.fields(cls)
        if f.name not in fixed and "float" in str(f.type)
    }
    return st.builds(cls, **fixed, **floats)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    zone = draw(st.sampled_from([NY, UTC, ZoneInfo("Asia/Tokyo"), timezone(timedelta(hours=-7))]))
    when = draw(st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(zone),
                                  allow_imaginary=False))  # a clock never reads a skipped hour
    symbols = draw(st.lists(NAMES, max_size=3, unique=True))
    legs = st.builds(
        Leg,
        role=NAMES,
        is_call=st.booleans(),
        strike=st.floats(1, 1e4),
        expiry=DAYS,
        quantity=st.integers(-5, 5),
        entry_price=MAYBE,
        mark=MAYBE,
        delta=MAYBE,
        iv=MAYBE,
    )
    positions = st.builds(
        Position,
        id=NAMES,
        strategy=NAMES,
        symbol=NAMES,
        quantity=st.integers(1, 10**6),
        opened_at=st.just(when - timedelta(days=3, microseconds=7)),
        legs=st.lists(legs, max_size=4).map(tuple),
        pnl=MAYBE,
        dte=MAYBE,
        delta=MAYBE,
        entry_regime=st.none() | st.sampled_from(["crash", "normal"]),
        adjustments=st.integers(0, 2**62),
    )
    counts = st.dictionaries(NAMES, st.integers(0, 100), max_size=3)
    return Snapshot(
        time=when,
        market=draw(
            scalars(
                MarketState,
                session=st.sampled_from(["pre", "regular", "post", "closed"]),
                regime=st.none() | st.just("high_vol"),
                futures=st.fixed_dictionaries(
                    {s: scalars(FutureQuote, symbol=st.just(s)) for s in symbols}
                ),
            )
        ),
        underlyings={s: draw(scalars(UnderlyingState, symbol=st.just(s))) for s in symbols},
        chains={s: draw(chains(s)) for s in symbols},
        positions=tuple(draw(st.lists(positions, max_size=3))),
        portfolio=draw(
            scalars(
                PortfolioState,
                open_positions=st.integers(0, 9),
                positions_by_symbol=counts,
                positions_by_strategy=counts,
            )
        ),
        risk=RiskState(
            state=draw(st.sampled_from(["ACTIVE", "REDUCING", "HALTED"])),
            breakers_tripped=tuple(draw(st.lists(NAMES, max_size=3))),
            entries_blocked=draw(st.booleans()),
            orders_rejected_today=draw(st.integers(0, 50)),
            data_age_seconds=draw(MAYBE),
            broker_connected=draw(st.booleans()),
        ),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(snapshots(), min_size=1, max_size=4))
def test_any_snapshots_round_trip(snaps: list[Snapshot]) -> None:
    back = round_trip(snaps)
    for a, b in zip(snaps, back, strict=True):
        for p, q in zip(a.positions, b.positions, strict=True):
            assert p.opened_at == q.opened_at and p.adjustments == q.adjustments
