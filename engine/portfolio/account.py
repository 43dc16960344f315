"""Account-wide values from the marked book: net liq, day P&L, drawdown, Greeks, buying power.

Beta-weighted delta converts each underlying's share-equivalent delta into SPY shares:
delta × beta × price / SPY price, with beta from the snapshot (rolling, against SPY). An
underlying without a known beta counts at beta 1, and the count of such guesses is returned
so that the journal can show it rather than hide it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.portfolio.book import Book, HeldPosition, PositionMark
from engine.risk.exposure import Cluster, LegRows, Market, cluster_of, exposure
from engine.state.snapshot import BENCHMARK, PortfolioState, Snapshot

MarginFn = Callable[[HeldPosition, PositionMark, Snapshot], float]


@dataclass(frozen=True, slots=True)
class AccountView:
    portfolio: PortfolioState
    net_liq: float  # USD
    hedge_shares: float  # SPY shares held as a hedge
    beta_guesses: int  # underlyings counted at beta 1 for lack of a rolling beta
    cluster: Cluster | None  # the index cluster's exposure; None: a vol or beta unknown


def account_view(
    book: Book, marks: Sequence[PositionMark], snap: Snapshot, margin: MarginFn
) -> AccountView:
    """The account after marking: Greeks per underlying and beta-weighted delta in one
    vectorised pass over the positions (engine.risk.exposure), margin per position."""
    net_liq = book.net_liq(marks)
    day_pnl = net_liq - book.prev_close_net_liq
    peak = max(book.peak_net_liq, net_liq)
    ex = exposure(*_rows(marks, snap))
    cluster = cluster_of(ex, snap)
    spy = snap.underlyings.get(BENCHMARK)
    bw: float | None = None
    unpriced = bool((~np.isfinite(ex.bw_delta) & (ex.delta != 0.0)).any())
    if spy is not None and spy.price and not unpriced:
        # A held underlying without a price makes it unknown: the limits then fail closed.
        bw = float(np.nansum(ex.bw_delta))
    used = sum(margin(m.held, m, snap) for m in marks)
    hedge_shares = sum(
        m.held.legs[0].per_unit
        for m in marks
        if m.held.is_hedge and m.held.symbol == BENCHMARK and m.held.legs
    )
    counts = Counter(m.held.symbol for m in marks if not m.held.is_hedge)
    strategies = Counter(m.held.strategy for m in marks if not m.held.is_hedge)
    portfolio = PortfolioState(
        net_liq=net_liq,
        cash=book.cash,
        peak_net_liq=peak,
        day_pnl=day_pnl,
        day_pnl_pct=day_pnl / book.prev_close_net_liq if book.prev_close_net_liq > 0 else None,
        drawdown_pct=max(0.0, 1.0 - net_liq / peak) if peak > 0 else None,
        open_positions=sum(counts.values()),
        positions_by_symbol=dict(counts),
        positions_by_strategy=dict(strategies),
        bw_delta_spy=bw,
        delta=float(ex.delta.sum()),
        gamma=float(ex.gamma.sum()),
        vega=ex.total_vega,
        theta=ex.total_theta,
        buying_power_used=used,
        buying_power_available=net_liq - used,
        margin_used_pct=used / net_liq if net_liq > 0 else None,
        cluster_delta=_known(cluster),
    )
    guesses = int((ex.beta_guessed & (ex.delta != 0.0)).sum())
    return AccountView(portfolio, net_liq, hedge_shares, guesses, cluster)


def _known(cluster: Cluster | None) -> float | None:
    """The cluster's exposure, None when unknown (no price, or no correlation for a pair)."""
    if cluster is None:
        return None
    value = cluster.exposure
    return value if math.isfinite(value) else None


def _rows(marks: Sequence[PositionMark], snap: Snapshot) -> tuple[LegRows, Market]:
    """One row per position (its Greeks already summed over legs), and per underlying its
    price and beta; an index future is priced in points at beta 1."""
    symbols = sorted({m.held.symbol for m in marks} | {BENCHMARK})
    at = {s: i for i, s in enumerate(symbols)}
    price = np.full(len(symbols), np.nan)
    beta = np.full(len(symbols), np.nan)
    for i, s in enumerate(symbols):
        fut = snap.market.futures.get(s)
        u = snap.underlyings.get(s)
        if u is None and fut is not None:
            price[i], beta[i] = (np.nan if fut.price is None else fut.price), 1.0
        elif u is not None:
            price[i] = np.nan if u.price is None else u.price
            beta[i] = 1.0 if s == BENCHMARK else (np.nan if u.beta is None else u.beta)
    n = len(marks)

    def col(attr: str) -> npt.NDArray[np.float64]:
        return np.fromiter((getattr(m, attr) for m in marks), np.float64, n)

    ones = np.ones(n)
    rows = LegRows(
        np.fromiter((at[m.held.symbol] for m in marks), np.intp, n),
        ones, ones, col("delta"), col("gamma"), col("vega"), col("theta"),
    )  # fmt: skip
    return rows, Market(tuple(symbols), price, beta)
