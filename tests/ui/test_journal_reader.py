"""JournalReader: incremental refreshes of a journal being written, and every JournalError.

A real dry run (one quarter of the synthetic market, --trace full) supplies the rows; the tests
write them again, tick by tick, through RunJournal into journals they control (flushes every
10 ticks), so a refresh can be checked after each flush against a full read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from engine.dsl.trace import Level
from engine.journal.delta_table import DeltaAppender, compact
from engine.journal.run_journal import JOURNAL_KEYS, RunJournal, read_info, read_table
from engine.journal.run_tables import PARTITION_BY, TABLES
from engine.runtime.dry_run import DryRunSpec
from engine.runtime.session import run_dry_run
from ui.journal_reader import JournalError, JournalReader, read_parquet

ROW_TABLES = [n for n in TABLES if n != "equity"]
MAKE_ONE = "make one with `v6 dry-run` or `v6 demo`"


class Source:
    """The rows of a real run, to be written again tick by tick."""

    def __init__(self, run_dir: Path) -> None:
        self.tables = {name: read_table(run_dir, name) for name in TABLES}
        self.ticks: list[datetime] = self.tables["equity"].column("time").to_pylist()
        info = read_info(run_dir)
        skip = {*JOURNAL_KEYS, "elapsed_s", "split_s"}
        self.header = {k: v for k, v in info.items() if k not in skip}

    def upto(self, name: str, n: int) -> pa.Table:
        """Table `name` of the run's first `n` ticks."""
        column = self.tables[name].column("time")
        return self.tables[name].filter(pc.less_equal(column, self.ticks[n - 1]))

    def write(self, journal: RunJournal, start: int, stop: int) -> None:
        for t in self.ticks[start:stop]:
            for name in ROW_TABLES:
                table = self.tables[name]
                rows = table.filter(pc.equal(table.column("time"), t))
                if rows.num_rows:
                    journal.add(name, rows)
            equity = self.tables["equity"]
            row = equity.filter(pc.equal(equity.column("time"), t)).to_pylist()[0]
            journal.end_tick(t, {k: v for k, v in row.items() if k not in ("time", "date", "year")})


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    out = tmp_path_factory.mktemp("dry") / "run"
    spec = DryRunSpec("v6", date(2018, 1, 1), date(2018, 3, 31), out, synthetic=7, trace=Level.FULL)
    run_dry_run(spec, progress=False)
    return Source(out)


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory: pytest.TempPathFactory, source: Source) -> Path:
    run_dir = tmp_path_factory.mktemp("complete") / "run"
    journal = RunJournal.create(run_dir, source.header, flush_ticks=25)
    source.write(journal, 0, len(source.ticks))
    journal.close()
    return run_dir


def counting(reads: list[Path]) -> Callable[[Path], pa.Table]:
    def read(path: Path) -> pa.Table:
        reads.append(path)
        return read_parquet(path)

    return read


def data_files(run_dir: Path) -> set[Path]:
    files = set()
    for name in TABLES:
        actions = pa.table(DeltaTable(str(run_dir / name)).get_add_actions(flatten=True))
        files |= {run_dir / name / p for p in actions.column("path").to_pylist()}
    return files


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


def assert_tables(reader: JournalReader, source: Source, ticks: int) -> None:
    """Every table equals a full read (read_table) cut at the checkpoint, and the source run's
    rows of the first `ticks` ticks."""
    for name in TABLES:
        got = reader.table(name)
        assert got.equals(source.upto(name, ticks)), name
        full = read_table(reader.run_dir, name)
        assert got.equals(full.slice(0, got.num_rows)), name


# ----------------------------------------------------------------------------- incremental


def test_a_refresh_reads_only_the_files_added_since_the_last(
    tmp_path: Path, source: Source
) -> None:
    run_dir = tmp_path / "run"
    journal = RunJournal.create(run_dir, source.header, flush_ticks=10)
    source.write(journal, 0, 20)  # two flushes
    reads: list[Path] = []
    reader = JournalReader(run_dir, read_file=counting(reads))
    assert reader.refresh() is True
    first = set(reads)
    assert first == data_files(run_dir) and len(reads) == len(first)
    assert_tables(reader, source, 20)
    state = reader.state
    assert (state.status, state.ticks_done, state.ruleset) == ("running", 20, "v6")
    assert state.ruleset_hash == source.header["ruleset"]["hash"]
    assert (state.first_tick, state.last_tick) == (source.ticks[0], source.ticks[19])
    stamp = f"{source.ticks[19]:%Y-%m-%d %H:%M} UTC"
    assert state.notes == (
        f"the run is still being written: showing 20 ticks so far (up to {stamp})",
    )

    reads.clear()
    assert reader.refresh() is False  # no new commit: not even a table opened
    assert reads == []

    source.write(journal, 20, 45)  # two more flushes; ticks 41-45 wait for the next one
    assert reader.refresh() is True
    second = set(reads)
    assert second and second.isdisjoint(first) and len(reads) == len(second)
    assert first | second == data_files(run_dir)
    assert_tables(reader, source, 40)
    assert reader.state.ticks_done == 40

    journal.close()
    reads.clear()
    assert reader.refresh() is True
    assert set(reads) == data_files(run_dir) - first - second
    assert_tables(reader, source, 45)
    assert (reader.state.status, reader.state.notes) == ("complete", ())


def test_rows_past_the_checkpoint_stay_hidden(tmp_path: Path, source: Source) -> None:
    """A flush in progress (or cut short) has written some tables further than run.json's
    checkpoint: those rows stay hidden, so the six tables agree."""
    run_dir = tmp_path / "run"
    journal = RunJournal.create(run_dir, source.header, flush_ticks=10)
    source.write(journal, 0, 10)
    later = (
        source.tables["decisions"]
        .filter(pc.greater(source.tables["decisions"].column("time"), source.ticks[9]))
        .slice(0, 50)
    )
    with DeltaAppender(run_dir / "decisions", TABLES["decisions"], PARTITION_BY) as appender:
        appender.append(later)
    reader = JournalReader(run_dir)
    reader.refresh()
    assert reader.table("decisions").equals(source.upto("decisions", 10))
    assert read_table(run_dir, "decisions").num_rows > reader.table("decisions").num_rows
    journal.close("partial")


def test_a_rewritten_table_is_read_again_in_full(tmp_path: Path, complete_run: Path) -> None:
    run_dir = copy_of(complete_run, tmp_path)
    reads: list[Path] = []
    reader = JournalReader(run_dir, read_file=counting(reads))
    reader.refresh()
    before = reader.table("decisions")
    compact(run_dir / "decisions")
    reads.clear()
    assert reader.refresh() is True
    assert {p.parent.parent.name for p in reads} == {"decisions"}
    assert len(reads) == 1  # the compacted file only
    assert reader.table("decisions").equals(before)
    assert reader.state.notes == (
        "the decisions table was rewritten (compacted, or rows removed by a resume): "
        "read again in full",
    )
    reader.refresh()
    assert not reader.state.notes  # said once


def test_partial_run_and_trace_level_notes(tmp_path: Path, source: Source) -> None:
    run_dir = tmp_path / "run"
    journal = RunJournal.create(run_dir, {**source.header, "trace_level": "fails"})
    source.write(journal, 0, 7)
    journal.close("partial")
    state = JournalReader(run_dir).state  # the first access reads
    stamp = f"{source.ticks[6]:%Y-%m-%d %H:%M} UTC"
    assert state.status == "partial" and state.trace_level == "fails"
    assert state.notes == (
        f"the run was interrupted (partial): showing its 7 ticks, up to {stamp}; continue it "
        "with `v6 dry-run ... --resume`",
        "the run kept only each rule's first failing condition (--trace fails): make it with "
        "--trace full to see every condition and the limits' headroom",
    )


def test_a_nullable_column_an_older_run_lacks_reads_as_nulls(
    tmp_path: Path, complete_run: Path
) -> None:
    run_dir = copy_of(complete_run, tmp_path)
    full = read_table(run_dir, "decisions")
    shutil.rmtree(run_dir / "decisions")
    write_deltalake(run_dir / "decisions", full.drop_columns(["trace"]), partition_by=["year"])
    got = JournalReader(run_dir).table("decisions")
    assert got.schema.equals(TABLES["decisions"])
    assert got.column("trace").null_count == got.num_rows == full.num_rows
    assert got.drop_columns(["trace"]).equals(full.drop_columns(["trace"]))


# ----------------------------------------------------------------------------- errors


def message(run_dir: Path, reader: JournalReader | None = None) -> str:
    with pytest.raises(JournalError) as info:
        (reader or JournalReader(run_dir)).refresh()
    return str(info.value)


def test_not_a_run_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert message(missing) == f"{missing} is not a run folder (it does not exist): {MAKE_ONE}"
    file = tmp_path / "notes.txt"
    file.write_text("x")
    assert message(file) == f"{file} is not a run folder (it is a file): {MAKE_ONE}"
    assert message(tmp_path) == f"{tmp_path} is not a run folder (no run.json in it): {MAKE_ONE}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"format": 1,\n  "status": }', "run.json:2:13: not valid JSON (Expecting value); "
                                         "the run folder is damaged"),
        ("[1, 2]", "run.json: expected a JSON object, found list"),
        ('{"format": 2, "status": "running"}',
         "run.json: journal format 2, this V6 reads format 1: the run was made by another V6 "
         "version"),
        ('{"format": 1, "status": "paused"}',
         "run.json: status 'paused' is not one of running, complete, partial"),
    ],
)  # fmt: skip
def test_a_bad_run_json(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "run.json").write_text(text)
    assert message(tmp_path) == f"{tmp_path}/{expected}"


def test_an_empty_journal(tmp_path: Path, source: Source) -> None:
    starting = tmp_path / "starting"
    journal = RunJournal.create(starting, source.header)
    assert message(starting) == (
        f"{starting}: the journal has no ticks yet: the run has just started (its first ticks "
        "appear at its first flush); refresh in a moment"
    )
    journal.close()
    assert message(starting) == (
        f"{starting}: the journal is empty: the run ended (complete) before any tick"
    )


def test_a_missing_table_keeps_the_last_snapshot(tmp_path: Path, complete_run: Path) -> None:
    run_dir = copy_of(complete_run, tmp_path)
    reader = JournalReader(run_dir)
    reader.refresh()
    orders, state = reader.table("orders"), reader.state
    shutil.rmtree(run_dir / "fills")
    assert message(run_dir, reader) == (
        f"{run_dir}: the 'fills' table is missing ({run_dir / 'fills'} is not a Delta table): "
        "the run folder is incomplete or damaged; make it again with `v6 dry-run`"
    )
    assert reader.table("orders") is orders and reader.state is state
    assert message(run_dir).startswith(f"{run_dir}: the 'fills' table is missing")


def test_a_table_of_an_older_schema(tmp_path: Path, complete_run: Path) -> None:
    run_dir = copy_of(complete_run, tmp_path)
    full = read_table(run_dir, "decisions")
    shutil.rmtree(run_dir / "decisions")
    write_deltalake(run_dir / "decisions", full.drop_columns(["location"]), partition_by=["year"])
    assert message(run_dir) == (
        f"{run_dir / 'decisions'}: the 'decisions' table has no column 'location': the run was "
        "made by an older V6 whose journal this version cannot show; make it again with "
        "`v6 dry-run`"
    )


def test_a_column_of_another_type(tmp_path: Path, complete_run: Path) -> None:
    run_dir = copy_of(complete_run, tmp_path)
    full = read_table(run_dir, "orders")
    shutil.rmtree(run_dir / "orders")
    bad = full.set_column(full.schema.get_field_index("quantity"), "quantity",
                          pa.array(["many"] * full.num_rows))  # fmt: skip
    write_deltalake(run_dir / "orders", bad, partition_by=["year"])
    text = message(run_dir)
    assert text.startswith(f"{run_dir / 'orders'}/year=2018/")
    assert text.endswith(
        ": column 'quantity' of the 'orders' table holds string, expected int32: the run was "
        "made by another V6 version; make it again with `v6 dry-run`"
    )


def test_an_unknown_table_name(complete_run: Path) -> None:
    with pytest.raises(JournalError, match="no journal table 'trades': one of decisions, "):
        JournalReader(complete_run).table("trades")


def test_a_cut_short_first_flush_is_no_tick(tmp_path: Path, source: Source) -> None:
    """Rows written before run.json records any checkpoint are not shown as a journal."""
    run_dir = tmp_path / "run"
    journal = RunJournal.create(run_dir, source.header)
    with DeltaAppender(run_dir / "equity", TABLES["equity"], PARTITION_BY) as appender:
        appender.append(source.upto("equity", 3))
    assert "has no ticks yet" in message(run_dir)
    info: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    assert info["checkpoint_tick"] is None
    journal.close("partial")


def test_a_folder_made_again_for_another_run(tmp_path: Path, source: Source) -> None:
    """Same Delta versions, other rows: run.json's identity tells the reader to start over."""

    def make(run_dir: Path, ticks: int, header: dict[str, Any]) -> None:
        journal = RunJournal.create(run_dir, header, flush_ticks=ticks // 2)
        source.write(journal, 0, ticks)  # two flushes: Delta versions 0-2
        journal.close()

    run_dir, other = tmp_path / "run", tmp_path / "other"
    make(run_dir, 20, source.header)
    make(other, 40, {**source.header, "to": "2018-02-28"})
    reader = JournalReader(run_dir)
    reader.refresh()
    shutil.rmtree(run_dir)
    shutil.copytree(other, run_dir)
    assert reader.refresh() is True
    assert reader.state.notes == ("the run folder now holds another run: read again in full",)
    assert_tables(reader, source, 40)
