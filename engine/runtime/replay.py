"""Drive one or more engines over one feed: each snapshot is built once and stepped by every
engine, the journals written at tick boundaries, Ctrl-C honoured between ticks.

A first Ctrl-C asks the loop to stop after the current tick (the journals then hold every
complete tick and the run is marked partial); a second one interrupts at once, leaving the
journals at their last flush, from where `--resume` continues.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any, Protocol

from engine.feeds.feed import Feed
from engine.runtime import rows
from engine.runtime.engine import Engine, TickResult


class TickJournal(Protocol):
    """What the loop needs from a journal (engine.journal.run_journal.RunJournal)."""

    def add(self, table: str, rows: list[dict[str, Any]]) -> None: ...

    def end_tick(self, time: datetime, equity: dict[str, Any]) -> None: ...


@dataclass
class Runner:
    """One engine, its journal (None: keep nothing), and an optional per-tick observer."""

    name: str
    engine: Engine
    journal: TickJournal | None = None
    resume_after: datetime | None = None  # ticks up to here rebuild state, unjournaled
    observe: Callable[[TickResult], None] | None = None
    ticks: int = 0
    row_cache: rows.RowCache = field(default_factory=dict)


@dataclass
class ReplayStats:
    ticks: int = 0
    interrupted: bool = False
    last_tick: datetime | None = None
    seconds: dict[str, float] = field(
        default_factory=lambda: {"feed": 0.0, "book": 0.0, "rules": 0.0, "broker": 0.0,
                                 "journal": 0.0}
    )  # fmt: skip

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


class _StopFlag:
    def __init__(self) -> None:
        self.requested = False


@contextmanager
def _ctrl_c() -> Iterator[_StopFlag]:
    flag = _StopFlag()

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, Ctrl-C stays the default
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def write_tick(
    journal: TickJournal, r: TickResult, engine: Engine, cache: rows.RowCache | None = None
) -> None:
    journal.add("decisions", rows.decision_rows(r, cache))
    journal.add("orders", rows.order_rows(r))
    journal.add("fills", rows.fill_rows(r))
    journal.add("positions", rows.position_rows(r))
    journal.add("risk_events", rows.risk_event_rows(r))
    equity = rows.equity_row(r, engine.config.initial_cash, engine.book.commissions)
    journal.end_tick(r.time, equity)


def replay(
    feed: Feed,
    runners: list[Runner],
    on_tick: Callable[[ReplayStats], None] | None = None,
) -> ReplayStats:
    """Step every runner's engine on every tick of `feed`, in order."""
    stats = ReplayStats()
    clock = time.perf_counter
    with _ctrl_c() as stop:
        ticks = iter(feed.ticks())
        while not stop.requested:
            t0 = clock()
            snap = next(ticks, None)
            stats.seconds["feed"] += clock() - t0
            if snap is None:
                break
            for run in runners:
                result = run.engine.step(snap)
                run.ticks += 1
                if run.observe is not None:
                    run.observe(result)
                if run.journal is not None and (
                    run.resume_after is None or snap.time > run.resume_after
                ):
                    t1 = clock()
                    write_tick(run.journal, result, run.engine, run.row_cache)
                    stats.seconds["journal"] += clock() - t1
            stats.ticks += 1
            stats.last_tick = snap.time
            if on_tick is not None:
                on_tick(stats)
        stats.interrupted = stop.requested
    for key in ("book", "rules", "broker"):
        stats.seconds[key] = sum(r.engine.seconds[key] for r in runners)
    return stats
