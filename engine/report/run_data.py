"""Load what a report needs from a dry run's folder: run.json, equity.csv and journal tables.

The daily equity curve is equity.csv (what anyone can recompute the metrics from). The journal's
`equity` table (one row per tick) gives each day's regime and trading state — those of the
day's last tick — and whether any position was open that day; its `positions` table's "closed"
rows are the trades. The Risk section reads `risk_events`, `orders`, `fills` and the hedge rows
of `positions` (`RiskTables`). A run still "running" or left "partial" is loaded, with a
warning the report shows.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from engine.journal.delta_table import read_delta
from engine.journal.run_tables import TABLES

RUN_FORMAT = 1
STATUSES = ("running", "complete", "partial")
EQUITY_HEADER = ["date", "equity"]
EQUITY_TOLERANCE_USD = 0.01  # equity.csv holds cents; the table holds the unrounded value

ObjArray = npt.NDArray[np.object_]


class RunDataError(ValueError):
    """A run folder that cannot be reported on: missing, incomplete or malformed files."""


@dataclass(frozen=True, slots=True, eq=False)
class Trades:
    """Closed positions, one element per trade, in order of closing."""

    position_id: ObjArray  # str
    symbol: ObjArray  # str
    strategy: ObjArray  # str
    entry_regime: ObjArray  # str or None
    close_reason: ObjArray  # str or None
    opened_at: npt.NDArray[np.datetime64]  # datetime64[us], UTC
    closed_at: npt.NDArray[np.datetime64]  # datetime64[us], UTC
    close_date: npt.NDArray[np.datetime64]  # datetime64[D], New York trading date
    pnl: npt.NDArray[np.float64]  # realized P&L in USD, all costs included

    def __len__(self) -> int:
        return int(self.pnl.size)

    def take(self, mask: npt.NDArray[np.bool_]) -> Trades:
        """The trades where `mask` is true."""
        return Trades(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


def no_trades() -> Trades:
    obj = np.empty(0, dtype=object)
    times = np.empty(0, dtype="datetime64[us]")
    return Trades(
        obj,
        obj,
        obj,
        obj,
        obj,
        times,
        times,
        np.empty(0, "datetime64[D]"),
        np.empty(0, dtype=np.float64),
    )


HEDGE = "hedge"  # orders.strategy and positions.strategy of hedge orders and positions
EVENT_COLUMNS = ["time", "date", "kind", "cause", "detail"]
ORDER_COLUMNS = ["time", "order_id", "intent", "strategy", "status", "status_reason", "filled"]
FILL_COLUMNS = ["order_id", "position_id", "kind", "quantity", "commission", "fees"]
HEDGE_COLUMNS = ["time", "position_id", "status", "pnl", "realized_pnl"]


def _empty(name: str, columns: list[str]) -> pa.Table:
    return pa.schema([TABLES[name].field(c) for c in columns]).empty_table()


@dataclass(frozen=True, slots=True, eq=False)
class RiskTables:
    """The journal rows the Risk section reads, each table sorted by time (stable)."""

    events: pa.Table | None  # risk_events (EVENT_COLUMNS); None: the run has no such table
    orders: pa.Table  # every order (ORDER_COLUMNS), blocked ones included
    fills: pa.Table  # every leg traded or settled (FILL_COLUMNS)
    hedges: pa.Table  # positions rows of hedge positions (HEDGE_COLUMNS), open and closed


def no_risk_tables() -> RiskTables:
    """No risk events and no rows: what a run without those tables holds."""
    return RiskTables(
        None,
        _empty("orders", ORDER_COLUMNS),
        _empty("fills", FILL_COLUMNS),
        _empty("positions", HEDGE_COLUMNS),
    )


@dataclass(frozen=True, slots=True, eq=False)
class RunData:
    """One run's daily series and trades, with its run.json and anything odd found loading it."""

    run_dir: Path
    meta: Mapping[str, Any]  # run.json as written by `v6 dry-run`
    dates: npt.NDArray[np.datetime64]  # datetime64[D], ascending trading days
    equity: npt.NDArray[np.float64]  # USD net liquidation value at each day's last tick
    regime: ObjArray  # str or None per day: the regime of the day's last tick
    open_positions: npt.NDArray[np.int64] | None  # most positions open at any tick of the day
    trades: Trades
    warnings: tuple[str, ...]
    risk_state: ObjArray | None = None  # str or None per day: the last tick's; None: unknown
    risk: RiskTables = field(default_factory=no_risk_tables)

    @property
    def status(self) -> str:
        return str(self.meta["status"])

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def name(self) -> str:
        """A short label for tables and charts: the run folder's name."""
        return self.run_dir.resolve().name


# ----------------------------------------------------------------------------- files


def read_run_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    if not path.is_file():
        raise RunDataError(f"{run_dir}: no run.json (is this a dry run's output folder?)")

    def no_constant(name: str) -> None:  # NaN and Infinity are not JSON: refuse, not carry
        raise RunDataError(f"{path}: {name} is not a valid JSON value")

    try:
        meta = json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f":{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise RunDataError(f"{path}{where}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise RunDataError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    if meta.get("format") != RUN_FORMAT:
        raise RunDataError(
            f"{path}: format {meta.get('format')!r} is not supported (expected {RUN_FORMAT})"
        )
    if meta.get("status") not in STATUSES:
        raise RunDataError(
            f"{path}: status {meta.get('status')!r} is not one of {', '.join(STATUSES)}"
        )
    return meta


def read_equity_csv(
    path: Path, allow_torn_tail: bool = False
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64], list[str]]:
    """(dates, equity, warnings) from an equity.csv; RunDataError naming line and column.

    With `allow_torn_tail` (a run still writing), a last line without its newline is being
    written: it is skipped with a warning instead of failing.
    """
    if not path.is_file():
        raise RunDataError(f"{path.parent}: no equity.csv (the run wrote no trading day yet?)")
    text = path.read_text(encoding="utf-8")
    warnings: list[str] = []
    lines = text.splitlines()
    if allow_torn_tail and text and not text.endswith("\n") and len(lines) > 1:
        warnings.append(f"{path}: skipped line {len(lines)}, still being written")
        lines.pop()
    rows = list(csv.reader(lines))
    if not rows or [c.strip() for c in rows[0]] != EQUITY_HEADER:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise RunDataError(f"{path}:1: expected the header 'date,equity', found {found!r}")
    days: list[date] = []
    values: list[float] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2:
            raise RunDataError(f"{path}:{line_no}: expected 2 columns, found {len(row)}")
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            raise RunDataError(
                f"{path}:{line_no}:1 (date): {row[0]!r} is not a date YYYY-MM-DD"
            ) from None
        try:
            value = float(row[1])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise RunDataError(f"{path}:{line_no}:2 (equity): {row[1]!r} is not a finite number")
        if days and day <= days[-1]:
            raise RunDataError(
                f"{path}:{line_no}:1 (date): {day} does not come after {days[-1]} "
                "(one row per trading day, in order)"
            )
        days.append(day)
        values.append(value)
    return np.array(days, dtype="datetime64[D]"), np.array(values, dtype=np.float64), warnings


def _table(run_dir: Path, name: str, columns: list[str]) -> pa.Table | None:
    """The journal table `name` (only `columns`), or None if the run never wrote it."""
    path = run_dir / name
    if not DeltaTable.is_deltatable(str(path)):
        return None
    found = pa.schema(DeltaTable(str(path)).schema().to_arrow()).names
    missing = [c for c in columns if c not in found]
    if missing:
        raise RunDataError(f"{path}: the table has no column {', '.join(map(repr, missing))}")
    return read_delta(path, columns)


# ----------------------------------------------------------------------------- tables


def _daily_from_ticks(
    table: pa.Table, dates: npt.NDArray[np.datetime64], equity: npt.NDArray[np.float64]
) -> tuple[ObjArray, ObjArray, npt.NDArray[np.int64], list[str]]:
    """Per equity.csv day: the last tick's regime and trading state, and the most positions
    open at any tick."""
    order = np.argsort(table.column("time").to_numpy(), kind="stable")
    day = table.column("date").to_numpy()[order].astype("datetime64[D]")
    regime = np.asarray(table.column("regime").to_pylist(), dtype=object)[order]
    state = np.asarray(table.column("risk_state").to_pylist(), dtype=object)[order]
    net_liq = table.column("net_liq").to_numpy()[order]
    open_pos = table.column("open_positions").fill_null(0).to_numpy()[order].astype(np.int64)
    warnings: list[str] = []
    if day.size and np.any(day[1:] < day[:-1]):
        i = int(np.flatnonzero(day[1:] < day[:-1])[0]) + 1
        raise RunDataError(
            f"equity table: the tick after one dated {day[i - 1]} is dated {day[i]} "
            "(ticks out of order: the journal is damaged)"
        )
    last = np.flatnonzero(np.r_[day[1:] != day[:-1], True]) if day.size else np.empty(0, int)
    first = np.r_[0, last[:-1] + 1] if last.size else np.empty(0, int)
    tick_days = day[last]
    most_open = np.maximum.reduceat(open_pos, first) if first.size else open_pos[:0]
    at = np.searchsorted(tick_days, dates)
    at_ok = at < tick_days.size
    found = np.zeros(dates.size, dtype=bool)
    found[at_ok] = tick_days[at[at_ok]] == dates[at_ok]
    out_regime = np.full(dates.size, None, dtype=object)
    out_state = np.full(dates.size, None, dtype=object)
    out_open = np.zeros(dates.size, dtype=np.int64)
    idx = at[found]
    out_regime[found] = regime[last[idx]]
    out_state[found] = state[last[idx]]
    out_open[found] = most_open[idx]
    if not found.all():
        missing = int((~found).sum())
        first_missing = dates[~found][0]
        warnings.append(
            f"equity table: no tick for {missing} day(s) of equity.csv (first {first_missing}); "
            "their regime is unknown"
        )
    off = np.abs(net_liq[last[idx]] - equity[found]) > EQUITY_TOLERANCE_USD
    if off.any():
        d = dates[found][off][0]
        warnings.append(
            f"equity.csv and the equity table disagree on {int(off.sum())} day(s) (first {d})"
        )
    return out_regime, out_state, out_open, warnings


def _trades(table: pa.Table) -> Trades:
    """The closed rows of the positions table, one per option position (not hedges), in
    order of closing."""
    # Hedges are not trades: their cost and P&L are in the risk section (risk_summary).
    closed = table.filter(
        pc.and_(pc.equal(table.column("status"), "closed"),
                pc.not_equal(table.column("strategy"), HEDGE))
    )  # fmt: skip
    closed = closed.sort_by([("time", "ascending"), ("position_id", "ascending")])
    pnl = closed.column("realized_pnl")
    if pnl.null_count:
        ids = closed.filter(pc.is_null(pnl)).column("position_id").to_pylist()
        raise RunDataError(f"positions: closed position {ids[0]!r} has no realized_pnl")

    def obj(name: str) -> ObjArray:
        return np.asarray(closed.column(name).to_pylist(), dtype=object).reshape(-1)

    def times(name: str) -> npt.NDArray[np.datetime64]:
        values = closed.column(name).cast(pa.timestamp("us")).to_numpy()
        return np.asarray(values, dtype="datetime64[us]")

    return Trades(
        position_id=obj("position_id"),
        symbol=obj("symbol"),
        strategy=obj("strategy"),
        entry_regime=obj("entry_regime"),
        close_reason=obj("close_reason"),
        opened_at=times("opened_at"),
        closed_at=times("time"),
        close_date=closed.column("date").to_numpy().astype("datetime64[D]"),
        pnl=pnl.to_numpy().astype(np.float64),
    )


EQUITY_COLUMNS = ["time", "date", "net_liq", "regime", "open_positions", "risk_state"]
POSITION_COLUMNS = [
    "time", "date", "position_id", "symbol", "strategy", "status", "opened_at", "entry_regime",
    "realized_pnl", "close_reason", "pnl",
]  # fmt: skip


def _risk_tables(run_dir: Path, positions: pa.Table | None) -> RiskTables:
    """The Risk section's rows; tables the run never wrote are empty (risk_events: None)."""

    def read(name: str, columns: list[str]) -> pa.Table:
        table = _table(run_dir, name, columns)
        return _empty(name, columns) if table is None else table.select(columns)

    def in_time_order(table: pa.Table) -> pa.Table:
        # A stable sort: the rows of one tick keep the order the engine wrote them in.
        order = np.argsort(table.column("time").to_numpy(), kind="stable")
        return table.take(pa.array(order, pa.int64()))

    hedges = _empty("positions", HEDGE_COLUMNS)
    if positions is not None:
        hedges = positions.filter(pc.equal(positions.column("strategy"), HEDGE))
        hedges = in_time_order(hedges.select(HEDGE_COLUMNS))
    events = _table(run_dir, "risk_events", EVENT_COLUMNS)
    return RiskTables(
        events=None if events is None else in_time_order(events.select(EVENT_COLUMNS)),
        orders=in_time_order(read("orders", ORDER_COLUMNS)),
        fills=read("fills", FILL_COLUMNS),
        hedges=hedges,
    )


def load_run(run_dir: Path | str) -> RunData:
    """Everything a report needs from the run folder `run_dir`; RunDataError when unusable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDataError(f"no run folder at {run_dir}")
    meta = read_run_json(run_dir)
    running = meta["status"] == "running"
    dates, equity, warnings = read_equity_csv(run_dir / "equity.csv", allow_torn_tail=running)
    if meta["status"] != "complete":
        last = meta.get("last_tick")
        upto = f"cover ticks up to {last} only" if last else "are incomplete"
        warnings.insert(0, f"run is {meta['status']}: its results {upto}")
    ticks = _table(run_dir, "equity", EQUITY_COLUMNS)
    regime: ObjArray
    risk_state: ObjArray | None = None
    open_positions: npt.NDArray[np.int64] | None
    if ticks is None:
        if dates.size:
            warnings.append("no equity table: daily regimes and exposure are unknown")
        regime = np.full(dates.size, None, dtype=object)
        open_positions = None
    else:
        regime, risk_state, open_positions, more = _daily_from_ticks(ticks, dates, equity)
        warnings += more
    positions = _table(run_dir, "positions", POSITION_COLUMNS)
    trades = no_trades() if positions is None else _trades(positions)
    return RunData(
        run_dir=run_dir,
        meta=meta,
        dates=dates,
        equity=equity,
        regime=regime,
        open_positions=open_positions,
        trades=trades,
        warnings=tuple(warnings),
        risk_state=risk_state,
        risk=_risk_tables(run_dir, positions),
    )
