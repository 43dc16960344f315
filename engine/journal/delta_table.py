"""Batched, schema-checked, conflict-retrying appends to one Delta table, and its compaction.

Every journal table (snapshots, decisions, orders, fills, ...) is written through a
`DeltaAppender`: rows are checked against the table's explicit Arrow schema when they are
appended (so the error points at the caller's own rows), buffered, and written `batch_rows` at a
time — one small append per tick is ~100x slower than batching. A commit that loses a race with
another writer is retried with exponential backoff. A Delta commit is atomic, so a failed write
leaves the table as it was, and the rows stay buffered for the next flush.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeAlias

import pyarrow as pa
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError

DEFAULT_BATCH_ROWS = 10_000
DEFAULT_ATTEMPTS = 6  # commits tried before giving up: backoff 0.05 s .. 0.8 s, ~1.6 s in all
DEFAULT_BACKOFF_S = 0.05  # seconds before the first retry; doubled after each failure

Rows: TypeAlias = pa.RecordBatch | pa.Table | Sequence[Mapping[str, Any]]


class SchemaMismatchError(ValueError):
    """Rows (or an existing table) that do not fit a journal table's Arrow schema."""

    def __init__(self, table: str, column: str, expected: str, found: str, detail: str = ""):
        self.table, self.column, self.expected, self.found = table, column, expected, found
        message = f"{table}: column '{column}': expected {expected}, found {found}"
        super().__init__(f"{message} ({detail})" if detail else message)


class DeltaCommitError(RuntimeError):
    """A write still conflicting after every retry; the rows stay buffered, nothing is lost."""


# ----------------------------------------------------------------------------- validation


def _castable(found: pa.DataType, expected: pa.DataType) -> bool:
    """Whether `found` may be cast to `expected` with no silent loss for any value.

    Casts that can lose information for some values (int overflow, an int64 too large for a
    float64, sub-microsecond timestamps) are allowed here because the cast that follows runs
    with safe=True and refuses those values. Float into int is refused outright: delta-rs (and
    pyarrow's own Python-to-int conversion) truncate 1.5 to 1 without a word.
    """
    is_int = pa.types.is_integer
    if found.equals(expected) or pa.types.is_null(found):
        return True
    if pa.types.is_dictionary(found):
        return _castable(found.value_type, expected)
    if is_int(expected):
        return bool(is_int(found))
    if pa.types.is_floating(expected):
        if pa.types.is_floating(found):
            return bool(found.bit_width <= expected.bit_width)
        return bool(is_int(found))
    if pa.types.is_string(expected) or pa.types.is_large_string(expected):
        return bool(pa.types.is_string(found) or pa.types.is_large_string(found))
    if pa.types.is_timestamp(expected):
        # A naive time has no instant; casting it to a zone would invent one.
        return pa.types.is_timestamp(found) and (found.tz is None) == (expected.tz is None)
    if pa.types.is_date(expected):
        return bool(pa.types.is_date(found))
    if pa.types.is_map(expected):
        return pa.types.is_map(found) and (
            _castable(found.key_type, expected.key_type)
            and _castable(found.item_type, expected.item_type)
        )
    if pa.types.is_list(expected) or pa.types.is_large_list(expected):
        return bool(pa.types.is_list(found) or pa.types.is_large_list(found)) and _castable(
            found.value_type, expected.value_type
        )
    if pa.types.is_struct(expected):
        if not pa.types.is_struct(found):
            return False
        names = [f.name for f in found]
        if sorted(names) != sorted(f.name for f in expected):
            return False
        return all(_castable(found.field(f.name).type, f.type) for f in expected)
    return False


def _null_violation(arr: pa.Array, field: pa.Field, path: str) -> str | None:
    """The path of a non-nullable field holding a null (nulls under a null parent are fine)."""
    if not field.nullable and arr.null_count:
        return path
    t = field.type
    found: str | None = None
    if pa.types.is_struct(t):
        valid = arr.is_valid() if arr.null_count else None
        for i, child_field in enumerate(t):
            child = arr.field(i) if valid is None else arr.field(i).filter(valid)
            found = found or _null_violation(child, child_field, f"{path}.{child_field.name}")
    elif pa.types.is_map(t):
        # .keys and .items ignore a slice; the offsets do not.
        offsets = arr.offsets
        start, stop = offsets[0].as_py(), offsets[-1].as_py()
        for child, f in ((arr.keys, t.key_field), (arr.items, t.item_field)):
            part = child.slice(start, stop - start)
            found = found or _null_violation(part, f, f"{path}[{f.name}]")
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        found = _null_violation(arr.flatten(), t.value_field, f"{path}[]")
    return found


def _python_problem(value: object, t: pa.DataType, path: str) -> str | None:
    """What pyarrow would silently get wrong converting `value` to `t`, if anything.

    pyarrow truncates a float into an int column (1.5 becomes 1), reads a naive datetime as
    UTC, and fills a struct field missing from a dict with null.
    """
    if value is None:
        return None
    if pa.types.is_integer(t) and isinstance(value, float):
        return f"the float {value!r} in '{path}'"
    if pa.types.is_timestamp(t) and t.tz is not None:
        if isinstance(value, datetime) and value.utcoffset() is None:
            return f"a datetime without a time zone in '{path}'"
        return None
    items: list[tuple[object, pa.DataType, str]] = []
    if pa.types.is_struct(t) and isinstance(value, Mapping):
        names = {f.name for f in t}
        if value.keys() != names:
            missing, extra = sorted(names - set(value)), sorted(set(value) - names)
            what = f"no '{missing[0]}'" if missing else f"an unknown field '{extra[0]}'"
            return f"{what} in '{path}'"
        items = [(value[f.name], f.type, f"{path}.{f.name}") for f in t]
    elif pa.types.is_map(t):
        pairs = value.items() if isinstance(value, Mapping) else value
        if isinstance(pairs, Iterable):
            for k, v in pairs:
                items += [(k, t.key_type, f"{path}[key]"), (v, t.item_type, f"{path}[{k!r}]")]
    elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and isinstance(value, list | tuple):
        items = [(v, t.value_type, f"{path}[{i}]") for i, v in enumerate(value)]
    for v, vt, p in items:
        problem = _python_problem(v, vt, p)
        if problem:
            return problem
    return None


def _conform_column(col: pa.ChunkedArray, field: pa.Field, table: str) -> pa.ChunkedArray:
    if not col.type.equals(field.type):
        if not _castable(col.type, field.type):
            raise SchemaMismatchError(table, field.name, str(field.type), str(col.type))
        try:
            col = col.cast(field.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            found = str(col.type)
            raise SchemaMismatchError(table, field.name, str(field.type), found, str(exc)) from None
    for chunk in col.chunks:
        bad = _null_violation(chunk, field, field.name)
        if bad:
            found = f"nulls in '{bad}'"
            raise SchemaMismatchError(table, field.name, "no nulls (not nullable)", found)
    return col


def _rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema, table: str) -> pa.Table:
    names = schema.names
    wanted = set(names)
    for i, row in enumerate(rows):
        if row.keys() != wanted:
            missing, extra = wanted - set(row), set(row) - wanted
            if missing:
                name = next(n for n in names if n in missing)
                found = f"no value in row {i}"
                raise SchemaMismatchError(table, name, str(schema.field(name).type), found)
            name = sorted(extra)[0]
            raise SchemaMismatchError(table, name, "no such column", f"a value in row {i}")
    columns = []
    for field in schema:
        expected = str(field.type)
        values = [row[field.name] for row in rows]
        for i, value in enumerate(values):
            problem = _python_problem(value, field.type, field.name)
            if problem:
                raise SchemaMismatchError(table, field.name, expected, f"{problem} (row {i})")
        try:
            columns.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            found = "a value of another type"
            raise SchemaMismatchError(table, field.name, expected, found, str(exc)) from None
    return pa.Table.from_arrays(columns, names=names)


def conform(data: Rows, schema: pa.Schema, table: str = "table") -> pa.Table:
    """`data` as a Table of exactly `schema`, or a SchemaMismatchError naming the column.

    Columns are matched by name (order does not matter); a missing or an extra column is an
    error; a column of another type is cast only where no value can change (see `_castable`).
    """
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    elif not isinstance(data, pa.Table):
        data = _rows_to_table(data, schema, table)
    names = data.column_names
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SchemaMismatchError(table, dup, "one column", f"{names.count(dup)} columns")
    extra = [n for n in names if schema.get_field_index(n) < 0]
    if extra:
        raise SchemaMismatchError(
            table, extra[0], "no such column", str(data.schema.field(extra[0]).type)
        )
    columns = []
    for field in schema:
        if field.name not in names:
            raise SchemaMismatchError(table, field.name, str(field.type), "no such column")
        columns.append(_conform_column(data.column(field.name), field, table))
    return pa.Table.from_arrays(columns, schema=schema)


def _check_existing(path: Path, schema: pa.Schema, partition_by: Sequence[str]) -> None:
    """A table already at `path` must have this schema and partitioning; Delta would otherwise
    refuse the first write only after the batch was built (or, for a subset, fill nulls)."""
    if not DeltaTable.is_deltatable(str(path)):
        return
    table = DeltaTable(str(path))
    found = pa.schema(table.schema().to_arrow())
    for name in dict.fromkeys(schema.names + found.names):
        want = schema.field(name).type if name in schema.names else None
        have = found.field(name).type if name in found.names else None
        if want is None or have is None or not have.equals(want):
            none = "no such column"
            raise SchemaMismatchError(str(path), name, str(want or none), str(have or none))
    parts = list(table.metadata().partition_columns)
    if parts != list(partition_by):
        raise SchemaMismatchError(str(path), "(partitioning)", str(list(partition_by)), str(parts))


class DeltaAppender:
    """Appends rows to the Delta table at `path`, `batch_rows` at a time.

    `append` checks rows against `schema` at once (SchemaMismatchError) and buffers them;
    `flush` writes the buffer as one commit, retrying a commit conflict `attempts` times with
    exponential backoff; `close` (or leaving a `with` block) flushes. The table is created on
    the first write. `writer_properties` sets Parquet compression and encodings. `sleep` is
    injectable so tests of the retry need not wait.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        partition_by: Sequence[str] = (),
        batch_rows: int = DEFAULT_BATCH_ROWS,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_s: float = DEFAULT_BACKOFF_S,
        writer_properties: WriterProperties | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name in partition_by:
            if schema.get_field_index(name) < 0:
                raise ValueError(f"partition column {name!r} is not in the schema of {path}")
        if batch_rows < 1 or attempts < 1:
            raise ValueError("batch_rows and attempts must be >= 1")
        self.path = Path(path)
        self.schema = schema
        self.partition_by = tuple(partition_by)
        self.batch_rows = batch_rows
        self.attempts = attempts
        self.backoff_s = backoff_s
        # delta-rs' own default; an empty WriterProperties() would mean "uncompressed".
        self.writer_properties = writer_properties or WriterProperties(compression="SNAPPY")
        self._sleep = sleep
        self._buffer: list[pa.Table] = []
        self.buffered_rows = 0
        self._closed = False
        self.rows_written = 0
        self.commits = 0
        self.retries = 0
        _check_existing(self.path, schema, self.partition_by)

    def append(self, data: Rows) -> None:
        """Check `data` against the schema and buffer it; flushes when the batch is full."""
        if self._closed:
            raise ValueError(f"appender for {self.path} is closed")
        table = conform(data, self.schema, str(self.path))
        if table.num_rows == 0:
            return
        self._buffer.append(table)
        self.buffered_rows += table.num_rows
        if self.buffered_rows >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Write every buffered row as one commit; on failure the rows stay buffered."""
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._write(table)
        self._buffer.clear()
        self.buffered_rows = 0
        self.rows_written += table.num_rows
        self.commits += 1

    def _write(self, table: pa.Table) -> None:
        partition_by = list(self.partition_by) or None
        for attempt in range(1, self.attempts + 1):
            try:
                write_deltalake(
                    str(self.path),
                    table,
                    partition_by=partition_by,
                    mode="append",
                    writer_properties=self.writer_properties,
                )
                return
            except CommitFailedError as exc:
                # Another writer committed first (or created the table): nothing of ours was
                # committed, so writing the same rows again cannot duplicate them.
                if attempt == self.attempts:
                    raise DeltaCommitError(
                        f"{self.path}: commit still conflicting after {attempt} attempts "
                        f"({exc}); {table.num_rows} rows remain buffered"
                    ) from exc
                self.retries += 1
                self._sleep(self.backoff_s * 2 ** (attempt - 1))

    def close(self) -> None:
        """Flush and refuse further rows. Closing twice is harmless."""
        if not self._closed:
            self.flush()
            self._closed = True

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
        # The rows buffered so far passed validation: write them, but never let a second
        # failure hide the exception that ended the block.
        try:
            self.close()
        except Exception as flush_error:
            exc.add_note(
                f"{self.buffered_rows} buffered rows not written to {self.path}: {flush_error}"
            )


# ----------------------------------------------------------------------------- compaction


def _data_files(path: Path) -> tuple[int, int]:
    """Parquet files under `path` (the log excluded) and their bytes: what is on disk."""
    files = [p for p in path.rglob("*.parquet") if "_delta_log" not in p.parts]
    return len(files), sum(p.stat().st_size for p in files)


def compact(
    path: Path, *, full: bool = False, writer_properties: WriterProperties | None = None
) -> dict[str, int]:
    """Bin-pack the small files of each partition, checkpoint the log, then delete the files
    no version needs any more (retention 0).

    A maintenance command: readers holding an older version lose its files, so run it when no
    replay is reading the table. `full` also deletes files no commit ever referenced (left by a
    writer that died before committing) — unsafe while any writer is running. Pass the
    table's own `writer_properties` (compression, encodings): Delta does not remember them.
    Returns data files and bytes on disk before and after, files vacuumed and the new version.
    """
    path = Path(path)
    if not DeltaTable.is_deltatable(str(path)):
        raise FileNotFoundError(f"no Delta table at {path}")
    files_before, bytes_before = _data_files(path)
    table = DeltaTable(str(path))
    metrics = table.optimize.compact(writer_properties=writer_properties)
    table.create_checkpoint()
    removed = table.vacuum(
        retention_hours=0, dry_run=False, enforce_retention_duration=False, full=full
    )
    files_after, bytes_after = _data_files(path)
    return {
        "files_before": files_before,
        "files_after": files_after,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
        "files_added": int(metrics.get("numFilesAdded", 0)),
        "files_vacuumed": len(removed),
        "version": int(table.version()),
    }


def read_delta(path: Path, columns: list[str] | None = None) -> pa.Table:
    """The current version of the Delta table at `path`, as one Arrow table.

    Files are read with pyarrow's local filesystem: with delta-rs' own filesystem handler the
    process intermittently aborts at exit (deltalake 1.6), see engine/market/store.py.
    """
    import pyarrow.fs as pafs

    path = Path(path)
    if not DeltaTable.is_deltatable(str(path)):
        raise FileNotFoundError(f"no Delta table at {path}")
    local = pafs.SubTreeFileSystem(str(path.resolve()), pafs.LocalFileSystem())
    dataset = DeltaTable(str(path)).to_pyarrow_dataset(filesystem=local)
    return dataset.to_table(columns=columns)
