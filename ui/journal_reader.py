"""Incremental reader of a run's journal (run.json and its six Delta tables) for the dashboard.

Incremental strategy. While a run is written its tables only grow by appends: `RunJournal`
flushes every table, then records the flushed tick in run.json as `checkpoint_tick`. For each
table the reader keeps the Delta version it read last, the data files of that version and
every row of those files, in time order. `refresh()`:

1. reads run.json again (status, ticks done, checkpoint);
2. for each table, looks for the next commit of the Delta log (`_delta_log/<version + 1>.json`,
   one `stat`): none means the table is unchanged and nothing more is done;
3. otherwise opens the table's current version (`DeltaTable`) and compares its files
   (`get_add_actions`) with the cached ones. If every cached file is still there, only the
   files added since are read (one Parquet file at a time, the partition column restored from
   the add action), sorted by time and appended to the cache. If a cached file is gone, the
   table was rewritten — compacted, or rows deleted by a resume — and it is read again in
   full; the state's notes say so;
4. shows every table cut at run.json's checkpoint: a flush in progress (or one cut short)
   may have written later ticks to some tables and not yet to others, so rows past the
   checkpoint stay hidden until run.json covers them, and the six tables always agree.

A refresh that fails raises JournalError and keeps the previous snapshot. Missing nullable
columns (added to the schema after the run was written) read as nulls, as
`engine.journal.run_journal.read_table` does; a missing required column is a JournalError.
The reader is safe to share between threads (a lock serialises refreshes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from engine.journal.run_journal import FORMAT, RUN_FILE
from engine.journal.run_tables import TABLES

STATUSES = ("running", "complete", "partial")
MAKE_ONE = "make one with `v6 dry-run` or `v6 demo`"
# run.json keys that name the run: if one changes, the folder was made again for another run.
_IDENTITY = ("ruleset", "market", "feed", "from", "to", "initial_cash", "trace_level")
_MAX_CHUNKS = 64  # appended chunks before the cache is compacted into one (keeps kernels fast)

ReadFile = Callable[[Path], pa.Table]


class JournalError(ValueError):
    """A run folder the dashboard cannot show; the message is fit for the page and a terminal."""


@dataclass(frozen=True, slots=True)
class JournalState:
    """What the reader holds after a refresh: the run, how far it got, anything odd."""

    run_dir: Path
    status: str  # running | complete | partial, as run.json says
    ruleset: str | None  # the rule set's name
    ruleset_hash: str | None  # hash of its files (the `ruleset` column of decisions)
    trace_level: str | None  # off | fails | full: how much of each rule's conditions was kept
    ticks_done: int  # ticks shown: those up to the checkpoint
    first_tick: datetime | None  # UTC
    last_tick: datetime | None  # UTC, the checkpoint
    notes: tuple[str, ...]  # for the page: a run still written, a table read again, ...


@dataclass(frozen=True, slots=True)
class _Cached:
    """One table as read: every row of `files` (Delta `version`), time-sorted."""

    version: int
    files: frozenset[str]
    rows: pa.Table


def read_parquet(path: Path) -> pa.Table:
    """One data file of a Delta table, as written (no partition column)."""
    with pq.ParquetFile(path) as f:
        return f.read()


def _commit_file(table_dir: Path, version: int) -> Path:
    return table_dir / "_delta_log" / f"{version:020d}.json"


def _utc_time(text: object, what: str, path: Path) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        raise JournalError(f"{path}: {what} {text!r} is not an ISO date and time") from None
    if value.utcoffset() is None:
        raise JournalError(f"{path}: {what} {text!r} has no time zone")
    return value.astimezone(UTC)


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json of `run_dir`, checked; JournalError naming file, line and column if not."""
    if not run_dir.exists():
        raise JournalError(f"{run_dir} is not a run folder (it does not exist): {MAKE_ONE}")
    if not run_dir.is_dir():
        raise JournalError(f"{run_dir} is not a run folder (it is a file): {MAKE_ONE}")
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise JournalError(f"{run_dir} is not a run folder (no {RUN_FILE} in it): {MAKE_ONE}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise JournalError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); the run folder is "
            "damaged"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(info, dict):
        raise JournalError(f"{path}: expected a JSON object, found {type(info).__name__}")
    if info.get("format") != FORMAT:
        raise JournalError(
            f"{path}: journal format {info.get('format')!r}, this V6 reads format {FORMAT}: "
            "the run was made by another V6 version"
        )
    if info.get("status") not in STATUSES:
        raise JournalError(
            f"{path}: status {info.get('status')!r} is not one of {', '.join(STATUSES)}"
        )
    return info


def _conform(raw: pa.Table, name: str, partition: Mapping[str, Any], where: Path) -> pa.Table:
    """`raw` (one data file) in the table's schema: partition values restored, nullable
    columns missing from an older run filled with nulls."""
    schema = TABLES[name]
    columns = []
    for field in schema:
        if field.name in raw.column_names:
            column = raw.column(field.name)
        elif field.name in partition:
            column = pa.repeat(pa.scalar(partition[field.name]), raw.num_rows)
        elif field.nullable:
            column = pa.nulls(raw.num_rows, field.type)
        else:
            raise JournalError(_older(where, name, field.name))
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise JournalError(
                    f"{where}: column '{field.name}' of the '{name}' table holds "
                    f"{column.type}, expected {field.type}: the run was made by another V6 "
                    "version; make it again with `v6 dry-run`"
                ) from None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _older(path: Path, name: str, column: str) -> str:
    return (
        f"{path}: the '{name}' table has no column '{column}': the run was made by an older "
        "V6 whose journal this version cannot show; make it again with `v6 dry-run`"
    )


def _file_path(table_dir: Path, path: str) -> Path:
    if "://" in path:  # absolute (file:///...), as a table written elsewhere may hold
        return Path(unquote(urlparse(path).path))
    return table_dir / unquote(path)


def _sorted_concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    if not parts:
        return schema.empty_table()
    # Stable: rows of one tick keep the engine's order (decisions: the evaluation order).
    return pa.concat_tables(parts).sort_by("time")


def _upto(rows: pa.Table, limit: datetime) -> pa.Table:
    """The rows at or before `limit`; `rows` are time-sorted."""
    if rows.num_rows == 0:
        return rows
    time = rows.column("time")
    stamp = pa.scalar(limit, type=time.type)
    if pc.less_equal(time[-1], stamp).as_py():
        return rows
    keep = int(pc.sum(pc.less_equal(time, stamp)).as_py() or 0)
    return rows.slice(0, keep)


class JournalReader:
    """The journal of the run in `run_dir`, read incrementally (see the module's docstring).

    `refresh()` brings it up to date; `state` and `table(name)` give what the last successful
    refresh read (the first access refreshes). `read_file` reads one Parquet data file; tests
    pass their own to count reads.
    """

    def __init__(self, run_dir: Path | str, *, read_file: ReadFile = read_parquet) -> None:
        self.run_dir = Path(run_dir)
        self._read_file = read_file
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._tables: dict[str, pa.Table] = {}
        self._info: dict[str, Any] | None = None
        self._state: JournalState | None = None

    # ------------------------------------------------------------------------- public

    @property
    def state(self) -> JournalState:
        with self._lock:
            if self._state is None:
                self.refresh()
            assert self._state is not None
            return self._state

    @property
    def info(self) -> dict[str, Any]:
        """run.json as last read (a copy)."""
        with self._lock:
            if self._info is None:
                self.refresh()
            return dict(self._info or {})

    def table(self, name: str) -> pa.Table:
        """Table `name` up to the checkpoint, in time order (rows of a tick as written)."""
        if name not in TABLES:
            raise JournalError(f"no journal table {name!r}: one of {', '.join(TABLES)}")
        with self._lock:
            if self._state is None:
                self.refresh()
            return self._tables[name]

    def refresh(self) -> bool:
        """Read what changed since the last refresh; True if anything did.

        Raises JournalError (and keeps the previous snapshot) for a folder that is not a run,
        an empty journal, a missing table or one written by an older V6.
        """
        with self._lock:
            info = read_run_info(self.run_dir)
            run_file = self.run_dir / RUN_FILE
            checkpoint = _utc_time(info.get("checkpoint_tick"), "checkpoint_tick", run_file)
            if checkpoint is None:
                raise JournalError(self._empty_message(str(info["status"])))
            notes: list[str] = []
            cache = dict(self._cache)
            if self._info is not None and self._another_run(self._info, info, checkpoint):
                cache.clear()
                notes.append("the run folder now holds another run: read again in full")
            changed = info != self._info
            for name in TABLES:
                entry, rewritten = self._load(name, cache.get(name))
                if rewritten:
                    notes.append(
                        f"the {name} table was rewritten (compacted, or rows removed by a "
                        "resume): read again in full"
                    )
                changed = changed or entry is not cache.get(name)
                cache[name] = entry
            tables = {name: _upto(cache[name].rows, checkpoint) for name in TABLES}
            self._cache, self._tables, self._info = cache, tables, info
            self._state = self._make_state(info, checkpoint, tables, notes)
            return changed

    # ------------------------------------------------------------------------- internals

    def _empty_message(self, status: str) -> str:
        if status == "running":
            return (
                f"{self.run_dir}: the journal has no ticks yet: the run has just started "
                "(its first ticks appear at its first flush); refresh in a moment"
            )
        return f"{self.run_dir}: the journal is empty: the run ended ({status}) before any tick"

    def _another_run(self, old: dict[str, Any], new: dict[str, Any], checkpoint: datetime) -> bool:
        """Whether run.json now describes another run (folder removed and made again)."""
        same = all(old.get(k) == new.get(k) for k in _IDENTITY)
        before = _utc_time(old.get("checkpoint_tick"), "checkpoint_tick", self.run_dir)
        return not same or (before is not None and checkpoint < before)

    def _load(self, name: str, cached: _Cached | None) -> tuple[_Cached, bool]:
        """Table `name` brought up to date from `cached`: (entry, whether read in full again)."""
        path = self.run_dir / name
        if (
            cached is not None
            and _commit_file(path, cached.version).exists()  # not removed nor made anew
            and not _commit_file(path, cached.version + 1).exists()
        ):
            return cached, False
        try:
            return self._read_version(name, cached)
        except FileNotFoundError:
            # A file listed a moment ago was vacuumed by a compaction: read the new version.
            try:
                return self._read_version(name, None)[0], True
            except FileNotFoundError as exc:
                raise JournalError(
                    f"{path}: a data file vanished while it was read ({exc.filename}): the "
                    "table is being compacted; refresh again"
                ) from None

    def _read_version(self, name: str, cached: _Cached | None) -> tuple[_Cached, bool]:
        path = self.run_dir / name
        if not DeltaTable.is_deltatable(str(path)):
            raise JournalError(
                f"{self.run_dir}: the '{name}' table is missing ({path} is not a Delta table): "
                "the run folder is incomplete or damaged; make it again with `v6 dry-run`"
            )
        try:
            delta = DeltaTable(str(path))
            version = int(delta.version())
            found = set(pa.schema(delta.schema().to_arrow()).names)
            actions = pa.table(delta.get_add_actions(flatten=True))
        except DeltaError as exc:
            raise JournalError(f"{path}: the Delta table cannot be opened: {exc}") from None
        for field in TABLES[name]:
            if not field.nullable and field.name not in found:
                raise JournalError(_older(path, name, field.name))
        if cached is not None and version == cached.version:
            return cached, False
        files = actions.column("path").to_pylist()
        keys = [c for c in actions.column_names if c.startswith("partition.")]
        values = [actions.column(k).to_pylist() for k in keys]
        partitions = [
            {k.removeprefix("partition."): v[i] for k, v in zip(keys, values, strict=True)}
            for i in range(len(files))
        ]
        rewritten = cached is not None and not cached.files <= set(files)
        base = None if cached is None or rewritten else cached
        known = frozenset() if base is None else base.files
        parts = []
        for file, partition in zip(files, partitions, strict=True):
            if file in known:
                continue
            where = _file_path(path, file)
            try:
                raw = self._read_file(where)
            except (OSError, pa.ArrowException) as exc:
                if isinstance(exc, FileNotFoundError):  # vacuumed: _load reads the new version
                    raise
                raise JournalError(f"{where}: the data file cannot be read: {exc}") from None
            parts.append(_conform(raw, name, partition, where))
        added = _sorted_concat(parts, TABLES[name])
        rows = added if base is None else self._append(base.rows, added)
        return _Cached(version, frozenset(files), rows), rewritten

    @staticmethod
    def _append(rows: pa.Table, added: pa.Table) -> pa.Table:
        if added.num_rows == 0:
            return rows
        if rows.num_rows and pc.less(added.column("time")[0], rows.column("time")[-1]).as_py():
            # Rows older than the cache's last tick (never written by RunJournal): merge.
            return pa.concat_tables([rows, added]).sort_by("time")
        out = pa.concat_tables([rows, added])
        return out.combine_chunks() if out.column("time").num_chunks > _MAX_CHUNKS else out

    def _make_state(
        self,
        info: dict[str, Any],
        checkpoint: datetime,
        tables: Mapping[str, pa.Table],
        notes: list[str],
    ) -> JournalState:
        status = str(info["status"])
        ticks = tables["equity"].num_rows  # one row per tick
        first = tables["equity"].column("time")[0].as_py() if ticks else None
        stamp = checkpoint.strftime("%Y-%m-%d %H:%M UTC")
        if status == "running":
            running = f"showing {ticks:,} ticks so far (up to {stamp})"
            notes.insert(0, f"the run is still being written: {running}")
        elif status == "partial":
            resume = "continue it with `v6 dry-run ... --resume`"
            notes.insert(0, f"the run was interrupted (partial): showing its {ticks:,} ticks, "
                         f"up to {stamp}; {resume}")  # fmt: skip
        level = info.get("trace_level")
        if level == "fails":
            notes.append(
                "the run kept only each rule's first failing condition (--trace fails): make "
                "it with --trace full to see every condition and the limits' headroom"
            )
        elif level == "off":
            notes.append("the run kept no conditions (--trace off): rules show no values")
        found = info.get("ruleset")
        ruleset: dict[str, Any] = found if isinstance(found, dict) else {}
        name, digest = ruleset.get("name"), ruleset.get("hash")
        return JournalState(
            self.run_dir, status, None if name is None else str(name),
            None if digest is None else str(digest), None if level is None else str(level),
            ticks, None if first is None else first.astimezone(UTC), checkpoint, tuple(notes),
        )  # fmt: skip
