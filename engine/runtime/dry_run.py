"""`v6 dry-run`: check every input, then replay a market through the engine into a run folder.

Everything a user can get wrong — the rule set, the store and its symbols, the dates, the
fill model, the output folder — is checked before any work starts, and reported as one
`DryRunError` line that says what is wrong and what is available.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.trace import Level
from engine.execution.costs import Costs
from engine.execution.fill_models import DEFAULT_FILL_MODEL, FillModel, parse_fill_model
from engine.execution.sim_broker import SimBroker
from engine.feeds.history import HistoryFeed, HistorySpec
from engine.market.bars import KIND_UNDERLYING
from engine.market.calendar import xnys_sessions
from engine.market.store import MarketStore
from engine.portfolio.off_chain import off_chain_quote
from engine.portfolio.requirements import max_loss_per_unit, position_margin
from engine.risk.commands import CommandSource
from engine.runtime.engine import Engine, EngineConfig
from engine.state.snapshot import BENCHMARK

REQUIRED_INDICES = ("VIX",)  # synthetic chains are priced off the VIX family


class DryRunError(ValueError):
    """An input to the dry run is unusable; the message says which and what is available."""


@dataclass(frozen=True)
class DryRunSpec:
    ruleset: str  # a shipped name (v6, v5-baseline) or a path
    start: dt.date
    end: dt.date
    out: Path
    store: Path | None = None
    synthetic: int | None = None  # seed of the embedded synthetic market
    fill_model: str = DEFAULT_FILL_MODEL.text
    trace: Level = Level.FAILS
    initial_cash: float = 100_000.0
    costs: Costs = field(default_factory=Costs)


def check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        entries = sorted(p.name for p in out.iterdir())[:5] if out.is_dir() else []
        listed = f" (holds {', '.join(entries)}…)" if entries else ""
        raise DryRunError(
            f"output folder {out} exists and is not empty{listed}: choose another --out, "
            "remove it, or continue an interrupted run with --resume"
        )


def entry_symbols(rs: RuleSet) -> tuple[str, ...]:
    """Underlyings the entry rules may open positions on: they need chains."""
    found: set[str] = set()
    for b in rs.blocks:
        if b.phase == "entry" and b.symbols:
            found.update(b.symbols)
    return tuple(sorted(found)) or (BENCHMARK,)


def open_store(path: Path) -> MarketStore:
    store = MarketStore(path)
    store.symbols()  # a missing store is reported here, with how to make one
    return store


def check_store(store: MarketStore, rs: RuleSet, start: dt.date, end: dt.date) -> tuple[str, ...]:
    """The underlyings to build chains for; raises DryRunError if the store cannot serve."""
    kinds = store.symbols()
    have = ", ".join(sorted(kinds))
    needed = {s: "index" for s in REQUIRED_INDICES} | {BENCHMARK: "underlying"}
    needed |= {s: "underlying" for s in entry_symbols(rs)}
    missing = [f"{s} ({k})" for s, k in sorted(needed.items()) if s not in kinds]
    if missing:
        raise DryRunError(
            f"store {store.path} lacks {', '.join(missing)} needed by rule set {rs.name}; "
            f"it has: {have}"
        )
    if start > end:
        raise DryRunError(f"--from {start} is after --to {end}")
    sessions = store.sessions(None, None)
    first, last = sessions[0].astype(dt.date), sessions[-1].astype(dt.date)
    wanted = xnys_sessions(start, end)  # weekends and holidays at either end are fine
    if wanted.size == 0:
        raise DryRunError(f"{start}..{end} holds no NYSE session")
    lo, hi = wanted[0].astype(dt.date), wanted[-1].astype(dt.date)
    if lo < first or hi > last:
        raise DryRunError(
            f"dates {start}..{end} go outside store {store.path}: it covers {first}..{last}"
        )
    return tuple(s for s in entry_symbols(rs) if kinds.get(s) == KIND_UNDERLYING)


def build_engine(
    rs: RuleSet,
    fill: FillModel,
    costs: Costs,
    initial_cash: float,
    trace: Level,
    commands: CommandSource | None = None,
) -> Engine:
    broker = SimBroker(fill, costs, initial_cash, unlisted=off_chain_quote)
    config = EngineConfig(initial_cash=initial_cash, trace=trace)
    return Engine(rs, broker, position_margin, max_loss_per_unit, config, commands)


def run_header(spec: DryRunSpec, rs: RuleSet, engine: Engine) -> dict[str, Any]:
    market = (
        f"market store {spec.store}"
        if spec.store is not None
        else f"embedded synthetic market, seed {spec.synthetic} (written to {spec.out / 'market'})"
    )
    return {
        "ruleset": {
            "name": rs.name,
            "hash": rs.hash,
            "git_revision": rs.git_revision,
            "files": [str(p) for p in rs.manifest.files],
        },
        "market": market,
        "feed": market,
        "from": spec.start.isoformat(),
        "to": spec.end.isoformat(),
        "initial_cash": spec.initial_cash,
        "fill_model": engine.broker.describe().get("fill_model"),
        "costs": engine.broker.describe().get("costs"),
        "sizing": engine.config.sizing.describe(),
        "off_chain_quotes": "options outside the synthetic chain's strike window: model value "
        "at the nearest listed strike's IV, spread 10% of value (min $0.05)",
        "trace_level": spec.trace.value,
    }


Echo = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    spec: DryRunSpec
    ruleset: RuleSet
    fill: FillModel
    store: MarketStore
    chains: tuple[str, ...]


def prepare(spec: DryRunSpec, *, resume: bool = False) -> Prepared:
    """Every check, in the order a user would fix things; no output is written."""
    if not resume:
        check_out_dir(spec.out)
    rs = load_ruleset(spec.ruleset)
    fill = parse_fill_model(spec.fill_model)  # FillModelError lists the valid forms
    if (spec.store is None) == (spec.synthetic is None):
        raise DryRunError("give exactly one market: --store STORE or --synthetic SEED")
    # A synthetic market is generated into RUN_DIR/market once the run folder exists.
    store = open_store(spec.store) if spec.store else MarketStore(spec.out / "market")
    chains = check_store(store, rs, spec.start, spec.end) if spec.store is not None else ()
    return Prepared(spec, rs, fill, store, chains)


def synthetic_begin(start: dt.date) -> dt.date:
    """Where a synthetic market for a run from `start` begins: January of the year before,
    a year of warm-up for IV rank and beta. The generated path depends on its first day, so
    `v6 dry-run --synthetic S` and `v6 demo` agree only because both start it here."""
    return dt.date(start.year - 1, 1, 1)


def synthetic_store(spec: DryRunSpec, rs: RuleSet) -> tuple[MarketStore, tuple[str, ...]]:
    """The embedded synthetic market for the run, written into RUN_DIR/market."""
    from engine.market.generator import write_synthetic_store

    assert spec.synthetic is not None
    path = spec.out / "market"
    if not path.exists():  # on --resume the market of the first attempt is reused
        write_synthetic_store(path, spec.synthetic, synthetic_begin(spec.start), spec.end)
    store = MarketStore(path)
    return store, check_store(store, rs, spec.start, spec.end)


def history_feed(store: MarketStore, chains: tuple[str, ...], spec: DryRunSpec) -> HistoryFeed:
    return HistoryFeed(store, spec.start, spec.end, HistorySpec(chains=chains))
