"""RunJournal: run directory lifecycle, tick-boundary flushes, resume, equity.csv, content hash."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from deltalake import write_deltalake

from engine.journal.delta_table import SchemaMismatchError, read_delta
from engine.journal.run_journal import (
    RunDirError,
    RunJournal,
    TickError,
    content_hash,
    read_table,
)
from engine.journal.run_rows import stamp
from engine.journal.run_tables import PARTITION_BY, TABLES
from tests.journal.test_run_tables import full_row

NY = ZoneInfo("America/New_York")
HEADER = {
    "ruleset": {"name": "v6", "hash": "abc", "files": []},
    "feed": "synthetic:7",
    "from": "2024-01-02",
    "to": "2024-01-31",
    "initial_cash": 100_000.0,
}
ROW_TABLES = ("decisions", "orders", "fills", "positions", "risk_events")


def tick(i: int) -> datetime:
    """The i-th tick: the 16:00 New York close of consecutive calendar days from 2024-01-02."""
    return datetime(2024, 1, 2, 16, tzinfo=NY) + timedelta(days=i)


def equity_row(i: int) -> dict[str, Any]:
    row = full_row("equity", tick(i), i, net_liq=100_000.0 + 10.005 * i)
    del row["time"]
    return row


def tick_rows(i: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table for tick i: i % 3 + 1 decisions, one row in each other table."""
    rows = {name: [full_row(name, tick(i), i)] for name in ROW_TABLES}
    rows["decisions"] = [full_row("decisions", tick(i), i + k) for k in range(i % 3 + 1)]
    return rows


def run_ticks(journal: RunJournal, ticks: range) -> None:
    for i in ticks:
        for name, rows in tick_rows(i).items():
            journal.add(name, rows)
        journal.end_tick(tick(i), equity_row(i))


def ticks_in(run_dir: Path, name: str) -> list[datetime]:
    """The distinct tick times in a table, as written (read straight from Delta)."""
    times = read_delta(run_dir / name, ["time"]).column("time").to_pylist()
    return sorted(set(times))


def info(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "run.json").read_text()))


def test_round_trip_of_every_column(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER)
    written = tick_rows(0)
    run_ticks(journal, range(1))
    assert journal.close() == "complete"
    for name in ROW_TABLES:
        assert read_table(run, name).to_pylist() == stamp(name, written[name]).to_pylist()
    expected = stamp("equity", [{"time": tick(0), **equity_row(0)}])
    assert read_table(run, "equity").to_pylist() == expected.to_pylist()
    for name, schema in TABLES.items():
        assert read_table(run, name).schema == schema
        assert (run / name / "year=2024").is_dir()  # partitioned by year


def test_a_new_run_has_six_empty_readable_tables(tmp_path: Path) -> None:
    journal = RunJournal.create(tmp_path / "run", HEADER)
    for name, schema in TABLES.items():
        table = read_table(tmp_path / "run", name)
        assert table.num_rows == 0 and table.schema == schema
    assert info(tmp_path / "run") == {
        "format": 1,
        "status": "running",
        **HEADER,
        "ticks_done": 0,
        "last_tick": None,
        "checkpoint_tick": None,
    }
    journal.close()


def test_create_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for k in range(7):
        (run / f"f{k}.txt").write_text("x")
    with pytest.raises(RunDirError) as err:
        RunJournal.create(run, HEADER)
    message = str(err.value)
    assert message.startswith(f"RUN_DIR exists and is not empty: {run}")
    assert "f0.txt, f1.txt, f2.txt, f3.txt, f4.txt and 2 more" in message
    assert "choose another --out or remove it" in message
    assert sorted(p.name for p in run.iterdir()) == [f"f{k}.txt" for k in range(7)]
    with pytest.raises(RunDirError, match="is a file"):
        RunJournal.create(run / "f0.txt", HEADER)


def test_create_accepts_an_empty_folder_and_refuses_reserved_header_keys(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    RunJournal.create(tmp_path / "empty", HEADER).close()
    with pytest.raises(ValueError, match="may not set status"):
        RunJournal.create(tmp_path / "other", HEADER | {"status": "complete"})
    assert not (tmp_path / "other").exists()


def test_bad_rows_are_refused_at_once_and_leave_the_tick_intact(tmp_path: Path) -> None:
    journal = RunJournal.create(tmp_path / "run", HEADER)
    journal.add("orders", [full_row("orders", tick(0))])
    with pytest.raises(SchemaMismatchError, match="orders: column 'filled'"):
        journal.add("orders", [full_row("orders", tick(0), filled=2.5)])
    with pytest.raises(ValueError, match=r"cannot add to .equity.: .* \(equity: end_tick\)"):
        journal.add("equity", [full_row("equity", tick(0))])
    with pytest.raises(SchemaMismatchError, match="equity: column 'cash'"):
        journal.end_tick(tick(0), equity_row(0) | {"cash": None})
    journal.end_tick(tick(0), equity_row(0))
    journal.close()
    assert read_table(tmp_path / "run", "orders").num_rows == 1


def test_rows_must_belong_to_their_tick(tmp_path: Path) -> None:
    journal = RunJournal.create(tmp_path / "run", HEADER)
    run_ticks(journal, range(2))
    with pytest.raises(TickError, match="belongs to a tick already ended"):
        journal.add("fills", [full_row("fills", tick(1))])
    with pytest.raises(TickError, match="is not after the last one"):
        journal.end_tick(tick(1), equity_row(1))
    journal.add("fills", [full_row("fills", tick(3))])
    with pytest.raises(TickError, match=r"fills: a row at .* is after its tick"):
        journal.end_tick(tick(2), equity_row(2))
    with pytest.raises(TickError, match="no time zone"):
        journal.end_tick(datetime(2024, 1, 9, 16), equity_row(2))
    with pytest.raises(TickError, match="net_liq is nan"):
        journal.end_tick(tick(3), equity_row(3) | {"net_liq": float("nan")})
    with pytest.raises(TickError, match="1 rows were added after the last end_tick"):
        journal.close("complete")
    assert journal.close("partial") == "partial"  # drops the unended tick's fill
    assert ticks_in(tmp_path / "run", "fills") == [tick(0), tick(1)]


def test_tables_hold_exactly_the_flushed_ticks(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER, flush_ticks=3)
    run_ticks(journal, range(4))
    journal.add("decisions", tick_rows(4)["decisions"])  # a tick in progress
    for name in TABLES:
        assert ticks_in(run, name) == [tick(i) for i in range(3)], name
    assert read_delta(run / "decisions", ["time"]).num_rows == 1 + 2 + 3
    state = info(run)
    assert state["status"] == "running" and state["ticks_done"] == 3
    assert datetime.fromisoformat(state["checkpoint_tick"]) == tick(2)
    assert journal.checkpoint_tick == tick(2) and journal.last_tick == tick(3)


def test_a_full_buffer_flushes_early_at_a_tick_boundary(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER, flush_ticks=1000, flush_rows=14)
    run_ticks(journal, range(2))  # rows per tick: i % 3 + 1 decisions, 4 others, 1 equity
    assert ticks_in(run, "equity") == []  # 6 + 7 rows waiting
    run_ticks(journal, range(2, 3))  # 6 + 7 + 8 >= 14
    assert ticks_in(run, "equity") == [tick(i) for i in range(3)]
    journal.close()


def test_close_writes_equity_csv_and_run_json(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER)
    times = [
        datetime(2024, 6, 3, 10, 0, tzinfo=NY),
        datetime(2024, 6, 3, 20, 30, tzinfo=NY),  # 00:30 UTC on 2024-06-04: still 3 June
        datetime(2024, 6, 4, 9, 31, tzinfo=NY),
        datetime(2024, 6, 5, 16, 0, tzinfo=NY),
    ]
    values = [100_000.0, 100_123.456, 99_500.004, -0.001]
    for t, v in zip(times, values, strict=True):
        journal.end_tick(t, equity_row(0) | {"net_liq": v})
    assert journal.close("complete", {"elapsed_s": 1.5, "split_s": {"chains": 1.0}}) == "complete"
    with (run / "equity.csv").open(newline="") as f:
        assert list(csv.reader(f)) == [
            ["date", "equity"],
            ["2024-06-03", "100123.46"],
            ["2024-06-04", "99500.00"],
            ["2024-06-05", "0.00"],
        ]
    state = info(run)
    assert state["status"] == "complete" and state["ticks_done"] == 4
    assert datetime.fromisoformat(state["last_tick"]) == times[-1]
    assert state["elapsed_s"] == 1.5 and state["split_s"] == {"chains": 1.0}
    assert state["ruleset"] == HEADER["ruleset"]
    assert not list(run.glob(".*.tmp"))
    dates = read_table(run, "equity").column("date").to_pylist()
    assert dates == [date(2024, 6, 3), date(2024, 6, 3), date(2024, 6, 4), date(2024, 6, 5)]
    assert journal.close("partial") == "complete"  # closing again changes nothing


def _interrupt(run: Path) -> None:
    """Ticks 0-4 ended with a flush after tick 3; tick 5 half added; then the process dies.

    A flush of tick 4..5 that died after committing one table is simulated by writing rows
    past the checkpoint straight into `fills`.
    """
    journal = RunJournal.create(run, HEADER, flush_ticks=4)
    run_ticks(journal, range(5))
    journal.add("orders", tick_rows(5)["orders"])
    del journal
    late = stamp("fills", [full_row("fills", tick(4)), full_row("fills", tick(5))])
    write_deltalake(str(run / "fills"), late, mode="append", partition_by=list(PARTITION_BY))


def test_resume_keeps_only_checkpointed_ticks_and_finishes_like_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    _interrupt(run)
    journal, header, last = RunJournal.resume(run, flush_ticks=4)
    assert header == HEADER and last == tick(3)
    for name in TABLES:
        assert ticks_in(run, name) == [tick(i) for i in range(4)], name
    assert info(run)["status"] == "running" and journal.ticks_done == 4
    run_ticks(journal, range(4, 9))
    journal.close("complete")

    whole = tmp_path / "whole"
    uninterrupted = RunJournal.create(whole, HEADER, flush_ticks=3)
    run_ticks(uninterrupted, range(9))
    uninterrupted.close("complete")
    assert content_hash(run) == content_hash(whole)
    assert (run / "equity.csv").read_bytes() == (whole / "equity.csv").read_bytes()
    assert info(run)["ticks_done"] == 9


def test_resume_before_any_checkpoint_starts_from_scratch(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER)
    run_ticks(journal, range(2))
    del journal
    write_deltalake(
        str(run / "equity"),
        stamp("equity", [full_row("equity", tick(0))]),
        mode="append",
        partition_by=list(PARTITION_BY),
    )
    journal, _, last = RunJournal.resume(run)
    assert last is None and journal.ticks_done == 0
    assert all(read_table(run, name).num_rows == 0 for name in TABLES)
    journal.close("partial")


def test_an_interrupted_flush_leaves_a_resumable_partial_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), RunJournal.create(run, HEADER, flush_ticks=2) as j:
        run_ticks(j, range(2))
        flushed = []

        def interrupted_flush(self: Any) -> None:
            if flushed:  # the first table's commit lands, then Ctrl-C
                raise KeyboardInterrupt
            flushed.append(self.path)
            original(self)

        original = type(j._appenders["decisions"]).flush
        monkeypatch.setattr(type(j._appenders["decisions"]), "flush", interrupted_flush)
        run_ticks(j, range(2, 4))
    monkeypatch.undo()
    state = info(run)
    assert state["status"] == "partial"
    assert datetime.fromisoformat(state["checkpoint_tick"]) == tick(1)
    assert ticks_in(run, "decisions") == [tick(i) for i in range(4)]  # ahead of run.json
    journal, _, last = RunJournal.resume(run)
    assert last == tick(1)
    assert all(ticks_in(run, name) == [tick(0), tick(1)] for name in TABLES)
    journal.close("partial")


def test_resume_refuses_complete_missing_and_malformed_runs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER)
    run_ticks(journal, range(1))
    journal.close("complete")
    with pytest.raises(RunDirError, match="already complete"):
        RunJournal.resume(run)
    with pytest.raises(RunDirError, match=r"no run\.json"):
        RunJournal.resume(tmp_path / "nowhere")
    (run / "run.json").write_text('{"format": 1,\n "status": }')
    with pytest.raises(RunDirError, match=r"run.json:2:12: not valid JSON"):
        RunJournal.resume(run)
    (run / "run.json").write_text('{"format": 2}')
    with pytest.raises(RunDirError, match="expected a run of format 1, found 2"):
        RunJournal.resume(run)


def test_content_hash_ignores_batching_and_sees_one_changed_value(tmp_path: Path) -> None:
    hashes = []
    for k, flush_ticks in enumerate((1, 4, 100)):
        journal = RunJournal.create(tmp_path / f"run{k}", HEADER, flush_ticks=flush_ticks)
        run_ticks(journal, range(6))
        journal.close()
        hashes.append(content_hash(tmp_path / f"run{k}"))
    assert hashes[0] == hashes[1] == hashes[2]

    changed = tmp_path / "changed"
    journal = RunJournal.create(changed, HEADER)
    run_ticks(journal, range(5))
    rows = tick_rows(5)
    rows["fills"][0]["price"] += 0.01
    for name, table_rows in rows.items():
        journal.add(name, table_rows)
    journal.end_tick(tick(5), equity_row(5))
    journal.close()
    assert content_hash(changed) != hashes[0]
    assert content_hash(changed, ["decisions", "equity"]) == content_hash(
        tmp_path / "run0", ["decisions", "equity"]
    )


def test_read_table_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no run table 'trades': one of decisions, orders"):
        read_table(tmp_path, "trades")
    with pytest.raises(RunDirError, match="no 'fills' table"):
        read_table(tmp_path, "fills")


def test_utc_ticks_are_accepted(tmp_path: Path) -> None:
    journal = RunJournal.create(tmp_path / "run", HEADER)
    t = datetime(2024, 6, 4, 0, 30, tzinfo=UTC)  # 20:30 New York on 3 June
    journal.add("orders", [full_row("orders", t)])
    journal.end_tick(t, equity_row(0))
    journal.close()
    assert read_table(tmp_path / "run", "orders").column("date").to_pylist() == [date(2024, 6, 3)]


def test_after_a_failed_flush_the_journal_only_closes_as_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER, flush_ticks=2)
    run_ticks(journal, range(2))

    def disk_full(self: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(type(journal._appenders["orders"]), "flush", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run_ticks(journal, range(2, 4))
    with pytest.raises(ValueError, match=r"a flush of .* failed: close it, then resume the run"):
        journal.add("orders", [full_row("orders", tick(4))])
    assert journal.close("complete") == "partial"
    assert datetime.fromisoformat(info(run)["checkpoint_tick"]) == tick(1)


def test_tables_checkpoint_their_log_every_ten_commits(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER, flush_ticks=1)
    run_ticks(journal, range(11))  # versions 1-11, after the empty table's version 0
    journal.close()
    log = run / "equity" / "_delta_log"
    assert [p.name for p in log.glob("*.checkpoint.parquet")] == [
        "00000000000000000009.checkpoint.parquet"  # the 10th commit
    ]
    assert read_table(run, "equity").num_rows == 11


def test_a_run_from_before_a_nullable_column_was_added_reads_it_as_null(tmp_path: Path) -> None:
    from deltalake import write_deltalake

    run = tmp_path / "run"
    journal = RunJournal.create(run, HEADER)
    run_ticks(journal, range(2))
    journal.close()
    old = read_table(run, "equity").drop_columns(["cluster_delta"])
    write_deltalake(str(run / "equity"), old, mode="overwrite", schema_mode="overwrite")
    again = read_table(run, "equity")
    assert again.schema == TABLES["equity"]
    assert again.column("cluster_delta").null_count == 2
    write_deltalake(str(run / "equity"), old.drop_columns(["net_liq"]), mode="overwrite",
                    schema_mode="overwrite")  # fmt: skip
    with pytest.raises(RunDirError, match="column 'net_liq' is missing"):
        read_table(run, "equity")
