"""`v6 audit RUN_DIR`: the risk invariants of issue 6, checked after the fact on a run's journal.

`load_run` alone reads files; each check is a pure function of its `RunTables` that gives one
`Invariant`: the items checked, and the first violations, each naming its tick (New York time)
and the order, position or limit ids. Journal facts relied on (engine.journal.run_tables):
`equity.risk_state` is the state the gate used on the tick (after its step); a `limit` row of
`decisions` has status `fired` when its check held before trading, so any other status is a
breach (as its `fired` column now says too; the status also reads runs from before that change).
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.dsl import ast
from engine.dsl.errors import DslError
from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.runtime import position_counts
from engine.journal.delta_table import read_delta
from engine.journal.run_journal import RunDirError, read_info
from engine.journal.run_tables import TABLES
from engine.portfolio.book import HEDGE
from engine.risk.gate import CLOSING
from engine.risk.trading_state import ACTIVE, HALTED
from engine.risk.whatif import LimitsCheck, Pending
from engine.state.snapshot import EXCHANGE_TZ, MarketState, PortfolioState, RiskState, Snapshot

MAX_LINES = 20  # violations listed per invariant; `found` counts them all
SENT = frozenset({"filled", "partial", "rejected"})  # reached the broker (`blocked` did not)
EXIT_PHASES = ("exit", "take_profit")
_PURE_CALLS = frozenset({"abs", "min", "max", "is_known", "count_positions"})
_FROM_EQUITY = frozenset({"risk.state", "risk.entries_blocked", "market.regime"})
ABOUT = {  # each invariant: what it checks, and what its `checked` count counts
    "no_entries_unless_active": ("entries sent only while ACTIVE", "entry orders sent"),
    "only_closing_while_halted": ("only closing orders sent while HALTED",
                                  "orders sent while HALTED"),
    "exit_fires_once": ("one exit per position, no order after its close", "positions"),
    "limits_hold_after_entries": ("every limit holds after a tick with an entry filled", "ticks"),
    "risk_states_chain": ("transitions chain, HALTED left only by an operator resume, "
                          "equity.risk_state agrees", "ticks and risk events"),
}  # fmt: skip
Row = dict[str, Any]


class AuditError(ValueError):
    """The folder cannot be audited: the message says why and what to give instead."""


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    description: str
    passed: bool
    checked: int  # items examined
    counts: str  # what `checked` counts
    violations: tuple[str, ...] = ()  # the first ones, each "<tick>: <what, with ids>"
    found: int = 0  # violations in all
    note: str | None = None  # what could not be checked, and why


@dataclass(frozen=True)
class AuditReport:
    run_dir: Path
    status: str  # the run's: complete, partial or running
    ruleset: str  # name (hash)
    ticks: int
    invariants: tuple[Invariant, ...]

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.invariants)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "status": self.status, "ruleset": self.ruleset,
                "ticks": self.ticks, "passed": self.passed,
                "invariants": [asdict(i) for i in self.invariants]}  # fmt: skip


@dataclass(frozen=True)
class RunTables:
    """What the audit reads of a run: rows in tick order, nulls as None."""

    info: Mapping[str, Any]
    equity: tuple[Row, ...]
    orders: tuple[Row, ...]
    positions: tuple[Row, ...]
    exits: tuple[Row, ...]  # fired decisions of the exit and take-profit phases
    breached: frozenset[tuple[datetime, str]]  # (tick, limit) breached before trading
    risk_events: tuple[Row, ...]
    limits: LimitsCheck | None  # the run's limits; None: `limits_note` says why
    limits_note: str | None = None

    @cached_property
    def states(self) -> dict[datetime, str]:
        """Tick → the trading state the gate used on it."""
        return {r["time"]: r["risk_state"] for r in self.equity}


# ------------------------------------------------------------------------------- loading
def load_run(run_dir: Path, ruleset: str | None = None) -> RunTables:
    """The journal of `run_dir` and its rule set (the one run.json names, or `ruleset`)."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise AuditError(f"{run_dir} is not a run folder (no run.json): give the --out folder "
                         "of a `v6 dry-run`")  # fmt: skip
    try:
        info = read_info(run_dir)
    except RunDirError as exc:
        raise AuditError(str(exc)) from None
    equity = _rows(_table(run_dir, "equity"))
    if not equity:
        raise AuditError(f"{run_dir}: the journal holds no tick yet (empty equity table)")
    d = _table(run_dir, "decisions", ["time", "rule_id", "kind", "phase", "subject", "status"])
    fired = pc.equal(d["status"], "fired")
    exits = pc.and_(pc.is_in(d["phase"], pa.array(EXIT_PHASES)), fired)
    breached = d.filter(pc.and_(pc.equal(d["kind"], "limit"), pc.invert(fired)))
    columns = ["time", "position_id", "symbol", "strategy", "status", "quantity", "legs"]
    limits, note = _limits(info, ruleset)
    return RunTables(
        info, equity, _rows(_table(run_dir, "orders")),
        _rows(_table(run_dir, "positions", columns)), _rows(d.filter(exits)),
        frozenset(zip(breached["time"].to_pylist(), breached["rule_id"].to_pylist(), strict=True)),
        _rows(_table(run_dir, "risk_events")), limits, note,
    )  # fmt: skip


def _table(run_dir: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """One table in tick order (a flush never splits a tick, and the sort is stable: the rows
    of a tick keep the order they were written in)."""
    if not (run_dir / name / "_delta_log").is_dir():
        raise AuditError(f"{run_dir}: the journal has no '{name}' table (an incomplete run?)")
    return read_delta(run_dir / name, columns or TABLES[name].names).sort_by("time")


def _rows(table: pa.Table) -> tuple[Row, ...]:  # nulls as None
    return tuple(table.to_pylist())


def _limits(info: Mapping[str, Any], override: str | None) -> tuple[LimitsCheck | None, str | None]:
    meta = info.get("ruleset") or {}
    name, wanted = override or meta.get("name"), meta.get("hash")
    try:
        rs = load_ruleset(str(name))
    except (DslError, ValueError, OSError) as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        return None, f"cannot load the run's rule set {name!r} ({first}): limits not checked"
    if rs.hash != wanted:
        why = f"rule set {rs.name} now hashes to {rs.hash}, the run used {wanted}"
        return None, f"{why}: its files changed since the run, so its limits cannot be re-evaluated"
    return LimitsCheck(rs), None


# ------------------------------------------------------------------------------- helpers
def _tick(t: datetime) -> str:
    return f"{t.astimezone(EXCHANGE_TZ):%Y-%m-%d %H:%M} ET"


class _Found:
    def __init__(self, name: str, max_lines: int) -> None:
        self.lines: list[str] = []
        self.name, self.count, self.max_lines = name, 0, max_lines

    def add(self, time: datetime, text: str) -> None:
        self.count += 1
        if len(self.lines) < self.max_lines:
            self.lines.append(f"{_tick(time)}: {text}")

    def result(self, checked: int, note: str | None = None, ok: bool = True) -> Invariant:
        about, counts = ABOUT[self.name]
        return Invariant(self.name, about, ok and self.count == 0, checked, counts,
                         tuple(self.lines), self.count, note)  # fmt: skip


def _what(o: Row) -> str:
    return f"{o['intent']} order {o['order_id']} ({o['symbol']}, {o['status']})"


# ---------------------------------------------------------------------------- invariants
def no_entries_unless_active(run: RunTables, max_lines: int = MAX_LINES) -> Invariant:
    """(a) No entry order reached the broker on a REDUCING or HALTED tick."""
    found = _Found("no_entries_unless_active", max_lines)
    entries = [o for o in run.orders if o["intent"] == "open" and o["status"] in SENT]
    for o in entries:
        state = run.states.get(o["time"], "unknown (no equity row)")
        if state != ACTIVE:
            found.add(o["time"], f"entry {_what(o)} sent while the trading state was {state}")
    return found.result(len(entries))


def only_closing_while_halted(run: RunTables, max_lines: int = MAX_LINES) -> Invariant:
    """(b) While HALTED only closing orders reached the broker: close, reduce, flatten, an
    adjustment whose every leg closes (part of) a leg the position held before the tick, or a
    hedge order that makes the hedge smaller without crossing zero."""
    found = _Found("only_closing_while_halted", max_lines)
    halted = [o for o in run.orders
              if o["status"] in SENT and run.states.get(o["time"]) == HALTED]  # fmt: skip
    held = _HeldBefore(run.positions)
    for o in halted:
        # An adjustment that only closes legs, or a hedge made smaller, takes risk off.
        reduces = o["intent"] in ("adjust", "hedge") and held.closes(o)
        if o["intent"] not in CLOSING and not reduces:
            found.add(o["time"], f"{_what(o)} sent while HALTED: only closing orders may be")
    return found.result(len(halted))


class _HeldBefore:
    """A position's legs as of its last open row before a tick."""

    def __init__(self, positions: Iterable[Row]) -> None:
        self._rows: dict[str, list[Row]] = defaultdict(list)
        for r in positions:
            if r["status"] == "open":
                self._rows[r["position_id"]].append(r)

    def closes(self, order: Row) -> bool:
        rows = self._rows.get(order["position_id"] or "", [])
        i = bisect_left([r["time"] for r in rows], order["time"])
        if i == 0:
            return False  # not held before this tick
        pos = rows[i - 1]
        have = {g["contract"]: g["per_unit"] * pos["quantity"] for g in json.loads(pos["legs"])}
        for leg in json.loads(order["legs"]):
            n, held = leg["ratio"] * order["quantity"], have.get(leg["contract"], 0)
            if n * held >= 0 or abs(n) > abs(held):  # same side, or more than held: it opens
                return False
        return True


def exit_fires_once(run: RunTables, max_lines: int = MAX_LINES) -> Invariant:
    """(c) Per position: at most one filled close (or flatten), no order after its `closed`
    row, at most one fired exit or take-profit decision per tick. A hedge position's id is
    reused by the next hedge: a filled `hedge` order after its close starts a new life."""
    found = _Found("exit_fires_once", max_lines)
    closed: dict[str, list[datetime]] = defaultdict(list)
    hedges = {r["position_id"] for r in run.positions if r["strategy"] == HEDGE}
    for r in run.positions:
        if r["status"] == "closed":
            closed[r["position_id"]].append(r["time"])
    exits: Counter[tuple[str, int]] = Counter()
    reopened: dict[str, int] = {}  # hedge id → the life its latest filled hedge order began
    for o in run.orders:
        pid = o["position_id"]
        life = bisect_left(closed.get(pid, []), o["time"])  # its closes strictly before
        if pid in hedges and o["intent"] == "hedge":  # (re)opens it: fine after a close
            if o["filled"]:
                reopened[pid] = life
        elif life and reopened.get(pid) != life:
            found.add(o["time"], f"{_what(o)} for position {pid}, closed "
                      f"{_tick(closed[pid][life - 1])}")  # fmt: skip
        if o["intent"] in ("close", "flatten") and o["status"] == "filled":
            exits[(pid, life)] += 1
            if exits[(pid, life)] == 2:
                found.add(o["time"], f"{_what(o)}: a second filled exit of position {pid}")
    fired: dict[tuple[datetime, str], list[str]] = defaultdict(list)
    for d in run.exits:
        fired[(d["time"], d["subject"])].append(d["rule_id"])
    for (time, subject), rules in sorted(fired.items()):
        if len(rules) > 1:
            found.add(time, f"{len(rules)} exits fired for position {subject}: "
                      f"{', '.join(sorted(rules))}")  # fmt: skip
    return found.result(len({r["position_id"] for r in run.positions}))


def limits_hold_after_entries(run: RunTables, max_lines: int = MAX_LINES) -> Invariant:
    """(d) On every tick where an entry filled, every limit holds on the portfolio after the
    tick, unless it was already breached before trading on that tick."""
    found, check = _Found("limits_hold_after_entries", max_lines), run.limits
    if check is None:
        return found.result(0, run.limits_note, ok=False)
    entries: dict[datetime, list[str]] = defaultdict(list)
    for o in run.orders:
        if o["intent"] == "open" and o["filled"] > 0:
            entries[o["time"]].append(o["order_id"])
    unreadable = _unreadable(check.rs, _journaled(run.equity[0]))
    equity = {r["time"]: r for r in run.equity}
    held: dict[datetime, list[Row]] = defaultdict(list)
    for r in run.positions:
        if r["status"] == "open" and r["strategy"] != HEDGE and r["time"] in entries:
            held[r["time"]].append(r)
    for t, ids in sorted(entries.items()):
        if t not in equity:
            found.add(t, f"entries {', '.join(ids)} filled on a tick with no equity row")
            continue
        view, pending = _after_tick(equity[t], held[t], check)
        for limit, b in sorted(check.breaches(view, pending).items()):
            if (t, limit) not in run.breached and limit not in unreadable:
                found.add(t, f"limit {limit} breached after entry {', '.join(ids)} filled: "
                          f"{b.explain()}")  # fmt: skip
    note = None
    if unreadable:
        gaps = "; ".join(f"{k} reads {v}" for k, v in sorted(unreadable.items()))
        note = f"not checked, the journal does not keep what they read: {gaps}"
    return found.result(len(entries), note)


def _journaled(equity_row: Row) -> frozenset[str]:
    """`portfolio.*` fields rebuilt from the journal: the equity row's, and those derived."""
    derived = {"day_pnl_pct", "buying_power_available", "positions_by_symbol",
               "positions_by_strategy"}  # fmt: skip
    return frozenset({f.name for f in fields(PortfolioState)} & set(equity_row) | derived)


def _unreadable(rs: RuleSet, journaled: frozenset[str]) -> dict[str, str]:
    """Limit id → what it reads that the journal does not keep (market data, new fields)."""
    out: dict[str, str] = {}
    for b in rs.program.blocks:
        if b.kind != "limit":
            continue
        todo: list[ast.Expr] = [*b.conditions, *(lt.value for lt in b.lets)]
        missing: set[str] = set()
        while todo:
            e = todo.pop()
            if isinstance(e, ast.Path) and len(e.parts) > 1 and e.dotted not in _FROM_EQUITY:
                if e.parts[0] != "portfolio" or e.parts[1] not in journaled:
                    missing.add(e.dotted)
            elif isinstance(e, ast.Call) and e.func not in _PURE_CALLS:
                missing.add(f"{e.func}()")
            todo.extend(ast.children(e))
        if missing:
            out[b.id] = ", ".join(sorted(missing))
    return out


def _after_tick(eq: Row, rows: list[Row], check: LimitsCheck) -> tuple[Snapshot, Pending]:
    """The portfolio after the tick as the limits read it, from its equity and position rows."""
    net_liq, day_pnl, used = eq["net_liq"], eq["day_pnl"], eq["buying_power_used"]
    prev = None if day_pnl is None else net_liq - day_pnl  # the previous close's net liq
    derived: dict[str, Any] = {
        "day_pnl_pct": day_pnl / prev if day_pnl is not None and prev else None,
        "buying_power_available": None if used is None else net_liq - used,
        "positions_by_symbol": Counter(r["symbol"] for r in rows),
        "positions_by_strategy": Counter(r["strategy"] for r in rows),
    }
    # A column the equity table may gain later (say day_pnl_pct) wins over its derivation.
    portfolio = PortfolioState(**(derived | {k: eq[k] for k in _journaled(eq) if k in eq}))
    counts = position_counts(((r["strategy"], r["symbol"]) for r in rows), check.shapes)
    # The journal keeps no market data: limits that read it are not checked (_unreadable).
    state = eq["risk_state"]
    view = Snapshot(time=eq["time"].astimezone(EXCHANGE_TZ), portfolio=portfolio,
                    market=MarketState(session="regular", regime=eq["regime"]),
                    risk=RiskState(state=state, entries_blocked=state != ACTIVE))  # fmt: skip
    return view, Pending(portfolio, counts)


def risk_states_chain(run: RunTables, max_lines: int = MAX_LINES) -> Invariant:
    """(e) Transitions chain from ACTIVE; HALTED is left only by an operator resume; each
    tick's risk_state is the state after its latest transition; other events keep the state."""
    found, state = _Found("risk_states_chain", max_lines), ACTIVE
    events: dict[datetime, list[Row]] = defaultdict(list)
    for e in run.risk_events:
        events[e["time"]].append(e)
    for t in sorted(set(events) - set(run.states)):
        found.add(t, f"{len(events[t])} risk event(s) on a tick with no equity row")
    for eq in run.equity:
        t, start = eq["time"], state
        for e in events.get(t, []):
            before, after, cause = e["state_before"], e["state_after"], e["cause"]
            if e["kind"] != "transition":
                if before != start or after != start:
                    found.add(t, f"{e['kind']} event ({cause}) says {before}→{after}, the state "
                              f"was {start}")  # fmt: skip
                continue
            if before != state:
                found.add(t, f"transition {before}→{after} ({cause}) does not follow the state "
                          f"before it, {state}")  # fmt: skip
            if before == HALTED and not cause.startswith("operator resume"):
                found.add(t, f"left HALTED for {after} without an operator resume ({cause})")
            state = after
        if eq["risk_state"] != state:
            found.add(t, f"equity.risk_state is {eq['risk_state']}, the transitions say {state}")
    return found.result(len(run.equity) + len(run.risk_events))


CHECKS: tuple[Callable[[RunTables, int], Invariant], ...] = (
    no_entries_unless_active, only_closing_while_halted, exit_fires_once,
    limits_hold_after_entries, risk_states_chain,
)  # fmt: skip


def audit_run(run_dir: Path, ruleset: str | None = None, max_lines: int = MAX_LINES) -> AuditReport:
    """Every invariant on the journal of `run_dir`; AuditError if it is no run to audit."""
    run = load_run(run_dir, ruleset)
    meta = run.info.get("ruleset") or {}
    return AuditReport(
        Path(run_dir), str(run.info.get("status")), f"{meta.get('name')} ({meta.get('hash')})",
        len(run.equity), tuple(check(run, max_lines) for check in CHECKS),
    )  # fmt: skip
