"""Recorder and RecordingFeed: record, replay identically, windows, sessions, bad input."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from engine.feeds.feed import Feed
from engine.feeds.recording import (
    Recorder,
    RecordingError,
    RecordingFeed,
    compact_recording,
    table_path,
)
from engine.journal.delta_table import DeltaAppender, SchemaMismatchError
from engine.paths import ROOT
from engine.state import Snapshot, load_snapshot
from engine.state.snapshot_arrow import SnapshotEncodingError

NY = ZoneInfo("America/New_York")
BASE = load_snapshot(ROOT / "tests" / "snapshots" / "spy_ic_open.json")
DAY1, DAY2, DAY3 = (datetime(2024, 6, d, 9, 30, tzinfo=NY) for d in (17, 18, 20))


def ticks(first: datetime, n: int, step: timedelta = timedelta(minutes=1)) -> list[Snapshot]:
    """`n` distinct ticks: the example snapshot at successive times, SPY moving and a quote
    going missing, so a mix-up between ticks shows."""
    out = []
    chain = BASE.chains["SPY"]
    for i in range(n):
        spy = dataclasses.replace(BASE.underlyings["SPY"], price=528.4 + i / 100)
        bid = chain.bid.copy()
        bid[i % len(bid)] = np.nan
        out.append(
            dataclasses.replace(
                BASE,
                time=first + i * step,
                underlyings={**BASE.underlyings, "SPY": spy},
                chains={**BASE.chains, "SPY": dataclasses.replace(chain, bid=bid)},
            )
        )
    return out


def record(path: Path, snaps: list[Snapshot], batch_ticks: int = 4) -> None:
    with Recorder(path, batch_ticks=batch_ticks) as recorder:
        for snap in snaps:
            recorder.record(snap)


def assert_same_ticks(got: list[Snapshot], want: list[Snapshot]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert (
            a == b and a.time.tzinfo == b.time.tzinfo and a.time.isoformat() == b.time.isoformat()
        )


# ----------------------------------------------------------------------------- record, replay


def test_replay_is_what_was_recorded(tmp_path: Path) -> None:
    snaps = ticks(DAY1, 10)
    record(tmp_path, snaps, batch_ticks=4)
    feed = RecordingFeed(tmp_path)
    assert isinstance(feed, Feed)
    assert_same_ticks(list(feed.ticks()), snaps)
    assert_same_ticks(list(feed.ticks()), snaps)  # a replay is repeatable
    assert DeltaTable(str(table_path(tmp_path))).version() == 2  # batches of 4, 4 and 2
    assert str(tmp_path) in feed.describe() and "10 ticks" in feed.describe()


def test_ticks_over_several_dates_replay_in_time_order(tmp_path: Path) -> None:
    snaps = ticks(DAY1, 3) + ticks(DAY2, 3) + ticks(DAY3, 3)
    record(tmp_path, snaps, batch_ticks=5)  # batches straddle the dates
    feed = RecordingFeed(tmp_path)
    assert [d.isoformat() for d in feed.dates()] == ["2024-06-17", "2024-06-18", "2024-06-20"]
    assert_same_ticks(list(feed.ticks()), snaps)


def test_time_window_is_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    snaps = ticks(DAY1, 5) + ticks(DAY2, 5) + ticks(DAY3, 5)
    record(tmp_path, snaps)
    start, end = snaps[3].time, snaps[12].time
    feed = RecordingFeed(tmp_path, start=start, end=end)
    assert_same_ticks(list(feed.ticks()), snaps[3:12])
    # Bounds in another zone mean the same instants; one bound alone is a half-open window.
    utc_start = start.astimezone(UTC)
    assert_same_ticks(list(RecordingFeed(tmp_path, start=utc_start).ticks()), snaps[3:])
    assert_same_ticks(list(RecordingFeed(tmp_path, end=end).ticks()), snaps[:12])
    later = RecordingFeed(tmp_path, start=DAY3 + timedelta(days=1))
    assert later.dates() == [] and list(later.ticks()) == []


def test_a_second_session_appends(tmp_path: Path) -> None:
    first, second = ticks(DAY1, 5), ticks(DAY1 + timedelta(minutes=5), 5)
    record(tmp_path, first)
    record(tmp_path, second)  # same day: its files interleave with the first session's
    assert_same_ticks(list(RecordingFeed(tmp_path).ticks()), first + second)


def test_compacted_recording_replays_the_same(tmp_path: Path) -> None:
    snaps = ticks(DAY1, 6) + ticks(DAY2, 6)
    record(tmp_path, snaps, batch_ticks=2)
    result = compact_recording(tmp_path)
    assert result["files_before"] > result["files_after"] == 2
    assert_same_ticks(list(RecordingFeed(tmp_path).ticks()), snaps)


def test_ticks_recorded_before_an_error_are_kept(tmp_path: Path) -> None:
    snaps = ticks(DAY1, 3)
    recorder = Recorder(tmp_path, batch_ticks=100)
    with pytest.raises(RuntimeError, match="feed lost"), recorder:
        for snap in snaps:
            recorder.record(snap)
        raise RuntimeError("feed lost")
    assert_same_ticks(list(RecordingFeed(tmp_path).ticks()), snaps)


# ----------------------------------------------------------------------------- bad input


def test_out_of_order_ticks_are_refused(tmp_path: Path) -> None:
    snaps = ticks(DAY1, 3)
    with Recorder(tmp_path) as recorder:
        recorder.record(snaps[1])
        with pytest.raises(RecordingError, match="not after the last recorded tick"):
            recorder.record(snaps[0])
        with pytest.raises(RecordingError, match="not after"):
            recorder.record(snaps[1])  # a repeated tick
        recorder.record(snaps[2])
    # A later session is checked against what is on disk.
    with pytest.raises(RecordingError, match="not after"), Recorder(tmp_path) as again:
        again.record(snaps[0])
    assert_same_ticks(list(RecordingFeed(tmp_path).ticks()), [snaps[1], snaps[2]])


def test_a_recording_keeps_one_time_zone(tmp_path: Path) -> None:
    record(tmp_path, ticks(DAY1, 1))
    utc_tick = ticks(DAY2.astimezone(UTC), 1)[0]
    expected = r"in time zone \+00:00; this recording is in America/New_York"
    with pytest.raises(RecordingError, match=expected):
        record(tmp_path, [utc_tick])


def test_unrecordable_snapshot_is_refused_at_record_time(tmp_path: Path) -> None:
    spy = BASE.chains["SPY"]
    mis_keyed = dataclasses.replace(BASE, chains={"QQQ": spy})
    float_count = dataclasses.replace(
        BASE, positions=(dataclasses.replace(BASE.positions[0], quantity=2.5),)
    )
    with Recorder(tmp_path) as recorder:
        with pytest.raises(SnapshotEncodingError, match="QQQ"):
            recorder.record(mis_keyed)
        with pytest.raises(SnapshotEncodingError, match=r"Position\.quantity"):
            recorder.record(float_count)
    assert not DeltaTable.is_deltatable(str(table_path(tmp_path)))


def test_missing_recording_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"no recording at .*snapshots"):
        RecordingFeed(tmp_path / "nowhere")
    with pytest.raises(RecordingError, match="no recording"):
        compact_recording(tmp_path)


def test_window_bounds_must_be_aware_and_ordered(tmp_path: Path) -> None:
    record(tmp_path, ticks(DAY1, 1))
    with pytest.raises(RecordingError, match="start must be timezone-aware"):
        RecordingFeed(tmp_path, start=datetime(2024, 6, 17, 9, 30))
    with pytest.raises(RecordingError, match="empty window"):
        RecordingFeed(tmp_path, start=DAY2, end=DAY1)


def test_other_tables_are_not_recordings(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("symbol", pa.string())])
    with DeltaAppender(table_path(tmp_path), schema) as appender:
        appender.append([{"symbol": "SPY"}])
    with pytest.raises(RecordingError, match="not a snapshots table"):
        RecordingFeed(tmp_path)
    with pytest.raises(SchemaMismatchError):  # nor can a Recorder write into them
        Recorder(tmp_path)


def test_recorder_rejects_a_zero_batch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_ticks"):
        Recorder(tmp_path, batch_ticks=0)
