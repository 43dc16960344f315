"""Synthetic markets for the risk tests: generated sessions, shocks laid over them, engines.

A `Market` is one seed of the synthetic generator (engine/market/generator.py) replayed by the
same HistoryFeed a dry run uses. The generator cannot be steered to a crash on a chosen day,
so `shocked` lays `Shock`s over its snapshots: from a shock's day on, SPY is moved by a log
return (QQQ and IWM by the same move times their generator beta, the index futures with
their ETF), and the VIX is multiplied by a jump that decays with a half-life. Everything a
rule reads is then rebuilt as the feed builds it, not scaled by hand:

- prices, previous closes and one-day changes (underlyings, futures, VIX) from the moved
  levels, so a shock shows in `change_pct` and `vix_change_pct` on its day only;
- chains re-synthesised by `synth_chain` at the new spot and VIX family (bid/ask, IV and
  Greeks from the surface), chain features and IV rank re-derived by `enrich_underlying`
  with an ATM-IV history that holds the shocked days;
- 20-day realized vol and 252-day beta recomputed by the kernels from the moved closes.

VIX9D moves with the VIX; VIX3M by the square root of its jump: the back of the curve moves
about half as much as the front in log terms (2018-02-05: VIX +116%, VIX3M +54%), which is
what turns a spike into backwardation. VVIX and SKEW keep their generated levels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.dsl.ruleset import RuleSet
from engine.dsl.trace import Level
from engine.execution.costs import Costs
from engine.execution.fill_models import DEFAULT_FILL_MODEL
from engine.feeds.history import ATM_TENOR_YEARS, HistoryFeed, HistorySpec
from engine.kernels.vol_features import log_returns, realized_vol_close, rolling_beta
from engine.market.generator import DEFAULT_PARAMS, generate_market
from engine.market.store import MarketStore
from engine.market.surface import VolIndices, implied_vols
from engine.market.synth_chain import symbol_indices, synth_chain
from engine.portfolio.requirements import max_loss_per_unit
from engine.risk.gate import DEFAULT_CONTROLS, Control
from engine.risk.trading_state import Command
from engine.runtime.dry_run import build_engine, synthetic_begin
from engine.runtime.engine import Engine, TickResult
from engine.runtime.intents import Sizing
from engine.runtime.order_flow import build_order_flow
from engine.state.enrich import BETA_WINDOW, RV_WINDOW, UnderlyingHistory, enrich_underlying
from engine.state.snapshot import BENCHMARK, FutureQuote, Snapshot, UnderlyingState

F64 = npt.NDArray[np.float64]

CHAINS = ("IWM", "QQQ", "SPY")  # the V6 entry rules' underlyings
BETA = {u.symbol: u.beta for u in DEFAULT_PARAMS.underlyings}  # log-return beta to SPY
FUTURE_OF = {u.future: u.symbol for u in DEFAULT_PARAMS.underlyings}  # ES -> SPY, ...
VIX3M_SHARE = 0.5  # VIX3M's log move per log move of the VIX in a shock


@dataclass(frozen=True, repr=False)
class Market:
    """One generated market: its feed and the snapshot of every session, unshocked."""

    seed: int
    feed: HistoryFeed
    base: tuple[Snapshot, ...]

    def __repr__(self) -> str:  # short: hypothesis prints the fixtures of a failing example
        return (
            f"Market(seed={self.seed}, {len(self.base)} sessions from {self.base[0].time:%Y-%m-%d})"
        )

    @property
    def first(self) -> int:
        """The index in feed.dates of base[0] (the sessions are contiguous)."""
        return self.feed.first


@dataclass(frozen=True)
class Shock:
    """A market move laid over the generated path from tick `day` on."""

    day: int  # index into Market.base
    spy_move: float  # SPY log return added that day and kept after: -0.09 is about -8.6%
    vix_jump: float  # VIX multiplier that day: 1.8 is +80%
    half_life: float = 3.0  # sessions for the VIX jump to halve (log terms)


def generated_market(root: Path, seed: int, start: date, end: date) -> Market:
    """The synthetic market of `seed`, written to a store under `root` and fed like a dry run
    (the generator starts a year early, as `v6 dry-run --synthetic` does: IV rank and beta
    need that history)."""
    store = MarketStore(root / f"market-{seed}")
    store.write_bars(generate_market(seed, synthetic_begin(start), end))
    feed = HistoryFeed(store, start, end, HistorySpec(chains=CHAINS))
    base = tuple(_snapshot(feed, i) for i in range(feed.first, feed.dates.size))
    return Market(seed, feed, base)


def shocked(
    m: Market, shocks: Sequence[Shock], start: int = 0, stop: int | None = None
) -> list[Snapshot]:
    """Snapshots start..stop of the market with `shocks` laid over them (see the module
    docstring); a shock's day counts from the market's first session, not from `start`."""
    n = len(m.base)
    stop = n if stop is None else stop
    if not shocks or min(s.day for s in shocks) >= stop:
        return list(m.base[start:stop])
    ticks = np.arange(n)
    spy_log, vix_log = np.zeros(n), np.zeros(n)
    for s in shocks:
        after = ticks >= s.day
        spy_log[after] += s.spy_move
        vix_log[after] += math.log(s.vix_jump) * 0.5 ** ((ticks[after] - s.day) / s.half_life)
    feed, first_shock = m.feed, max(start, min(s.day for s in shocks))
    # The moves over every session the feed holds (warm-up included), for the rolling features.
    full = np.zeros(feed.dates.size)
    full[m.first :] = spy_log
    closes = {sym: feed.closes[sym] * np.exp(BETA.get(sym, 1.0) * full) for sym in BETA}
    rv = {sym: realized_vol_close(c, RV_WINDOW) for sym, c in closes.items()}
    beta = {sym: _beta(c, closes[BENCHMARK]) for sym, c in closes.items()}
    atm = {sym: feed.atm_iv[sym].copy() for sym in CHAINS}
    spec = feed.spec.chain
    for k in range(stop):  # each day's model ATM IV joins the history, as the feed's own does
        if vix_log[k] != 0.0:
            idx = _indices(_levels(feed, m.first + k), vix_log[k])
            for sym in CHAINS:
                atm[sym][m.first + k] = float(
                    implied_vols(symbol_indices(sym, idx, spec), 0.0, ATM_TENOR_YEARS, spec.surface)
                )
    out = list(m.base[start:first_shock])
    for k in range(first_shock, stop):
        i = m.first + k
        idx = _indices(_levels(feed, i), vix_log[k])
        prev = (spy_log[k - 1], vix_log[k - 1]) if k else (0.0, 0.0)
        moves = _Moves(spy_log[k], prev[0], vix_log[k], prev[1])
        out.append(_rebuild(m.base[k], idx, moves, feed, i, rv, beta, atm))
    return out


def _snapshot(feed: HistoryFeed, i: int) -> Snapshot:
    snap = feed.snapshot_at(i)
    assert snap is not None, "the generator writes a VIX close every session"
    return snap


def _levels(feed: HistoryFeed, i: int) -> VolIndices:
    levels = feed.levels[i]
    assert levels is not None, "the generator writes a VIX close every session"
    return levels


@dataclass(frozen=True)
class _Moves:
    spy: float  # SPY log move so far
    spy_prev: float  # … as of the previous tick
    vix: float  # VIX log jump in force
    vix_prev: float


def _beta(close: F64, bench: F64) -> F64:
    out: F64 = np.full(close.size, np.nan)
    out[1:] = rolling_beta(log_returns(close), log_returns(bench), BETA_WINDOW)
    return out


def _indices(x: VolIndices, vix_log: float) -> VolIndices:
    up, back = math.exp(vix_log), math.exp(VIX3M_SHARE * vix_log)
    return replace(
        x,
        vix=x.vix * up,
        vix9d=None if x.vix9d is None else x.vix9d * up,
        vix3m=None if x.vix3m is None else x.vix3m * back,
    )


def _rebuild(
    snap: Snapshot,
    idx: VolIndices,
    mv: _Moves,
    feed: HistoryFeed,
    i: int,
    rv: Mapping[str, F64],
    beta: Mapping[str, F64],
    atm: Mapping[str, F64],
) -> Snapshot:
    mk = snap.market
    jump = math.exp(mv.vix - mv.vix_prev)
    futures = {
        s: _future(f, BETA.get(FUTURE_OF.get(s, BENCHMARK), 1.0), mv) for s, f in mk.futures.items()
    }
    market = replace(
        mk,
        vix=idx.vix,
        vix9d=idx.vix9d,
        vix3m=idx.vix3m,
        vix_change_pct=None if mk.vix_change_pct is None else (1 + mk.vix_change_pct) * jump - 1,
        futures=futures,
    )
    spec = feed.spec.chain
    underlyings: dict[str, UnderlyingState] = {}
    chains = {}
    for sym, u in snap.underlyings.items():
        b = BETA.get(sym, 1.0)
        f, day = math.exp(b * mv.spy), math.exp(b * (mv.spy - mv.spy_prev))
        q = (u.dividend_yield or 0.0) / f  # trailing dividends over the moved price
        nu = replace(
            u,
            price=_times(u.price, f),
            open=_times(u.open, f),
            high=_times(u.high, f),
            low=_times(u.low, f),
            prev_close=_times(u.prev_close, f / day),
            change_pct=None if u.change_pct is None else (1 + u.change_pct) * day - 1,
            dividend_yield=q,
            realized_vol_20d=_finite(rv[sym][i]) if sym in rv else u.realized_vol_20d,
            beta=_finite(beta[sym][i]) if sym in beta else u.beta,
        )
        if sym in snap.chains and nu.price is not None:
            chain = synth_chain(sym, snap.time, nu.price, idx, q, spec)
            chains[sym] = chain
            history = UnderlyingHistory(atm_iv=atm[sym][:i])
            nu = enrich_underlying(nu, chain, history, snap.time, r=spec.rate, q=q)
        underlyings[sym] = nu
    return replace(snap, market=market, underlyings=underlyings, chains=chains)


def _future(f: FutureQuote, b: float, mv: _Moves) -> FutureQuote:
    level, day = math.exp(b * mv.spy), math.exp(b * (mv.spy - mv.spy_prev))
    change = None if f.change_pct is None else (1 + f.change_pct) * day - 1
    return replace(f, price=_times(f.price, level), change_pct=change)


def _times(x: float | None, factor: float) -> float | None:
    return None if x is None else x * factor


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# ---------------------------------------------------------------------------- engines


def make_engine(
    rs: RuleSet,
    *,
    cash: float = 100_000.0,
    sizing: Sizing | None = None,
    controls: Sequence[Control] = DEFAULT_CONTROLS,
    commands: Mapping[date, Command] | None = None,
) -> Engine:
    """The dry run's engine (`build_engine`, SimBroker at mid − 25%, traced), with its order
    flow rebuilt by the one factory when the sizing or the gate's controls differ."""
    source = Scripted(commands) if commands is not None else None
    engine = build_engine(rs, DEFAULT_FILL_MODEL, Costs(), cash, Level.FAILS, source)
    if sizing is not None or tuple(controls) != DEFAULT_CONTROLS:
        sizing = sizing or engine.config.sizing
        engine.config = replace(engine.config, sizing=sizing)
        engine.flow = build_order_flow(rs, sizing, max_loss_per_unit, controls)
    return engine


@dataclass(frozen=True)
class Scripted:
    """An operator who issues the given commands on the given days (a CommandSource)."""

    at: Mapping[date, Command]

    def poll(self, time: datetime) -> Command | None:
        return self.at.get(time.date())


def run(
    engine: Engine, snaps: Sequence[Snapshot], observe: Callable[[TickResult], None] | None = None
) -> list[TickResult]:
    """Step the engine through `snaps`. `observe` sees each tick as it completes: a check
    that reads `TickResult.marks` must run then, as their positions are the book's own
    (mutable) and change on later ticks."""
    out = []
    for s in snaps:
        out.append(engine.step(s))
        if observe is not None:
            observe(out[-1])
    return out
