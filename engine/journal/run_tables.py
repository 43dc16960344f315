"""The six tables of a dry run's journal: explicit Arrow schemas, value rules, documentation.

Every table starts with `time` (the tick, UTC), `date` (the New York trading date of that
tick) and `year` (the partition column, the year of `date`). A tick at 20:30 New York time is
already the next day in UTC; its `date` is still the New York day, so a run's days and years
never depend on the machine's time zone. The writer derives both from `time`
(engine.journal.run_rows), so they cannot disagree with it. JSON columns (`legs`, `trace`)
hold `json_text` output: sorted keys and no spaces, so identical values serialize to identical
bytes (the determinism test compares them).

Units: money in USD, prices per share (per index point for futures), Greeks as in
engine.state.snapshot (delta in share-equivalents, gamma per $1, vega USD per vol point, theta
USD per calendar day), fractions as fractions (0.25 is 25 %), days as calendar days.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from engine.state.snapshot import REGIMES, RISK_STATES

PARTITION_BY = ("year",)
# A 13-year daily run partitioned by date would make ~3,300 partitions of tiny files per table;
# by year it makes 13, each a few files (one per flush).

TIME = pa.timestamp("us", tz="UTC")
DERIVED = ("date", "year")  # columns the writer computes from `time`

_Col = tuple[str, pa.DataType, bool, str]  # name, type, NOT NULL, meaning (with unit)


def _col(name: str, dtype: pa.DataType, meaning: str, *, required: bool = False) -> _Col:
    return (name, dtype, required, meaning)


def _f64(name: str, meaning: str, *, required: bool = False) -> _Col:
    return _col(name, pa.float64(), meaning, required=required)


def _str(name: str, meaning: str, *, required: bool = False) -> _Col:
    return _col(name, pa.string(), meaning, required=required)


def _i32(name: str, meaning: str, *, required: bool = False) -> _Col:
    return _col(name, pa.int32(), meaning, required=required)


_TICK: list[_Col] = [
    _col("time", TIME, "the tick's time (UTC instant)", required=True),
    _col("date", pa.date32(), "the tick's New York trading date", required=True),
    _col("year", pa.int16(), "year of `date`; the partition column", required=True),
]

_COLUMNS: dict[str, list[_Col]] = {
    "decisions": [
        *_TICK,
        _str("ruleset", "hash of the rule set's files (its version)", required=True),
        _str("rule_id", "the rule or policy evaluated", required=True),
        _str("kind", "rule, limit, breaker, hedge or regime", required=True),
        _str(
            "phase", "the evaluation phase (entry, adjust, exit, take_profit, ...)", required=True
        ),
        _str(
            "subject",
            "what it was evaluated for: a symbol, a position id, 'portfolio' or 'market'",
            required=True,
        ),
        _str("status", "fired, not_fired, unknown (missing data) or skipped", required=True),
        _col(
            "fired",
            pa.bool_(),
            "whether the rule fired; a limit fires when it is breached (its check false or "
            "unknown), so `status` fired/not_fired is the check's result and `fired` the breach",
            required=True,
        ),
        _str("action", "the decision text of a fired rule; several joined by '; '"),
        _str("reason", "the rule's stated reason"),
        _str("location", "file:line:col of the rule in its source", required=True),
        _str("failed_condition", "source text of the first condition that failed or was unknown"),
        _str(
            "outcome",
            "what the risk gate or broker did with the action, e.g. 'order "
            "20080102-1 filled' or 'blocked: entries blocked by limit max_positions'",
        ),
        _str(
            "trace",
            "JSON list of the conditions at the run's trace level: {text, location, "
            "result, operands: [{text, value, unit}], distance}",
        ),
    ],
    "orders": [
        *_TICK,
        _str("order_id", "'<tick yyyymmddHHMM>-<seq>', unique in the run", required=True),
        _str("intent", "open, close, reduce, roll, adjust, hedge or flatten", required=True),
        _str("symbol", "the underlying", required=True),
        _str("strategy", "the strategy of the position"),
        _str("position_id", "the position it opens, changes or closes"),
        _str("rule_id", "the rule (or control) that asked for it", required=True),
        _str("reason", "why, as the rule states it"),
        _i32("quantity", "combo units ordered, > 0", required=True),
        _i32("filled", "combo units filled, 0..quantity", required=True),
        _str(
            "legs",
            "JSON list of {contract, ratio, role}: ratio signed per combo unit",
            required=True,
        ),
        _str(
            "status",
            "filled, partial, rejected (by the broker) or blocked (by the risk gate)",
            required=True,
        ),
        _str("status_reason", "why rejected, blocked or only partly filled"),
        _f64("net_price", "price per share per combo unit, + credit / - debit; null if unfilled"),
        _f64("commission", "USD, >= 0"),
        _f64("fees", "USD, exchange and regulatory, >= 0"),
    ],
    "fills": [
        *_TICK,
        _str("order_id", "the order, or 'expiry-<position>-<n>' for a settlement", required=True),
        _str("position_id", "the position the leg belongs to"),
        _str("source", "order or expiry", required=True),
        _str("contract", "the contract's key, e.g. 'SPY 2019-01-18 250P'", required=True),
        _str("symbol", "the underlying", required=True),
        _str("kind", "option, stock or future", required=True),
        _col("expiry", pa.date32(), "option expiry date"),
        _f64("strike", "option strike, price"),
        _str("right", "C or P (options only)"),
        _i32("ratio", "signed per combo unit: +1 buy, -1 sell", required=True),
        _i32("quantity", "signed contracts (or shares) traded = ratio x units", required=True),
        _f64("price", "per share (per index point for futures), >= 0", required=True),
        _f64("commission", "USD for this leg, >= 0", required=True),
        _f64("fees", "USD for this leg, >= 0", required=True),
        _f64("cash_flow", "USD into the account, after commission and fees", required=True),
        _str("how", "for settlements: expired_worthless, cash_settled, exercised or assigned"),
    ],
    "positions": [
        *_TICK,
        _str("position_id", "unique in the run", required=True),
        _str("symbol", "the underlying", required=True),
        _str("strategy", "e.g. iron_condor", required=True),
        _str("status", "open, or closed on the position's final row", required=True),
        _i32("quantity", "structures held", required=True),
        _col("opened_at", TIME, "time of the opening fill (UTC instant)", required=True),
        _f64("entry_credit", "price per share per structure (1.85 is $185 per structure)"),
        _f64("mark", "price per share per structure: cost to close now"),
        _f64("pnl", "USD, whole position, unrealised"),
        _f64("pnl_pct_of_credit", "fraction of the credit received"),
        _f64("high_water_pnl_pct", "fraction: best pnl_pct_of_credit since entry"),
        _f64("max_loss", "USD, whole position (defined-risk structures)"),
        _f64("dte", "calendar days to the nearest leg expiry"),
        _f64("days_held", "calendar days since opened_at"),
        _f64("delta", "share-equivalents, whole position"),
        _f64("gamma", "share-equivalents per $1, whole position"),
        _f64("vega", "USD per vol point, whole position"),
        _f64("theta", "USD per calendar day, whole position"),
        _str("entry_regime", "crash, high_vol, normal or low_vol at entry"),
        _f64("entry_iv", "fraction: the underlying's ATM IV at entry"),
        _i32("adjustments", "adjustments made so far", required=True),
        _str(
            "legs",
            "JSON list of the legs: contract, role, signed quantity per structure, prices",
            required=True,
        ),
        _f64(
            "realized_pnl", "USD, closed row only: every cash flow of the position, costs included"
        ),
        _str("close_reason", "closed row only: why it closed"),
        _str("close_rule", "closed row only: the rule (or expiry) that closed it"),
        _str(
            "flags",
            "warnings on this tick, '; '-separated (early assignment risk before a dividend)",
        ),
    ],
    "equity": [
        *_TICK,
        _f64("net_liq", "USD, net liquidation value", required=True),
        _f64("cash", "USD", required=True),
        _f64("pnl", "USD since the start of the run", required=True),
        _f64("day_pnl", "USD since the previous day's last tick"),
        _f64("drawdown_pct", "fraction >= 0 below peak_net_liq", required=True),
        _f64("peak_net_liq", "USD, highest net_liq so far", required=True),
        _i32("open_positions", "positions open after the tick", required=True),
        _f64("delta", "share-equivalents, whole portfolio"),
        _f64("gamma", "share-equivalents per $1, whole portfolio"),
        _f64("vega", "USD per vol point, whole portfolio"),
        _f64("theta", "USD per calendar day, whole portfolio"),
        _f64("bw_delta_spy", "SPY share-equivalents, beta-weighted"),
        _f64("buying_power_used", "USD"),
        _f64("margin_used_pct", "fraction of net_liq"),
        _f64(
            "cluster_delta",
            "USD per 1% move of SPY, QQQ and IWM together, correlation-adjusted",
        ),
        _str("regime", "crash, high_vol, normal or low_vol, as the regime policies decided"),
        _str("risk_state", "ACTIVE, REDUCING or HALTED", required=True),
        _f64("commissions", "USD so far, fees included", required=True),
        _f64("hedge_shares", "SPY shares held as a hedge"),
    ],
    "risk_events": [
        *_TICK,
        _str(
            "kind",
            "trip (a breaker fired), reset (a breaker was released), command (an operator "
            "halt, flatten or resume was read) or transition (the trading state changed)",
            required=True,
        ),
        _str("state_before", "ACTIVE, REDUCING or HALTED before the event", required=True),
        _str("state_after", "ACTIVE, REDUCING or HALTED after the event", required=True),
        _str(
            "cause",
            "the breaker, the limits, 'operator' or 'operator <command>' behind the event",
            required=True,
        ),
        _str(
            "detail",
            "trip: the state it wants; reset: when it tripped and last fired; command: the "
            "command; transition: every active cause and the state it wants",
            required=True,
        ),
        _str("rules", "ids of the breakers and limits involved, ', '-separated"),
        _str(
            "values",
            "JSON list of {rule, text, value, unit}: the operands of their conditions on this "
            "tick (null when the run keeps no trace)",
        ),
    ],
}

SUMMARIES = {
    "decisions": "One row per rule or policy evaluated on a tick, as the trace recorded it.",
    "orders": "One row per order the engine produced, including those the risk gate blocked.",
    "fills": "One row per leg traded, and one per leg settled at expiry.",
    "positions": "One row per open position per tick, and a final `closed` row when it closes.",
    "equity": "One row per tick: the account after the tick.",
    "risk_events": "One row per breaker trip or reset, operator command and change of trading "
    "state.",
}

# Closed vocabularies: a value outside them is a bug in the writer, caught before the write.
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "decisions": {
        "kind": ("rule", "limit", "breaker", "hedge", "regime"),
        "status": ("fired", "not_fired", "unknown", "skipped"),
    },
    "orders": {"status": ("filled", "partial", "rejected", "blocked")},
    "fills": {
        "source": ("order", "expiry"),
        "kind": ("option", "stock", "future"),
        "right": ("C", "P"),
        "how": ("expired_worthless", "cash_settled", "exercised", "assigned"),
    },
    "positions": {"status": ("open", "closed"), "entry_regime": REGIMES},
    "equity": {"regime": REGIMES, "risk_state": RISK_STATES},
    "risk_events": {
        "kind": ("trip", "reset", "command", "transition"),
        "state_before": RISK_STATES,
        "state_after": RISK_STATES,
    },
}


def _schema(columns: list[_Col]) -> pa.Schema:
    return pa.schema([pa.field(n, t, nullable=not required) for n, t, required, _ in columns])


DECISIONS = _schema(_COLUMNS["decisions"])
ORDERS = _schema(_COLUMNS["orders"])
FILLS = _schema(_COLUMNS["fills"])
POSITIONS = _schema(_COLUMNS["positions"])
EQUITY = _schema(_COLUMNS["equity"])
RISK_EVENTS = _schema(_COLUMNS["risk_events"])
TABLES: dict[str, pa.Schema] = {
    "decisions": DECISIONS,
    "orders": ORDERS,
    "fills": FILLS,
    "positions": POSITIONS,
    "equity": EQUITY,
    "risk_events": RISK_EVENTS,
}


def json_text(value: Any) -> str:
    """`value` as the canonical JSON text the `legs` and `trace` columns hold."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def describe(names: Iterable[str] = tuple(TABLES)) -> str:
    """Markdown: for each table its summary and one line per column (type, null, meaning)."""
    out: list[str] = []
    for name in names:
        out += [f"### `{name}`", "", SUMMARIES[name], ""]
        out += ["| column | type | null | meaning |", "|---|---|---|---|"]
        for column, dtype, required, meaning in _COLUMNS[name]:
            null = "no" if required else "yes"
            out.append(f"| `{column}` | {dtype} | {null} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(describe(), end="")
