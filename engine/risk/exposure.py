"""Portfolio exposure on arrays: Greeks per underlying and in total, beta-weighted delta,
buying power, concentration, and correlation-adjusted exposure of a cluster of underlyings.

Pure and vectorised (np.bincount over leg rows), so the same function answers "what is the
portfolio now" and "what would it be after this order" — the order's legs are just more rows.
Units: delta and gamma in share-equivalents (gamma per $1), vega USD per vol point, theta USD
per calendar day, money in USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.state.snapshot import BENCHMARK, Snapshot

F64 = npt.NDArray[np.float64]
# The index ETFs that move together, and the futures that stand for them in the cluster.
CLUSTER = ("SPY", "QQQ", "IWM")
FUTURE_PROXY = {"ES": "SPY", "NQ": "QQQ", "RTY": "IWM"}


@dataclass(frozen=True)
class LegRows:
    """Every held (or proposed) leg as one row. `underlying` indexes `Market.symbols`."""

    underlying: npt.NDArray[np.intp]
    quantity: F64  # signed contracts (or shares) in the whole position
    multiplier: F64  # 100 for options, 1 for shares, 50 for ES …
    delta: F64  # per share (shares and futures: 1)
    gamma: F64  # per $1, per share
    vega: F64  # price per vol point, per share
    theta: F64  # price per calendar day, per share

    def __post_init__(self) -> None:
        n = {a.shape for a in (self.underlying, self.quantity, self.multiplier, self.delta,
                               self.gamma, self.vega, self.theta)}  # fmt: skip
        if len(n) != 1:
            raise ValueError(f"leg columns must have equal length, got shapes {sorted(n)}")

    def __add__(self, other: LegRows) -> LegRows:
        """These legs and `other`'s: the portfolio after an order."""
        return LegRows(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in _FIELDS))


_FIELDS = ("underlying", "quantity", "multiplier", "delta", "gamma", "vega", "theta")


@dataclass(frozen=True)
class Market:
    """Per underlying: price (per share, or index points for a future) and beta to SPY."""

    symbols: tuple[str, ...]
    price: F64
    beta: F64  # NaN: unknown, counted as 1 (and reported)


@dataclass(frozen=True)
class Exposure:
    """Arrays are per underlying, in `Market.symbols` order; `total_*` sums them."""

    symbols: tuple[str, ...]
    delta: F64
    gamma: F64
    vega: F64
    theta: F64
    dollar_delta: F64  # USD per 1.00 (100%) move of the underlying: delta × price
    bw_delta: F64  # SPY share-equivalents
    beta_guessed: npt.NDArray[np.bool_]

    @property
    def total_bw_delta(self) -> float:
        return float(self.bw_delta.sum())

    @property
    def total_vega(self) -> float:
        return float(self.vega.sum())

    @property
    def total_theta(self) -> float:
        return float(self.theta.sum())

    def of(self, symbol: str) -> dict[str, float]:
        i = self.symbols.index(symbol)
        return {
            "delta": float(self.delta[i]),
            "gamma": float(self.gamma[i]),
            "vega": float(self.vega[i]),
            "theta": float(self.theta[i]),
            "bw_delta": float(self.bw_delta[i]),
        }


def exposure(legs: LegRows, market: Market) -> Exposure:
    """Greeks per underlying and beta-weighted delta, in one pass over the leg rows."""
    n = len(market.symbols)
    size = legs.quantity * legs.multiplier
    idx = legs.underlying

    def per(values: F64) -> F64:
        return np.bincount(idx, weights=size * values, minlength=n)[:n].astype(np.float64)

    delta, gamma, vega, theta = per(legs.delta), per(legs.gamma), per(legs.vega), per(legs.theta)
    guessed = np.isnan(market.beta)
    beta = np.where(guessed, 1.0, market.beta)
    dollar = delta * market.price
    spy = market.symbols.index(BENCHMARK) if BENCHMARK in market.symbols else -1
    spy_price = market.price[spy] if spy >= 0 else np.nan
    bw = dollar * beta / spy_price if np.isfinite(spy_price) and spy_price > 0 else dollar * np.nan
    return Exposure(market.symbols, delta, gamma, vega, theta, dollar, bw, guessed)


def concentration(margin_by_underlying: F64) -> F64:
    """Each underlying's share of the buying power in use (0 where nothing is used)."""
    total = float(margin_by_underlying.sum())
    return margin_by_underlying / total if total > 0 else np.zeros_like(margin_by_underlying)


def single_index_correlation(beta: F64, vol: F64, market_vol: float) -> F64:
    """Return correlations under the single-index model: ρᵢⱼ = βᵢ βⱼ σₘ² / (σᵢ σⱼ), clipped to
    [-1, 1], with 1 on the diagonal. Betas are the snapshot's rolling betas against SPY, vols
    the 20-day realized vols: the two windows differ, hence the clip."""
    rho = np.outer(beta, beta) * market_vol**2 / np.outer(vol, vol)
    rho = np.clip(rho, -1.0, 1.0)
    np.fill_diagonal(rho, 1.0)
    return rho


@dataclass(frozen=True)
class Cluster:
    """The index cluster's dollar delta per 1% move, per symbol, and their correlations (NaN
    where a beta or vol is unknown). A correlation is used only between two held symbols, so
    an unknown one matters only then."""

    symbols: tuple[str, ...]
    usd_per_pct: F64
    correlation: F64

    @classmethod
    def of(cls, symbols: tuple[str, ...], usd_per_pct: F64, beta: F64, vol: F64,
           market_vol: float) -> Cluster:  # fmt: skip
        """Correlations from betas and vols once per tick; orders then only move `x`."""
        return cls(symbols, usd_per_pct, single_index_correlation(beta, vol, market_vol))

    @property
    def exposure(self) -> float:
        """USD per 1% move of the cluster, correlation-adjusted: sqrt(xᵀ C x); NaN when two
        held symbols have no known correlation."""
        x = self.usd_per_pct
        held = np.flatnonzero(x)
        if held.size <= 1:
            return float(np.abs(x).sum())
        xs = x[held]
        q = float(xs @ self.correlation[held][:, held] @ xs)
        return q if math.isnan(q) else float(np.sqrt(max(0.0, q)))  # NaN: unknown

    def plus(self, symbol: str, usd_per_pct: float) -> Cluster:
        """The cluster with `usd_per_pct` more on `symbol` (a future counts for its ETF)."""
        symbol = FUTURE_PROXY.get(symbol, symbol)
        if symbol not in self.symbols or usd_per_pct == 0.0:
            return self
        x = self.usd_per_pct.copy()
        x[self.symbols.index(symbol)] += usd_per_pct
        return Cluster(self.symbols, x, self.correlation)


def cluster_of(ex: Exposure, snap: Snapshot) -> Cluster | None:
    """The cluster of `ex` at `snap`; None when a held cluster symbol has no price (the limit
    reading it then fails closed)."""
    x = np.zeros(len(CLUSTER))
    for i, s in enumerate(ex.symbols):
        j = CLUSTER.index(FUTURE_PROXY.get(s, s)) if FUTURE_PROXY.get(s, s) in CLUSTER else -1
        if j >= 0 and ex.delta[i] != 0.0:
            if not np.isfinite(ex.dollar_delta[i]):
                return None  # held, but no price: unknown
            x[j] += ex.dollar_delta[i] / 100.0
    beta, vol = np.full(len(CLUSTER), np.nan), np.full(len(CLUSTER), np.nan)
    for j, s in enumerate(CLUSTER):
        u = snap.underlyings.get(s)
        b = 1.0 if s == BENCHMARK else (None if u is None else u.beta)
        v = None if u is None else u.realized_vol_20d
        if b is not None:
            beta[j] = b
        if v is not None and v > 0:
            vol[j] = v
    spy = snap.underlyings.get(BENCHMARK)
    market_vol = float("nan")
    if spy is not None and spy.realized_vol_20d is not None and spy.realized_vol_20d > 0:
        market_vol = spy.realized_vol_20d
    return Cluster.of(CLUSTER, x, beta, vol, market_vol)
