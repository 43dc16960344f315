"""Snapshot enrichment: chain quotes to mid, IV and Greeks; chains and histories to features."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.kernels.bsm import bsm_greeks
from engine.kernels.features import (
    ATM_TARGET_T,
    FAR_TARGET_T,
    beta_weighted_delta,
    chain_features,
    iv_rank_percentile,
    log_returns,
    realized_vol_close,
    rolling_beta,
)
from engine.kernels.iv import implied_vol_from_quotes
from engine.state.snapshot import BENCHMARK, EXCHANGE_TZ, Chain, Snapshot, UnderlyingState

FloatArray = npt.NDArray[np.float64]

EXPIRY_CLOSE = time(16, 0)  # options stop trading at the 16:00 New York close on expiry day
SECONDS_PER_YEAR = 365.0 * 86400.0  # ACT/365
VOL_POINTS = 100.0  # Chain.vega is per vol point; the kernel's vega is per 1.00 vol
DAYS_PER_YEAR = 365.0  # Chain.theta is per calendar day; the kernel's theta is per year
IV_LOOKBACK = 252  # observations for IV rank / percentile (needs that many, see features)
RV_WINDOW = 20  # daily returns for realized_vol_20d
BETA_WINDOW = 252  # daily returns for beta against SPY


@dataclass(frozen=True, slots=True, kw_only=True)
class UnderlyingHistory:
    """Daily history of one underlying, oldest first, observations strictly before this tick.

    close: daily closes (price); close of the last full session last. Realized vol and beta use
      these only, so an intraday price never mixes a partial day into a daily series.
    atm_iv: daily 30-day ATM IV (fraction); the tick's own ATM IV is appended as the current
      observation for IV rank and percentile.
    For beta, the benchmark's closes and these are matched on their last observations, so both
    must end on the same session.
    """

    close: FloatArray | None = None
    atm_iv: FloatArray | None = None


def _check_aware(asof: datetime) -> None:
    if asof.tzinfo is None or asof.utcoffset() is None:
        raise ValueError("asof must be timezone-aware (exchange time)")


def year_fractions(expiry: npt.NDArray[np.datetime64], asof: datetime) -> FloatArray:
    """Years (ACT/365) from `asof` to each expiry's 16:00 America/New_York close.

    DST-correct: each close is localised on its own date. Past expiries give T <= 0, which the
    kernels turn into NaN.
    """
    _check_aware(asof)
    exp = np.asarray(expiry, dtype="datetime64[D]")
    uniq, inverse = np.unique(exp, return_inverse=True)
    t = np.empty(uniq.size)
    start = asof.astimezone(UTC)
    for i, d in enumerate(uniq.tolist()):
        # Through UTC: Python subtracts datetimes sharing a tzinfo as wall-clock times, which
        # would ignore a DST change between asof and expiry.
        close = datetime.combine(d, EXPIRY_CLOSE, tzinfo=EXCHANGE_TZ).astimezone(UTC)
        t[i] = (close - start).total_seconds() / SECONDS_PER_YEAR
    return np.asarray(t[inverse.ravel()], dtype=np.float64)


def enrich_chain(chain: Chain, spot: float | None, asof: datetime, r: float, q: float) -> Chain:
    """The chain with iv, delta, gamma, vega and theta computed from its bid/ask mids.

    IV by `implied_vol_from_quotes` (European BSM, continuous r and q, T to the 16:00 New York
    close in ACT/365 years), Greeks by `bsm_greeks` at that IV, converted to the Chain's units:
    delta per share, gamma per $1, vega per vol point, theta per calendar day. Rows whose
    quotes cannot be inverted (crossed, empty, below intrinsic, expired) keep what the feed
    supplied, which is usually NaN. Without a usable spot the chain is returned unchanged.
    """
    _check_aware(asof)
    if len(chain) == 0 or spot is None or not (math.isfinite(spot) and spot > 0):
        return chain
    t = year_fractions(chain.expiry, asof)
    iv = np.asarray(
        implied_vol_from_quotes(chain.bid, chain.ask, chain.is_call, spot, chain.strike, t, r, q),
        dtype=np.float64,
    )
    g = bsm_greeks(chain.is_call, spot, chain.strike, t, r, q, iv)
    ok = np.isfinite(iv)

    def fill(computed: npt.ArrayLike, old: FloatArray) -> FloatArray:
        return np.where(ok, np.asarray(computed, dtype=np.float64), old)

    return dataclasses.replace(
        chain,
        iv=fill(iv, chain.iv),
        delta=fill(g.delta, chain.delta),
        gamma=fill(g.gamma, chain.gamma),
        vega=fill(np.asarray(g.vega) / VOL_POINTS, chain.vega),
        theta=fill(np.asarray(g.theta) / DAYS_PER_YEAR, chain.theta),
    )


def _last(x: FloatArray) -> float:
    return float(x[-1]) if x.size else math.nan


def _align_tail(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = min(a.size, b.size)
    return a[a.size - n :], b[b.size - n :]


def enrich_underlying(
    u: UnderlyingState,
    chain: Chain | None,
    history: UnderlyingHistory | None,
    asof: datetime,
    *,
    r: float = 0.0,
    q: float | None = None,
    benchmark_close: npt.ArrayLike | None = None,
) -> UnderlyingState:
    """The underlying with its volatility features filled from its chain and history.

    `chain` should already be enriched (`enrich_chain`): features read its iv and delta
    columns. Forwards are price * exp((r - q) T), q defaulting to the underlying's dividend
    yield. Fills (fractions and ratios as engine/dsl/vocab.py reads them):
      atm_iv, iv_30d      - 30-day ATM IV (total-variance interpolation between expiries)
      skew_25d_ratio      - 25-delta put IV / 25-delta call IV, 30 days
      risk_reversal_25d   - 25-delta call IV - put IV, 30 days
      skew_slope          - dIV / d ln(K/F) near the money, 30 days
      term_slope          - 30-day ATM IV / 90-day ATM IV
      iv_rank, iv_percentile - of the current ATM IV within history.atm_iv + [current]
      realized_vol_20d    - close-to-close, from history.close
      beta                - against `benchmark_close` (SPY closes), from history.close
    A feature is replaced only by a finite computed value; when its inputs are missing or it
    comes out NaN, whatever the feed supplied is kept.
    """
    _check_aware(asof)
    new: dict[str, float] = {}
    qq = q if q is not None else (u.dividend_yield or 0.0)
    price = u.price
    if chain is not None and len(chain) and price is not None and math.isfinite(price):
        t = year_fractions(chain.expiry, asof)
        fwd = price * np.exp((r - qq) * t)
        cf = chain_features(
            t, chain.strike, chain.is_call, chain.iv, chain.delta, fwd,
            target_t=ATM_TARGET_T, far_t=FAR_TARGET_T,
        )  # fmt: skip
        new |= {
            "atm_iv": cf.atm_iv,
            "iv_30d": cf.atm_iv,
            "skew_25d_ratio": cf.skew_25d_ratio,
            "risk_reversal_25d": cf.risk_reversal_25d,
            "skew_slope": cf.skew_slope,
            "term_slope": cf.term_slope,
        }
    current_iv = new.get("atm_iv", math.nan)
    if not math.isfinite(current_iv) and u.atm_iv is not None:
        current_iv = u.atm_iv  # the feed's ATM IV when the chain gives none
    if history is not None and history.atm_iv is not None and math.isfinite(current_iv):
        past = np.asarray(history.atm_iv, dtype=np.float64).ravel()[-(IV_LOOKBACK - 1) :]
        rank, pct = iv_rank_percentile(np.append(past, current_iv), IV_LOOKBACK)
        new |= {"iv_rank": _last(rank), "iv_percentile": _last(pct)}
    if history is not None and history.close is not None:
        close = np.asarray(history.close, dtype=np.float64).ravel()
        new["realized_vol_20d"] = _last(realized_vol_close(close[-(RV_WINDOW + 1) :], RV_WINDOW))
        if benchmark_close is not None:
            bench = np.asarray(benchmark_close, dtype=np.float64).ravel()
            a, b = _align_tail(close[-(BETA_WINDOW + 1) :], bench[-(BETA_WINDOW + 1) :])
            new["beta"] = _last(rolling_beta(log_returns(a), log_returns(b), BETA_WINDOW))
    if q is not None and u.dividend_yield is None:
        new["dividend_yield"] = q
    keep: dict[str, Any] = {k: v for k, v in new.items() if math.isfinite(v)}
    return dataclasses.replace(u, **keep) if keep else u


def enrich_snapshot(
    snap: Snapshot,
    histories: Mapping[str, UnderlyingHistory],
    r: float,
    q_by_symbol: Mapping[str, float],
) -> Snapshot:
    """The snapshot with every chain priced (`enrich_chain`) and every underlying's features
    filled (`enrich_underlying`) at snap.time; beta is against histories["SPY"].close.

    q per symbol comes from `q_by_symbol`, else the underlying's dividend yield, else 0. The
    portfolio's bw_delta_spy is filled when the feed left it unknown and every position's
    delta, beta and price (and SPY's price) are known: sum delta x beta x price / SPY price.
    """
    bench_hist = histories.get(BENCHMARK)
    bench = bench_hist.close if bench_hist is not None else None
    chains = dict(snap.chains)
    underlyings = dict(snap.underlyings)
    for sym in sorted(set(chains) | set(underlyings)):
        u = underlyings.get(sym)
        q = q_by_symbol.get(sym)
        q_eff = q if q is not None else ((u.dividend_yield if u else None) or 0.0)
        spot = u.price if u is not None else None
        if sym in chains:
            chains[sym] = enrich_chain(chains[sym], spot, snap.time, r, q_eff)
        if u is not None:
            underlyings[sym] = enrich_underlying(
                u, chains.get(sym), histories.get(sym), snap.time, r=r, q=q, benchmark_close=bench
            )
    portfolio = snap.portfolio
    if portfolio.bw_delta_spy is None and snap.positions:
        bw = _bw_delta(snap, underlyings)
        if math.isfinite(bw):
            portfolio = dataclasses.replace(portfolio, bw_delta_spy=bw)
    return dataclasses.replace(snap, chains=chains, underlyings=underlyings, portfolio=portfolio)


def _bw_delta(snap: Snapshot, underlyings: Mapping[str, UnderlyingState]) -> float:
    spy = underlyings.get(BENCHMARK)
    rows: list[tuple[float, float, float]] = []
    for p in snap.positions:
        u = underlyings.get(p.symbol)
        if u is None or p.delta is None or u.beta is None or u.price is None:
            return math.nan
        rows.append((p.delta, u.beta, u.price))
    if spy is None or spy.price is None:
        return math.nan
    d, b, px = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    return beta_weighted_delta(d, b, px, spy.price)
