"""Operator commands through a run folder: written atomically, read once, in order."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from engine.risk.commands import CommandError, CommandFolder, NoCommands, Replayed, journaled, send
from tests.dsl.conftest import T0


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "run.json").write_text("{}")
    return tmp_path


def test_commands_are_read_once_in_the_order_sent(run_dir: Path) -> None:
    folder = CommandFolder(run_dir)
    assert folder.poll(T0) is None
    send(run_dir, "halt", "desk says stop")
    send(run_dir, "resume")
    assert folder.poll(T0) == "halt"
    assert folder.poll(T0) == "resume"
    assert folder.poll(T0) is None
    done = sorted((run_dir / "commands" / "done").glob("*.json"))
    assert [json.loads(p.read_text())["command"] for p in done] == ["halt", "resume"]
    assert json.loads(done[0].read_text())["reason"] == "desk says stop"


def test_a_malformed_command_file_is_skipped_not_fatal(run_dir: Path) -> None:
    (run_dir / "commands").mkdir()
    (run_dir / "commands" / "0-bad.json").write_text("{not json")
    send(run_dir, "flatten")
    assert CommandFolder(run_dir).poll(T0) == "flatten"


def test_send_refuses_what_is_not_a_run_folder_or_a_command(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(CommandError, match="not a run folder"):
        send(tmp_path / "nowhere", "halt")
    with pytest.raises(CommandError, match="unknown command 'stop'"):
        send(run_dir, "stop")  # type: ignore[arg-type]


def test_a_resumed_run_replays_journaled_commands_then_reads_the_folder(run_dir: Path) -> None:
    rows = [{"kind": "command", "time": T0, "detail": "halt"},
            {"kind": "transition", "time": T0, "detail": "x"}]  # fmt: skip
    send(run_dir, "resume")
    r = Replayed(journaled(rows), T0 + timedelta(days=1), CommandFolder(run_dir))
    assert r.poll(T0) == "halt"
    assert r.poll(T0 + timedelta(hours=1)) is None  # replaying: the folder waits
    assert r.poll(T0 + timedelta(days=2)) == "resume"
    assert NoCommands().poll(T0) is None


def test_commands_read_after_the_checkpoint_are_requeued_on_resume(run_dir: Path) -> None:
    folder = CommandFolder(run_dir)
    send(run_dir, "halt")
    send(run_dir, "flatten")
    assert folder.poll(T0) == "halt"  # journaled and flushed before the crash
    assert folder.poll(T0 + timedelta(days=1)) == "flatten"  # read, then lost unflushed
    assert folder.requeue_after(T0) == [next(iter(sorted(
        p.name for p in (run_dir / "commands").glob("*.json"))))]  # fmt: skip
    assert folder.poll(T0 + timedelta(days=2)) == "flatten"
    assert folder.poll(T0 + timedelta(days=2)) is None
    assert len(list((run_dir / "commands" / "done").glob("*.json"))) == 2


def test_a_resume_refused_for_a_breaker_still_firing_replays_as_resume() -> None:
    rows = [{"kind": "command", "time": T0, "detail": "resume; still firing, stays tripped: dd"}]
    assert journaled(rows) == {T0: "resume"}
