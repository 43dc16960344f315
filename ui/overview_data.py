"""The run overview's data: daily equity and drawdown, regime bands, breaker trips and hedges
as markers, and the report's metrics (reads run files: the one impure part of the views)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.journal.run_rows import exchange_dates
from engine.report.breakdown import run_metrics
from engine.report.metrics import compute_metrics, drawdown_series
from engine.report.run_data import HEDGE, RunDataError, load_run
from ui.journal_reader import JournalError, JournalReader, read_run_info

Arr = npt.NDArray[Any]
TIME = pa.timestamp("us", tz="UTC")


class RegimeBand(NamedTuple):
    start: pd.Timestamp  # first New York trading day of the band
    end: pd.Timestamp  # the next band's start (the last band: its last day + 1): bands tile
    regime: str | None
    days: int  # trading days in the band


class Marker(NamedTuple):
    time: datetime  # UTC instant
    date: pd.Timestamp  # its New York trading day: where it sits on the daily axis
    kind: str  # trip or hedge
    label: str


@dataclass(frozen=True, slots=True, eq=False)
class Overview:
    name: str  # the run folder's name
    status: str
    equity: pd.Series  # USD at each day's last tick, indexed by New York trading day
    drawdown: pd.Series  # fraction <= 0 below the running peak, same index
    regimes: tuple[RegimeBand, ...]
    markers: tuple[Marker, ...]  # in time order
    metrics: dict[str, Any]  # engine.report's headline metrics (Metrics.to_dict)
    notes: tuple[str, ...]


def _bands(dates: Arr, regime: Arr) -> tuple[RegimeBand, ...]:
    """Contiguous runs of one regime over the daily curve."""
    days = pd.to_datetime(np.asarray(dates, dtype="datetime64[D]"))
    starts = [i for i in range(len(days)) if i == 0 or regime[i] != regime[i - 1]]
    ends = [*starts[1:], len(days)]
    return tuple(
        RegimeBand(days[s], days[e] if e < len(days) else days[-1] + pd.Timedelta(days=1),
                   regime[s], e - s)
        for s, e in zip(starts, ends, strict=True)
    )  # fmt: skip


def _markers(events: pa.Table | None, orders: pa.Table) -> tuple[Marker, ...]:
    """Breaker trips and hedge orders, in time order."""
    rows = []
    if events is not None:
        for e in events.filter(pc.equal(events.column("kind"), "trip")).to_pylist():
            rows.append((e["time"], "trip", f"{e['cause']} tripped ({e['detail']})"))
    hedges = orders.filter(pc.equal(orders.column("strategy"), HEDGE)).to_pylist()
    rows += [(o["time"], "hedge", f"hedge order {o['order_id']} {o['status']}") for o in hedges]
    rows.sort(key=lambda r: r[0])
    days = exchange_dates(pa.array([r[0] for r in rows], TIME))[0].to_pylist() if rows else []
    pairs = zip(rows, days, strict=True)
    return tuple(Marker(t, pd.Timestamp(d), kind, label) for (t, kind, label), d in pairs)


def _overview(run_dir: Path, status: str, dates: Arr, equity: Arr, regime: Arr,
              events: pa.Table | None, orders: pa.Table, metrics: dict[str, Any],
              notes: tuple[str, ...]) -> Overview:  # fmt: skip
    eq = np.asarray(equity, dtype=np.float64)
    day = pd.DatetimeIndex(np.asarray(dates, dtype="datetime64[D]"), name="date")
    return Overview(
        run_dir.resolve().name, status, pd.Series(eq, day, name="equity"),
        pd.Series(drawdown_series(eq), day, name="drawdown"), _bands(dates, regime),
        _markers(events, orders), metrics, notes,
    )  # fmt: skip


def overview(run_dir: Path | str, reader: JournalReader | None = None) -> Overview:
    """Equity, drawdown, regime bands, markers and metrics of the run in `run_dir`.

    A finished run (complete or partial) is read as `v6 report` reads it (equity.csv), so
    the metrics are the report's. A run still being written has no equity.csv yet: its curve
    comes from the equity table up to the checkpoint (`reader`'s tables when given).
    Raises JournalError for a run it cannot read.
    """
    run_dir = Path(run_dir)
    if read_run_info(run_dir)["status"] != "running":
        try:
            data = load_run(run_dir)
        except RunDataError as exc:
            raise JournalError(str(exc)) from None
        metrics = run_metrics(data).to_dict()
        return _overview(run_dir, data.status, data.dates, data.equity, data.regime,
                         data.risk.events, data.risk.orders, metrics, data.warnings)  # fmt: skip
    own = reader or JournalReader(run_dir)
    eq, pos = own.table("equity"), own.table("positions")
    days = eq.column("date").to_numpy().astype("datetime64[D]")
    last = np.flatnonzero(np.r_[days[1:] != days[:-1], True]) if days.size else days[:0]
    first = np.r_[0, last[:-1] + 1] if last.size else last
    net = eq.column("net_liq").to_numpy()[last]
    regime = np.asarray(eq.column("regime").to_pylist(), dtype=object)[last]
    opens = eq.column("open_positions").to_numpy()
    most = np.maximum.reduceat(opens, first) if first.size else opens[:0]
    closed = pc.and_(pc.equal(pos.column("status"), "closed"),
                     pc.not_equal(pos.column("strategy"), HEDGE))  # fmt: skip
    pnl = pos.filter(closed).column("realized_pnl").to_numpy(zero_copy_only=False)
    metrics = compute_metrics(net, days[last], pnl, most).to_dict()
    note = f"the run is still being written: figures up to {own.state.last_tick:%Y-%m-%d %H:%M}"
    return _overview(run_dir, "running", days[last], net, regime, own.table("risk_events"),
                     own.table("orders"), metrics, (note,))  # fmt: skip
