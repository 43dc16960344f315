"""Parse and validate daily OHLC CSV files (CBOE, Yahoo) into arrays, locating every problem."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from engine.state.snapshot import EXCHANGE_TZ

FloatArray = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]  # unit: days
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = ("date", *PRICE_FIELDS, "volume", "dividend")

# Header names (lower-case, stripped) that map onto a field. Anything else is ignored: Yahoo's
# "Adj Close", "AdjFactor" and "Stock Splits" are derived data the store does not keep.
_ALIASES: Mapping[str, str] = {
    "date": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "dividend": "dividend",
    "dividends": "dividend",
}
_DERIVED = frozenset({"adj close", "adjclose", "adjfactor", "adj factor", "stock splits"})


class HistoryFormatError(ValueError):
    """A daily history file is malformed; the message reads `FILE:LINE:COL: problem`."""

    def __init__(self, path: Path, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line  # 1-based physical line of the file
        self.column = column  # 1-based CSV field
        self.problem = message
        super().__init__(f"{path}:{line}:{column}: {message}")


class Repair(Enum):
    """What to do with a row whose high/low does not contain its open and close."""

    STRICT = "strict"  # an error: traded prices must be consistent
    CLAMP = "clamp"  # widen high/low to include open and close (bad futures prints)
    NULL_OPEN = "null_open"  # drop an open outside [low, high] (CBOE's stale index opens)


@dataclass(frozen=True)
class DailySeries:
    """One file's rows as arrays; NaN marks an empty cell (inputs are checked finite)."""

    path: Path
    dates: DateArray  # strictly increasing
    open: FloatArray  # float64, the file's own units
    high: FloatArray
    low: FloatArray
    close: FloatArray  # never NaN
    volume: FloatArray | None  # None when the file has no such column
    dividend: FloatArray | None  # cash per share on the ex-date; None when absent
    lines: IntArray  # int64 physical line of each row, for errors found later
    columns: Mapping[str, int] = field(default_factory=dict)  # field -> 1-based column

    def __len__(self) -> int:
        return len(self.dates)

    def error(self, row: int, field_name: str, message: str) -> HistoryFormatError:
        """An error located at row `row` (0-based index into the arrays), field `field_name`."""
        return HistoryFormatError(
            self.path, int(self.lines[row]), self.columns.get(field_name, 1), message
        )

    def take(self, keep: BoolArray | IntArray) -> DailySeries:
        """The rows selected by a boolean mask or an index array."""
        return replace(
            self,
            dates=self.dates[keep],
            open=self.open[keep],
            high=self.high[keep],
            low=self.low[keep],
            close=self.close[keep],
            volume=None if self.volume is None else self.volume[keep],
            dividend=None if self.dividend is None else self.dividend[keep],
            lines=self.lines[keep],
        )


def read_daily_csv(path: Path) -> DailySeries:
    """Read one daily CSV: header by column name, dates, finite positive prices, date order."""
    path = Path(path)
    data = path.read_bytes()  # a daily history is a few MB at most
    try:
        text = data.decode("utf-8-sig")  # utf-8-sig drops a byte-order mark
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = data.count(b",", line_start, exc.start) + 1
        raise HistoryFormatError(path, line, column, f"not UTF-8 text ({exc.reason})") from exc
    # newline="" hands CR, LF and CRLF to csv, which treats them alike.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _parse(path, reader)
    except csv.Error as exc:
        raise HistoryFormatError(path, reader.line_num, 1, f"not readable as CSV ({exc})") from exc


class _Rows(Protocol):
    """What `_parse` needs from a csv reader: rows, and the physical line just read."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...


def _parse(path: Path, reader: _Rows) -> DailySeries:
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = row
            break
    if header is None:
        raise HistoryFormatError(path, 1, 1, "empty file: expected a header such as DATE,CLOSE")
    header_line = reader.line_num
    columns = _columns(path, header_line, header)
    width = len(header)
    wanted = [(name, columns[name] - 1) for name in FIELDS if name in columns]

    cells: dict[str, list[str]] = {name: [] for name, _ in wanted}
    lines: list[int] = []
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank lines (a trailing newline, a spreadsheet export) carry nothing
        if len(row) != width:
            col = min(len(row), width) + 1
            raise HistoryFormatError(
                path, reader.line_num, col, f"expected {width} fields, found {len(row)}"
            )
        lines.append(reader.line_num)
        for name, index in wanted:
            cells[name].append(row[index].strip())
    if not lines:
        raise HistoryFormatError(path, header_line + 1, 1, "no data rows after the header")

    line_arr = np.asarray(lines, dtype=np.int64)
    dates = _dates(path, cells["date"], line_arr, columns["date"])
    numbers = {
        name: _numbers(path, cells[name], line_arr, columns[name], required=name == "close")
        for name, _ in wanted
        if name != "date"
    }
    missing = {name: np.full(len(lines), np.nan) for name in ("open", "high", "low")}
    series = DailySeries(
        path=path,
        dates=dates,
        open=numbers.get("open", missing["open"]),
        high=numbers.get("high", missing["high"]),
        low=numbers.get("low", missing["low"]),
        close=numbers["close"],
        volume=numbers.get("volume"),
        dividend=numbers.get("dividend"),
        lines=line_arr,
        columns=columns,
    )
    _check_order(series)
    _check_signs(series)
    return series


def _columns(path: Path, line: int, header: list[str]) -> dict[str, int]:
    """Map field -> 1-based column from the header names, never from positions."""
    columns: dict[str, int] = {}
    others: list[int] = []
    for position, raw in enumerate(header, start=1):
        name = raw.strip().lower()
        target = _ALIASES.get(name)
        if target is None:
            if name and name not in _DERIVED:
                others.append(position)
            continue
        if target in columns:
            raise HistoryFormatError(
                path, line, position, f"column {raw.strip()!r} repeats column {columns[target]}"
            )
        columns[target] = position
    found = ",".join(cell.strip() for cell in header)
    if "date" not in columns:
        raise HistoryFormatError(path, line, 1, f"no DATE column in header {found!r}")
    if "close" not in columns:
        # CBOE's single-value files (DATE,VVIX / DATE,SKEW): the one value is the close.
        if len(others) == 1 and not any(f in columns for f in ("open", "high", "low")):
            columns["close"] = others[0]
        else:
            raise HistoryFormatError(path, line, 1, f"no CLOSE column in header {found!r}")
    return columns


def _parse_date(text: str) -> date:
    """MM/DD/YYYY (CBOE), YYYY-MM-DD, or a timestamp with offset (Yahoo) -> New York date."""
    if "/" in text:
        month, day, year = text.split("/")
        if len(year) != 4:
            raise ValueError("year must have four digits")
        return date(int(year), int(month), int(day))
    if len(text) == 10:
        return date.fromisoformat(text)
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(EXCHANGE_TZ)
    return stamp.date()


def _dates(path: Path, texts: list[str], lines: IntArray, column: int) -> DateArray:
    parsed: list[date] = []
    for row, text in enumerate(texts):
        try:
            parsed.append(_parse_date(text))
        except ValueError:
            raise HistoryFormatError(
                path,
                int(lines[row]),
                column,
                f"bad date {text!r}: expected MM/DD/YYYY, YYYY-MM-DD or an ISO timestamp",
            ) from None
    return np.asarray(parsed, dtype="datetime64[D]")


def _numbers(
    path: Path, texts: list[str], lines: IntArray, column: int, *, required: bool
) -> FloatArray:
    """Floats, NaN for an empty cell; text, NaN, inf or an empty required cell are errors."""
    try:
        # Fast path: plain floats everywhere. float() also takes "nan", "inf" and "1_0",
        # which the checks below reject, so the fast path never accepts more than the slow one.
        values = np.array([float(t) if t else math.nan for t in texts], dtype=np.float64)
        suspicious = not np.isfinite(values).all() or any("_" in t for t in texts)
    except ValueError:
        suspicious = True
    if not suspicious:
        return values
    out = np.empty(len(texts), dtype=np.float64)
    for row, text in enumerate(texts):
        if not text:
            if required:
                raise HistoryFormatError(
                    path, int(lines[row]), column, "empty cell: a close is required"
                )
            out[row] = math.nan
            continue
        try:
            value = float(text) if "_" not in text else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise HistoryFormatError(
                path, int(lines[row]), column, f"{text!r} is not a finite number"
            )
        out[row] = value
    return out


def _first(mask: BoolArray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _check_order(series: DailySeries) -> None:
    """Dates strictly increase; a repeat names both lines."""
    steps = np.diff(series.dates).astype(np.int64)
    bad = _first(steps <= 0)
    if bad is None:
        return
    here, before = series.dates[bad + 1], series.dates[bad]
    if steps[bad] == 0:
        message = f"duplicate date {here} (also on line {series.lines[bad]})"
    else:
        message = (
            f"date {here} is not after {before} on line {series.lines[bad]}:"
            " rows must be in increasing date order"
        )
    raise series.error(bad + 1, "date", message)


def _check_signs(series: DailySeries) -> None:
    """Prices > 0; volume and dividend >= 0 (NaN, an empty cell, passes)."""
    for name in PRICE_FIELDS:
        values: FloatArray = getattr(series, name)
        bad = _first(values <= 0)
        if bad is not None:
            raise series.error(bad, name, f"{name} {values[bad]} is not a positive price")
    for name in ("volume", "dividend"):
        optional: FloatArray | None = getattr(series, name)
        bad = None if optional is None else _first(optional < 0)
        if bad is not None and optional is not None:
            raise series.error(bad, name, f"{name} {optional[bad]} is negative")


def check_ohlc(series: DailySeries, repair: Repair) -> tuple[DailySeries, BoolArray]:
    """Check low <= open, close <= high; repair per `repair`. Returns (series, repaired mask)."""
    o, h, lo, c = series.open, series.high, series.low, series.close
    # NaN compares False, so a missing open/high/low never flags a row by itself.
    open_out = (o > h) | (o < lo)
    close_out = (c > h) | (c < lo)
    crossed = h < lo
    bad = open_out | close_out | crossed
    if not bad.any():
        return series, bad
    if repair is Repair.CLAMP:
        # fmax/fmin skip a missing open; maximum/minimum keep a missing high/low missing.
        high = np.where(bad, np.maximum(h, np.fmax(o, c)), h)
        low = np.where(bad, np.minimum(lo, np.fmin(o, c)), lo)
        return replace(series, high=high, low=low), bad
    if repair is Repair.NULL_OPEN:
        fixable = open_out & ~close_out & ~crossed
        if not (bad & ~fixable).any():
            return replace(series, open=np.where(fixable, math.nan, o)), fixable
        bad = bad & ~fixable
    row = _first(bad)
    assert row is not None
    raise _ohlc_error(series, row)


def _ohlc_error(series: DailySeries, row: int) -> HistoryFormatError:
    o, h, lo, c = (float(a[row]) for a in (series.open, series.high, series.low, series.close))
    if h < lo:
        return series.error(row, "high", f"high {h} is below low {lo}")
    for name, value in (("open", o), ("close", c)):
        if value > h:
            return series.error(row, "high", f"high {h} is below {name} {value}")
    for name, value in (("open", o), ("close", c)):
        if value < lo:
            return series.error(row, "low", f"low {lo} is above {name} {value}")
    return series.error(row, "high", "inconsistent high/low")  # unreachable: bad had a cause
