"""RunJournal: the only writer of a dry run's directory (run.json, equity.csv, five Delta tables).

Rows are validated when added, held until their tick ends, and every `flush_ticks` ticks (or
sooner, at a tick boundary, once `flush_rows` rows wait) all five tables are flushed; then
run.json records that tick as `checkpoint_tick`. The tables so hold whole ticks up to the
checkpoint, plus perhaps rows of a flush cut short, which `resume` deletes. Hence:

- Ctrl-C between ticks loses nothing: `close("partial")` flushes every ended tick (rows of
  the tick in progress are dropped; a resumed run redoes that tick).
- Ctrl-C or SIGKILL during a flush leaves each table at its previous or its new version (a
  Delta commit is atomic) and run.json at the previous checkpoint, from which `resume`
  continues. run.json and equity.csv are replaced atomically (temporary file, os.replace).

docs/journal/tables.md describes the directory and every column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from deltalake import DeltaTable

from engine.journal.delta_table import DeltaAppender, Rows, read_delta
from engine.journal.run_rows import check_rows, rows_table, stamp
from engine.journal.run_tables import PARTITION_BY, TABLES

RUN_FILE = "run.json"
EQUITY_CSV = "equity.csv"
FORMAT = 1
DEFAULT_FLUSH_TICKS = 250
DEFAULT_FLUSH_ROWS = 100_000  # rows waiting (all tables) that trigger a flush: bounds memory
JOURNAL_KEYS = ("format", "status", "ticks_done", "last_tick", "checkpoint_tick")
ALL_TABLES = tuple(TABLES)
# Every append re-reads the Delta log since its last checkpoint, so without checkpoints the
# n-th flush costs O(n): 3 ms for the first, 18 ms for the 60th. Every 10 commits keeps it flat.
DELTA_CONFIG = {"delta.checkpointInterval": "10"}

Part: TypeAlias = pa.Table | list[dict[str, Any]]  # checked rows, as added


class RunDirError(ValueError):
    """A run directory that cannot be created, resumed or read as asked."""


class TickError(ValueError):
    """Rows or a tick that do not fit the run's sequence of ticks."""


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader (or a crash) sees the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _create_table(path: Path, schema: pa.Schema) -> None:
    DeltaTable.create(str(path), schema, partition_by=[*PARTITION_BY], configuration=DELTA_CONFIG)


def _utc(time: datetime, what: str) -> datetime:
    if time.utcoffset() is None:
        raise TickError(f"{what} {time.isoformat()} has no time zone; give an aware datetime")
    return time.astimezone(UTC)


def _refuse_reserved(values: dict[str, Any], what: str) -> None:
    reserved = [k for k in values if k in JOURNAL_KEYS]
    if reserved:
        raise ValueError(f"{what} may not set {', '.join(reserved)}: the journal keeps them")


def read_info(run_dir: Path) -> dict[str, Any]:
    """run.json of a run directory (RunDirError if missing or malformed)."""
    return _load_info(Path(run_dir))


def _load_info(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: no {RUN_FILE}, so not a run directory to resume")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise RunDirError(f"{path}: expected a run of format {FORMAT}, found {found!r}")
    return info


class RunJournal:
    """Writes one run directory; make one with `create` or `resume`, end it with `close`."""

    def __init__(
        self, run_dir: Path, info: dict[str, Any], *, flush_ticks: int, flush_rows: int
    ) -> None:
        if flush_ticks < 1 or flush_rows < 1:
            raise ValueError("flush_ticks and flush_rows must be >= 1")
        self.run_dir = run_dir
        self.flush_ticks, self.flush_rows = flush_ticks, flush_rows
        self._info = info
        # Never flushed by size: only _checkpoint flushes, so only at tick boundaries.
        self._appenders = {
            name: DeltaAppender(run_dir / name, schema, PARTITION_BY, batch_rows=sys.maxsize)
            for name, schema in TABLES.items()
        }
        # Rows of the tick in progress (with their latest time), and of the ticks ended since
        # the checkpoint; validated already, concatenated into one append per table per flush.
        self._pending: dict[str, list[tuple[Part, int, datetime]]] = {n: [] for n in TABLES}
        self._ready: dict[str, list[Part]] = {name: [] for name in TABLES}
        self._ready_rows = 0
        self.checkpoint_tick = _parse_time(info.get("checkpoint_tick"))
        self.last_tick = self.checkpoint_tick  # the last ended tick (UTC)
        self.ticks_done = int(info.get("ticks_done", 0))
        self._checkpoint_ticks = self.ticks_done
        self._days: dict[date, float] = {}  # checkpointed: day -> last net_liq (USD)
        self._new_days: list[tuple[date, float]] = []  # ended since the checkpoint
        self._failed = False  # a flush was cut short: tables may hold rows past the checkpoint
        self._closed = False

    @classmethod
    def create(
        cls,
        run_dir: Path,
        header: dict[str, Any],
        *,
        flush_ticks: int = DEFAULT_FLUSH_TICKS,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
    ) -> RunJournal:
        """Start a run in `run_dir` (new or empty): five empty tables, run.json 'running'."""
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(f"RUN_DIR {run_dir} is a file; choose another --out")
        if run_dir.is_dir():
            entries = sorted(p.name for p in run_dir.iterdir())
            if entries:
                more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
                shown = ", ".join(entries[:5]) + more
                raise RunDirError(
                    f"RUN_DIR exists and is not empty: {run_dir} (holds {shown}); "
                    "choose another --out or remove it"
                )
        _refuse_reserved(header, "the run header")
        info = {"format": FORMAT, "status": "running", **header}
        info |= {"ticks_done": 0, "last_tick": None, "checkpoint_tick": None}
        json.dumps(info, allow_nan=False)  # refuse an unserializable header before any work
        run_dir.mkdir(parents=True, exist_ok=True)
        for name, schema in TABLES.items():
            # Empty tables from the start: a run without fills still has a readable `fills`.
            _create_table(run_dir / name, schema)
        journal = cls(run_dir, info, flush_ticks=flush_ticks, flush_rows=flush_rows)
        journal._write_info(info)
        return journal

    @classmethod
    def resume(
        cls,
        run_dir: Path,
        *,
        flush_ticks: int = DEFAULT_FLUSH_TICKS,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
    ) -> tuple[RunJournal, dict[str, Any], datetime | None]:
        """Reopen an interrupted run: (journal, header, last complete tick or None).

        Rows after run.json's checkpoint are deleted from every table; the caller skips the
        ticks up to and including the returned time.
        """
        run_dir = Path(run_dir)
        info = _load_info(run_dir)
        status = info.get("status")
        if status == "complete":
            raise RunDirError(
                f"{run_dir}: the run is already complete; nothing to resume "
                "(choose another --out to run again)"
            )
        if status not in ("running", "partial"):
            raise RunDirError(f"{run_dir / RUN_FILE}: unknown status {status!r}")
        checkpoint = _parse_time(info.get("checkpoint_tick"))
        for name, schema in TABLES.items():
            path = run_dir / name
            after = None if checkpoint is None else f"time > '{checkpoint.isoformat()}'"
            if not DeltaTable.is_deltatable(str(path)):
                _create_table(path, schema)
            else:  # with no checkpoint yet, whatever a cut-short first flush wrote goes
                DeltaTable(str(path)).delete(after)
        equity = read_delta(run_dir / "equity", ["time", "date", "net_liq"]).sort_by("time")
        info |= {"status": "running", "ticks_done": equity.num_rows}
        journal = cls(run_dir, info, flush_ticks=flush_ticks, flush_rows=flush_rows)
        dates, values = equity.column("date").to_pylist(), equity.column("net_liq").to_pylist()
        journal._days = dict(zip(dates, values, strict=True))  # time order: a day's last tick
        journal._write_info(info)
        header = {k: v for k, v in info.items() if k not in JOURNAL_KEYS}
        return journal, header, checkpoint

    def add(self, table: str, rows: Rows) -> None:
        """Validate rows of `table` for the tick in progress and hold them until it ends.

        Each row needs `time` (aware) after the previous tick; `date` and `year` are derived
        from it. Equity rows come with `end_tick`.
        """
        self._check_open()
        if table not in TABLES or table == "equity":
            names = ", ".join(n for n in TABLES if n != "equity")
            raise ValueError(f"cannot add to {table!r}: one of {names} (equity: end_tick)")
        part: Part
        if isinstance(rows, pa.Table | pa.RecordBatch):
            part = stamp(table, rows)
            span = pc.min_max(part.column("time"))
            earliest, latest, count = span["min"].as_py(), span["max"].as_py(), part.num_rows
        else:
            # Arrow conversion waits for the flush: per tick it costs more than the checks.
            part = check_rows(table, rows)
            times = [row["time"] for row in part]
            earliest, latest, count = min(times, default=None), max(times, default=None), len(part)
        if earliest is None or latest is None:
            return
        if self.last_tick is not None and earliest <= self.last_tick:
            raise TickError(
                f"{table}: a row at {earliest.astimezone(UTC).isoformat()} belongs to a tick "
                f"already ended (the last ended at {self.last_tick.isoformat()})"
            )
        self._pending[table].append((part, count, latest))

    def end_tick(self, time: datetime, equity_row: dict[str, Any]) -> None:
        """End the tick at `time`: its rows and its equity row become part of the run.

        `equity_row` holds the equity table's columns; `time`, `date` and `year` may be left
        out. Flushes all tables every `flush_ticks` ticks.
        """
        self._check_open()
        utc = _utc(time, "tick time")
        if self.last_tick is not None and utc <= self.last_tick:
            raise TickError(
                f"tick {utc.isoformat()} is not after the last one, {self.last_tick.isoformat()}"
            )
        equity = check_rows("equity", [{"time": utc, **equity_row}])
        if equity[0]["time"] != utc:
            raise TickError(f"equity row time {equity[0]['time']} is not the tick's, {utc}")
        net_liq = float(equity[0]["net_liq"])
        if not math.isfinite(net_liq):
            raise TickError(f"equity: net_liq is {net_liq} at tick {utc.isoformat()}")
        for name, held in self._pending.items():
            latest = max((t for _, _, t in held), default=None)
            if latest is not None and latest > utc:
                raise TickError(
                    f"{name}: a row at {latest.astimezone(UTC).isoformat()} is after its tick, "
                    f"{utc.isoformat()}"
                )
        self._pending["equity"].append((equity, 1, utc))
        for name, held in self._pending.items():
            self._ready[name] += [part for part, _, _ in held]
            self._ready_rows += sum(count for _, count, _ in held)
            held.clear()
        self.ticks_done += 1
        self.last_tick = utc
        self._new_days.append((equity[0]["date"], net_liq))
        due = self.ticks_done - self._checkpoint_ticks >= self.flush_ticks
        if due or self._ready_rows >= self.flush_rows:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Flush every table, then record the last ended tick in run.json."""
        try:
            for name, appender in self._appenders.items():
                if self._ready[name]:
                    appender.append(rows_table(name, self._ready[name]))
                    self._ready[name].clear()
                appender.flush()
            tick = None if self.last_tick is None else self.last_tick.isoformat()
            progress = {"ticks_done": self.ticks_done, "last_tick": tick, "checkpoint_tick": tick}
            info = self._info | progress
            self._write_info(info)
        except BaseException:
            # Some tables may now hold rows run.json does not cover; resume removes them.
            self._failed = True
            raise
        self._info, self._ready_rows = info, 0
        self.checkpoint_tick, self._checkpoint_ticks = self.last_tick, self.ticks_done
        self._days.update(self._new_days)
        self._new_days.clear()

    def close(
        self,
        status: Literal["complete", "partial"] = "complete",
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Flush, write equity.csv and mark the run `status` in run.json, with `extra` fields.

        Rows of a tick that never ended are dropped (a partial run redoes that tick); after
        a failed flush nothing more is written and the run is marked partial. Returns the
        status written. Closing again does nothing.
        """
        if status not in ("complete", "partial"):
            raise ValueError(f"run status must be complete or partial, not {status!r}")
        extra = dict(extra or {})
        _refuse_reserved(extra, "close(extra=...)")
        if self._closed:
            return str(self._info["status"])
        pending = sum(count for held in self._pending.values() for _, count, _ in held)
        if status == "complete" and pending:
            message = f"{pending} rows were added after the last end_tick"
            raise TickError(f"{message}; end the tick or close the run as partial")
        if self._failed:
            status = "partial"
        else:
            self._checkpoint()
        self._closed = True
        self._write_equity_csv()
        self._info |= {**extra, "status": status}
        self._write_info(self._info)
        return status

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A block left without `close` (an error, Ctrl-C, a forgotten close) ends partial."""
        if self._closed:
            return
        try:
            self.close("partial")
        except Exception as close_error:
            if exc is None:
                raise
            exc.add_note(f"the run journal in {self.run_dir} could not be closed: {close_error}")

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the run journal of {self.run_dir} is closed")
        if self._failed:  # a retry could write twice what a cut-short commit already wrote
            raise ValueError(f"a flush of {self.run_dir} failed: close it, then resume the run")

    def _write_info(self, info: dict[str, Any]) -> None:
        text = json.dumps(info, indent=2, allow_nan=False) + "\n"
        _write_atomic(self.run_dir / RUN_FILE, text)

    def _write_equity_csv(self) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["date", "equity"])
        for day in sorted(self._days):
            # `+ 0.0` turns -0.0 into 0.0, so a flat account never prints "-0.00".
            writer.writerow([day.isoformat(), f"{round(self._days[day], 2) + 0.0:.2f}"])
        _write_atomic(self.run_dir / EQUITY_CSV, out.getvalue())


def _parse_time(text: object) -> datetime | None:
    if text is None:
        return None
    try:
        return _utc(datetime.fromisoformat(str(text)), "run.json time")
    except (ValueError, TickError) as exc:
        raise RunDirError(f"{RUN_FILE}: bad time {text!r}: {exc}") from None


def read_table(run_dir: Path, name: str) -> pa.Table:
    """Table `name` of the run in `run_dir`, in tick order, with its schema's column order."""
    if name not in TABLES:
        raise RunDirError(f"no run table {name!r}: one of {', '.join(TABLES)}")
    path = Path(run_dir) / name
    if not DeltaTable.is_deltatable(str(path)):
        raise RunDirError(f"{run_dir}: no '{name}' table (is it a run directory?)")
    raw = read_delta(path)
    schema = TABLES[name]
    columns = []
    for f in schema:
        if f.name in raw.column_names:
            columns.append(raw.column(f.name))
        elif f.nullable:  # a column added after this run was written: unknown, not an error
            columns.append(pa.nulls(raw.num_rows, f.type))
        else:
            raise RunDirError(
                f"{path}: column '{f.name}' is missing; the run was written by an older V6 "
                "whose journal this version cannot read"
            )
    return pa.Table.from_arrays(columns, schema=schema).sort_by("time")


def content_hash(run_dir: Path, tables: Iterable[str] = ALL_TABLES) -> str:
    """sha256 of the tables' rows, independent of files, batches and row order.

    Each table is sorted by every column (time first) and serialized as CSV, which renders
    each value one way (floats in their shortest round-trip form, null apart from "").
    """
    digest = hashlib.sha256()
    for name in tables:
        table = read_table(run_dir, name)
        keys = ["time", *(n for n in table.column_names if n != "time")]
        table = table.sort_by([(k, "ascending") for k in keys])
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        digest.update(f"{name}\n".encode())
        digest.update(buffer.getvalue())
    return digest.hexdigest()
