"""A dry-run session: prepare, open the run folder, replay with a progress bar, summarise.

The progress bar (rich) shows ticks/s and the ETA. A Ctrl-C stops after the current tick,
flushes the journal and marks the run `partial`; `--resume` continues it, rebuilding the
engine's state by replaying (without journaling) the ticks already written, so a resumed run
ends byte-identical to an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
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

from engine.journal.run_journal import RunJournal
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
    echo: Callable[[str], None] = print,
) -> RunSummary:
    prep = prepare(spec, resume=resume)
    engine = build_engine(prep.ruleset, prep.fill, spec.costs, spec.initial_cash, spec.trace)
    resume_after = None
    if resume:
        journal, header, resume_after = RunJournal.resume(spec.out)
        if header.get("ruleset", {}).get("hash") != prep.ruleset.hash:
            raise ValueError(
                f"{spec.out} was run with rule set hash {header.get('ruleset', {}).get('hash')}, "
                f"now {prep.ruleset.hash}: the rules changed, so it cannot be resumed"
            )
    else:
        header = run_header(spec, prep.ruleset, engine)
        journal = RunJournal.create(spec.out, header)
    store, chains = prep.store, prep.chains
    if spec.synthetic is not None:
        store, chains = synthetic_store(spec, prep.ruleset)  # into RUN_DIR/market
    feed = history_feed(store, chains, spec)
    counter = _Counter()
    runner = Runner(prep.ruleset.name, engine, journal, resume_after, counter)
    stats = _replay_with_progress(feed, runner, len(feed), progress, console)
    status: Literal["complete", "partial"] = "partial" if stats.interrupted else "complete"
    journal.close(status, {"elapsed_s": stats.total_seconds, "split_s": stats.seconds})
    return RunSummary(
        status, stats.ticks, stats.seconds, counter.net_liq, spec.initial_cash, counter.orders,
        counter.trades, header,
    )  # fmt: skip


def _replay_with_progress(
    feed: Any, runner: Runner, total: int, show: bool, console: Console | None
) -> ReplayStats:
    if not show:
        return replay(feed, [runner])
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} ticks/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task(runner.name, total=total, rate="–")

        def tick(stats: ReplayStats) -> None:
            if stats.ticks % 20 == 0 or stats.ticks == total:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{stats.ticks / elapsed:,.0f}" if elapsed > 0 else "–"
                bar.update(task, completed=stats.ticks, rate=rate)

        stats = replay(feed, [runner], tick)
        bar.update(task, completed=stats.ticks)
    return stats
