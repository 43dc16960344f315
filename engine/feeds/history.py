"""Feed of end-of-day snapshots from a market store, with option chains synthesised per day."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.kernels.vol_features import log_returns, realized_vol_close, rolling_beta
from engine.market.bars import KIND_FUTURE, KIND_INDEX, KIND_UNDERLYING
from engine.market.store import MarketStore
from engine.market.surface import VolIndices, implied_vols
from engine.market.synth_chain import (
    ChainSpec,
    chain_table,
    symbol_indices,
    synth_chain,
    write_chain,
)
from engine.state.enrich import (
    BETA_WINDOW,
    IV_LOOKBACK,
    RV_WINDOW,
    UnderlyingHistory,
    enrich_underlying,
)
from engine.state.snapshot import (
    BENCHMARK,
    EXCHANGE_TZ,
    Chain,
    FutureQuote,
    MarketState,
    Snapshot,
    UnderlyingState,
)

VOL_FIELDS = {"VIX": "vix", "VIX9D": "vix9d", "VIX3M": "vix3m", "VVIX": "vvix", "SKEW": "skew"}
FUTURES = ("ES", "NQ", "RTY")
ATM_TENOR_YEARS = 30 / 365
# Closes loaded before `start`, so that IV rank, realized vol and beta have their windows
# from the first tick on.
WARMUP_SESSIONS = max(IV_LOOKBACK, BETA_WINDOW) + 2
DIVIDEND_DAYS = 365  # trailing window of cash dividends for the yield


class HistoryFeedError(ValueError):
    """The store cannot feed the requested window (no VIX, no sessions, unknown symbol)."""


@dataclass(frozen=True)
class HistorySpec:
    """What the feed builds. chains: underlyings that get a synthetic chain each day."""

    chains: tuple[str, ...] = (BENCHMARK,)
    chain: ChainSpec = field(default_factory=ChainSpec)
    close_time: dt.time = dt.time(16, 0)  # the snapshot is the regular session's close


class HistoryFeed:
    """One snapshot per XNYS session in [start, end], at the close, from a `MarketStore`.

    Underlyings carry price, previous close, change and trailing dividend yield, and their
    volatility features (ATM IV, skew, IV rank over a year of the surface's own ATM IV,
    realized vol, beta to SPY) are filled by `engine.state.enrich`. Chains come from
    `synth_chain`, driven by the day's VIX family. Everything is loaded once, up front.
    """

    def __init__(
        self, store: MarketStore, start: dt.date, end: dt.date, spec: HistorySpec | None = None
    ) -> None:
        self.store, self.start, self.end = store, start, end
        self.spec = spec or HistorySpec()
        kinds = store.symbols()
        if "VIX" not in kinds:
            raise HistoryFeedError(f"store {store.path} has no VIX: synthetic chains need it")
        missing = [s for s in self.spec.chains if kinds.get(s) != KIND_UNDERLYING]
        if missing:
            raise HistoryFeedError(f"store {store.path} has no underlying {', '.join(missing)}")
        self.underlyings = sorted(s for s, k in kinds.items() if k == KIND_UNDERLYING)
        self.indices = sorted(s for s, k in kinds.items() if k == KIND_INDEX and s in VOL_FIELDS)
        self.futures = sorted(s for s, k in kinds.items() if k == KIND_FUTURE and s in FUTURES)
        symbols = self.underlyings + self.indices + self.futures
        dates, closes = store.closes(symbols, None, end)
        first = int(np.searchsorted(dates, np.datetime64(start, "D")))
        if first >= dates.size:
            raise HistoryFeedError(f"store {store.path} has no session in {start}..{end}")
        lo = max(0, first - WARMUP_SESSIONS)
        self.dates = dates[lo:]
        self.first = first - lo
        self.closes = {s: c[lo:] for s, c in closes.items()}
        self.sessions = {s: self._session_columns(s) for s in self.underlyings}
        self.levels = [self._indices(i) for i in range(self.dates.size)]  # the VIX family per day
        self.atm_iv = self._model_atm_iv()
        self.realized_vol, self.beta = self._rolling_features()

    # ------------------------------------------------------------------ loading
    def _session_columns(self, symbol: str) -> dict[str, npt.NDArray[np.float64]]:
        """open, high, low and dividend of `symbol` on self.dates (NaN, or 0 for dividends,
        where the store has no row or no value)."""
        bars = self.store.bars(symbol, self.dates[0].astype(dt.date), self.end)
        days = np.asarray(bars.column("date").to_numpy(), dtype="datetime64[D]")
        pos = np.searchsorted(self.dates, days)
        ok = (pos < self.dates.size) & (self.dates[np.minimum(pos, self.dates.size - 1)] == days)
        out: dict[str, npt.NDArray[np.float64]] = {}
        for name in ("open", "high", "low", "dividend"):
            values = bars.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
            column: npt.NDArray[np.float64] = np.full(
                self.dates.size, 0.0 if name == "dividend" else np.nan
            )
            column[pos[ok]] = np.nan_to_num(values[ok]) if name == "dividend" else values[ok]
            out[name] = column
        return out

    def _indices(self, i: int) -> VolIndices | None:
        levels = {VOL_FIELDS[s]: float(self.closes[s][i]) for s in self.indices}
        vix = levels.pop("vix", math.nan)
        if not math.isfinite(vix):
            return None
        return VolIndices(
            vix=vix, **{k: (v if math.isfinite(v) else None) for k, v in levels.items()}
        )

    def _model_atm_iv(self) -> dict[str, npt.NDArray[np.float64]]:
        """The surface's 30-day ATM IV per day, the history behind IV rank and percentile."""
        out = {}
        for sym in self.spec.chains:
            out[sym] = np.array(
                [math.nan if x is None else _atm_iv(sym, x, self.spec.chain) for x in self.levels]
            )
        return out

    def _rolling_features(
        self,
    ) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]]]:
        """20-day realized vol and 252-day beta to SPY per session, for every underlying."""
        rv, beta = {}, {}
        bench = self.closes.get(BENCHMARK)
        for sym in self.underlyings:
            close = self.closes[sym]
            rv[sym] = realized_vol_close(close, RV_WINDOW)
            b: npt.NDArray[np.float64] = np.full(close.size, np.nan)
            if bench is not None and close.size > 1:
                b[1:] = rolling_beta(log_returns(close), log_returns(bench), BETA_WINDOW)
            beta[sym] = b
        return rv, beta

    # ------------------------------------------------------------------ the feed
    def describe(self) -> str:
        n = self.dates.size - self.first
        return (
            f"history {self.store.path} {self.start}..{self.end}: {n} sessions, "
            f"chains {', '.join(self.spec.chains)}, rate {self.spec.chain.rate:.2%}"
        )

    def __len__(self) -> int:
        """Sessions in [start, end]: the ticks, less any day without a VIX close."""
        end = np.datetime64(self.end, "D")
        return int(np.count_nonzero(self.dates[self.first :] <= end))

    def ticks(self) -> Iterator[Snapshot]:
        end = np.datetime64(self.end, "D")
        for i in range(self.first, self.dates.size):
            if self.dates[i] > end:
                break
            snap = self.snapshot_at(i)
            if snap is not None:
                yield snap

    def snapshot_at(self, i: int) -> Snapshot | None:
        """The snapshot of session i (an index into self.dates); None without a VIX close."""
        indices = self.levels[i]
        if indices is None:
            return None
        day = self.dates[i].astype(dt.date)
        time = dt.datetime.combine(day, self.spec.close_time, EXCHANGE_TZ)
        vix_prev = self.closes["VIX"][i - 1] if i else math.nan
        market = MarketState(
            session="regular",
            vix=indices.vix,
            vix9d=indices.vix9d,
            vix3m=indices.vix3m,
            vvix=indices.vvix,
            skew_index=indices.skew,
            vix_change_pct=_change(indices.vix, vix_prev),
            futures={
                s: self._future(s, i) for s in self.futures if math.isfinite(self.closes[s][i])
            },
        )
        underlyings: dict[str, UnderlyingState] = {}
        chains: dict[str, Chain] = {}
        for sym in self.underlyings:
            price = float(self.closes[sym][i])
            if not math.isfinite(price):
                continue
            prev = float(self.closes[sym][i - 1]) if i else math.nan
            q = self._dividend_yield(sym, i, price)
            u = UnderlyingState(
                symbol=sym,
                price=price,
                prev_close=prev if math.isfinite(prev) else None,
                change_pct=_change(price, prev),
                dividend_yield=q,
                open=_finite(self.sessions[sym]["open"][i]),
                high=_finite(self.sessions[sym]["high"][i]),
                low=_finite(self.sessions[sym]["low"][i]),
                realized_vol_20d=_finite(self.realized_vol[sym][i]),
                beta=_finite(self.beta[sym][i]),
            )
            if sym in self.spec.chains:
                chain = synth_chain(sym, time, price, indices, q, self.spec.chain)
                chains[sym] = chain
                # Chain features and IV rank here; realized vol and beta were computed for
                # the whole window at once (same kernels and windows as enrich_underlying).
                history = UnderlyingHistory(atm_iv=self.atm_iv[sym][:i])
                u = enrich_underlying(u, chain, history, time, r=self.spec.chain.rate, q=q)
            underlyings[sym] = u
        return Snapshot(time=time, market=market, underlyings=underlyings, chains=chains)

    def _future(self, symbol: str, i: int) -> FutureQuote:
        price = float(self.closes[symbol][i])
        prev = float(self.closes[symbol][i - 1]) if i else math.nan
        return FutureQuote(symbol=symbol, price=price, change_pct=_change(price, prev))

    def _dividend_yield(self, symbol: str, i: int, price: float) -> float:
        day = self.dates[i]
        window = (self.dates > day - np.timedelta64(DIVIDEND_DAYS, "D")) & (self.dates <= day)
        return float(self.sessions[symbol]["dividend"][window].sum()) / price


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _change(now: float, before: float) -> float | None:
    if math.isfinite(now) and math.isfinite(before) and before > 0:
        return now / before - 1.0
    return None


def _atm_iv(symbol: str, indices: VolIndices, spec: ChainSpec) -> float:
    idx = symbol_indices(symbol, indices, spec)
    return float(implied_vols(idx, 0.0, ATM_TENOR_YEARS, spec.surface))


def export_synth_chain(
    store: MarketStore, symbol: str, day: dt.date, out: Path, spec: ChainSpec | None = None
) -> int:
    """`v6 synth-chain`: the synthetic chain of `symbol` at the close of `day`, written to
    `out` (.csv or .parquet), exactly as a dry run would see it. Returns the row count."""
    if store.sessions(day, day).size == 0:
        raise HistoryFeedError(f"{day} is not a session in store {store.path}")
    feed = HistoryFeed(store, day, day, HistorySpec(chains=(symbol,), chain=spec or ChainSpec()))
    snap = feed.snapshot_at(feed.first)
    if snap is None or symbol not in snap.chains:
        raise HistoryFeedError(f"no VIX close on {day} in store {store.path}: no chain to build")
    spot = snap.underlyings[symbol].price
    assert spot is not None  # a chain is built only from a finite close
    table = chain_table(snap.chains[symbol], spot)
    write_chain(table, out)
    return int(table.num_rows)
