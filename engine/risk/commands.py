"""Operator commands (halt, flatten, resume) reach a running engine through a folder.

`v6 halt RUN_DIR [--flatten]` and `v6 resume RUN_DIR` each write one small JSON file into
RUN_DIR/commands/, atomically (write, then rename), from any terminal. The engine reads the
oldest pending command at the start of its next tick, moves the file to commands/done/ (its
name prefixed with the tick's UTC time) and journals it as a `risk_events` row, so a resumed
dry run replays it at the same tick. A command read after the journal's last checkpoint, lost
with an interrupted run's unflushed rows, goes back to the folder on resume (`requeue_after`):
a kill switch is never dropped by a crash. A folder
is the smallest interface that works for a dry run and the live engine alike, needs no server,
and survives restarts.
"""

from __future__ import annotations

import json
import os
import time as _time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, cast

from engine.risk.trading_state import Command

COMMANDS: tuple[Command, ...] = ("halt", "flatten", "resume")
_FOLDER = "commands"


class CommandError(ValueError):
    """A command that cannot be written: the message says what to do instead."""


class CommandSource(Protocol):
    def poll(self, time: datetime) -> Command | None:
        """The next operator command for the tick at `time`, if any."""


class NoCommands:
    def poll(self, time: datetime) -> Command | None:
        return None


@dataclass
class CommandFolder:
    """Commands written by `send` (the CLI) into `run_dir/commands/`, read by the engine."""

    run_dir: Path

    @property
    def folder(self) -> Path:
        return self.run_dir / _FOLDER

    def poll(self, time: datetime) -> Command | None:
        try:
            names = sorted(e.name for e in os.scandir(self.folder) if e.name.endswith(".json"))
        except FileNotFoundError:
            return None
        for name in names:
            path = self.folder / name
            done = self.folder / "done"
            done.mkdir(exist_ok=True)
            try:
                text = path.read_text(encoding="utf-8")
                path.rename(done / f"{_stamp(time)}{_SEP}{name}")
            except FileNotFoundError:  # another reader took it
                continue
            command = _parse(text)
            if command is not None:
                return command
        return None


    def requeue_after(self, checkpoint: datetime | None) -> list[str]:
        """Put back the commands read at ticks after `checkpoint` (all, if None): their
        journal rows were never flushed. Returns the file names requeued."""
        done = self.folder / "done"
        if not done.is_dir():
            return []
        after = "" if checkpoint is None else _stamp(checkpoint)
        out = []
        for path in sorted(done.glob(f"*{_SEP}*.json")):
            tick, _, name = path.name.partition(_SEP)
            if tick > after:
                path.rename(self.folder / name)
                out.append(name)
        return out


_SEP = "__"


def _stamp(time: datetime) -> str:
    """The tick as a sortable UTC text, for the names of commands read."""
    return time.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _parse(text: str) -> Command | None:
    try:
        value = json.loads(text).get("command")
    except (ValueError, AttributeError):
        return None
    return cast(Command, value) if value in COMMANDS else None


def send(run_dir: Path, command: Command, reason: str = "") -> Path:
    """Queue `command` for the engine writing `run_dir`; returns the file written."""
    if command not in COMMANDS:
        raise CommandError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    if not (run_dir / "run.json").is_file():
        raise CommandError(
            f"{run_dir} is not a run folder (no run.json): give the folder of a running "
            "dry run or of the live engine"
        )
    folder = run_dir / _FOLDER
    folder.mkdir(exist_ok=True)
    stamp = f"{_time.time_ns():020d}-{os.getpid()}"
    body = {"command": command, "reason": reason, "issued_at_unix_ns": _time.time_ns()}
    tmp = folder / f".{stamp}.tmp"
    tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
    final = folder / f"{stamp}-{command}.json"
    tmp.rename(final)
    return final


@dataclass
class Replayed:
    """A resumed run: up to `until` the commands an earlier attempt journaled, at the same
    ticks; after it, `then` (the folder)."""

    journaled: Mapping[datetime, Command]
    until: datetime | None
    then: CommandSource

    def poll(self, time: datetime) -> Command | None:
        if self.until is not None and time <= self.until:
            return self.journaled.get(time)
        return self.then.poll(time)


def journaled(rows: Iterable[Mapping[str, object]]) -> dict[datetime, Command]:
    """Tick time → command, from `risk_events` rows of kind `command`."""
    out: dict[datetime, Command] = {}
    for r in rows:
        detail = str(r.get("detail") or "").split(";")[0]  # "resume; still firing: …"
        if r.get("kind") == "command" and detail in COMMANDS:
            t = r["time"]
            assert isinstance(t, datetime)
            out[t] = detail
    return out
