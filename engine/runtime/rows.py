"""Journal rows of one tick: decisions, orders, fills, positions, equity and risk events.

Pure: a TickResult in, rows out, in the column layout of engine/journal/run_tables.py. JSON
text columns are written with sorted keys and fixed float formatting so that two identical
runs give byte-identical tables.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from engine.dsl.trace import Decision, Level, RuleTrace, rule_trace
from engine.execution.orders import Contract, Fill, Order, Settlement
from engine.journal.run_tables import json_text
from engine.portfolio.book import Closed, HeldPosition, PositionMark, days_held, days_to_expiry
from engine.runtime.engine import TickResult

Row = dict[str, Any]


def _stamp(r: TickResult) -> Row:
    # `date` and `year` (New York) are derived from `time` by the journal, which would only
    # check them if given here.
    return {"time": r.time}


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v if v is None or isinstance(v, bool | int | str) else str(v)


def _trace_json(t: RuleTrace) -> str | None:
    if not t.conditions and not t.lets:
        return None
    conds = [
        {
            "text": c.text,
            "location": c.location,
            "result": c.result,
            "operands": [
                {"text": o.text, "value": _plain(o.value), "unit": o.unit} for o in c.operands
            ],
            "distance": c.distance,
        }
        for c in t.conditions
    ]
    lets = [{"text": o.text, "value": _plain(o.value), "unit": o.unit} for o in t.lets]
    return json_text({"conditions": conds, "lets": lets} if lets else {"conditions": conds})


def _outcomes(r: TickResult) -> dict[int, str]:
    """What happened to each decision (keyed by id()), in words."""
    out: dict[int, list[str]] = defaultdict(list)
    for v in r.verdicts:
        p = v.proposal
        d = p.decision
        if p.order is None:
            out[id(d)].append(p.note or "no order")
        elif v.blocked is not None:
            out[id(d)].append(f"blocked: {v.blocked}")
        else:
            res = r.results.get(p.order.id)
            status = res.status if res is not None else "not answered"
            why = f" ({res.reason})" if res is not None and res.reason else ""
            out[id(d)].append(f"order {p.order.id} {status}{why}")
    for d in r.decisions:
        if d.verb in ("block_entries", "halt", "flatten") and id(d) not in out:
            out[id(d)].append(f"trading state {r.gate.state}")
    return {k: "; ".join(v) for k, v in out.items()}


RowCache = dict[tuple[Any, ...], Row]
_CACHE_LIMIT = 50_000  # cached rules; a long minute-by-minute run repeats most of them


def _static_row(r: TickResult, rec: tuple[Any, ...], cache: RowCache | None) -> Row:
    """The columns that follow from the trace record alone. Evaluations repeat a lot (a
    regime rule sees the same VIX all day): one record, one JSON text, built once."""
    assert r.trace is not None
    key = (r.trace.ruleset, r.trace.level, rec)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    t = r.trace.rule(rec)
    failed = None
    if t.failed_index is not None:
        failed = next((c.text for c in t.conditions if c.number == t.failed_index), None)
    row = {
        "ruleset": r.trace.ruleset,
        "rule_id": t.rule_id,
        "kind": t.kind,
        "phase": t.phase,
        "subject": t.subject,
        "status": t.status,
        # A limit acts when its check fails or cannot be verified: that is its firing.
        "fired": t.status != "fired" if t.kind == "limit" else t.status == "fired",
        "location": t.location,
        "failed_condition": failed,
        "trace": _trace_json(t),
        "note": t.note,
    }
    if cache is not None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = row
    return row


def decision_rows(r: TickResult, cache: RowCache | None = None) -> list[Row]:
    """One row per rule evaluated. `cache` (kept by the caller across ticks) memoises the
    part of a row that depends on the trace record only."""
    stamp = _stamp(r)
    by_rule: dict[tuple[str, str], list[Decision]] = defaultdict(list)
    for d in r.decisions:
        by_rule[(d.rule_id, d.position_id or d.symbol or "")].append(d)
    outcomes = _outcomes(r) if r.decisions else {}
    rows = []
    assert r.trace is not None, "runs trace at least the failing conditions"
    for rec in r.trace.records:
        static = _static_row(r, rec, cache)
        mine: list[Decision] = []
        if static["fired"]:
            key = (static["rule_id"], static["subject"])
            mine = by_rule.get(key) or by_rule.get((static["rule_id"], ""), [])
        done = [outcomes[id(d)] for d in mine if id(d) in outcomes]
        row = stamp | static
        note = row.pop("note")
        row["action"] = "; ".join(d.action() for d in mine) or None
        row["reason"] = next((d.reason for d in mine if d.reason), None) or note
        row["outcome"] = "; ".join(done) or None
        rows.append(row)
    return rows


def _legs_json(legs: Any) -> str:
    return json_text(
        [{"contract": leg.contract.key, "ratio": leg.ratio, "role": leg.role} for leg in legs]
    )


def order_rows(r: TickResult) -> list[Row]:
    stamp = _stamp(r)
    rows = []
    for v in r.verdicts:
        o = v.proposal.order
        if o is None:
            continue
        res = r.results.get(o.id)
        fill = res.fill if res is not None else None
        status = "blocked" if v.blocked is not None else (res.status if res else "rejected")
        reason = v.blocked if v.blocked is not None else (res.reason if res else None)
        rows.append(
            stamp
            | {
                "order_id": o.id,
                "intent": o.intent,
                "symbol": o.symbol,
                "strategy": o.strategy,
                "position_id": o.position_id,
                "rule_id": o.rule_id,
                "reason": o.reason,
                "quantity": o.quantity,
                "filled": fill.quantity if fill else 0,
                "legs": _legs_json(o.legs),
                "status": status,
                "status_reason": reason,
                "net_price": fill.net_price if fill else None,
                "commission": fill.commission if fill else None,
                "fees": fill.fees if fill else None,
            }
        )
    return rows


def _contract_cols(c: Contract) -> Row:
    right = None if c.is_call is None else ("C" if c.is_call else "P")
    return {
        "contract": c.key,
        "symbol": c.symbol,
        "kind": c.kind,
        "expiry": c.expiry,
        "strike": c.strike,
        "right": right,
    }


def fill_rows(r: TickResult) -> list[Row]:
    stamp = _stamp(r)
    rows: list[Row] = []
    for res in r.results.values():
        if res.fill is not None and res.fill.quantity > 0:
            rows += _fill_legs(stamp, res.order, res.fill)
    for n, s in enumerate(r.settlements):
        rows.append(_settlement_row(stamp, s, n))
    return rows


def _fill_legs(stamp: Row, o: Order, f: Fill) -> list[Row]:
    n = len(f.legs)
    out = []
    for lf in f.legs:
        # Costs are per order; each leg carries its share so the column sums to the total.
        gross = -lf.ratio * lf.price * lf.contract.multiplier * f.quantity
        com, fee = f.commission / n, f.fees / n
        out.append(
            stamp
            | _contract_cols(lf.contract)
            | {
                "order_id": o.id,
                "position_id": o.position_id,
                "source": "order",
                "ratio": lf.ratio,
                "quantity": lf.ratio * f.quantity,
                "price": lf.price,
                "commission": com,
                "fees": fee,
                "cash_flow": gross - com - fee,
                "how": None,
            }
        )
    return out


def _settlement_row(stamp: Row, s: Settlement, n: int) -> Row:
    return (
        stamp
        | _contract_cols(s.contract)
        | {
            "order_id": f"expiry-{s.position_id}-{n}",
            "position_id": s.position_id,
            "source": "expiry",
            "ratio": 1 if s.quantity > 0 else -1,
            "quantity": s.quantity,
            "price": s.intrinsic,
            "commission": 0.0,
            "fees": 0.0,
            "cash_flow": s.cash_flow,
            "how": s.how,
        }
    )


def _position_cols(h: HeldPosition) -> Row:
    return {
        "position_id": h.id,
        "symbol": h.symbol,
        "strategy": h.strategy,
        "quantity": h.quantity,
        "opened_at": h.opened_at,
        "entry_credit": h.entry_credit,
        "entry_regime": h.entry_regime,
        "entry_iv": h.entry_iv,
        "adjustments": h.adjustments,
        "legs": json_text(
            [
                {
                    "contract": hl.contract.key,
                    "per_unit": hl.per_unit,
                    "role": hl.role,
                    "entry_price": hl.entry_price,
                }
                for hl in h.legs
            ]
        ),
    }


_MARK_COLUMNS = ("mark", "pnl_pct_of_credit", "max_loss", "dte", "days_held", "delta", "gamma",
                 "vega", "theta")  # fmt: skip


def _flags(r: TickResult) -> dict[str, str]:
    """Per position: the broker's early-assignment warnings on this tick, in words."""
    out: dict[str, list[str]] = defaultdict(list)
    for a in r.assignment_risks:
        out[a.position_id].append(
            f"early assignment risk: short {a.contract.key} has ${a.extrinsic:.2f} of time "
            f"value, under the ~${a.dividend_estimate:.2f} dividend"
        )
    return {pid: "; ".join(texts) for pid, texts in out.items()}


def position_rows(r: TickResult) -> list[Row]:
    stamp = _stamp(r)
    flags = _flags(r) if r.assignment_risks else {}
    rows = [_open_row(stamp, m, r, flags) for m in r.marks]
    rows += [_closed_row(stamp, c) for c in r.closed]
    return rows


def _open_row(stamp: Row, m: PositionMark, r: TickResult, flags: dict[str, str]) -> Row:
    h = m.held
    return (
        stamp
        | _position_cols(h)
        | {
            "status": "open",
            "mark": m.mark,
            "pnl": m.pnl,
            "pnl_pct_of_credit": m.pnl_pct_of_credit,
            "high_water_pnl_pct": h.high_water_pnl_pct,
            "max_loss": m.max_loss,
            "dte": days_to_expiry(h, r.time),
            "days_held": days_held(h, r.time),
            "delta": m.delta,
            "gamma": m.gamma,
            "vega": m.vega,
            "theta": m.theta,
            "realized_pnl": None,
            "close_reason": None,
            "close_rule": None,
            "flags": flags.get(h.id),
        }
    )


def _closed_row(stamp: Row, c: Closed) -> Row:
    return (
        stamp
        | _position_cols(c.held)
        | dict.fromkeys(_MARK_COLUMNS)
        | {
            "status": "closed",
            "pnl": c.realized_pnl,
            "high_water_pnl_pct": c.held.high_water_pnl_pct,
            "realized_pnl": c.realized_pnl,
            "close_reason": c.reason,
            "close_rule": c.rule_id,
            "flags": None,
        }
    )


def equity_row(r: TickResult, initial_cash: float, commissions: float) -> Row:
    p = r.account.portfolio
    return _stamp(r) | {
        "net_liq": r.account.net_liq,
        "cash": p.cash,
        "pnl": r.account.net_liq - initial_cash,
        "day_pnl": p.day_pnl,
        "drawdown_pct": p.drawdown_pct or 0.0,
        "peak_net_liq": p.peak_net_liq,
        "open_positions": p.open_positions,
        "delta": p.delta,
        "gamma": p.gamma,
        "vega": p.vega,
        "theta": p.theta,
        "bw_delta_spy": p.bw_delta_spy,
        "buying_power_used": p.buying_power_used,
        "margin_used_pct": p.margin_used_pct,
        "cluster_delta": p.cluster_delta,
        "regime": r.regime,
        "risk_state": r.gate.state,
        "commissions": commissions,
        "hedge_shares": r.account.hedge_shares,
    }


def risk_event_rows(r: TickResult) -> list[Row]:
    """The tick's risk events, each with the condition values of the rules behind it."""
    if not r.gate.events:
        return []
    stamp = _stamp(r)
    by_rule: dict[str, list[RuleTrace]] = defaultdict(list)
    if r.trace is not None:
        wanted = {rule for e in r.gate.events for rule in e.rules}
        for rec in r.trace.records:
            block = r.trace.block_of(rec)
            if rec[0] == "e" and block.id in wanted:
                by_rule[block.id].append(rule_trace(block, rec, Level.FULL))
    out = []
    for e in r.gate.events:
        values = None
        if r.trace is not None:
            values = json_text([
                {"rule": t.rule_id, "text": o.text, "value": _plain(o.value), "unit": o.unit}
                for rule in e.rules for t in by_rule.get(rule, ())
                for c in t.conditions for o in c.operands
            ])  # fmt: skip
        out.append({
            **stamp, "kind": e.kind, "state_before": e.before, "state_after": e.after,
            "cause": e.cause, "detail": e.detail, "rules": ", ".join(e.rules) or None,
            "values": values,
        })  # fmt: skip
    return out
