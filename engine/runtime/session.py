"""A dry-run session: prepare, open the run folder, replay with a progress bar, summarise.

The progress bar (rich) shows ticks/s and the ETA. A Ctrl-C stops after the current tick,
flushes the journal and marks the run `partial`; `--resume` continues it, rebuilding the
engine's state by replaying (without journaling) the ticks already written, so a resumed run
ends byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from engine.journal.run_journal import RunJournal, read_info, read_table
from engine.risk.commands import CommandFolder, Replayed, journaled
from engine.runtime.dry_run import (
    DryRunSpec,
    build_engine,
    history_feed,
    prepare,
    run_header,
    synthetic_store,
)
from engine.runtime.replay import ReplayStats, Runner, replay


@dataclass(frozen=True)
class RunSummary:
    status: str  # complete | partial
    ticks: int
    seconds: dict[str, float]
    final_net_liq: float
    initial_cash: float
    orders: dict[str, int]  # by status
    trades: int  # positions closed
    header: dict[str, Any]

    @property
    def ticks_per_second(self) -> float:
        total = sum(self.seconds.values())
        return self.ticks / total if total > 0 else 0.0

    def lines(self) -> list[str]:
        ret = self.final_net_liq / self.initial_cash - 1.0
        split = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        fill = self.header.get("fill_model") or {}
        orders = ", ".join(f"{n} {k}" for k, n in sorted(self.orders.items())) or "none"
        return [
            f"{self.status}: {self.ticks:,} ticks, {self.ticks_per_second:,.0f} ticks/s ({split})",
            f"net liq ${self.final_net_liq:,.2f} ({ret:+.2%}), {self.trades} positions closed",
            f"orders: {orders}",
            f"fill model: {fill.get('label', fill)}",
        ]


class _Counter:
    def __init__(self) -> None:
        self.orders: dict[str, int] = {}
        self.trades = 0
        self.net_liq = 0.0

    def __call__(self, r: Any) -> None:
        for v in r.verdicts:
            if v.proposal.order is None:
                continue
            res = r.results.get(v.proposal.order.id)
            key = "blocked" if v.blocked else (res.status if res else "rejected")
            self.orders[key] = self.orders.get(key, 0) + 1
        self.trades += sum(1 for c in r.closed if not c.held.is_hedge)
        self.net_liq = r.account.net_liq


def run_dry_run(
    spec: DryRunSpec,
    *,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> RunSummary:
    """One rule set, one run folder."""
    return run_dry_runs([spec], resume=resume, progress=progress, console=console)[0]


def run_dry_runs(
    specs: Sequence[DryRunSpec],
    *,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> list[RunSummary]:
    """Several rule sets on one market, each into its own run folder: every snapshot (and its
    chains, the costly part) is built once and stepped by every engine. The specs must share
    the market and the dates."""
    first = specs[0]
    if any((s.store, s.synthetic, s.start, s.end) != (first.store, first.synthetic,
           first.start, first.end) for s in specs):  # fmt: skip
        raise ValueError("runs sharing one replay need the same market and dates")
    preps = [prepare(s, resume=resume) for s in specs]  # every check before any work
    runners, journals, counters, headers = [], [], [], []
    for spec, prep in zip(specs, preps, strict=True):
        engine = build_engine(prep.ruleset, prep.fill, spec.costs, spec.initial_cash, spec.trace,
                              CommandFolder(spec.out))  # fmt: skip
        resume_after = None
        if resume:
            _same_run(spec, read_info(spec.out), run_header(spec, prep.ruleset, engine))
            journal, header, resume_after = RunJournal.resume(spec.out)
            # Operator commands of the first attempt replay at their ticks.
            earlier = journaled(read_table(spec.out, "risk_events").to_pylist())
            folder = CommandFolder(spec.out)
            folder.requeue_after(resume_after)  # read, but lost with the unflushed rows
            engine.commands = Replayed(earlier, resume_after, folder)
        else:
            header = run_header(spec, prep.ruleset, engine)
            journal = RunJournal.create(spec.out, header)
        counter = _Counter()
        runners.append(Runner(prep.ruleset.name, engine, journal, resume_after, counter))
        journals.append(journal)
        counters.append(counter)
        headers.append(header)
    store, chains = preps[0].store, tuple(sorted({c for p in preps for c in p.chains}))
    if first.synthetic is not None:
        store, chains = synthetic_store(first, preps[0].ruleset)  # into RUN_DIR/market
    feed = history_feed(store, chains, first)
    stats = _replay_with_progress(feed, runners, len(feed), progress, console)
    status: Literal["complete", "partial"] = "partial" if stats.interrupted else "complete"
    out = []
    for journal, counter, header in zip(journals, counters, headers, strict=True):
        journal.close(status, {"elapsed_s": stats.total_seconds, "split_s": stats.seconds})
        out.append(
            RunSummary(
                status,
                stats.ticks,
                stats.seconds,
                counter.net_liq,
                first.initial_cash,
                counter.orders,
                counter.trades,
                header,
            )
        )
    return out


RESUME_KEYS = ("ruleset", "market", "from", "to", "initial_cash", "fill_model", "costs",
               "sizing", "trace_level")  # fmt: skip


def _same_run(spec: DryRunSpec, stored: dict[str, Any], now: dict[str, Any]) -> None:
    """A resumed run must replay exactly what the first attempt ran, or it would silently
    differ from an uninterrupted run."""
    if stored.get("status") == "complete":
        return  # RunJournal.resume says "already complete"
    for key in RESUME_KEYS:
        before, after = stored.get(key), json.loads(json.dumps(now.get(key)))
        if key == "ruleset":
            before, after = (before or {}).get("hash"), (after or {}).get("hash")
        if before != after:
            raise ValueError(
                f"{spec.out} was run with {key} {before!r}, this command gives {after!r}: "
                "resume with the same options, or start a new run"
            )


def _replay_with_progress(
    feed: Any, runners: list[Runner], total: int, show: bool, console: Console | None
) -> ReplayStats:
    if not show:
        return replay(feed, runners)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} ticks/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        name = " + ".join(r.name for r in runners)
        task = bar.add_task(name, total=total, rate="–")

        def tick(stats: ReplayStats) -> None:
            if stats.ticks % 20 == 0 or stats.ticks == total:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{stats.ticks / elapsed:,.0f}" if elapsed > 0 else "–"
                bar.update(task, completed=stats.ticks, rate=rate)

        stats = replay(feed, runners, tick)
        bar.update(task, completed=stats.ticks)
    return stats
