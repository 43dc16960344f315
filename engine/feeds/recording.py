"""Recording snapshots to a Delta `snapshots` table, and replaying them tick by tick as a Feed.

A recording is a folder; `FOLDER/snapshots` is the Delta table (schema
`engine.state.snapshot_arrow.SNAPSHOTS`, partitioned by exchange date). A recording holds one
time zone and strictly increasing tick times, across every session that appended to it: so
date order is time order, and a replay is the recorded sequence, exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.fs as pafs
from deltalake import ColumnProperties, DeltaTable, WriterProperties

from engine.journal.delta_table import DeltaAppender, compact
from engine.state.snapshot import Snapshot
from engine.state.snapshot_arrow import (
    PARTITION_BY,
    SNAPSHOTS,
    TABLE,
    check_encodable,
    iter_snapshots,
    snapshots_to_table,
    tz_from_name,
    tz_name,
)

DEFAULT_BATCH_TICKS = 500
_TIME = SNAPSHOTS.field("time").type
# Chains are mostly full-precision floats (IV, Greeks) that a dictionary cannot shrink: without
# one, and with zstd, a year of 400-contract ticks takes ~20% less disk and writes faster.
WRITER_PROPERTIES = WriterProperties(
    compression="ZSTD",
    compression_level=3,
    default_column_properties=ColumnProperties(dictionary_enabled=False),
)


class RecordingError(ValueError):
    """A recording that cannot be written or read as asked."""


def table_path(path: Path) -> Path:
    """Where the `snapshots` Delta table of the recording at `path` lives."""
    return Path(path) / TABLE


def _stats(table: DeltaTable) -> pa.Table:
    return pa.table(table.get_add_actions(flatten=True))


def _recorded_extent(table: DeltaTable) -> tuple[datetime | None, str | None]:
    """The last recorded instant (UTC) and the recording's time zone, from the file statistics
    Delta keeps (no data read); scanned from the data if a file has none."""
    stats = _stats(table)
    if stats.num_rows == 0:
        return None, None
    names = stats.column_names
    if {"max.time", "min.tz"} <= set(names) and not (
        stats.column("max.time").null_count or stats.column("min.tz").null_count
    ):
        last, tz = pc.max(stats.column("max.time")), pc.min(stats.column("min.tz"))
    else:
        data = table.to_pyarrow_dataset().to_table(columns=["time", "tz"])
        last, tz = pc.max(data.column("time")), pc.min(data.column("tz"))
    return last.as_py().astimezone(UTC), tz.as_py()


class Recorder:
    """Records snapshots into the recording at `path` (created on the first write).

    `record` checks each tick at once (time zone, order after every tick already recorded,
    what Arrow could not store exactly) and buffers it; every `batch_ticks` ticks are written as one
    Delta commit. `close` (or leaving the `with` block, even on an error) writes the rest.
    """

    def __init__(self, path: Path, batch_ticks: int = DEFAULT_BATCH_TICKS) -> None:
        if batch_ticks < 1:
            raise ValueError(f"batch_ticks must be >= 1, got {batch_ticks}")
        self.path = Path(path)
        self.batch_ticks = batch_ticks
        target = table_path(self.path)
        self._appender = DeltaAppender(
            target,
            SNAPSHOTS,
            PARTITION_BY,
            batch_rows=batch_ticks,
            writer_properties=WRITER_PROPERTIES,
        )
        self._last, self._tz = (
            _recorded_extent(DeltaTable(str(target)))
            if DeltaTable.is_deltatable(str(target))
            else (None, None)
        )
        self._pending: list[Snapshot] = []
        self.ticks_recorded = 0

    def record(self, snap: Snapshot) -> None:
        """Buffer one tick. Records nothing and raises RecordingError for a tick out of order or
        in another time zone than the recording, SnapshotEncodingError for one Arrow cannot
        hold exactly (see `check_encodable`)."""
        check_encodable(snap)
        tz, now = tz_name(snap.time.tzinfo), snap.time.astimezone(UTC)
        if self._tz is not None and tz != self._tz:
            raise RecordingError(
                f"{self.path}: tick at {snap.time.isoformat()} is in time zone {tz}; "
                f"this recording is in {self._tz}"
            )
        if self._last is not None and now <= self._last:
            raise RecordingError(
                f"{self.path}: tick at {snap.time.isoformat()} is not after the last recorded "
                f"tick ({self._last.isoformat()}); ticks must be recorded in time order"
            )
        self._pending.append(snap)
        self._last, self._tz = now, tz
        self.ticks_recorded += 1
        if len(self._pending) >= self.batch_ticks:
            self.flush()

    def flush(self) -> None:
        """Write the buffered ticks as one commit (the appender keeps them if it fails)."""
        if self._pending:
            self._appender.append(snapshots_to_table(self._pending))
            self._pending.clear()
        self._appender.flush()

    def close(self) -> None:
        self.flush()
        self._appender.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The ticks recorded before the error were checked: keep them, without hiding `exc`.
        try:
            self.close()
        except Exception as close_error:
            exc.add_note(f"recording {self.path}: buffered ticks not written: {close_error}")


def compact_recording(path: Path) -> dict[str, int]:
    """Compact the recording at `path` (see `engine.journal.delta_table.compact`)."""
    target = table_path(path)
    if not DeltaTable.is_deltatable(str(target)):
        raise RecordingError(f"no recording at {path}: expected a Delta table at {target}")
    return compact(target, writer_properties=WRITER_PROPERTIES)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise RecordingError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


class RecordingFeed:
    """Replays the recording at `path`: the ticks with start <= time < end (either bound may
    be None), in time order, equal to the recorded snapshots.

    Reads one exchange date (partition) at a time, so memory holds one day of ticks.
    """

    def __init__(
        self, path: Path, start: datetime | None = None, end: datetime | None = None
    ) -> None:
        self.path = Path(path)
        self.start, self.end = _aware(start, "start"), _aware(end, "end")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise RecordingError(f"empty window: start {start} is not before end {end}")
        target = table_path(self.path)
        if not DeltaTable.is_deltatable(str(target)):
            raise RecordingError(
                f"no recording at {self.path}: expected a Delta table at {target} "
                "(written by engine.feeds.recording.Recorder)"
            )
        self._table = DeltaTable(str(target))
        schema = pa.schema(self._table.schema().to_arrow())
        missing = [n for n in SNAPSHOTS.names if schema.get_field_index(n) < 0]
        if missing:
            raise RecordingError(f"{target} is not a snapshots table: no column {missing[0]!r}")
        _, zone = _recorded_extent(self._table)
        self._tz = tz_from_name(zone) if zone else None

    def dates(self) -> list[date]:
        """The recorded exchange dates holding ticks of the window, in order."""
        if self._tz is None:  # nothing recorded yet
            return []
        days = sorted({date.fromisoformat(p["date"]) for p in self._table.partitions()})
        # Dates are in the recording's one time zone.
        lo = self.start.astimezone(self._tz).date() if self.start else date.min
        hi = self.end.astimezone(self._tz).date() if self.end else date.max
        return [d for d in days if lo <= d <= hi]

    def _filter(self, day: date) -> pds.Expression:
        expr = pds.field("date") == pa.scalar(day, type=pa.date32())
        if self.start is not None:
            expr &= pds.field("time") >= pa.scalar(self.start, type=_TIME)
        if self.end is not None:
            expr &= pds.field("time") < pa.scalar(self.end, type=_TIME)
        return expr

    def ticks(self) -> Iterator[Snapshot]:
        # pyarrow's own local filesystem: deltalake's default one reads through Python
        # callbacks, ~2x slower here.
        local = pafs.SubTreeFileSystem(str(table_path(self.path).resolve()), pafs.LocalFileSystem())
        dataset = self._table.to_pyarrow_dataset(filesystem=local)
        for day in self.dates():
            # Files of one day may come from several sessions, or be compacted: sort by time
            # (unique in a recording) to give back the recorded order.
            table = dataset.to_table(filter=self._filter(day)).sort_by("time")
            yield from iter_snapshots(table)

    def describe(self) -> str:
        stats = _stats(self._table)
        ticks = sum(stats.column("num_records").to_pylist()) if stats.num_rows else 0
        days = self.dates()
        window = f"{self.start or '...'} to {self.end or '...'}"
        span = f"{days[0]}..{days[-1]}" if days else "no dates"
        return f"recording {self.path} ({ticks} ticks recorded; window {window}: {span})"
