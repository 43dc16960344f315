"""`v6 halt`, `v6 resume` and `v6 audit`: on a dry run running in another process, between the
ticks of a run, and on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from engine.cli import app
from engine.journal.run_journal import RunJournal, read_info, read_table
from engine.risk.commands import CommandFolder
from tests.risk.test_audit import append, journaled_run, tick

ROOT = Path(__file__).resolve().parent.parent
FLATTEN_AFTER, RESUME_AFTER = 45, 50  # tick numbers: each command is read one tick later
TIMEOUT_S = 300.0  # generous: CI machines are slow and shared; polling ends much sooner

runner = CliRunner()
Row = dict[str, Any]


def v6(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def rows(run: Path, table: str) -> list[Row]:
    return read_table(run, table).to_pylist()


def ticks(run: Path) -> list[datetime]:
    return [r["time"] for r in rows(run, "equity")]


def sent_entries(run: Path, since: datetime) -> list[Row]:
    orders = rows(run, "orders")
    return [o for o in orders if o["intent"] == "open" and o["status"] != "blocked"
            and o["time"] >= since]  # fmt: skip


# ------------------------------------------------------- halt from another terminal
def _wait_for_a_checkpoint(proc: subprocess.Popen[str], out: Path) -> int:
    """Ticks the running dry run has journaled, once it has journaled some."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the dry run ended early: {proc.communicate()}"
        if (out / "run.json").is_file():
            done = int(read_info(out).get("ticks_done", 0))  # replaced atomically: never torn
            if done > 0:
                return done
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint in {TIMEOUT_S:.0f} s")


def test_halt_reaches_a_dry_run_running_in_another_process(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Two years: the first checkpoint comes after 250 ticks, a year (~250 ticks) before the end,
    # so the halt reaches a running engine however slow the machine (both processes slow down).
    cmd = [sys.executable, "-m", "engine.cli", "dry-run", "--ruleset", "v6", "--synthetic", "7",
           "--from", "2008-01-02", "--to", "2009-12-31", "--out", str(out),
           "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        done = _wait_for_a_checkpoint(proc, out)
        res = v6("halt", out, "--reason", "test: kill switch")
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"queued halt for {out} (") and "engine's next tick" in res.output
    assert proc.returncode == 0, stderr
    events = rows(out, "risk_events")
    (command,) = [e for e in events if e["kind"] == "command"]
    t = command["time"]
    assert command["detail"] == "halt" and t > ticks(out)[done - 1]
    assert any(e["time"] == t and e["kind"] == "transition" and e["state_after"] == "HALTED"
               and e["cause"].startswith("operator halt") for e in events)  # fmt: skip
    assert {r["risk_state"] for r in rows(out, "equity") if r["time"] >= t} == {"HALTED"}
    assert sent_entries(out, t) == []
    halted = [o for o in rows(out, "orders") if o["time"] >= t and o["intent"] == "open"]
    assert halted and all("HALTED" in o["status_reason"] for o in halted)  # the gate saw them
    audit = v6("audit", out)
    assert audit.exit_code == 0, audit.output


# --------------------------------------------------- flatten and resume between ticks
@pytest.fixture(scope="module")
def flattened(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quarter of the V6 rule set: flattened by an operator with positions open, resumed
    five ticks later."""
    out = tmp_path_factory.mktemp("cli-risk") / "run"
    commands = {FLATTEN_AFTER: [["halt", "--flatten", "--reason", "test"]],
                RESUME_AFTER: [["resume"]]}  # fmt: skip
    journaled_run(out, 7, date(2008, 1, 2), date(2008, 3, 31), commands)
    return out


def test_flatten_closes_every_position_at_the_command_tick(flattened: Path) -> None:
    before, t = ticks(flattened)[FLATTEN_AFTER - 1 : FLATTEN_AFTER + 1]
    resumed = ticks(flattened)[RESUME_AFTER]
    events = {(e["kind"], e["state_after"], e["cause"].split(",")[0], e["detail"])
              for e in rows(flattened, "risk_events") if e["time"] == t}  # fmt: skip
    assert ("command", "ACTIVE", "operator", "flatten") in events
    assert any(e[:3] == ("transition", "HALTED", "operator flatten") for e in events)
    positions = rows(flattened, "positions")
    held = {r["position_id"] for r in positions if r["time"] == before and r["status"] == "open"}
    assert held, "the flatten should find positions to close"
    closed = {r["position_id"] for r in positions if r["time"] == t and r["status"] == "closed"}
    assert closed == held
    assert not [r for r in positions if before < r["time"] < resumed and r["status"] == "open"]
    orders = [o for o in rows(flattened, "orders") if o["time"] == t]
    assert {(o["intent"], o["status"]) for o in orders if o["position_id"] in held} == {
        ("flatten", "filled")
    }


def test_resume_lifts_the_halt_and_entries_fill_again(flattened: Path) -> None:
    resumed = ticks(flattened)[RESUME_AFTER]
    (left,) = [e for e in rows(flattened, "risk_events")
               if e["kind"] == "transition" and e["state_before"] == "HALTED"]  # fmt: skip
    assert left["time"] == resumed and left["cause"].startswith("operator resume")
    states = {r["time"]: r["risk_state"] for r in rows(flattened, "equity")}
    assert states[resumed] == left["state_after"] != "HALTED"
    assert sent_entries(flattened, resumed), "the market offers entries after the resume"


def test_audit_passes_on_the_run_and_prints_a_table(flattened: Path) -> None:
    res = v6("audit", flattened)
    assert res.exit_code == 0, res.output
    for name in ("no_entries_unless_active", "only_closing_while_halted", "exit_fires_once",
                 "limits_hold_after_entries", "risk_states_chain"):  # fmt: skip
        assert name in res.output
    assert "FAIL" not in res.output and res.output.rstrip().endswith("invariants hold")
    data = json.loads(v6("audit", flattened, "--json").output)
    assert data["passed"] is True and len(data["invariants"]) == 5


def test_audit_fails_with_exit_code_1_naming_the_tick(flattened: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(flattened, copy, ignore=shutil.ignore_patterns("market"))
    t = ticks(copy)[FLATTEN_AFTER + 1]
    entry = next(o for o in rows(copy, "orders") if o["intent"] == "open" and o["filled"])
    append(copy, "orders", {**entry, "time": t, "order_id": "tampered-1", "position_id": None})
    res = v6("audit", copy)
    assert res.exit_code == 1
    assert f"{tick(t)}: entry open order tampered-1 ({entry['symbol']}, filled) sent while the " \
        "trading state was HALTED" in res.output  # fmt: skip
    assert "FAILED: 2 of 5 invariants" in res.output  # an entry is not a closing order either
    data = json.loads(v6("audit", copy, "--json").output)
    assert data["passed"] is False


# ------------------------------------------------------------------------ the commands
def test_halt_and_resume_queue_commands_the_engine_reads_in_order(tmp_path: Path) -> None:
    run = tmp_path / "run"
    RunJournal.create(run, {"ruleset": {"name": "v6"}})
    flatten = v6("halt", run, "--flatten")
    assert flatten.exit_code == 0 and flatten.output.startswith(
        "queued flatten (halt, then close every position) for"
    )
    assert v6("resume", run, "--reason", "checked").exit_code == 0
    folder, now = CommandFolder(run), datetime(2020, 1, 2, 21)
    assert [folder.poll(now), folder.poll(now), folder.poll(now)] == ["flatten", "resume", None]
    reason = json.loads(next((run / "commands" / "done").glob("*-resume.json")).read_text())
    assert reason["reason"] == "checked"


@pytest.mark.parametrize("command", [["audit"], ["halt"], ["halt", "--flatten"], ["resume"]])
def test_a_folder_that_is_no_run_is_one_line_and_exit_1(command: list[str], tmp_path: Path) -> None:
    res = v6(*command, tmp_path)
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and res.output.startswith("error: ")
    assert "no run.json" in res.output and "Traceback" not in res.output


def test_halt_refuses_a_complete_run(flattened: Path) -> None:
    res = v6("halt", flattened)
    assert res.exit_code == 1 and "is a complete run" in res.output
    assert not list((flattened / "commands").glob("*.json"))  # nothing left queued


def test_bench_risk_prints_both_cases_and_refuses_a_bad_count() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["bench", "risk", "--positions", "5", "--repeat", "2"])
    assert ok.exit_code == 0, ok.output
    assert "against 5 open positions" in ok.output
    assert "with limits sized for the book" in ok.output and "target ≤ 100 µs" in ok.output
    bad = runner.invoke(app, ["bench", "risk", "--repeat", "0"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
