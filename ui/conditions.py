"""A condition's headroom from its source text and operand values: how far it is from
changing its result, in its operand's unit (positive: holds by; negative: fails by).

`a <= b`: b - a; `a >= b`: a - b; a chain: its tightest pair; `or`: its best part; `and`: its
worst. The trace records a distance only for failed comparisons; this gives one for conditions
that hold too, which is what gauges of headroom need.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

_OR, _AND = re.compile(r"\s+(or)\s+"), re.compile(r"\s+(and)\s+")
_COMPARE = re.compile(r"\s*(<=|>=|==|!=|<|>)\s*")
_LITERAL = re.compile(
    r"(-?)\s*(?:\$(?P<usd>\d+(?:,\d{3})*(?:\.\d+)?)|(?P<pct>\d+(?:\.\d+)?)%|(?P<days>\d+)d"
    r"|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))"
)


class Operand(NamedTuple):
    text: str  # the operand's source text
    value: Any  # its value on the tick (None: unknown)
    unit: str  # percent, money, days, delta, count, ... or the kind of a non-number


class Margin(NamedTuple):
    value: float  # the compared value (left side; the middle of a chain)
    threshold: float  # what it is compared with (the tightest bound)
    headroom: float  # + holds by, - fails by; in `unit`
    unit: str

    @property
    def scaled(self) -> float:
        """Headroom as a fraction of |threshold| (of |value| when the threshold is 0)."""
        scale = abs(self.threshold) or abs(self.value) or 1.0
        return self.headroom / scale


def _split(text: str, pattern: re.Pattern[str]) -> tuple[list[str], list[str]]:
    """`text` cut at the top-level matches of `pattern` (not in brackets or strings)."""
    pieces, found, depth, quoted, start, i = [], [], 0, False, 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif not quoted and c in "([{":
            depth += 1
        elif not quoted and c in ")]}":
            depth -= 1
        elif not quoted and depth == 0 and (m := pattern.match(text, i)):
            pieces.append(text[start:i].strip())
            found.append(m.group(1))
            i = start = m.end()
            continue
        i += 1
    return [*pieces, text[start:].strip()], found


def _side(text: str, operands: Sequence[Operand]) -> tuple[float, str] | None:
    for o in operands:
        if o.text == text:
            ok = isinstance(o.value, int | float) and not isinstance(o.value, bool)
            return (float(o.value), o.unit) if ok else None
    m = _LITERAL.fullmatch(text)
    if m is None:
        return None
    sign = -1.0 if m.group(1) else 1.0
    if m["usd"]:
        return sign * float(m["usd"].replace(",", "")), "money"
    if m["pct"]:
        return sign * float(m["pct"]) / 100.0, "percent"
    return (sign * float(m["days"]), "days") if m["days"] else (sign * float(m["num"]), "")


def margin(text: str, operands: Sequence[Operand]) -> Margin | None:
    """The headroom of condition `text` from its operands (see the module doc); None when
    the text is no comparison of known numbers (`in`, `not`, a function, unknown data)."""
    for pattern, best in ((_OR, max), (_AND, min)):
        parts = _split(text, pattern)[0]
        if len(parts) > 1:
            found = [margin(p, operands) for p in parts]
            known = [m for m in found if m is not None]
            if not known or (best is min and len(known) < len(found)):
                return None
            return best(known, key=lambda m: m.scaled)
    pieces, ops = _split(text, _COMPARE)
    sides = [_side(p, operands) for p in pieces]
    if not ops or "!=" in ops or any(s is None for s in sides):
        return None
    vals = [s[0] for s in sides if s is not None]
    room = []
    for op, a, b in zip(ops, vals, vals[1:], strict=False):
        room.append(-abs(a - b) if op == "==" else (b - a if op in ("<", "<=") else a - b))
    pair = int(np.argmin(room))
    at = 1 if len(vals) == 3 else 0  # `lo <= x <= hi`: x is the value
    bound = pair + 1 if pair == at else pair
    units = [s[1] for s in sides if s is not None]
    return Margin(vals[at], vals[bound], room[pair], units[at] or units[bound])
