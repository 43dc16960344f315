"""Feed of intraday snapshots from one-minute bars, with a synthetic chain at every tick."""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.market.surface import VolIndices
from engine.market.synth_chain import ChainSpec, synth_chain
from engine.state.snapshot import EXCHANGE_TZ, MarketState, Snapshot, UnderlyingState

OPEN, CLOSE = dt.time(9, 30), dt.time(16, 0)
REQUIRED = ("datetime", "close")
T = TypeVar("T")


class MinuteBarsError(ValueError):
    """A malformed one-minute bar file; the message names file, line and column."""


@dataclass(frozen=True)
class MinuteBar:
    """One bar, stamped at its close (a 09:30 bar closes at 09:31). Prices per share."""

    time: dt.datetime  # tz-aware, America/New_York
    close: float


def read_minute_bars(path: Path) -> list[MinuteBar]:
    """Regular-session bars (09:30-16:00 New York) of a `datetime,open,high,low,close,...`
    file with tz-aware timestamps, in time order. Pre- and post-market bars are skipped."""
    bars: list[MinuteBar] = []
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise MinuteBarsError(f"{path}:1:1: missing column(s) {', '.join(missing)}")
        at, close_at = header.index("datetime"), header.index("close")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            when = _cell(path, line, at, row, dt.datetime.fromisoformat, "a timestamp")
            if when.tzinfo is None:
                raise MinuteBarsError(f"{path}:{line}:{at + 1}: timestamp without a time zone")
            when = when.astimezone(EXCHANGE_TZ)
            if not OPEN <= when.time() < CLOSE:
                continue
            price = _cell(path, line, close_at, row, float, "a price")
            if not (math.isfinite(price) and price > 0):
                raise MinuteBarsError(f"{path}:{line}:{close_at + 1}: close {price} is not > 0")
            stamp = when + dt.timedelta(minutes=1)
            if bars and stamp <= bars[-1].time:
                raise MinuteBarsError(f"{path}:{line}:{at + 1}: {when} is not after the bar before")
            bars.append(MinuteBar(stamp, price))
    return bars


def _cell(path: Path, line: int, col: int, row: list[str], parse: Callable[[str], T],
          what: str) -> T:  # fmt: skip
    text = row[col].strip() if col < len(row) else ""
    try:
        return parse(text)
    except ValueError:
        raise MinuteBarsError(f"{path}:{line}:{col + 1}: {text!r} is not {what}") from None


@dataclass(frozen=True)
class IntradaySpec:
    """The underlying the bars are of, its dividend yield, and the chain to build."""

    symbol: str = "SPY"
    dividend_yield: float = 0.013  # fraction per year, continuous
    chain: ChainSpec = field(default_factory=ChainSpec)


class IntradayFeed:
    """One snapshot per regular-session minute bar, the chain synthesised at the bar's close.

    The volatility indices come per day from `indices` (e.g. the previous close of the VIX
    family from a market store, or fixed levels); a day without them is skipped.
    """

    def __init__(
        self,
        bars: list[MinuteBar],
        indices: Callable[[dt.date], VolIndices | None],
        spec: IntradaySpec | None = None,
    ) -> None:
        self.bars, self.indices, self.spec = bars, indices, spec or IntradaySpec()

    def describe(self) -> str:
        if not self.bars:
            return f"intraday {self.spec.symbol}: no bars"
        return (
            f"intraday {self.spec.symbol}: {len(self.bars)} one-minute bars "
            f"{self.bars[0].time:%Y-%m-%d %H:%M}..{self.bars[-1].time:%Y-%m-%d %H:%M}"
        )

    def ticks(self) -> Iterator[Snapshot]:
        sym = self.spec.symbol
        prev_close: float | None = None
        day: dt.date | None = None
        levels: VolIndices | None = None
        for i, bar in enumerate(self.bars):
            if bar.time.date() != day:
                day = bar.time.date()
                levels = self.indices(day)
                prev_close = self.bars[i - 1].close if i else None
            if levels is None:
                continue
            chain = synth_chain(sym, bar.time, bar.close, levels, self.spec.dividend_yield,
                                self.spec.chain)  # fmt: skip
            change = bar.close / prev_close - 1.0 if prev_close else None
            yield Snapshot(
                time=bar.time,
                market=MarketState(session="regular", vix=levels.vix, vix9d=levels.vix9d,
                                   vix3m=levels.vix3m, vvix=levels.vvix, skew_index=levels.skew),
                underlyings={sym: UnderlyingState(symbol=sym, price=bar.close,
                                                  prev_close=prev_close, change_pct=change,
                                                  dividend_yield=self.spec.dividend_yield)},
                chains={sym: chain},
            )  # fmt: skip
