"""Import daily history CSVs into a market store: parse, validate, fit to XNYS, one commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from engine.market.bars import DAILY_BARS, KIND_FUTURE, KIND_INDEX, KIND_UNDERLYING, KINDS
from engine.market.calendar import DateArray, fit_to_sessions, sessions_for
from engine.market.csv_sources import (
    DailySeries,
    FloatArray,
    Repair,
    check_ohlc,
    read_daily_csv,
)
from engine.market.store import SYMBOL_RE, MarketStore

SAMPLE = 5  # how many example dates a report keeps per finding

# Futures files have a few bad high/low prints (widen them); CBOE's index opens before 2006
# are sometimes stale, outside the day's range (drop the open, keep high/low/close); an
# underlying's traded prices must be consistent.
REPAIR_BY_KIND = {
    KIND_UNDERLYING: Repair.STRICT,
    KIND_INDEX: Repair.NULL_OPEN,
    KIND_FUTURE: Repair.CLAMP,
}
_REPAIR_WORDS = {
    Repair.CLAMP: "high/low widened to include open/close",
    Repair.NULL_OPEN: "open outside high/low set to null",
}


class ImportSpecError(ValueError):
    """The import was asked for something impossible (bad symbol, symbol twice, no files)."""


@dataclass(frozen=True)
class SeriesReport:
    """What happened to one symbol's file."""

    symbol: str
    kind: str
    source: str  # file name
    rows: int  # rows written
    first: date
    last: date
    dropped: int  # rows on days the exchange was closed (not written)
    dropped_dates: tuple[date, ...]  # the first few of them
    gaps: int  # sessions inside [first, last] without a row
    gap_dates: tuple[date, ...]
    repaired: int  # rows whose OHLC was repaired (see `repair`)
    repaired_dates: tuple[date, ...]
    repair: str  # how rows are repaired for this kind, "" when they are not

    def line(self) -> str:
        text = (
            f"{self.symbol:<6} {self.kind:<10} {self.rows:>6} rows  {self.first} .. {self.last}"
            f"  dropped {self.dropped:>3}  gaps {self.gaps:>3}  repaired {self.repaired:>3}"
        )
        notes = [
            f"    dropped (exchange closed): {_dates_text(self.dropped_dates, self.dropped)}"
            if self.dropped
            else "",
            f"    gaps (session, no row): {_dates_text(self.gap_dates, self.gaps)}"
            if self.gaps
            else "",
            f"    repaired ({self.repair}): {_dates_text(self.repaired_dates, self.repaired)}"
            if self.repaired
            else "",
        ]
        return "\n".join([text, *(n for n in notes if n)])


@dataclass(frozen=True)
class ImportReport:
    """The outcome of one import: the store, the Delta version written, one entry per symbol."""

    store: Path
    version: int
    series: tuple[SeriesReport, ...]

    def __getitem__(self, symbol: str) -> SeriesReport:
        for entry in self.series:
            if entry.symbol == symbol:
                return entry
        raise KeyError(symbol)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(entry.symbol for entry in self.series)

    @property
    def rows(self) -> int:
        return sum(entry.rows for entry in self.series)

    def summary(self) -> str:
        """A human-readable account, one block per symbol."""
        head = (
            f"imported {len(self.series)} symbols, {self.rows} rows into "
            f"{self.store} (daily_bars version {self.version})"
        )
        return "\n".join([head, *(entry.line() for entry in self.series)])


@dataclass(frozen=True)
class _Prepared:
    symbol: str
    kind: str
    series: DailySeries
    report: SeriesReport


def import_history(
    out: Path,
    underlyings: Mapping[str, Path],
    indices: Mapping[str, Path],
    futures: Mapping[str, Path],
) -> ImportReport:
    """Import the files into the store at `out`, replacing those symbols' rows atomically.

    Every file is parsed and validated before anything is written: on a HistoryFormatError
    (file:line:col) or ImportSpecError the store is left exactly as it was.
    """
    jobs = _jobs(underlyings, indices, futures)
    prepared = [_prepare(symbol, kind, path) for symbol, kind, path in jobs]
    store = MarketStore(out)
    store.write_bars(pa.concat_tables([_to_table(p) for p in prepared]))
    return ImportReport(
        store=store.path,
        version=store.version(),
        series=tuple(
            sorted((p.report for p in prepared), key=lambda r: (KINDS.index(r.kind), r.symbol))
        ),
    )


def _jobs(
    underlyings: Mapping[str, Path], indices: Mapping[str, Path], futures: Mapping[str, Path]
) -> list[tuple[str, str, Path]]:
    jobs: list[tuple[str, str, Path]] = []
    seen: dict[str, str] = {}
    for kind, files in (
        (KIND_UNDERLYING, underlyings),
        (KIND_INDEX, indices),
        (KIND_FUTURE, futures),
    ):
        for given, path in files.items():
            symbol = given.strip().upper()
            if not SYMBOL_RE.fullmatch(symbol):
                raise ImportSpecError(
                    f"symbol {given!r}: use letters, digits, '.', '_' or '-' (at most 32)"
                )
            if symbol in seen:
                raise ImportSpecError(f"symbol {symbol} is given twice ({seen[symbol]}, {kind})")
            seen[symbol] = kind
            if not Path(path).is_file():
                raise ImportSpecError(f"{symbol}: no such file {path}")
            jobs.append((symbol, kind, Path(path)))
    if not jobs:
        raise ImportSpecError("nothing to import: give at least one SYMBOL=FILE")
    return jobs


def _prepare(symbol: str, kind: str, path: Path) -> _Prepared:
    """Parse, repair per kind and fit onto the XNYS calendar (no I/O beyond reading)."""
    repair = REPAIR_BY_KIND[kind]
    series, repaired = check_ohlc(read_daily_csv(path), repair)
    fit = fit_to_sessions(series.dates, sessions_for(series.dates))
    off = fit.off_session
    if kind == KIND_UNDERLYING and off.any():
        # Indices and futures are published on some exchange holidays; an underlying that
        # trades on a closed day means the dates are wrong (a time-zone shift, a bad file).
        row = int(np.flatnonzero(off)[0])
        raise series.error(
            row, "date", f"{series.dates[row]} is not an XNYS session (the exchange was closed)"
        )
    kept = series.take(fit.on_session)
    if len(kept) == 0:
        raise series.error(0, "date", "no row falls on an XNYS session")
    kept_repaired = repaired[fit.on_session]
    report = SeriesReport(
        symbol=symbol,
        kind=kind,
        source=path.name,
        rows=len(kept),
        first=_day(kept.dates[0]),
        last=_day(kept.dates[-1]),
        dropped=int(off.sum()),
        dropped_dates=_sample(series.dates[off]),
        gaps=len(fit.gaps),
        gap_dates=_sample(fit.gaps),
        repaired=int(kept_repaired.sum()),
        repaired_dates=_sample(kept.dates[kept_repaired]),
        repair=_REPAIR_WORDS.get(repair, ""),
    )
    return _Prepared(symbol, kind, kept, report)


def _to_table(prepared: _Prepared) -> pa.Table:
    series = prepared.series
    n = len(series)

    def floats(values: FloatArray | None) -> pa.Array:
        if values is None:
            return pa.nulls(n, pa.float64())
        return pa.array(values, pa.float64(), from_pandas=True)  # NaN (empty cell) -> null

    return pa.table(
        {
            "symbol": pa.array([prepared.symbol] * n, pa.string()),
            "kind": pa.array([prepared.kind] * n, pa.string()),
            "date": pa.array(series.dates, pa.date32()),
            "open": floats(series.open),
            "high": floats(series.high),
            "low": floats(series.low),
            "close": floats(series.close),
            "volume": floats(series.volume),
            "dividend": floats(series.dividend),
            "source": pa.array([prepared.report.source] * n, pa.string()),
        },
        schema=DAILY_BARS,
    )


def _day(value: np.datetime64) -> date:
    day: date = value.astype("datetime64[D]").astype(object)
    return day


def _sample(dates: DateArray) -> tuple[date, ...]:
    return tuple(_day(d) for d in dates[:SAMPLE])


def _dates_text(dates: tuple[date, ...], count: int) -> str:
    text = ", ".join(d.isoformat() for d in dates)
    return text + (f", … ({count - len(dates)} more)" if count > len(dates) else "")
