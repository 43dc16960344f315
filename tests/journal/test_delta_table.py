"""DeltaAppender: batched appends, schema checks before every write, commit retries, compaction."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from engine.journal import delta_table
from engine.journal.delta_table import (
    DeltaAppender,
    DeltaCommitError,
    SchemaMismatchError,
    compact,
    conform,
)

SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("quantity", pa.int64(), nullable=False),
        pa.field("price", pa.float64()),
        pa.field("tags", pa.list_(pa.field("item", pa.string(), nullable=False))),
        pa.field("counts", pa.map_(pa.string(), pa.int64())),
        pa.field(
            "leg",
            pa.struct(
                [pa.field("strike", pa.float64(), nullable=False), pa.field("qty", pa.int64())]
            ),
        ),
    ]
)


def row(i: int, **changes: Any) -> dict[str, Any]:
    base = {
        "date": date(2024, 6, 3 + i % 2),
        "time": datetime(2024, 6, 3 + i % 2, 14, i % 60, tzinfo=UTC),
        "symbol": "SPY",
        "quantity": i,
        "price": 500.0 + i,
        "tags": ["a", "b"],
        "counts": {"SPY": i},
        "leg": {"strike": 500.0, "qty": -1},
    }
    return base | changes


def read(path: Path) -> pa.Table:
    return DeltaTable(str(path)).to_pyarrow_table().select(SCHEMA.names).sort_by("quantity")


def mismatch(data: Any, schema: pa.Schema = SCHEMA) -> SchemaMismatchError:
    with pytest.raises(SchemaMismatchError) as info:
        conform(data, schema, "orders")
    return info.value


# ----------------------------------------------------------------------------- batching


def test_rows_are_written_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "orders"
    with DeltaAppender(path, SCHEMA, partition_by=["date"], batch_rows=3) as appender:
        for i in range(7):
            appender.append([row(i)])
        assert appender.commits == 2 and appender.buffered_rows == 1
        assert DeltaTable(str(path)).version() == 1  # versions 0 and 1: two commits so far
    assert appender.commits == 3 and appender.rows_written == 7
    table = read(path)
    assert table.column("quantity").to_pylist() == list(range(7))
    assert table.schema.equals(SCHEMA)
    # Every value back, nested ones included (a map reads back as (key, value) pairs).
    assert table.slice(3, 1).to_pylist() == [row(3, counts=[("SPY", 3)])]
    assert sorted(p["date"] for p in DeltaTable(str(path)).partitions()) == [
        "2024-06-03",
        "2024-06-04",
    ]


def test_batches_tables_and_rows_are_accepted(tmp_path: Path) -> None:
    table = pa.Table.from_pylist([row(0), row(1)], schema=SCHEMA)
    reordered = table.select(list(reversed(SCHEMA.names)))  # columns match by name
    with DeltaAppender(tmp_path / "t", SCHEMA) as appender:
        appender.append(table.to_batches()[0])
        appender.append(reordered)
        appender.append([row(2)])
        appender.append([])  # nothing to write
        assert appender.commits == 0  # all of it fits one batch
    assert appender.commits == 1
    assert read(tmp_path / "t").column("quantity").to_pylist() == [0, 0, 1, 1, 2]


def test_closed_appender_refuses_rows(tmp_path: Path) -> None:
    appender = DeltaAppender(tmp_path / "t", SCHEMA)
    appender.close()
    appender.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        appender.append([row(0)])
    assert not DeltaTable.is_deltatable(str(tmp_path / "t"))  # nothing was ever written


def test_rows_appended_before_an_error_are_still_written(tmp_path: Path) -> None:
    appender = DeltaAppender(tmp_path / "t", SCHEMA)
    with pytest.raises(RuntimeError, match="strategy failed"), appender:
        appender.append([row(0), row(1)])
        raise RuntimeError("strategy failed")
    assert read(tmp_path / "t").num_rows == 2


# ----------------------------------------------------------------------------- validation


def test_float_into_int_column_is_refused() -> None:
    err = mismatch([row(0, quantity=1.5)])
    assert err.column == "quantity" and err.expected == "int64"
    assert "the float 1.5" in str(err) and "row 0" in str(err)
    # From Arrow too, even when every value is whole: delta-rs would truncate silently.
    table = pa.Table.from_pylist([row(0)], schema=SCHEMA)
    floats = table.set_column(3, "quantity", pa.array([1.0]))
    err = mismatch(floats)
    assert (err.column, err.expected, err.found) == ("quantity", "int64", "double")


def test_nan_into_int_column_is_refused() -> None:
    assert mismatch([row(0, quantity=float("nan"))]).column == "quantity"
    table = pa.Table.from_pylist([row(0)], schema=SCHEMA)
    assert mismatch(table.set_column(3, "quantity", pa.array([float("nan")]))).found == "double"


def test_float_into_nested_int_is_refused() -> None:
    err = mismatch([row(0, leg={"strike": 500.0, "qty": 0.5})])
    assert err.column == "leg" and "leg.qty" in str(err)


def test_missing_and_extra_columns_are_named() -> None:
    missing = {k: v for k, v in row(0).items() if k != "price"}
    err = mismatch([missing])
    assert (err.column, err.expected) == ("price", "double") and "no value" in err.found
    err = mismatch(pa.Table.from_pylist([row(0)], schema=SCHEMA).drop_columns(["price"]))
    assert (err.column, err.found) == ("price", "no such column")
    err = mismatch([row(0, venue="SMART")])
    assert (err.column, err.expected) == ("venue", "no such column")
    err = mismatch([row(0, leg={"strike": 500.0})])
    assert err.column == "leg" and "no 'qty'" in err.found


def test_nulls_in_required_fields_are_refused() -> None:
    err = mismatch([row(0, symbol=None)])
    assert err.column == "symbol" and "not nullable" in err.expected
    err = mismatch([row(0, leg={"strike": None, "qty": 1})])
    assert "'leg.strike'" in err.found
    err = mismatch([row(0, tags=["a", None])])
    assert "'tags[]'" in err.found
    # A null parent may hold null children.
    assert conform([row(0, leg=None, tags=None)], SCHEMA).num_rows == 1


def test_wrong_types_are_refused_with_both_types() -> None:
    err = mismatch([row(0, price="cheap")])
    assert (err.column, err.expected, err.found) == ("price", "double", "a value of another type")
    table = pa.Table.from_pylist([row(0)], schema=SCHEMA)
    err = mismatch(table.set_column(2, "symbol", pa.array([7])))
    assert (err.column, err.expected, err.found) == ("symbol", "string", "int64")
    err = mismatch([row(0, time=datetime(2024, 6, 3, 14, 0))])
    assert err.column == "time" and "without a time zone" in err.found


def test_lossless_casts_are_applied() -> None:
    table = pa.table(
        {
            "date": pa.array([date(2024, 6, 3)]),
            "time": pa.array([datetime(2024, 6, 3, 10, tzinfo=UTC)], pa.timestamp("ms", "UTC")),
            "symbol": pa.array(["SPY"], pa.large_string()),
            "quantity": pa.array([3], pa.int32()),
            "price": pa.array([5], pa.int64()),
            "tags": pa.array([None], pa.list_(pa.string())),
            "counts": pa.array([None], pa.map_(pa.string(), pa.int32())),
            "leg": pa.array([None], pa.null()),
        }
    )
    out = conform(table, SCHEMA)
    assert out.schema.equals(SCHEMA)
    assert out.column("quantity").to_pylist() == [3] and out.column("price").to_pylist() == [5.0]
    # An int a float64 cannot hold exactly is refused by the safe cast.
    inexact = table.set_column(4, "price", pa.array([2**53 + 1]))
    assert mismatch(inexact).column == "price"


def test_existing_table_with_another_schema_is_refused(tmp_path: Path) -> None:
    with DeltaAppender(tmp_path / "t", SCHEMA, partition_by=["date"]) as appender:
        appender.append([row(0)])
    other = SCHEMA.set(3, pa.field("quantity", pa.float64()))
    with pytest.raises(SchemaMismatchError) as info:
        DeltaAppender(tmp_path / "t", other, partition_by=["date"])
    assert info.value.column == "quantity" and info.value.found == "int64"
    with pytest.raises(SchemaMismatchError, match="partitioning"):
        DeltaAppender(tmp_path / "t", SCHEMA, partition_by=[])
    with pytest.raises(ValueError, match="partition column 'day'"):
        DeltaAppender(tmp_path / "u", SCHEMA, partition_by=["day"])


# ----------------------------------------------------------------------------- retries


def test_a_commit_conflict_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = delta_table.write_deltalake
    calls: list[int] = []

    def conflicting_once(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise CommitFailedError("Failed to commit transaction: version 0 already exists")
        real(*args, **kwargs)

    monkeypatch.setattr(delta_table, "write_deltalake", conflicting_once)
    waits: list[float] = []
    with DeltaAppender(tmp_path / "t", SCHEMA, sleep=waits.append) as appender:
        appender.append([row(0), row(1)])
    assert len(calls) == 2 and waits == [delta_table.DEFAULT_BACKOFF_S]
    assert appender.retries == 1 and appender.commits == 1
    assert read(tmp_path / "t").num_rows == 2  # written once, not twice


def test_retries_are_bounded_and_keep_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = delta_table.write_deltalake

    def always_conflicting(*args: Any, **kwargs: Any) -> None:
        raise CommitFailedError("Failed to commit transaction: concurrent append")

    monkeypatch.setattr(delta_table, "write_deltalake", always_conflicting)
    waits: list[float] = []
    appender = DeltaAppender(tmp_path / "t", SCHEMA, attempts=4, backoff_s=0.5, sleep=waits.append)
    appender.append([row(0)])
    with pytest.raises(DeltaCommitError, match="after 4 attempts") as info:
        appender.flush()
    assert isinstance(info.value.__cause__, CommitFailedError)
    assert waits == [0.5, 1.0, 2.0] and appender.buffered_rows == 1
    monkeypatch.setattr(delta_table, "write_deltalake", real)
    appender.close()  # the conflict is over: the kept rows are written
    assert read(tmp_path / "t").num_rows == 1


def test_concurrent_appenders_lose_no_rows(tmp_path: Path) -> None:
    """Writers racing to create and append to one table: the losers' commits are retried."""
    path, writers, batches = tmp_path / "t", 3, 4
    errors: list[BaseException] = []
    start = threading.Barrier(writers)  # all race to create the table

    def write(w: int) -> None:
        try:
            appender = DeltaAppender(path, SCHEMA, batch_rows=1, backoff_s=0.01, attempts=20)
            start.wait()
            for b in range(batches):
                appender.append([row(w * batches + b)])
            appender.close()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert read(path).column("quantity").to_pylist() == list(range(writers * batches))


# ----------------------------------------------------------------------------- compaction


def test_compaction_merges_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "t"
    with DeltaAppender(path, SCHEMA, partition_by=["date"], batch_rows=2) as appender:
        for i in range(10):
            appender.append([row(i)])
    before = read(path)
    result = compact(path)
    assert result["files_before"] == 10  # five commits, each into both dates
    assert result["files_after"] == 2  # one per date
    assert result["files_vacuumed"] == 10 and result["files_added"] == 2
    assert 0 < result["bytes_after"] < result["bytes_before"]
    assert read(path).equals(before)
    assert compact(path)["files_after"] == 2  # compacting again changes nothing


def test_compacting_a_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Delta table"):
        compact(tmp_path / "nothing")
