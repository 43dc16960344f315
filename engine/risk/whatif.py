"""What-if limits: the portfolio as it would be after a proposed order, against every limit.

The limits are the trader's, in risk_policies/limits.v6; the check evaluates them (compiled,
traced: `CompiledProgram.limits`) on a hypothetical portfolio, the current one plus the order
and the orders passed before it this tick. An order's impact comes from its legs' Greeks in the
tick's chain (a closing leg is a leg with the opposite ratio, so rolls and adjustments need no
special case). A limit's size of breach is the distance of its failed conditions to their
thresholds; an order is refused when it breaches a limit that held, or takes a breached limit
further beyond. Closes passed earlier in the tick move the Greeks (a hedge after them is sized
net of them, and checked so) but keep their position counted and their buying power used
until filled: the broker may still refuse them, so counts and margin stay on the safe side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any

from engine.dsl.ruleset import RuleSet
from engine.dsl.runtime import empty_underlying, position_counts
from engine.dsl.trace import BlockInfo, Level, RuleTrace, distance, fmt_value, rule_trace
from engine.execution.fill_models import QuoteBook
from engine.execution.orders import Order
from engine.portfolio.marks import Mark, mark_contracts
from engine.risk.exposure import Cluster
from engine.state.snapshot import BENCHMARK, MarketState, PortfolioState, RiskState, Snapshot

Counts = Mapping[tuple[str | None, str | None], int]


@dataclass(frozen=True, slots=True)
class Impact:
    """What one order adds to the portfolio. Greeks in the units of PortfolioState; None
    where a leg has no price (the limits reading it become unknown: breached)."""

    opens: bool  # a new position (counted in open_positions and count_positions)
    symbol: str
    strategy: str | None
    delta: float | None
    gamma: float | None
    vega: float | None
    theta: float | None
    bw_delta: float | None  # SPY share-equivalents
    margin_usd: float  # buying power it takes
    usd_per_pct: float | None = None  # dollar delta per 1% move of its underlying


def order_impact(
    order: Order, view: Snapshot, margin_usd: float = 0.0, book: QuoteBook | None = None
) -> Impact:
    marks = mark_contracts(view, [leg.contract for leg in order.legs], book)
    greeks: list[float | None] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    for leg, m in zip(order.legs, marks, strict=True):
        n = leg.ratio * order.quantity * leg.contract.multiplier
        c = leg.contract
        factor = _bw_factor(view, c.symbol, c.kind)
        for i, value in enumerate(_leg_greeks(m, factor, _price(view, c.symbol, c.kind))):
            g = greeks[i]
            greeks[i] = None if g is None or value is None else g + n * value
    delta, gamma, vega, theta, bw, usd = greeks
    opens = order.intent == "open"
    return Impact(opens, order.symbol, order.strategy, delta, gamma, vega, theta, bw, margin_usd,
                  usd)  # fmt: skip


def _leg_greeks(
    m: Mark | None, bw_factor: float | None, price: float | None
) -> tuple[float | None, ...]:
    if m is None:
        return (None,) * 6
    bw = None if bw_factor is None else m.delta * bw_factor
    usd = None if price is None else m.delta * price / 100.0
    return m.delta, m.gamma, m.vega, m.theta, bw, usd


def _price(view: Snapshot, symbol: str, kind: str) -> float | None:
    """The underlying's price per share (a future's: in index points)."""
    if kind == "future":
        fut = view.market.futures.get(symbol)
        return None if fut is None else fut.price
    u = view.underlyings.get(symbol)
    return None if u is None else u.price


def _bw_factor(view: Snapshot, symbol: str, kind: str) -> float | None:
    """SPY share-equivalents per share-equivalent of `symbol`: beta × price / SPY price."""
    spy = view.underlyings.get(BENCHMARK)
    price = _price(view, symbol, kind)
    if kind == "future":
        beta = 1.0
    else:
        u = view.underlyings.get(symbol)
        beta = 1.0 if symbol == BENCHMARK or u is None or u.beta is None else u.beta
    if spy is None or not spy.price or not price:
        return None
    return beta * price / spy.price


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


@dataclass(frozen=True)
class Pending:
    """The portfolio as it would be after the orders passed so far this tick."""

    portfolio: PortfolioState
    counts: Counts  # position counts by (strategy, symbol) shape, as the rules count them
    cluster: Cluster | None = None  # the index cluster's exposure (None: unknown)

    def plus(self, imp: Impact, shapes: frozenset[tuple[bool, bool]]) -> Pending:
        pf = self.portfolio
        counts = dict(self.counts)
        by_symbol, by_strategy = dict(pf.positions_by_symbol), dict(pf.positions_by_strategy)
        opened = 0
        if imp.opens:
            opened = 1
            position_counts([(imp.strategy, imp.symbol)], shapes, into=counts)
            by_symbol[imp.symbol] = by_symbol.get(imp.symbol, 0) + 1
            if imp.strategy is not None:
                by_strategy[imp.strategy] = by_strategy.get(imp.strategy, 0) + 1
        cluster = self.cluster
        if cluster is not None:
            cluster = None if imp.usd_per_pct is None else cluster.plus(imp.symbol, imp.usd_per_pct)
        exposure = None if cluster is None else cluster.exposure
        used = _plus(pf.buying_power_used, imp.margin_usd)
        net_liq = pf.net_liq
        after = _evolve(
            pf,
            open_positions=pf.open_positions + opened,
            positions_by_symbol=MappingProxyType(by_symbol),
            positions_by_strategy=MappingProxyType(by_strategy),
            delta=_plus(pf.delta, imp.delta),
            gamma=_plus(pf.gamma, imp.gamma),
            vega=_plus(pf.vega, imp.vega),
            theta=_plus(pf.theta, imp.theta),
            bw_delta_spy=_plus(pf.bw_delta_spy, imp.bw_delta),
            buying_power_used=used,
            buying_power_available=None if used is None or net_liq is None else net_liq - used,
            margin_used_pct=None if used is None or net_liq is None or net_liq <= 0
            else used / net_liq,
            cluster_delta=None if exposure is None or math.isnan(exposure) else exposure,
        )
        return Pending(after, counts, cluster)


_PF_FIELDS = tuple(f.name for f in fields(PortfolioState))


def _evolve(pf: PortfolioState, **changes: Any) -> PortfolioState:
    """`dataclasses.replace` without re-validating: every value here is already a plain float,
    int or dict, and this runs once per order per tick (a fifth of the what-if's time)."""
    new = object.__new__(PortfolioState)
    for name in _PF_FIELDS:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(pf, name))
    return new


@dataclass(frozen=True, slots=True)
class Breach:
    limit: str
    size: float  # distance beyond the threshold, summed over failed conditions; inf: unknown
    block: BlockInfo
    record: tuple[Any, ...]  # the raw trace record; turned into words only when explained

    @property
    def trace(self) -> RuleTrace:
        return rule_trace(self.block, self.record, Level.FULL)

    def explain(self) -> str:
        t = self.trace
        failed = [c for c in t.conditions if c.result is not True]
        if not failed:
            return f"limit {self.limit} cannot be evaluated ({t.note})"
        c = failed[0]
        values = ", ".join(f"{o.text} = {o.shown()}" for o in c.operands)
        how = "unknown" if c.result is None else f"fails by {_amount(c.distance, c.distance_unit)}"
        return f"`{c.text}` {how} ({values}) [{c.location}]"


def _amount(distance: float | None, unit: str) -> str:
    if distance is None:
        return "a non-numeric condition"
    return fmt_value(abs(distance), unit)


class _View:
    """What the limits read of a snapshot."""

    __slots__ = ("market", "portfolio", "risk", "underlyings")

    def __init__(self, market: MarketState, portfolio: PortfolioState, risk: RiskState,
                 underlyings: Mapping[str, Any]) -> None:  # fmt: skip
        self.market, self.portfolio, self.risk, self.underlyings = (
            market, portfolio, risk, underlyings)  # fmt: skip


class _Context:
    """What the limits read of a tick context (engine.dsl.runtime.TickContext)."""

    __slots__ = ("counts", "empty_u", "hash", "time")

    def __init__(self, counts: Counts, empty_u: Any, hash_: str, time: datetime) -> None:
        self.counts, self.empty_u, self.hash, self.time = counts, empty_u, hash_, time


class LimitsCheck:
    """Every limit of one rule set, evaluated on a hypothetical portfolio."""

    def __init__(self, rs: RuleSet) -> None:
        self.rs = rs
        self.shapes = rs.compiled.count_keys
        self._fn = rs.compiled.limits
        self._blocks = rs.compiled.blocks
        self._empty = empty_underlying()

    def counts(self, view: Snapshot) -> dict[tuple[str | None, str | None], int]:
        """Position counts by the (strategy, symbol) shapes the limits read, as the tick
        context counts them; from the portfolio's tallies when no shape needs both."""
        pf = view.portfolio
        if (True, True) not in self.shapes and pf.open_positions == len(view.positions):
            quick: dict[tuple[str | None, str | None], int] = {}
            if (False, False) in self.shapes and pf.open_positions:
                quick[(None, None)] = pf.open_positions
            if (False, True) in self.shapes:
                quick.update({(None, s): n for s, n in pf.positions_by_symbol.items()})
            if (True, False) in self.shapes:
                quick.update({(s, None): n for s, n in pf.positions_by_strategy.items()})
            return quick
        return position_counts(((p.strategy, p.symbol) for p in view.positions), self.shapes)

    def breaches(self, view: Snapshot, pending: Pending) -> dict[str, Breach]:
        """Limit id → how far beyond it `pending` would be; limits that hold are absent."""
        records: list[tuple[Any, ...]] = []
        s = _View(view.market, pending.portfolio, view.risk, view.underlyings)
        x = _Context(pending.counts, self._empty, self.rs.hash, view.time)
        self._fn(s, x, records.append)
        out = {}
        for rec in records:
            if rec[0] == "e" and all(r is True for r in rec[3]):
                continue
            block = self._blocks[rec[1]]
            out[block.id] = Breach(block.id, _size(block, rec), block, rec)
        return out


def _size(block: BlockInfo, rec: tuple[Any, ...]) -> float:
    """Summed distance of the failed conditions to their thresholds, from the raw record."""
    if rec[0] != "e":
        return math.inf
    total = 0.0
    for info, result, values in zip(block.conditions, rec[3], rec[4], strict=True):
        if result is None:
            return math.inf
        if result is False:
            d = distance(info, values)
            total += abs(d) if d is not None else 1.0
    return total


def violations(before: Mapping[str, Breach], after: Mapping[str, Breach]) -> list[str]:
    """Why the order is refused: the first limit it would breach (or take further beyond)
    explained with its values, then every other one by name and amount. Explaining costs more
    than checking, so only the first is spelled out."""
    worse: list[tuple[str, Breach, Breach | None]] = []
    for limit, b in after.items():
        was = before.get(limit)
        # Unknown after the order counts as breached, already-unknown included: fail closed.
        if was is None or math.isinf(b.size) or b.size > was.size + 1e-9 * max(1.0, was.size):
            worse.append((limit, b, was))
    if not worse:
        return []
    limit, b, was = worse[0]
    how = "would breach limit" if was is None or math.isinf(b.size) else "would take limit"
    beyond = "" if was is None or math.isinf(b.size) else " further beyond"
    out = [f"{how} {limit}{beyond}: {b.explain()}"]
    for limit, b, was in worse[1:]:
        if was is None:
            out.append(f"also breach {limit}" + ("" if math.isinf(b.size) else f" by {b.size:g}"))
        elif math.isinf(b.size):
            out.append(f"also {limit} still unknown")
        else:
            out.append(f"also {limit} further by {b.size - was.size:g}")
    return out
