"""The engine's own book: positions and cash kept from fills and settlements, marked per tick.

The book is what the rules see as `position.*` and `portfolio.*`. It is kept apart from the
broker's account on purpose: live, the broker's positions are reconciled against it; in a dry
run both are fed the same fills and must agree to the cent (a test checks it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from engine.execution.margin import MarginLeg, max_loss_usd
from engine.execution.orders import Contract, Fill, Order, Settlement
from engine.portfolio.marks import Mark, mark_contracts
from engine.state.snapshot import Leg, Position, Snapshot

HEDGE = "hedge"  # strategy name of the share/future hedge positions


@dataclass(slots=True)
class HeldLeg:
    role: str
    contract: Contract
    per_unit: int  # signed contracts (or shares) per structure
    entry_price: float  # per share


@dataclass(slots=True)
class HeldPosition:
    """A position as the ledger keeps it: mutable, private to the book."""

    id: str
    strategy: str
    symbol: str
    opened_at: datetime
    quantity: int  # structures
    legs: list[HeldLeg]
    entry_credit: float  # per structure, per share; + credit
    entry_regime: str | None = None
    entry_iv: float | None = None
    open_args: dict[str, Any] = field(default_factory=dict)
    high_water_pnl_pct: float | None = None
    adjustments: int = 0
    cash_flow: float = 0.0  # USD received so far, net of commissions and fees
    costs: float = 0.0  # USD commissions and fees so far
    # USD of credit the position took in: the opening fill's, plus any roll's. Never reduced
    # when units close, because `cash_flow` keeps those units' flows too: P&L and its basis
    # then cover the same units.
    credit_basis: float = 0.0

    @property
    def is_hedge(self) -> bool:
        return self.strategy == HEDGE


@dataclass(frozen=True, slots=True)
class PositionMark:
    """One position valued at a tick. Money in USD for the whole position."""

    held: HeldPosition
    value: float  # market value of the legs (+ long, - short)
    pnl: float  # cash flows so far + value
    mark: float  # cost to close one structure, per share (+ for a short structure)
    pnl_pct_of_credit: float | None
    delta: float  # share-equivalents
    gamma: float
    vega: float  # USD per vol point
    theta: float  # USD per calendar day
    legs: tuple[tuple[HeldLeg, Mark | None], ...]
    model_marks: int  # legs not priced from a quote (model, intrinsic or stale)
    max_loss: float | None  # USD from here to expiry, options only; None when unbounded


@dataclass(frozen=True, slots=True)
class Closed:
    """A position that left the book: its realized P&L (every cash flow, costs included)."""

    held: HeldPosition
    time: datetime
    realized_pnl: float
    reason: str
    rule_id: str


class Book:
    """Positions and cash. Mutated only by `apply_fill`, `apply_settlement` and `end_tick`."""

    def __init__(self, initial_cash: float) -> None:
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.positions: dict[str, HeldPosition] = {}
        self.commissions = 0.0
        self.peak_net_liq = initial_cash
        self.prev_close_net_liq = initial_cash
        self._day: date | None = None
        self._last_net_liq = initial_cash
        self._seq = 0
        self._last_mark: dict[Contract, Mark] = {}  # for a tick that has no price for a leg

    # ----------------------------------------------------------------- ids
    def new_position_id(self, symbol: str, time: datetime) -> str:
        self._seq += 1
        return f"{symbol}-{time:%Y%m%d}-{self._seq}"

    # ----------------------------------------------------------------- changes
    def apply_fill(self, order: Order, fill: Fill, **entry: Any) -> Closed | None:
        """Book one fill. `entry` (entry_regime, entry_iv, open_args) for a new position."""
        pid = order.position_id
        assert pid is not None, f"order {order.id} has no position id"
        if pid not in self.positions and order.intent not in ("open", "hedge"):
            # A close, roll or adjustment for a position the book no longer holds would book
            # a reversed phantom position: an engine bug, never a market event.
            raise ValueError(f"order {order.id} ({order.intent}) for {pid}: not in the book")
        self.cash += fill.cash_flow
        cost = fill.commission + fill.fees
        self.commissions += cost
        held = self.positions.get(pid)
        if held is None:
            held = HeldPosition(
                id=pid,
                strategy=order.strategy or HEDGE,
                symbol=order.symbol,
                opened_at=fill.time,
                quantity=fill.quantity if order.intent != "hedge" else 1,
                legs=[],
                entry_credit=fill.net_price if order.intent != "hedge" else 0.0,
                **entry,
            )
            self.positions[pid] = held
            if order.intent == "hedge":
                held.legs.append(HeldLeg("hedge", fill.legs[0].contract, 0, fill.legs[0].price))
            else:
                held.legs.extend(
                    HeldLeg(lf.role, lf.contract, lf.ratio, lf.price) for lf in fill.legs
                )
                held.cash_flow += fill.cash_flow
                held.costs += cost
                held.credit_basis = fill.net_price * 100.0 * fill.quantity
                return None
        held.cash_flow += fill.cash_flow
        held.costs += cost
        if held.is_hedge:  # a hedge's size is its signed share (or contract) count
            held.legs[0].per_unit += fill.legs[0].ratio * fill.quantity
            if held.legs[0].per_unit == 0:
                return self._close(held, fill.time, order.reason, order.rule_id)
            return None
        if order.intent in ("close", "flatten", "reduce"):
            held.quantity -= fill.quantity
            if held.quantity <= 0:
                return self._close(held, fill.time, order.reason, order.rule_id)
            return None
        # adjust / roll: legs closed go, legs opened come, per structure.
        held.adjustments += 1
        for lf in fill.legs:
            same = next((hl for hl in held.legs if hl.contract == lf.contract), None)
            if same is not None and same.per_unit == -lf.ratio:
                held.legs.remove(same)
            else:
                held.legs.append(HeldLeg(lf.role, lf.contract, lf.ratio, lf.price))
        if order.intent == "roll":
            held.entry_credit += fill.net_price
            held.credit_basis += fill.net_price * 100.0 * fill.quantity
        if not held.legs:
            return self._close(held, fill.time, order.reason, order.rule_id)
        return None

    def apply_settlement(self, s: Settlement) -> Closed | None:
        """An expired leg leaves its position; the position closes with its last leg."""
        self.cash += s.cash_flow
        held = self.positions.get(s.position_id)
        if held is None:
            return None
        held.cash_flow += s.cash_flow
        held.legs = [hl for hl in held.legs if hl.contract != s.contract]
        if not held.legs:
            return self._close(held, s.time, f"expired ({s.how})", "expiry")
        return None

    def _close(self, held: HeldPosition, time: datetime, reason: str, rule_id: str) -> Closed:
        del self.positions[held.id]
        return Closed(held, time, held.cash_flow, reason, rule_id)

    # ----------------------------------------------------------------- valuation
    def mark(self, snap: Snapshot) -> list[PositionMark]:
        """Every position valued at this tick, in id order."""
        held = sorted(self.positions.values(), key=lambda h: h.id)
        contracts = [hl.contract for h in held for hl in h.legs]
        marks = iter(mark_contracts(snap, contracts))
        out = []
        for h in held:
            legs = tuple((hl, self._known(hl, next(marks))) for hl in h.legs)
            out.append(_value(h, legs))
        return out

    def _known(self, hl: HeldLeg, mark: Mark | None) -> Mark:
        """A tick without any price for a leg (no underlying close, a missing futures bar)
        keeps its last mark, else its entry price, as the broker does: counting it as $0
        would swing net liq by the leg's whole value and trip drawdown breakers."""
        if mark is not None:
            self._last_mark[hl.contract] = mark
            return mark
        last = self._last_mark.get(hl.contract)
        if last is not None:
            return replace(last, source="stale")
        delta = 0.0 if hl.contract.kind == "option" else 1.0
        return Mark(hl.entry_price, delta, 0.0, 0.0, 0.0, None, "stale")

    def update_high_water(self, marks: Iterable[PositionMark]) -> None:
        for m in marks:
            p = m.pnl_pct_of_credit
            if p is not None and (
                m.held.high_water_pnl_pct is None or p > m.held.high_water_pnl_pct
            ):
                m.held.high_water_pnl_pct = p

    def net_liq(self, marks: Iterable[PositionMark]) -> float:
        return self.cash + sum(m.value for m in marks)

    def begin_tick(self, time: datetime) -> None:
        """A new session starts from the previous session's last net liq (day P&L's base)."""
        day = time.date()
        if day != self._day:
            self.prev_close_net_liq = self._last_net_liq
            self._day = day

    def end_tick(self, net_liq: float) -> None:
        """After trading: the tick's net liq becomes the last seen, and maybe the peak."""
        self._last_net_liq = net_liq
        self.peak_net_liq = max(self.peak_net_liq, net_liq)


def _value(h: HeldPosition, legs: tuple[tuple[HeldLeg, Mark | None], ...]) -> PositionMark:
    value = delta = gamma = vega = theta = 0.0
    per_share_close = 0.0
    model = 0
    for hl, m in legs:
        mult = hl.contract.multiplier
        n = hl.per_unit * (h.quantity if not h.is_hedge else 1)
        if m is None:
            model += 1
            continue
        model += m.source in ("model", "intrinsic", "stale")
        value += n * m.mid * mult
        per_share_close -= hl.per_unit * m.mid
        delta += n * m.delta * mult
        gamma += n * m.gamma * mult
        vega += n * m.vega * mult
        theta += n * m.theta * mult
    pnl = h.cash_flow + value
    basis = h.credit_basis
    pct = pnl / basis if basis > 0 and not h.is_hedge else None
    return PositionMark(
        h, value, pnl, per_share_close, pct, delta, gamma, vega, theta, legs, model,
        _max_loss(h, legs),
    )  # fmt: skip


def _max_loss(h: HeldPosition, legs: tuple[tuple[HeldLeg, Mark | None], ...]) -> float | None:
    if h.is_hedge:
        return None
    loss = max_loss_usd(
        [MarginLeg(hl.contract, hl.per_unit * h.quantity, m.mid if m else 0.0) for hl, m in legs]
    )
    return loss if math.isfinite(loss) else None


def days_to_expiry(h: HeldPosition, time: datetime) -> float | None:
    """Calendar days to the position's nearest leg expiry; None for shares and futures."""
    expiries = [hl.contract.expiry for hl in h.legs if hl.contract.expiry is not None]
    return float(min((e - time.date()).days for e in expiries)) if expiries else None


def days_held(h: HeldPosition, time: datetime) -> float:
    return (time - h.opened_at).total_seconds() / 86_400.0


def to_position(m: PositionMark, time: datetime) -> Position:
    """The rules' view of a position (engine.state.snapshot.Position)."""
    h = m.held
    legs = tuple(
        Leg(
            role=hl.role,
            is_call=bool(hl.contract.is_call),
            strike=float(hl.contract.strike or 0.0),
            expiry=hl.contract.expiry,
            quantity=hl.per_unit,
            entry_price=hl.entry_price,
            mark=mk.mid if mk else None,
            delta=mk.delta if mk else None,
            iv=mk.iv if mk else None,
        )
        for hl, mk in m.legs
        if hl.contract.kind == "option" and hl.contract.expiry is not None
    )
    return Position(
        id=h.id,
        strategy=h.strategy,
        symbol=h.symbol,
        opened_at=h.opened_at,
        quantity=h.quantity,
        legs=legs,
        entry_credit=h.entry_credit,
        mark=m.mark,
        pnl=m.pnl,
        pnl_pct_of_credit=m.pnl_pct_of_credit,
        high_water_pnl_pct=h.high_water_pnl_pct,
        max_loss=m.max_loss,
        entry_regime=h.entry_regime,
        entry_iv=h.entry_iv,
        days_held=days_held(h, time),
        dte=days_to_expiry(h, time),
        delta=m.delta,
        gamma=m.gamma,
        vega=m.vega,
        theta=m.theta,
        adjustments=h.adjustments,
    )
