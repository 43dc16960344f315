"""Loader for CBOE delayed-quotes option-chain CSV downloads (calls left, puts right per row)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["HEADER", "OptionChain", "load_cboe_chain"]

_SIDE = ("Last Sale", "Net", "Bid", "Ask", "Volume", "IV", "Delta", "Gamma", "Open Interest")
HEADER = ("Expiration Date", "Calls", *_SIDE, "Strike", "Puts", *_SIDE)

# OCC symbol: root, yymmdd, C/P, strike x 1000 on 8 digits (e.g. SPXW231020C04505000).
_OCC = re.compile(r"^([A-Z][A-Z0-9]*?)(\d{6})([CP])(\d{8})$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# Column offsets of one side inside a row: the call side starts at 1, the put side at 12.
_SYM, _LAST, _NET, _BID, _ASK, _VOL, _IV, _DELTA, _GAMMA, _OI = range(10)
_CALL, _PUT, _STRIKE = 1, 12, 11


@dataclass(frozen=True)
class OptionChain:
    """One end-of-day chain snapshot, one element per contract (calls and puts interleaved).

    Prices in the underlying's currency, vendor_iv per 1.00 (0.2 = 20 %), vendor_delta per 1.00
    of the underlying. underlying_bid/ask come from the snapshot line and may be after hours.
    """

    source: str
    underlying_name: str
    underlying_last: float
    underlying_bid: float
    underlying_ask: float
    snapshot_date: np.datetime64
    expiry: npt.NDArray[np.datetime64]
    strike: npt.NDArray[np.float64]
    is_call: npt.NDArray[np.bool_]
    root: npt.NDArray[np.str_]
    symbol: npt.NDArray[np.str_]
    bid: npt.NDArray[np.float64]
    ask: npt.NDArray[np.float64]
    last: npt.NDArray[np.float64]
    volume: npt.NDArray[np.int64]
    open_interest: npt.NDArray[np.int64]
    vendor_iv: npt.NDArray[np.float64]
    vendor_delta: npt.NDArray[np.float64]
    vendor_gamma: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.strike.size)


class _MalformedError(ValueError):
    pass


def _number(text: str, what: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        raise _MalformedError(f"{what}: not a number: {text!r}") from None


def _count(text: str, what: str) -> int:
    value = _number(text, what)
    if value != int(value) or value < 0:
        raise _MalformedError(f"{what}: not a count: {text!r}")
    return int(value)


def _labelled(field: str, label: str) -> float:
    """'Last: 450.81' -> 450.81."""
    head, sep, tail = field.partition(":")
    if not sep or head.strip() != label:
        raise _MalformedError(f"expected '{label}: <number>', got {field!r}")
    return _number(tail.strip(), label)


def _expiry(text: str, cache: dict[str, np.datetime64]) -> np.datetime64:
    """'Fri Oct 20 2023' -> 2023-10-20 (the weekday is checked, not trusted)."""
    hit = cache.get(text)
    if hit is not None:
        return hit
    parts = text.split()
    if len(parts) != 4 or parts[1] not in _MONTHS:
        raise _MalformedError(f"expiration date: expected like 'Fri Oct 20 2023', got {text!r}")
    try:
        day = dt.date(int(parts[3]), _MONTHS[parts[1]], int(parts[2]))
    except ValueError:
        raise _MalformedError(f"expiration date: invalid date {text!r}") from None
    if day.strftime("%a") != parts[0]:
        raise _MalformedError(f"expiration date: {text!r} is a {day.strftime('%A')}")
    value = np.datetime64(day, "D")
    cache[text] = value
    return value


def _snapshot_date(field: str) -> np.datetime64:
    """'Date: September 14, 2023 at 4:31 PM EDT' -> 2023-09-14."""
    text = field.partition(":")[2].strip().split(" at ")[0]
    try:
        return np.datetime64(dt.datetime.strptime(text, "%B %d, %Y").date(), "D")
    except ValueError:
        raise _MalformedError(
            f"snapshot date: expected like 'Date: September 14, 2023 at ...', got {field!r}"
        ) from None


def load_cboe_chain(path: str | Path) -> OptionChain:
    """Read a CBOE delayed-quotes chain CSV; ValueError naming file:line if it is malformed.

    Layout: optional blank line, the underlying's name and last price, the snapshot date with
    the underlying's bid/ask, the header, then one row per (expiry, strike): call | strike | put.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        lines = list(csv.reader(fh))
    lineno = 0
    try:
        name, last_px = "", float("nan")
        snap: np.datetime64 | None = None
        und_bid = und_ask = float("nan")
        header_at = None
        for lineno, row in enumerate(lines[:6], 1):
            if not row or all(not f.strip() for f in row):
                continue
            if row[0].startswith("Date:"):
                snap = _snapshot_date(row[0])
                und_bid = _labelled(row[1], "Bid") if len(row) > 1 else und_bid
                und_ask = _labelled(row[2], "Ask") if len(row) > 2 else und_ask
            elif tuple(f.strip() for f in row) == HEADER:
                header_at = lineno
                break
            elif len(row) == len(HEADER):
                raise _MalformedError(f"header does not match the CBOE layout {HEADER!r}")
            elif len(row) > 1 and row[1].startswith("Last:"):
                name, last_px = row[0].strip(), _labelled(row[1], "Last")
            else:
                raise _MalformedError(f"unexpected preamble line {row[:3]!r}")
        if header_at is None:
            lineno = min(len(lines), 6)
            raise _MalformedError("no header line 'Expiration Date,Calls,...' in the first 6 lines")
        if snap is None:
            lineno = header_at
            raise _MalformedError("no 'Date: ...' line before the header")
        cols: dict[str, list[object]] = {k: [] for k in OptionChain.__dataclass_fields__}
        cache: dict[str, np.datetime64] = {}
        for number, row in enumerate(lines[header_at:], header_at + 1):
            lineno = number  # reported by the handler below
            if not row:
                continue
            if len(row) != len(HEADER):
                raise _MalformedError(f"expected {len(HEADER)} fields, got {len(row)}")
            expiry = _expiry(row[0].strip(), cache)
            strike = _number(row[_STRIKE], "strike")
            for base, flag in ((_CALL, "C"), (_PUT, "P")):
                side = row[base : base + 10]
                sym = side[_SYM].strip()
                m = _OCC.match(sym)
                if m is None or m.group(3) != flag:
                    kind = "call" if flag == "C" else "put"
                    raise _MalformedError(f"{kind} symbol {sym!r} is not an OCC {kind} symbol")
                if int(m.group(4)) != round(strike * 1000):
                    raise _MalformedError(f"symbol {sym!r} does not match strike {row[_STRIKE]!r}")
                yymmdd = m.group(2)
                if f"20{yymmdd[:2]}-{yymmdd[2:4]}-{yymmdd[4:]}" != str(expiry):
                    raise _MalformedError(f"symbol {sym!r} does not match expiry {row[0]!r}")
                cols["expiry"].append(expiry)
                cols["strike"].append(strike)
                cols["is_call"].append(flag == "C")
                cols["root"].append(m.group(1))
                cols["symbol"].append(sym)
                cols["last"].append(_number(side[_LAST], "last sale"))
                cols["bid"].append(_number(side[_BID], "bid"))
                cols["ask"].append(_number(side[_ASK], "ask"))
                cols["volume"].append(_count(side[_VOL], "volume"))
                cols["open_interest"].append(_count(side[_OI], "open interest"))
                cols["vendor_iv"].append(_number(side[_IV], "IV"))
                cols["vendor_delta"].append(_number(side[_DELTA], "delta"))
                cols["vendor_gamma"].append(_number(side[_GAMMA], "gamma"))
    except _MalformedError as exc:
        raise ValueError(f"{path}:{lineno}: {exc}") from None

    def arr(key: str, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        a = np.array(cols[key], dtype=dtype)
        a.flags.writeable = False  # the dataclass is frozen; so are its columns
        return a

    return OptionChain(
        source=str(path),
        underlying_name=name,
        underlying_last=last_px,
        underlying_bid=und_bid,
        underlying_ask=und_ask,
        snapshot_date=snap,
        expiry=arr("expiry", "datetime64[D]"),
        strike=arr("strike", np.float64),
        is_call=arr("is_call", np.bool_),
        root=arr("root", np.str_),
        symbol=arr("symbol", np.str_),
        bid=arr("bid", np.float64),
        ask=arr("ask", np.float64),
        last=arr("last", np.float64),
        volume=arr("volume", np.int64),
        open_interest=arr("open_interest", np.int64),
        vendor_iv=arr("vendor_iv", np.float64),
        vendor_delta=arr("vendor_delta", np.float64),
        vendor_gamma=arr("vendor_gamma", np.float64),
    )
