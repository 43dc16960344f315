"""Account-wide values from the marked book: net liq, day P&L, drawdown, Greeks, buying power.

Beta-weighted delta converts each underlying's share-equivalent delta into SPY shares:
delta × beta × price / SPY price, with beta from the snapshot (rolling, against SPY). An
underlying without a known beta counts at beta 1, and the count of such guesses is returned
so that the journal can show it rather than hide it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.portfolio.book import Book, HeldPosition, PositionMark
from engine.state.snapshot import BENCHMARK, PortfolioState, Snapshot

MarginFn = Callable[[HeldPosition, PositionMark, Snapshot], float]


@dataclass(frozen=True, slots=True)
class AccountView:
    portfolio: PortfolioState
    net_liq: float  # USD
    hedge_shares: float  # SPY shares held as a hedge
    beta_guesses: int  # underlyings counted at beta 1 for lack of a rolling beta


def beta_weighted_delta(m: PositionMark, snap: Snapshot) -> tuple[float, bool] | None:
    """The position's delta in SPY share-equivalents, and whether its beta was guessed (1);
    None without a SPY price or the position's own price."""
    spy = snap.underlyings.get(BENCHMARK)
    spy_price = spy.price if spy is not None else None
    h = m.held
    u = snap.underlyings.get(h.symbol)
    price = u.price if u is not None else None
    beta = 1.0 if h.symbol == BENCHMARK else (u.beta if u is not None else None)
    if h.legs and h.legs[0].contract.kind == "future":
        # An index future's delta is in index units: its dollar delta over SPY's price.
        fut = snap.market.futures.get(h.symbol)
        price, beta = (fut.price if fut is not None else None), 1.0
    if not spy_price or not price:
        return None
    return m.delta * (beta if beta is not None else 1.0) * price / spy_price, beta is None


def account_view(
    book: Book, marks: Sequence[PositionMark], snap: Snapshot, margin: MarginFn
) -> AccountView:
    net_liq = book.net_liq(marks)
    day_pnl = net_liq - book.prev_close_net_liq
    peak = max(book.peak_net_liq, net_liq)
    spy = snap.underlyings.get(BENCHMARK)
    spy_price = spy.price if spy is not None else None
    bw = 0.0 if spy_price else None
    guesses = 0
    hedge_shares = 0.0
    used = 0.0
    delta = gamma = vega = theta = 0.0
    for m in marks:
        delta += m.delta
        gamma += m.gamma
        vega += m.vega
        theta += m.theta
        h = m.held
        used += margin(h, m, snap)
        if h.is_hedge and h.symbol == BENCHMARK and h.legs:
            hedge_shares += h.legs[0].per_unit
        if bw is not None:
            weighted = beta_weighted_delta(m, snap)
            if weighted is not None:
                bw += weighted[0]
                guesses += weighted[1]
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
        delta=delta,
        gamma=gamma,
        vega=vega,
        theta=theta,
        buying_power_used=used,
        buying_power_available=net_liq - used,
        margin_used_pct=used / net_liq if net_liq > 0 else None,
    )
    return AccountView(portfolio, net_liq, hedge_shares, guesses)
