"""Strategy structures applied to a chain: pick the expiry and each leg by delta or strike.

Runs once per proposed entry, not per tick, so it interprets the strategy's small leg
expressions directly instead of compiling them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from engine.dsl import ast
from engine.dsl.checker import StrategyInfo


@dataclass(frozen=True, slots=True)
class LegChoice:
    name: str
    side: str  # buy | sell
    ratio: int
    is_call: bool
    strike: float
    expiry: date
    bid: float
    ask: float
    delta: float
    iv: float

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


@dataclass(frozen=True, slots=True)
class Selection:
    """The legs chosen, or why none could be: a trader-readable reason."""

    legs: tuple[LegChoice, ...] = ()
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def credit(self) -> float:
        """Net credit per share at mid (negative for a debit)."""
        return sum((1 if lg.side == "sell" else -1) * lg.ratio * lg.mid for lg in self.legs)


class _Eval:
    def __init__(self, params: Mapping[str, Any], legs: Mapping[str, LegChoice]) -> None:
        self.params, self.legs = params, legs

    def __call__(self, e: ast.Expr) -> float:
        if isinstance(e, ast.Literal):
            assert isinstance(e.value, float)
            return e.value
        if isinstance(e, ast.Path):
            if len(e.parts) == 2 and e.parts[0] in self.legs:
                return self.legs[e.parts[0]].strike
            return float(self.params[e.parts[0]])
        if isinstance(e, ast.Neg):
            return -self(e.operand)
        if isinstance(e, ast.BinOp):
            a, b = self(e.left), self(e.right)
            ops = {"+": a + b, "-": a - b, "*": a * b}
            return ops[e.op] if e.op in ops else (a / b if b else math.nan)
        raise ValueError(f"unsupported expression in a strategy: {type(e).__name__}")


def select_legs(info: StrategyInfo, args: Mapping[str, Any], chain: Any, today: date) -> Selection:
    """Choose the expiry and legs of `info` from `chain` (an engine.state Chain)."""
    params = {name: value for name, (_, value) in info.params.items()}
    params.update({k: v for k, v in args.items() if k in params and v is not None})
    s = info.decl
    assert s.expiry_target is not None and s.expiry_within is not None
    ev = _Eval(params, {})
    target, within = ev(s.expiry_target), ev(s.expiry_within)
    if chain is None or len(chain) == 0:
        return Selection(reason="no option chain")
    expiries = chain.expiries()
    days = (expiries - np.datetime64(today, "D")).astype(np.int64)
    gap = np.abs(days - target)
    if days.size == 0 or gap.min() > within:
        return Selection(reason=f"no expiry within {within:g}d of {target:g}d")
    expiry = expiries[int(np.argmin(gap))]
    rows_exp = np.flatnonzero(chain.expiry == expiry)
    quoted = rows_exp[(chain.bid[rows_exp] >= 0) & (chain.ask[rows_exp] > 0)]
    chosen: dict[str, LegChoice] = {}
    for leg in s.legs:
        is_call = leg.right == "call"
        rows = quoted[chain.is_call[quoted] == is_call]
        value = _Eval(params, chosen)(leg.value)
        if leg.selector == "delta":
            d = chain.delta[rows]
            rows, d = rows[~np.isnan(d)], d[~np.isnan(d)]
            if rows.size == 0:
                return Selection(reason=f"leg {leg.name}: no {leg.right} with a delta")
            i = int(rows[np.argmin(np.abs(d - value))])
        else:
            if rows.size == 0:
                return Selection(reason=f"leg {leg.name}: no quoted {leg.right}")
            i = int(rows[np.argmin(np.abs(chain.strike[rows] - value))])
        chosen[leg.name] = LegChoice(
            leg.name,
            leg.side,
            leg.ratio,
            is_call,
            float(chain.strike[i]),
            expiry.astype("datetime64[D]").item(),
            float(chain.bid[i]),
            float(chain.ask[i]),
            float(chain.delta[i]),
            float(chain.iv[i]),
        )
    strikes = {(lg.is_call, lg.strike) for lg in chosen.values()}
    if len(strikes) < len(chosen):
        return Selection(reason="two legs landed on the same contract: the chain is too sparse")
    return Selection(tuple(chosen.values()))
