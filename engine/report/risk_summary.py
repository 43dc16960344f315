"""The Risk section of a run report: breaker history, days per trading state, hedges, blocks.

Pure functions over the journal rows `run_data.load_run` reads (`RunData.risk`, and the
trading state of each day's last tick, `RunData.risk_state`):

- breaker history: each `trip` row of `risk_events` is paired with the next `reset` row of
  the same breaker (`cause`). A trip is counted on the run's trading days from its trip date
  up to, not including, its reset date — the days at whose close the breaker was tripped —
  and up to the last day when it was still tripped at the end;
- trading states: days whose last tick was ACTIVE, REDUCING or HALTED (`equity.risk_state`);
  transitions and operator commands are `risk_events` rows of those kinds;
- hedges: orders whose strategy is "hedge" (placing, resizing and closing hedges), their fills
  (and settlements of hedge positions), the realized P&L of closed hedge positions and the
  unrealized P&L of those open on their last row, in USD with every cost included;
- blocked orders: `orders` rows with status blocked, grouped by the start of `status_reason`
  (up to the first ':' or ' by '), amounts masked, so one control or limit is one group.

Dates are New York trading dates. The journal does not record the mid price at a fill, so
slippage against mid is not reported (costs are commission and fees).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from engine.report.run_data import HEDGE, RunData

STATES = ("ACTIVE", "REDUCING", "HALTED")
UNKNOWN = "unknown"  # days without a tick in the journal, or a run without an equity table
NO_REASON = "(no reason given)"
NO_EVENTS_NOTE = (
    "no risk_events table (a run journaled before the risk gate wrote one): no breaker "
    "history, transitions or operator commands"
)
_SEPARATOR = re.compile(r":| by ")
# Amounts in a reason ("needs $5,000 of buying power") would make each order its own group.
_AMOUNT = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?")

# (key in RiskSummary.headline(), label, unit: int for a count, usd): the Risk table's rows.
RISK_ROWS = (
    ("days_active", "Days ACTIVE", "int"), ("days_reducing", "Days REDUCING", "int"),
    ("days_halted", "Days HALTED", "int"), ("days_unknown", "Days, state unknown", "int"),
    ("transitions", "State transitions", "int"), ("commands", "Operator commands", "int"),
    ("trips", "Breaker trips", "int"), ("still_tripped", "  still tripped at the end", "int"),
    ("blocked_orders", "Orders blocked by the gate", "int"),
    ("blocked_entries", "  of which entries", "int"),
    ("hedge_orders", "Hedge orders", "int"), ("hedge_orders_filled", "  filled", "int"),
    ("hedge_shares_traded", "Hedge shares traded", "int"),
    ("hedge_futures_traded", "Hedge futures traded (contracts)", "int"),
    ("hedge_costs_usd", "Hedge commissions + fees", "usd"),
    ("hedge_closed", "Hedge positions closed", "int"), ("hedge_open", "  open at the end", "int"),
    ("hedge_realized_pnl_usd", "Hedge realized P&L", "usd"),
    ("hedge_unrealized_pnl_usd", "Hedge unrealized P&L", "usd"),
    ("hedge_pnl_usd", "Hedge P&L", "usd"),
)  # fmt: skip

DateArray = npt.NDArray[np.datetime64]  # datetime64[D]
ObjArray = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class BreakerTrip:
    """One trip of a circuit breaker, and its reset."""

    breaker: str
    wants: str | None  # the trading state it asked for: REDUCING or HALTED
    tripped: date  # New York date of the trip
    reset: date | None  # New York date of the reset; None: still tripped at the end
    reset_by: str | None  # "operator" (a resume) or "rule" (cool-down over, reset held)
    days: int  # trading days at whose close it was tripped


@dataclass(frozen=True, slots=True)
class BreakerCount:
    breaker: str
    trips: int
    days: int  # trading days tripped, over all its trips
    still_tripped: bool  # at the end of the run


@dataclass(frozen=True, slots=True)
class StateDays:
    state: str  # ACTIVE, REDUCING, HALTED or UNKNOWN
    days: int  # trading days whose last tick was in this state
    share: float | None  # fraction of the run's trading days; None for a run without days


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    day: date  # New York date the engine read it
    command: str  # halt, flatten or resume


@dataclass(frozen=True, slots=True)
class BlockedReason:
    reason: str  # status_reason up to the first ':' or ' by ', amounts masked
    orders: int  # orders blocked for it
    entries: int  # of which entries (intent open)


@dataclass(frozen=True, slots=True)
class HedgeSummary:
    """Hedge orders and positions; money in USD, costs included."""

    orders: int  # every order of strategy "hedge", blocked and rejected ones included
    filled: int  # orders with at least one unit filled
    blocked: int  # by the risk gate
    rejected: int  # by the broker
    shares_traded: int  # sum of |shares| of stock hedge fills
    futures_traded: int  # sum of |contracts| of futures hedge fills
    costs_usd: float  # commission and fees of those fills
    closed: int  # hedge positions closed (a position id reopened counts once per life)
    realized_pnl_usd: float  # their realized P&L: every cash flow, costs included
    open_at_end: int  # hedge positions whose last row is open
    unrealized_pnl_usd: float | None  # their P&L on that row; None if a row has none

    @property
    def pnl_usd(self) -> float | None:
        """Realized plus unrealized."""
        u = self.unrealized_pnl_usd
        return None if u is None else self.realized_pnl_usd + u


@dataclass(frozen=True, slots=True)
class RiskSummary:
    days: int  # the run's trading days (equity.csv)
    states: tuple[StateDays, ...]  # ACTIVE, REDUCING, HALTED, then UNKNOWN if any
    transitions: int  # changes of trading state
    commands: tuple[OperatorCommand, ...]
    trips: tuple[BreakerTrip, ...]  # in order of tripping
    breakers: tuple[BreakerCount, ...]  # by breaker id
    blocked: tuple[BlockedReason, ...]  # most orders first
    hedges: HedgeSummary
    notes: tuple[str, ...]  # what is missing or odd in the journal

    def headline(self) -> dict[str, Any]:
        """The counts and costs, flat: what two runs are compared on."""
        days = {f"days_{s.state.lower()}": s.days for s in self.states}
        h = self.hedges
        return {
            **days, "transitions": self.transitions, "commands": len(self.commands),
            "trips": len(self.trips),
            "still_tripped": sum(1 for t in self.trips if t.reset is None),
            "blocked_orders": sum(b.orders for b in self.blocked),
            "blocked_entries": sum(b.entries for b in self.blocked),
            "hedge_orders": h.orders, "hedge_orders_filled": h.filled,
            "hedge_shares_traded": h.shares_traded, "hedge_futures_traded": h.futures_traded,
            "hedge_costs_usd": h.costs_usd, "hedge_closed": h.closed, "hedge_open": h.open_at_end,
            "hedge_realized_pnl_usd": h.realized_pnl_usd,
            "hedge_unrealized_pnl_usd": h.unrealized_pnl_usd, "hedge_pnl_usd": h.pnl_usd,
        }  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, undefined values as None."""
        return {
            "summary": self.headline(),
            "days": self.days,
            "states": {s.state: {"days": s.days, "share": s.share} for s in self.states},
            "transitions": self.transitions,
            "commands": [{"date": c.day.isoformat(), "command": c.command} for c in self.commands],
            "trips": [_iso(asdict(t)) for t in self.trips],
            "breakers": {b.breaker: {"trips": b.trips, "days": b.days,
                                     "still_tripped": b.still_tripped} for b in self.breakers},
            "blocked": {b.reason: {"orders": b.orders, "entries": b.entries}
                        for b in self.blocked},
            "hedges": {**asdict(self.hedges), "pnl_usd": self.hedges.pnl_usd},
            "notes": list(self.notes),
        }  # fmt: skip


def _iso(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in d.items()}


def _day(value: np.datetime64) -> date:
    return value.astype("datetime64[D]").item()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- breakers


def breaker_history(
    kind: ObjArray, cause: ObjArray, detail: ObjArray, day: DateArray, dates: DateArray
) -> tuple[tuple[BreakerTrip, ...], list[str]]:
    """Trips paired with their resets, from risk_events columns in time order; `dates` are the
    run's trading days (ascending). Returns the trips and notes on rows that pair with none."""
    open_trips: dict[str, tuple[date, str | None]] = {}
    done: list[tuple[str, date, str | None, date | None, str | None]] = []
    notes: list[str] = []
    for k, c, d, t in zip(kind, cause, detail, day, strict=True):
        when = _day(t)
        if k == "trip":
            if c in open_trips:  # the machine never trips a tripped breaker: keep the first
                notes.append(f"risk_events: {c} tripped again on {when} without a reset")
                continue
            wants = d[len("wants ") :] if d.startswith("wants ") else None
            open_trips[c] = (when, wants)
        elif k == "reset":
            if c not in open_trips:
                notes.append(f"risk_events: reset of {c} on {when} with no trip before it")
                continue
            tripped, wants = open_trips.pop(c)
            done.append((c, tripped, wants, when, "operator" if d == "operator resume" else "rule"))
    done += [(c, t, w, None, None) for c, (t, w) in open_trips.items()]
    done.sort(key=lambda x: (x[1], x[0]))
    days_in = np.asarray(dates, dtype="datetime64[D]")
    trips = []
    for breaker, tripped, wants, reset, by in done:
        first = int(np.searchsorted(days_in, np.datetime64(tripped, "D"), "left"))
        end = days_in.size if reset is None else int(
            np.searchsorted(days_in, np.datetime64(reset, "D"), "left")
        )  # fmt: skip
        trips.append(BreakerTrip(breaker, wants, tripped, reset, by, max(end - first, 0)))
    return tuple(trips), notes


def breaker_counts(trips: tuple[BreakerTrip, ...]) -> tuple[BreakerCount, ...]:
    """Trips, days tripped and whether still tripped, per breaker (by id)."""
    out = []
    for breaker in sorted({t.breaker for t in trips}):
        mine = [t for t in trips if t.breaker == breaker]
        out.append(BreakerCount(breaker, len(mine), sum(t.days for t in mine),
                                any(t.reset is None for t in mine)))  # fmt: skip
    return tuple(out)


# ----------------------------------------------------------------------------- states


def state_days(day_state: ObjArray | None, days: int) -> tuple[StateDays, ...]:
    """Days per trading state of the day's last tick; unknown days last, only if any."""
    values = np.full(days, None, dtype=object) if day_state is None else day_state
    counts = Counter(UNKNOWN if v is None else str(v) for v in values)
    names = [*STATES, *sorted(set(counts) - {*STATES, UNKNOWN})]
    names += [UNKNOWN] if counts[UNKNOWN] else []
    return tuple(StateDays(s, counts[s], counts[s] / days if days else None) for s in names)


def operator_commands(
    kind: ObjArray, detail: ObjArray, day: DateArray
) -> tuple[OperatorCommand, ...]:
    mask = kind == "command"
    return tuple(OperatorCommand(_day(t), str(d)) for d, t in zip(detail[mask], day[mask],
                                                                    strict=True))  # fmt: skip


# ----------------------------------------------------------------------------- blocks


def reason_prefix(reason: str | None) -> str:
    """'entries blocked (REDUCING) by vix_spike' -> 'entries blocked (REDUCING)'; amounts
    become '…' ('needs $… of buying power, $… available')."""
    if reason is None or not reason.strip():
        return NO_REASON
    head = _SEPARATOR.split(reason, maxsplit=1)[0].strip()
    return _AMOUNT.sub(lambda m: "$…" if m.group().startswith("$") else "…", head) or NO_REASON


def blocked_reasons(
    status: ObjArray, reason: ObjArray, intent: ObjArray
) -> tuple[BlockedReason, ...]:
    """Blocked orders per reason prefix, most first (ties alphabetical)."""
    blocked = status == "blocked"
    keys = [reason_prefix(r) for r in reason[blocked]]
    orders = Counter(keys)
    entries = Counter(k for k, i in zip(keys, intent[blocked], strict=True) if i == "open")
    ranked = sorted(orders, key=lambda k: (-orders[k], k))
    return tuple(BlockedReason(k, orders[k], entries[k]) for k in ranked)


# ----------------------------------------------------------------------------- hedges


def _column(table: pa.Table, name: str) -> ObjArray:
    return np.asarray(table.column(name).to_pylist(), dtype=object).reshape(-1)


def hedge_summary(orders: pa.Table, fills: pa.Table, hedges: pa.Table) -> HedgeSummary:
    """Hedges from the orders, fills and hedge positions rows (RiskTables' columns)."""
    mine = orders.filter(pc.equal(orders.column("strategy"), HEDGE))
    status = _column(mine, "status")
    ids = set(_column(mine, "order_id").tolist())
    positions = set(_column(hedges, "position_id").tolist())
    ofs = _column(fills, "order_id")
    pos = _column(fills, "position_id")
    traded = np.array([o in ids or p in positions for o, p in zip(ofs, pos, strict=True)],
                      dtype=bool)  # fmt: skip
    kind = _column(fills, "kind")[traded]
    size = np.abs(fills.column("quantity").to_numpy(zero_copy_only=False)[traded])
    cost = (fills.column("commission").to_numpy(zero_copy_only=False)
            + fills.column("fees").to_numpy(zero_copy_only=False))[traded]  # fmt: skip
    closed = hedges.filter(pc.equal(hedges.column("status"), "closed"))
    realized = pc.sum(closed.column("realized_pnl")).as_py() or 0.0
    # Each position's last row says whether it is open at the end (ids reopen after a close).
    pid = _column(hedges, "position_id")
    last = {p: i for i, p in enumerate(pid)}
    rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    ending = hedges.take(pa.array(rows, pa.int64()))
    still = ending.filter(pc.equal(ending.column("status"), "open"))
    pnl = still.column("pnl")
    return HedgeSummary(
        orders=mine.num_rows,
        filled=int(pc.sum(pc.greater(mine.column("filled"), 0)).as_py() or 0),
        blocked=int(np.sum(status == "blocked")),
        rejected=int(np.sum(status == "rejected")),
        shares_traded=int(np.sum(size[kind == "stock"])),
        futures_traded=int(np.sum(size[kind == "future"])),
        costs_usd=float(np.sum(cost)),
        closed=closed.num_rows,
        realized_pnl_usd=float(realized),
        open_at_end=still.num_rows,
        unrealized_pnl_usd=None if pnl.null_count else float(pc.sum(pnl).as_py() or 0.0),
    )


# ----------------------------------------------------------------------------- all


def summarize(data: RunData) -> RiskSummary:
    """The Risk section of the run `data`."""
    risk = data.risk
    notes: list[str] = []
    events = risk.events
    kind: ObjArray
    cause: ObjArray
    detail: ObjArray
    if events is None:
        notes.append(NO_EVENTS_NOTE)
        kind = cause = detail = np.empty(0, dtype=object)
        day = np.empty(0, dtype="datetime64[D]")
    else:
        kind, cause, detail = (_column(events, c) for c in ("kind", "cause", "detail"))
        day = events.column("date").to_numpy().astype("datetime64[D]")
    if data.risk_state is None and data.dates.size:
        notes.append("no equity table: the trading state of each day is unknown")
    trips, odd = breaker_history(kind, cause, detail, day, data.dates)
    o = risk.orders
    return RiskSummary(
        days=int(data.dates.size),
        states=state_days(data.risk_state, int(data.dates.size)),
        transitions=int(np.sum(kind == "transition")),
        commands=operator_commands(kind, detail, day),
        trips=trips,
        breakers=breaker_counts(trips),
        blocked=blocked_reasons(
            _column(o, "status"), _column(o, "status_reason"), _column(o, "intent")
        ),
        hedges=hedge_summary(o, risk.fills, risk.hedges),
        notes=tuple(notes + odd),
    )
