"""Fake dry-run folders for the report tests: run.json, equity.csv and the journal tables.

The equity and positions schemas are written out here exactly as the issue 5 spec publishes
them, so the report is tested against the journal's layout, not against its own reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from engine.journal.delta_table import DeltaAppender

TS = pa.timestamp("us", tz="UTC")


def _f(name: str, t: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, t, nullable=nullable)


EQUITY_SCHEMA = pa.schema(
    [
        _f("time", TS, False), _f("date", pa.date32(), False), _f("year", pa.int16(), False),
        _f("net_liq", pa.float64(), False), _f("cash", pa.float64(), False),
        _f("pnl", pa.float64(), False), _f("day_pnl", pa.float64()),
        _f("drawdown_pct", pa.float64(), False), _f("peak_net_liq", pa.float64(), False),
        _f("open_positions", pa.int32(), False), _f("delta", pa.float64()),
        _f("gamma", pa.float64()), _f("vega", pa.float64()), _f("theta", pa.float64()),
        _f("bw_delta_spy", pa.float64()), _f("buying_power_used", pa.float64()),
        _f("margin_used_pct", pa.float64()), _f("cluster_delta", pa.float64()),
        _f("regime", pa.string()),
        _f("risk_state", pa.string(), False), _f("commissions", pa.float64(), False),
        _f("hedge_shares", pa.float64()),
    ]
)  # fmt: skip

POSITIONS_SCHEMA = pa.schema(
    [
        _f("time", TS, False), _f("date", pa.date32(), False), _f("year", pa.int16(), False),
        _f("position_id", pa.string(), False), _f("symbol", pa.string(), False),
        _f("strategy", pa.string(), False), _f("status", pa.string(), False),
        _f("quantity", pa.int32(), False), _f("opened_at", TS, False),
        _f("entry_credit", pa.float64()), _f("mark", pa.float64()), _f("pnl", pa.float64()),
        _f("pnl_pct_of_credit", pa.float64()), _f("high_water_pnl_pct", pa.float64()),
        _f("max_loss", pa.float64()), _f("dte", pa.float64()),
        _f("days_held", pa.float64()),
        _f("delta", pa.float64()), _f("gamma", pa.float64()), _f("vega", pa.float64()),
        _f("theta", pa.float64()), _f("entry_regime", pa.string()),
        _f("entry_iv", pa.float64()), _f("adjustments", pa.int32(), False),
        _f("legs", pa.string(), False), _f("realized_pnl", pa.float64()),
        _f("close_reason", pa.string()), _f("close_rule", pa.string()),
        _f("flags", pa.string()),
    ]
)  # fmt: skip

CLOSE_UTC = time(21, 0)  # the day's last tick: 16:00 New York (EST)
OPEN_UTC = time(14, 35)  # an earlier tick of the same day


def row(schema: pa.Schema, **values: Any) -> dict[str, Any]:
    """A full row of `schema`: the given values, null for every other column."""
    unknown = set(values) - set(schema.names)
    assert not unknown, unknown
    return {name: values.get(name) for name in schema.names}


@dataclass
class Trade:
    position_id: str
    opened: date
    closed: date
    pnl: float | None
    entry_regime: str | None = "calm"
    symbol: str = "SPY"
    strategy: str = "iron_condor"


@dataclass
class FakeRun:
    """What a fake run folder holds; `write` lays it out as `v6 dry-run` would."""

    days: Sequence[date]
    equity: Sequence[float]
    regimes: Sequence[str | None] | None = None  # the regime of each day's last tick
    open_positions: Sequence[int] | None = None  # at each day's last tick
    trades: Sequence[Trade] = ()
    status: str = "complete"
    meta: dict[str, Any] = field(default_factory=dict)
    early_regime: str | None = "early"  # an earlier tick each day, with another regime
    early_open: int = 0  # positions open at that earlier tick
    equity_table: bool = True

    def write(self, run_dir: Path) -> Path:
        run_dir.mkdir(parents=True)
        meta = {
            "format": 1, "status": self.status,
            "ruleset": {"name": "v6", "hash": "abc123", "files": ["rules/entry.v6"]},
            "feed": "synthetic:7", "from": str(self.days[0]) if self.days else "2019-01-02",
            "to": str(self.days[-1]) if self.days else "2019-01-02", "initial_cash": 100000.0,
            "fill_model": {"name": "mid_minus", "fraction": 0.25, "partial": False},
            "costs": {"per_contract": 0.65, "min_per_order": 1.0, "fees_per_contract": 0.02,
                      "per_share": 0.005, "per_future": 2.25},
            "sizing": {}, "trace_level": "fails", "ticks_done": 2 * len(self.days),
            "last_tick": None, "elapsed_s": 1.0, "split_s": {},
        }  # fmt: skip
        meta.update(self.meta)
        (run_dir / "run.json").write_text(json.dumps(meta))
        lines = ["date,equity"] + [
            f"{d},{e:.2f}" for d, e in zip(self.days, self.equity, strict=True)
        ]
        (run_dir / "equity.csv").write_text("\n".join(lines) + "\n")
        if self.equity_table and self.days:
            self._equity_table(run_dir / "equity")
        if self.trades:
            self._positions_table(run_dir / "positions")
        return run_dir

    def _equity_table(self, path: Path) -> None:
        regimes = self.regimes or ["calm"] * len(self.days)
        opens = self.open_positions or [0] * len(self.days)
        rows = []
        for d, e, reg, n in zip(self.days, self.equity, regimes, opens, strict=True):
            for t, r, o in ((OPEN_UTC, self.early_regime, self.early_open), (CLOSE_UTC, reg, n)):
                rows.append(
                    row(
                        EQUITY_SCHEMA, time=datetime.combine(d, t, UTC), date=d, year=d.year,
                        net_liq=e, cash=e, pnl=e - self.equity[0], drawdown_pct=0.0,
                        peak_net_liq=e, open_positions=o, regime=r, risk_state="ACTIVE",
                        commissions=0.0,
                    )
                )  # fmt: skip
        rows.reverse()  # the reader must order ticks by time, not by storage order
        with DeltaAppender(path, EQUITY_SCHEMA, partition_by=["year"]) as out:
            out.append(rows)

    def _positions_table(self, path: Path) -> None:
        rows = []
        for tr in self.trades:
            opened_at = datetime.combine(tr.opened, CLOSE_UTC, UTC)
            common = dict(
                position_id=tr.position_id, symbol=tr.symbol, strategy=tr.strategy,
                quantity=1, opened_at=opened_at, entry_regime=tr.entry_regime,
                adjustments=0, legs="[]",
            )  # fmt: skip
            rows.append(row(POSITIONS_SCHEMA, time=opened_at, date=tr.opened,
                            year=tr.opened.year, status="open", **common))  # fmt: skip
            closed_at = datetime.combine(tr.closed, CLOSE_UTC, UTC) - timedelta(hours=1)
            rows.append(
                row(POSITIONS_SCHEMA, time=closed_at, date=tr.closed, year=tr.closed.year,
                    status="closed", realized_pnl=tr.pnl, close_reason="take profit",
                    **common)
            )  # fmt: skip
        with DeltaAppender(path, POSITIONS_SCHEMA, partition_by=["year"]) as out:
            out.append(rows)


def weekdays(start: date, n: int) -> list[date]:
    """`n` weekdays from `start` (holidays ignored: the report does not need a calendar)."""
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """make_run(name, **FakeRun fields) -> the run folder, under tmp_path."""

    def make(name: str = "run", **kwargs: Any) -> Path:
        return FakeRun(**kwargs).write(tmp_path / name)

    return make
