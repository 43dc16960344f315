"""The market store: a folder whose `daily_bars` Delta table holds daily bars per symbol."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from engine.market.bars import DAILY_BARS, KIND_UNDERLYING, KINDS, TABLE

DateArray = npt.NDArray[np.datetime64]  # unit: days
FloatArray = npt.NDArray[np.float64]

SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")  # safe in a partition path and predicate
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume", "dividend")


class BarsSchemaError(ValueError):
    """A table handed to the store does not fit `DAILY_BARS`; nothing was written."""


class StoreNotFoundError(FileNotFoundError):
    """There is no `daily_bars` table at the store's path."""


class UnknownSymbolError(KeyError):
    """The store holds no bars for a symbol."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


def validate_bars(table: pa.Table) -> pa.Table:
    """The table in `DAILY_BARS` layout, or BarsSchemaError naming the column at fault.

    Checked here because delta-rs silently truncates a value written into a narrower column.
    """
    names = set(table.column_names)
    expected = set(DAILY_BARS.names)
    if names != expected:
        missing = sorted(expected - names)
        extra = sorted(names - expected)
        raise BarsSchemaError(f"daily_bars columns: missing {missing}, unexpected {extra}")
    table = table.select(DAILY_BARS.names)
    for fld in DAILY_BARS:
        column = table.column(fld.name)
        try:
            cast = column.cast(fld.type, safe=True)
            # A safe cast still truncates a timestamp to its date: the round trip shows it.
            lossless = column.type == fld.type or cast.cast(column.type).equals(column)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise BarsSchemaError(
                f"daily_bars column {fld.name!r}: {column.type} does not fit {fld.type} ({exc})"
            ) from exc
        if not lossless:
            raise BarsSchemaError(
                f"daily_bars column {fld.name!r}: {column.type} does not fit {fld.type}"
                " without losing data"
            )
        if not fld.nullable and column.null_count:
            raise BarsSchemaError(f"daily_bars column {fld.name!r} has {column.null_count} nulls")
    table = table.cast(DAILY_BARS, safe=True)
    for name in _PRICE_COLUMNS:
        # NaN would read as a number: a missing value must be a null.
        if pc.any(pc.is_nan(table.column(name))).as_py():
            raise BarsSchemaError(f"daily_bars column {name!r} holds NaN: use null")
    bad_kinds = set(pc.unique(table.column("kind")).to_pylist()) - set(KINDS)
    if bad_kinds:
        raise BarsSchemaError(f"daily_bars kinds {sorted(bad_kinds)} are not among {KINDS}")
    pairs = table.group_by("symbol").aggregate([("kind", "count_distinct")])
    symbols = pairs.column("symbol").to_pylist()
    for symbol, kinds in zip(symbols, pairs.column("kind_count_distinct").to_pylist(), strict=True):
        if not SYMBOL_RE.fullmatch(symbol):
            raise BarsSchemaError(f"symbol {symbol!r} is not upper-case letters and digits")
        if kinds != 1:
            raise BarsSchemaError(f"symbol {symbol!r} has {kinds} kinds in one table")
    keys = table.group_by(["symbol", "date"]).aggregate([])
    if keys.num_rows != table.num_rows:
        raise BarsSchemaError(
            f"daily_bars has {table.num_rows - keys.num_rows} repeated (symbol, date) rows"
        )
    return table.sort_by([("symbol", "ascending"), ("date", "ascending")])


class MarketStore:
    """Reads and writes `STORE/daily_bars` (Delta, partitioned by symbol)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._table_path = self.path / TABLE

    def __repr__(self) -> str:
        return f"MarketStore({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether the `daily_bars` table is present."""
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(str(self._table_path)))

    def version(self) -> int:
        """The Delta version of `daily_bars` (one per write)."""
        return int(self._delta().version())

    def write_bars(self, table: pa.Table) -> None:
        """Replace every symbol present in `table` by its rows, in one atomic Delta commit."""
        from deltalake import write_deltalake

        bars = validate_bars(table)
        if bars.num_rows == 0:
            raise BarsSchemaError("daily_bars: nothing to write (empty table)")
        symbols = pc.unique(bars.column("symbol")).to_pylist()
        quoted = ", ".join(f"'{s}'" for s in symbols)  # SYMBOL_RE admits no quote
        self.path.mkdir(parents=True, exist_ok=True)
        # An overwrite restricted by a predicate replaces those symbols' partitions and leaves
        # the others: re-importing is idempotent, and readers see either the old or new rows.
        write_deltalake(
            str(self._table_path),
            bars,
            mode="overwrite",
            partition_by=["symbol"],
            predicate=f"symbol IN ({quoted})",
        )

    def symbols(self) -> dict[str, str]:
        """symbol -> kind, sorted by symbol."""
        table = self._read(None, ["symbol", "kind"])
        pairs = table.group_by(["symbol", "kind"]).aggregate([])
        found = zip(
            pairs.column("symbol").to_pylist(), pairs.column("kind").to_pylist(), strict=True
        )
        return dict(sorted(found))

    def bars(self, symbol: str, start: date | None = None, end: date | None = None) -> pa.Table:
        """One symbol's bars between `start` and `end` inclusive, sorted by date."""
        table = self._read(_where(pc.field("symbol") == symbol, start, end), None)
        if table.num_rows == 0:
            self._known(symbol)
        return table.sort_by("date").cast(DAILY_BARS)

    def closes(
        self, symbols: Sequence[str], start: date | None = None, end: date | None = None
    ) -> tuple[DateArray, dict[str, FloatArray]]:
        """(dates, {symbol: closes}) on the union of the symbols' dates; NaN where missing."""
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return np.array([], dtype="datetime64[D]"), {}
        chosen = pc.field("symbol").isin(pa.array(wanted, pa.string()))
        table = self._read(_where(chosen, start, end), ["symbol", "date", "close"])
        present = set(pc.unique(table.column("symbol")).to_pylist())
        for symbol in wanted:
            if symbol not in present:
                self._known(symbol)
        dates = np.unique(table.column("date").to_numpy().astype("datetime64[D]"))
        out: dict[str, FloatArray] = {}
        for symbol in wanted:
            rows = table.filter(pc.equal(table.column("symbol"), symbol))
            aligned = np.full(len(dates), np.nan)
            where = np.searchsorted(dates, rows.column("date").to_numpy().astype("datetime64[D]"))
            aligned[where] = rows.column("close").to_numpy()
            out[symbol] = aligned
        return dates, out

    def sessions(self, start: date | None = None, end: date | None = None) -> DateArray:
        """Sorted session dates on which any underlying has a bar."""
        table = self._read(_where(pc.field("kind") == KIND_UNDERLYING, start, end), ["date"])
        dates: DateArray = table.column("date").to_numpy().astype("datetime64[D]")
        return np.unique(dates)

    # -- internals ---------------------------------------------------------------------------

    def _delta(self) -> Any:  # a deltalake.DeltaTable (deltalake ships no type information)
        from deltalake import DeltaTable

        if not self.exists():
            raise StoreNotFoundError(
                f"no market store at {self.path} (no {TABLE} table): "
                f"run `v6 import-history --out {self.path}` first"
            )
        return DeltaTable(str(self._table_path))

    def _read(self, where: pc.Expression | None, columns: list[str] | None) -> pa.Table:
        # Files are read with pyarrow's own local filesystem: with delta-rs' filesystem handler
        # the process intermittently aborts at exit ("terminate called without an active
        # exception", deltalake 1.6), which would turn a successful CLI run into exit code 134.
        root = self._table_path.resolve()
        local = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
        dataset: pads.Dataset = self._delta().to_pyarrow_dataset(filesystem=local)
        return dataset.to_table(columns=columns, filter=where)

    def _known(self, symbol: str) -> None:
        known = self.symbols()
        if symbol not in known:
            listed = ", ".join(known) or "none"
            raise UnknownSymbolError(
                f"symbol {symbol!r} is not in the market store at {self.path} (it has: {listed})"
            )


def _where(base: pc.Expression, start: date | None, end: date | None) -> pc.Expression:
    if start is not None:
        base = base & (pc.field("date") >= pa.scalar(start, pa.date32()))
    if end is not None:
        base = base & (pc.field("date") <= pa.scalar(end, pa.date32()))
    return base
