"""From the rules' decisions to concrete orders: legs chosen, sized and ordered per tick.

One `Proposal` per decision that asks for a trade. A decision that cannot become an order
(no expiry in range, a position already closing) yields a proposal without an order and a
note saying why, so the journal explains every fired rule. Order of the tick's orders:
closes and flattening first (they free buying power), then adjustments, hedges, entries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from engine.dsl.strategy import LegChoice, select_legs
from engine.dsl.trace import Decision
from engine.execution.margin import MarginLeg, margin_usd
from engine.execution.orders import Contract, Order, OrderLeg
from engine.portfolio.book import HEDGE, Book, HeldLeg, PositionMark
from engine.risk.whatif import order_impact
from engine.state.snapshot import Chain, Snapshot

_STAGE = {"close": 0, "flatten": 0, "reduce": 0, "adjust": 1, "roll": 1, "hedge": 2, "open": 3}


@dataclass(frozen=True)
class Sizing:
    """How many structures a new position gets when its rule does not say."""

    risk_per_trade: float = 0.02  # fraction of net liq the position may lose at most
    max_units: int = 25

    def units(self, net_liq: float, max_loss_per_unit: float) -> int:
        if max_loss_per_unit <= 0 or not math.isfinite(max_loss_per_unit):
            return 1
        return max(1, min(self.max_units, int(self.risk_per_trade * net_liq // max_loss_per_unit)))

    def describe(self) -> dict[str, Any]:
        return {"risk_per_trade": self.risk_per_trade, "max_units": self.max_units}


@dataclass(frozen=True)
class Proposal:
    decision: Decision  # the rule decision it answers
    order: Order | None
    note: str | None = None  # why there is no order
    entry: dict[str, Any] = field(default_factory=dict)  # facts for a new position
    # Buying power the order takes: an entry's max loss × units, a hedge's increase in its
    # requirement; 0 for the rest (what closes and smaller hedges free counts once filled).
    margin_usd: float = 0.0
    reduces_hedge: bool = False  # a hedge order that moves the hedge toward zero, not past it


CLOSING = frozenset({"close", "reduce", "flatten"})  # intents that only take risk off


def closes_only(p: Proposal) -> bool:
    """An adjustment that only closes legs (close_tested) reduces risk."""
    return (
        p.order is not None
        and p.order.intent == "adjust"
        and p.decision is not None
        and p.decision.target == "close_tested"
    )


MaxLossFn = Callable[[str, Sequence[LegChoice], float], float]  # symbol, legs, spot -> USD/unit


class Proposer:
    """Turns one tick's decisions into proposals. Stateless apart from the order counter."""

    def __init__(self, ruleset: Any, sizing: Sizing, max_loss: MaxLossFn) -> None:
        self.rs, self.sizing, self.max_loss = ruleset, sizing, max_loss

    def propose(
        self,
        decisions: Sequence[Decision],
        view: Snapshot,
        book: Book,
        marks: dict[str, PositionMark],
        regime: str | None,
    ) -> list[Proposal]:
        seq = iter(range(1, 10_000))
        time = view.time

        def oid() -> str:
            return f"{time:%Y%m%d%H%M}-{next(seq)}"

        out: list[Proposal] = []
        touched: set[str] = set()  # positions already given an order this tick
        changed: set[str] = set()  # … of which only adjusted or rolled, not closed
        hedged: set[str] = set()
        for d in sorted(decisions, key=lambda d: _STAGE.get(d.verb, 9)):
            verb = d.verb
            if verb in ("block_entries", "halt", "alert"):
                continue
            if verb == "flatten":
                for every in sorted(book.positions):
                    if every not in touched:
                        touched.add(every)
                        out.append(self._close(d, book.positions[every].legs, every, oid(), book))
                continue
            if verb in ("close", "reduce", "adjust", "roll"):
                pid = d.position_id
                if pid is None or pid not in book.positions:
                    out.append(Proposal(d, None, "position is no longer open"))
                elif pid in touched:
                    out.append(Proposal(d, None, "position already has an order this tick"))
                else:
                    touched.add(pid)
                    if verb in ("adjust", "roll", "reduce"):
                        changed.add(pid)
                    out.append(self._change(d, pid, oid(), book, marks, view))
            elif verb == "hedge":
                out.append(self._hedge(d, oid(), view, book, hedged, out))
            elif verb == "open":
                out.append(self._open(d, oid(), view, book, regime))
        return out

    # ------------------------------------------------------------------ exits and changes
    def _close(
        self, d: Decision, legs: Sequence[HeldLeg], pid: str, oid: str, book: Book
    ) -> Proposal:
        held = book.positions[pid]
        if held.is_hedge:
            shares = held.legs[0].per_unit
            leg = OrderLeg(held.legs[0].contract, -1 if shares > 0 else 1, "hedge")
            order = _order(d, oid, "flatten", held.symbol, (leg,), abs(shares), pid, HEDGE)
            return Proposal(d, order)
        order_legs = tuple(OrderLeg(hl.contract, -hl.per_unit, hl.role) for hl in legs)
        intent = "flatten" if d.verb == "flatten" else "close"
        order = _order(d, oid, intent, held.symbol, order_legs, held.quantity, pid, held.strategy)
        return Proposal(d, order)

    def _change(
        self,
        d: Decision,
        pid: str,
        oid: str,
        book: Book,
        marks: dict[str, PositionMark],
        view: Snapshot,
    ) -> Proposal:
        held = book.positions[pid]
        args = dict(d.args)
        if d.verb == "close":
            return self._close(d, held.legs, pid, oid, book)
        if d.verb == "reduce":
            units = max(1, int(held.quantity * float(args.get("fraction") or 0.0)))
            legs = tuple(OrderLeg(hl.contract, -hl.per_unit, hl.role) for hl in held.legs)
            intent = "close" if units >= held.quantity else "reduce"
            units = min(units, held.quantity)
            return Proposal(d, _order(d, oid, intent, held.symbol, legs, units, pid, held.strategy))
        if d.verb == "adjust" and d.target == "close_tested":
            side = _tested_side(marks.get(pid))
            if side is None:
                return Proposal(d, None, "no short leg with a known delta: cannot tell the side")
            legs = tuple(
                OrderLeg(hl.contract, -hl.per_unit, hl.role)
                for hl in held.legs
                if hl.contract.is_call is side
            )
            if len(legs) == len(held.legs):
                return self._close(d, held.legs, pid, oid, book)
            order = _order(d, oid, "adjust", held.symbol, legs, held.quantity, pid, held.strategy)
            return Proposal(d, order)
        if d.verb == "roll" and d.target is not None:
            return self._roll(d, pid, oid, book, view, args)
        if d.verb == "adjust" and d.target == "recenter":
            chain = view.chains.get(held.symbol)
            info = self.rs.strategies.get(held.strategy)
            if info is None or chain is None:
                return Proposal(d, None, "no strategy or chain to recenter with")
            sel = select_legs(info, held.open_args, chain, view.time.date())
            if not sel.ok:
                return Proposal(d, None, f"cannot recenter: {sel.reason}")
            legs = tuple(OrderLeg(hl.contract, -hl.per_unit, hl.role) for hl in held.legs)
            legs += tuple(_leg(held.symbol, lc) for lc in sel.legs)
            order = _order(d, oid, "roll", held.symbol, legs, held.quantity, pid, held.strategy)
            return Proposal(d, order)
        return Proposal(d, None, f"unknown adjustment {d.target!r}")

    def _roll(
        self, d: Decision, pid: str, oid: str, book: Book, view: Snapshot, args: dict[str, Any]
    ) -> Proposal:
        held = book.positions[pid]
        target = next((hl for hl in held.legs if hl.role == d.target), None)
        if target is None or target.contract.strike is None:
            return Proposal(d, None, f"position has no {d.target} leg")
        # The wing that protects the rolled leg moves with it, at the same width.
        wing = next(
            (
                hl
                for hl in held.legs
                if hl.contract.is_call == target.contract.is_call
                and hl.per_unit * target.per_unit < 0
            ),
            None,
        )
        chain = view.chains.get(held.symbol)
        if chain is None:
            return Proposal(d, None, "no chain to roll into")
        today = view.time.date()
        dte = float(args.get("dte") or (target.contract.expiry - today).days)  # type: ignore[operator]
        delta = args.get("delta")
        is_call = bool(target.contract.is_call)
        signed = None if delta is None else (abs(float(delta)) * (1 if is_call else -1))
        new = _pick(chain, today, dte, is_call, signed, target.contract.strike)
        if new is None:
            return Proposal(d, None, f"no quoted {'call' if is_call else 'put'} near {dte:g}d")
        legs = [OrderLeg(target.contract, -target.per_unit, target.role)]
        legs.append(OrderLeg(_option(held.symbol, new[0], new[1], is_call), target.per_unit,
                             target.role))  # fmt: skip
        if wing is not None and wing.contract.strike is not None:
            width = wing.contract.strike - target.contract.strike
            w = _pick(chain, today, float((new[0] - today).days), is_call, None, new[1] + width,
                      exact_expiry=new[0])  # fmt: skip
            if w is None or w[1] == new[1]:
                return Proposal(d, None, "no wing strike at the same width")
            legs.insert(1, OrderLeg(wing.contract, -wing.per_unit, wing.role))
            legs.append(OrderLeg(_option(held.symbol, w[0], w[1], is_call), wing.per_unit,
                                 wing.role))  # fmt: skip
        order = _order(d, oid, "roll", held.symbol, tuple(legs), held.quantity, pid, held.strategy)
        return Proposal(d, order)

    # ------------------------------------------------------------------ hedges and entries
    def _hedge(
        self,
        d: Decision,
        oid: str,
        view: Snapshot,
        book: Book,
        hedged: set[str],
        before: Sequence[Proposal] = (),
    ) -> Proposal:
        args = dict(d.args)
        instrument = str(args.get("instrument") or "SPY")
        if instrument in hedged:
            return Proposal(d, None, f"a {instrument} hedge was already ordered this tick")
        bw = view.portfolio.bw_delta_spy
        spy = view.underlyings.get("SPY")
        if bw is None or spy is None or spy.price is None:
            return Proposal(d, None, "beta-weighted delta or SPY price unknown: no hedge")
        # Closes and side closes go first in the same execution (the gate never blocks them):
        # hedge what they leave. Their closing legs carry the opposite sign already.
        for p in before:
            if p.order is not None and (p.order.intent in CLOSING or closes_only(p)):
                moved = order_impact(p.order, view).bw_delta
                if moved is None:
                    return Proposal(d, None, "delta after this tick's closes unknown: no hedge")
                bw += moved
        need = float(args.get("target") or 0.0) - bw  # SPY shares to add
        if instrument == "SPY":
            units, contract, price = round(need), Contract("SPY", "stock"), spy.price
        else:
            fut = view.market.futures.get(instrument)
            if fut is None or fut.price is None:
                return Proposal(d, None, f"no {instrument} quote: no hedge")
            contract, price = Contract(instrument, "future"), fut.price
            units = round(need * spy.price / (price * contract.multiplier))
        if units == 0:
            return Proposal(d, None, f"hedge smaller than one {instrument} unit")
        hedged.add(instrument)
        leg = OrderLeg(contract, 1 if units > 0 else -1, "hedge")
        pid = f"hedge-{instrument}"
        order = _order(d, oid, "hedge", instrument if instrument != "SPY" else "SPY", (leg,),
                       abs(units), pid, HEDGE)  # fmt: skip
        held = book.positions.get(pid)
        now = held.legs[0].per_unit if held is not None and held.legs else 0
        margin = max(0.0, _hedge_margin(contract, now, now + units, price))
        smaller = now * (now + units) >= 0 and abs(now + units) < abs(now)
        return Proposal(d, order, margin_usd=margin, reduces_hedge=smaller)

    def _open(
        self, d: Decision, oid: str, view: Snapshot, book: Book, regime: str | None
    ) -> Proposal:
        symbol, strategy = d.symbol, d.target
        assert symbol is not None and strategy is not None
        info = self.rs.strategies.get(strategy)
        chain = view.chains.get(symbol)
        u = view.underlyings.get(symbol)
        if info is None or chain is None or u is None or u.price is None:
            return Proposal(d, None, f"no chain for {symbol}: cannot open {strategy}")
        args = {k: v for k, v in d.args if v is not None}
        sel = select_legs(info, args, chain, view.time.date())
        if not sel.ok:
            return Proposal(d, None, f"no order: {sel.reason}")
        per_unit = self.max_loss(symbol, sel.legs, u.price)
        units = int(args["quantity"]) if "quantity" in args else None
        net_liq = view.portfolio.net_liq or 0.0
        units = units or self.sizing.units(net_liq, per_unit)
        legs = tuple(_leg(symbol, lc) for lc in sel.legs)
        pid = book.new_position_id(symbol, view.time)
        order = _order(d, oid, "open", symbol, legs, units, pid, strategy)
        entry = {"entry_regime": regime, "entry_iv": u.atm_iv, "open_args": args}
        return Proposal(d, order, entry=entry, margin_usd=per_unit * units)


def _hedge_margin(contract: Contract, held: float, after: float, price: float) -> float:
    """USD of buying power the hedge adds (negative: frees) going from `held` to `after`
    shares or contracts."""
    return margin_usd([MarginLeg(contract, int(after), price)], price) - margin_usd(
        [MarginLeg(contract, int(held), price)], price
    )


def _order(
    d: Decision,
    oid: str,
    intent: Any,
    symbol: str,
    legs: tuple[OrderLeg, ...],
    units: int,
    pid: str | None,
    strategy: str | None,
) -> Order:
    return Order(
        id=oid,
        time=d.time,
        intent=intent,
        symbol=symbol,
        legs=legs,
        quantity=units,
        rule_id=d.rule_id,
        reason=d.reason or d.describe(),
        strategy=strategy,
        position_id=pid,
    )


def _option(symbol: str, expiry: date, strike: float, is_call: bool) -> Contract:
    return Contract(symbol, "option", expiry, strike, is_call)


def _leg(symbol: str, lc: LegChoice) -> OrderLeg:
    contract = _option(symbol, lc.expiry, lc.strike, lc.is_call)
    return OrderLeg(contract, (1 if lc.side == "buy" else -1) * lc.ratio, lc.name)


def _tested_side(m: PositionMark | None) -> bool | None:
    """True when the call side is tested, False for the put side: the short leg with the
    larger |delta|."""
    if m is None:
        return None
    best: tuple[float, bool] | None = None
    for hl, mk in m.legs:
        if hl.per_unit < 0 and mk is not None and hl.contract.is_call is not None:
            d = abs(mk.delta)
            if best is None or d > best[0]:
                best = (d, hl.contract.is_call)
    return None if best is None else best[1]


def _pick(
    chain: Chain,
    today: date,
    dte: float,
    is_call: bool,
    delta: float | None,
    strike: float,
    exact_expiry: date | None = None,
) -> tuple[date, float] | None:
    """A quoted contract: the expiry nearest `dte` days (or `exact_expiry`), then the strike
    nearest `delta` (if given) or `strike`."""
    quoted = (chain.is_call == is_call) & (chain.ask > 0) & (chain.bid >= 0)
    rows = np.flatnonzero(quoted)
    if rows.size == 0:
        return None
    if exact_expiry is not None:
        rows = rows[chain.expiry[rows] == np.datetime64(exact_expiry, "D")]
    else:
        days = (chain.expiry[rows] - np.datetime64(today, "D")).astype(np.int64)
        best = days[np.argmin(np.abs(days - dte))]
        rows = rows[days == best]
    if rows.size == 0:
        return None
    if delta is not None:
        d = chain.delta[rows]
        ok = np.isfinite(d)
        if not ok.any():
            return None
        rows, d = rows[ok], d[ok]
        i = int(rows[np.argmin(np.abs(d - delta))])
    else:
        i = int(rows[np.argmin(np.abs(chain.strike[rows] - strike))])
    return chain.expiry[i].astype("datetime64[D]").item(), float(chain.strike[i])
