"""Value parsers for snapshot documents: numbers, percentages, dollars, times, choices."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import NoReturn

from pydantic_core import PydanticCustomError

from engine.dsl.errors import did_you_mean
from engine.state.snapshot import EXCHANGE_TZ

ERROR_TYPE = "snapshot_value"

_PERCENT = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*%$")
_MONEY = re.compile(
    r"^(?P<s1>[-+])?\s*\$\s*(?P<s2>[-+])?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)$"
)
_NAN_WORDS = frozenset({"nan", ".nan"})


def fail(message: str, hint: str | None = None) -> NoReturn:
    """Raise the one error type the loader turns into a located diagnostic."""
    ctx: dict[str, object] = {"message": message}
    if hint:
        ctx["hint"] = hint
    raise PydanticCustomError(ERROR_TYPE, "{message}", ctx)


def shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _to_float(value: object, expected: str) -> float:
    """A float, possibly NaN; bools and other types are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        fail(f"expected {expected}, got {shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NAN_WORDS:
            return math.nan
        try:
            return float(text)
        except ValueError:
            fail(f"expected {expected}, got {shown(value)}")
    try:
        return float(value)
    except OverflowError:
        fail(f"number too large: {shown(value)}")


def _finite_or_none(x: float) -> float | None:
    if math.isnan(x):
        return None
    if math.isinf(x):
        fail("value must be finite")
    return x


def number(value: object) -> float | None:
    """A plain number; null and NaN mean unknown."""
    if value is None:
        return None
    return _finite_or_none(_to_float(value, "a number"))


def percent(value: object) -> float | None:
    """A fraction: a number (0.42) or a percentage string ("42%", "-2.5%")."""
    if isinstance(value, str) and value.strip().endswith("%"):
        m = _PERCENT.match(value.strip())
        if not m:
            fail(f"expected a percentage like 42% or -2.5%, got {shown(value)}")
        # A decimal shift, so "1.3%" is exactly the float 0.013 (1.3 / 100 is not).
        return _finite_or_none(float(Decimal(m.group(1)).scaleb(-2)))
    if isinstance(value, str) and "$" in value:
        fail(f"expected a percentage or a fraction, got the dollar amount {shown(value)}")
    return number(value)


def money(value: object) -> float | None:
    """USD or a price: a number or a dollar string ("$1,000.50", "-$350")."""
    if isinstance(value, str) and "$" in value:
        m = _MONEY.match(value.strip())
        if not m or (m.group("s1") and m.group("s2")):
            fail(f"expected a dollar amount like $1,000.50 or -$350, got {shown(value)}")
        x = float(m.group("num").replace(",", ""))
        return -x if "-" in (m.group("s1") or "") + (m.group("s2") or "") else x
    if isinstance(value, str) and value.strip().endswith("%"):
        fail(f"expected a dollar amount, got the percentage {shown(value)}")
    return number(value)


def bounded(
    parse: Callable[[object], float | None],
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hint: str | None = None,
) -> Callable[[object], float | None]:
    """`parse`, then a range check; unknown values pass."""

    def check(value: object) -> float | None:
        x = parse(value)
        if x is None:
            return None
        if lo is not None and (x < lo or (lo_open and x == lo)):
            fail(f"must be {'>' if lo_open else '>='} {lo:g}, got {x:g}", hint)
        if hi is not None and x > hi:
            fail(f"must be <= {hi:g}, got {x:g}", hint)
        return x

    return check


def chain_cell(
    parse: Callable[[object], float | None], lo: float | None = None, *, required: bool = False
) -> Callable[[object], float]:
    """One chain entry: null is missing (NaN in the array), a NaN written in the file is refused."""

    def check(value: object) -> float:
        if value is None:
            if required:
                fail("missing value; every row needs one")
            return math.nan
        if (isinstance(value, float) and math.isnan(value)) or (
            isinstance(value, str) and value.strip().lower() in _NAN_WORDS
        ):
            fail("NaN in a chain", "write null for a missing value")
        x = parse(value)
        if x is None:  # unreachable for finite input; keeps the type honest
            return math.nan
        if lo is not None and x < lo:
            fail(f"must be >= {lo:g}, got {x:g}")
        return x

    return check


def _is_date_only(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def as_datetime(value: object) -> datetime:
    """A tz-aware exchange time; a time written without an offset is New York time."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date) or (isinstance(value, str) and _is_date_only(value)):
        fail(
            f"expected a date and time, got the date {value}",
            "write a time too, e.g. 2024-03-15T15:45:00-04:00",
        )
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            fail(
                f"expected an ISO date and time, got {shown(value)}",
                "e.g. 2024-03-15T15:45:00-04:00",
            )
    else:
        fail(f"expected a date and time, got {shown(value)}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=EXCHANGE_TZ)
    # A plain datetime, whatever subclass the YAML library used.
    dt = dt.astimezone(EXCHANGE_TZ)
    return datetime(*dt.timetuple()[:6], dt.microsecond, tzinfo=EXCHANGE_TZ, fold=dt.fold)


def as_date(value: object) -> date:
    if isinstance(value, datetime):
        fail(f"expected a date, got a date and time {value.isoformat()}", "write e.g. 2024-04-19")
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    fail(f"expected a date like 2024-04-19, got {shown(value)}")


def choice(options: tuple[str, ...], what: str, *, upper: bool = False) -> Callable[[object], str]:
    """One of `options`, case-insensitively, with a "did you mean" for typos."""

    def check(value: object) -> str:
        if not isinstance(value, str):
            fail(f"expected a {what} ({', '.join(options)}), got {shown(value)}")
        key = value.strip().upper() if upper else value.strip().lower()
        if key in options:
            return key
        fail(
            f"unknown {what} {value!r}; expected one of {', '.join(options)}",
            did_you_mean(key, options),
        )

    return check


def right(value: object) -> bool:
    """An option right, P/C or put/call, as is_call."""
    words = {"p": False, "put": False, "c": True, "call": True}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    fail(f"expected an option right P or C (or put / call), got {shown(value)}")


def name(value: object) -> str:
    """An identifier or label; whole numbers are accepted (position id: 7)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        fail(f"expected a non-empty name, got {shown(value)}")
    return value.strip()


def empty_if_null(value: object, empty: object) -> object:
    # `positions:` with nothing after it is YAML null; it means "none".
    return empty if value is None else value
