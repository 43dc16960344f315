"""load_run: run.json, equity.csv and the journal's equity and positions tables, and bad runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine.journal.delta_table import DeltaAppender
from engine.report.run_data import RunDataError, load_run

from .conftest import EQUITY_SCHEMA, POSITIONS_SCHEMA, Trade, row, weekdays

DAYS = weekdays(date(2019, 12, 27), 5)  # 12-27, 12-30, 12-31, 2020-01-01, 01-02
EQUITY = [100_000.0, 101_000.0, 99_500.0, 100_250.0, 102_000.0]


def test_loads_a_complete_run(make_run: Callable[..., Path]) -> None:
    run = make_run(
        days=DAYS,
        equity=EQUITY,
        regimes=["calm", "calm", "stress", None, "calm"],
        open_positions=[0, 1, 1, 0, 0],
        early_open=0,
        trades=[
            Trade("p1", DAYS[0], DAYS[2], 120.5, entry_regime="calm"),
            Trade("p2", DAYS[1], DAYS[4], -80.0, entry_regime=None),
        ],
    )
    data = load_run(run)
    assert data.status == "complete" and data.complete and data.warnings == ()
    assert data.name == "run"
    assert data.dates.tolist() == DAYS
    assert data.equity.tolist() == EQUITY
    # each day's regime is its LAST tick's, not the earlier tick's "early"
    assert data.regime.tolist() == ["calm", "calm", "stress", None, "calm"]
    assert data.open_positions is not None
    assert data.open_positions.tolist() == [0, 1, 1, 0, 0]
    t = data.trades
    assert len(t) == 2
    assert t.position_id.tolist() == ["p1", "p2"]
    assert t.pnl.tolist() == [120.5, -80.0]
    assert t.entry_regime.tolist() == ["calm", None]
    assert t.close_date.tolist() == [DAYS[2], DAYS[4]]
    assert t.symbol.tolist() == ["SPY", "SPY"] and t.strategy[0] == "iron_condor"
    assert t.opened_at[0] == np.datetime64("2019-12-27T21:00:00", "us")
    assert t.closed_at[1] == np.datetime64("2020-01-02T20:00:00", "us")
    assert t.take(t.pnl > 0).position_id.tolist() == ["p1"]
    assert data.meta["fill_model"]["name"] == "mid_minus"


def test_exposure_counts_any_tick_of_the_day(make_run: Callable[..., Path]) -> None:
    # a position opened and closed within the day: 1 open at the earlier tick, 0 at the close
    data = load_run(make_run(days=DAYS, equity=EQUITY, early_open=1))
    assert data.open_positions is not None and data.open_positions.tolist() == [1] * 5


@pytest.mark.parametrize("status", ["running", "partial"])
def test_unfinished_runs_load_with_a_warning(make_run: Callable[..., Path], status: str) -> None:
    meta = {"last_tick": "2019-12-31T21:00:00+00:00"}
    data = load_run(make_run(days=DAYS, equity=EQUITY, status=status, meta=meta))
    assert not data.complete
    assert data.warnings[0] == (
        f"run is {status}: its results cover ticks up to 2019-12-31T21:00:00+00:00 only"
    )


def test_a_running_run_skips_the_line_being_written(make_run: Callable[..., Path]) -> None:
    run = make_run(days=DAYS, equity=EQUITY, status="running")
    with (run / "equity.csv").open("a") as f:
        f.write("2020-01-03,10")  # no newline yet: the writer is in the middle of it
    data = load_run(run)
    assert data.dates.tolist() == DAYS
    assert any("skipped line 7, still being written" in w for w in data.warnings)


def test_without_journal_tables(make_run: Callable[..., Path]) -> None:
    data = load_run(make_run(days=DAYS, equity=EQUITY, equity_table=False))
    assert data.open_positions is None
    assert data.regime.tolist() == [None] * 5
    assert len(data.trades) == 0  # a run that never held a position writes no positions table
    assert data.warnings == ("no equity table: daily regimes and exposure are unknown",)


def test_equity_csv_disagreeing_with_the_table_is_flagged(make_run: Callable[..., Path]) -> None:
    run = make_run(days=DAYS, equity=EQUITY)
    lines = (run / "equity.csv").read_text().splitlines()
    lines[3] = f"{DAYS[2]},99600.00"
    lines.pop()  # and the last day has no row in equity.csv: that is fine
    (run / "equity.csv").write_text("\n".join(lines) + "\n")
    data = load_run(run)
    assert data.warnings == (
        "equity.csv and the equity table disagree on 1 day(s) (first 2019-12-31)",
    )


def test_days_without_a_tick_are_flagged(make_run: Callable[..., Path]) -> None:
    run = make_run(days=DAYS, equity=EQUITY)
    with (run / "equity.csv").open("a") as f:
        f.write("2020-01-03,102000.00\n")
    data = load_run(run)
    assert data.regime[-1] is None
    assert "no tick for 1 day(s) of equity.csv (first 2020-01-03)" in data.warnings[0]


def test_closed_position_without_realized_pnl(make_run: Callable[..., Path]) -> None:
    run = make_run(days=DAYS, equity=EQUITY, trades=[Trade("p9", DAYS[0], DAYS[1], None)])
    with pytest.raises(RunDataError, match="closed position 'p9' has no realized_pnl"):
        load_run(run)


def test_missing_folder_and_files(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    with pytest.raises(RunDataError, match="no run folder at"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDataError, match=r"no run\.json"):
        load_run(tmp_path / "empty")
    run = make_run(days=DAYS, equity=EQUITY)
    (run / "equity.csv").unlink()
    with pytest.raises(RunDataError, match=r"no equity\.csv"):
        load_run(run)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": 1,\n "status": }', r"run.json:2:12: not valid JSON"),
        ("[1]", "expected a JSON object, found list"),
        ('{"format": 1, "initial_cash": NaN}', "NaN is not a valid JSON value"),
        ('{"format": 2, "status": "complete"}', "format 2 is not supported"),
        ('{"format": 1, "status": "done"}', "status 'done' is not one of running, complete"),
    ],
)
def test_bad_run_json(make_run: Callable[..., Path], text: str, message: str) -> None:
    run = make_run(days=DAYS, equity=EQUITY)
    (run / "run.json").write_text(text)
    with pytest.raises(RunDataError, match=message):
        load_run(run)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["day,value"], r"equity.csv:1: expected the header 'date,equity', found 'day,value'"),
        ([], r"equity.csv:1: expected the header .* found 'an empty file'"),
        (["date,equity", "2019-12-27,1", "2019-13-01,2"], r"equity.csv:3:1 \(date\): '2019-13-01'"),
        (["date,equity", "2019-12-27,nan"], r"equity.csv:2:2 \(equity\): 'nan' is not a finite"),
        (["date,equity", "2019-12-27,1e400"], r"equity.csv:2:2 \(equity\): '1e400'"),
        (["date,equity", "2019-12-27,abc"], r"equity.csv:2:2 \(equity\): 'abc'"),
        (["date,equity", "2019-12-27,1,2"], r"equity.csv:2: expected 2 columns, found 3"),
        (
            ["date,equity", "2019-12-27,1", "2019-12-27,2"],
            r"equity.csv:3:1 \(date\): 2019-12-27 does not come after 2019-12-27",
        ),
    ],
)
def test_malformed_equity_csv(
    make_run: Callable[..., Path], lines: list[str], message: str
) -> None:
    run = make_run(days=DAYS, equity=EQUITY)
    (run / "equity.csv").write_text("".join(line + "\n" for line in lines))
    with pytest.raises(RunDataError, match=message):
        load_run(run)


def test_a_journal_table_missing_a_column(make_run: Callable[..., Path]) -> None:
    run = make_run(days=DAYS, equity=EQUITY, equity_table=False)
    schema = pa.schema([pa.field("time", pa.timestamp("us", tz="UTC")), ("date", pa.date32())])
    with DeltaAppender(run / "equity", schema) as out:
        out.append([{"time": None, "date": DAYS[0]}])
    with pytest.raises(RunDataError, match="has no column 'net_liq', 'regime', 'open_positions'"):
        load_run(run)


def test_run_json_is_kept_as_written(make_run: Callable[..., Path]) -> None:
    run = make_run(days=DAYS, equity=EQUITY, meta={"sizing": {"max_risk_pct": 2}})
    data = load_run(str(run))  # a str path works too
    assert data.meta == json.loads((run / "run.json").read_text())


def test_ticks_dated_out_of_order_are_an_error(make_run: Callable[..., Path]) -> None:
    run = make_run(days=DAYS, equity=EQUITY)
    late = row(
        EQUITY_SCHEMA, time=datetime(2020, 1, 3, 21, tzinfo=UTC), date=DAYS[0], year=2019,
        net_liq=1.0, cash=1.0, pnl=0.0, drawdown_pct=0.0, peak_net_liq=1.0, open_positions=0,
        risk_state="ACTIVE", commissions=0.0,
    )  # fmt: skip
    with DeltaAppender(run / "equity", EQUITY_SCHEMA, partition_by=["year"]) as out:
        out.append([late])
    with pytest.raises(RunDataError, match="dated 2020-01-02 is dated 2019-12-27"):
        load_run(run)


def test_the_fake_runs_use_the_journals_schemas() -> None:
    """The fake runs' tables must stay those `v6 dry-run` writes."""
    tables = pytest.importorskip("engine.journal.run_tables")
    assert tables.EQUITY.equals(EQUITY_SCHEMA)
    assert tables.POSITIONS.equals(POSITIONS_SCHEMA)
