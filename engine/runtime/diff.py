"""`v6 diff`: replay two rule set versions on the same market and list where they decide
differently, with the condition values behind each difference and the P&L that follows.

Both engines step on the very same snapshot objects (one feed), so any difference comes from
the rules or from the positions their earlier decisions left — never from the data. Once the
two books differ, later differences on positions that exist in only one run are expected;
each line says which run holds the position.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.dsl.ruleset import load_ruleset
from engine.dsl.trace import Level, RuleTrace, fmt_value
from engine.execution.fill_models import DEFAULT_FILL_MODEL, parse_fill_model
from engine.runtime.dry_run import (
    DryRunSpec,
    build_engine,
    check_store,
    history_feed,
    open_store,
    synthetic_store,
)
from engine.runtime.engine import TickResult
from engine.runtime.replay import Runner, replay

Key = tuple[str, str]  # rule id, subject


@dataclass(frozen=True)
class DiffSpec:
    ruleset_a: str
    ruleset_b: str
    start: dt.date
    end: dt.date
    store: Path | None = None
    synthetic: int | None = None
    fill_model: str = DEFAULT_FILL_MODEL.text
    initial_cash: float = 100_000.0


@dataclass(frozen=True)
class Difference:
    time: dt.datetime
    rule_id: str
    subject: str
    action_a: str | None  # None: did not fire (or the rule is not in that set)
    action_b: str | None
    values: tuple[str, ...]  # "condition text: A … | B …" for conditions that differed


@dataclass
class DiffResult:
    name_a: str
    name_b: str
    differences: list[Difference] = field(default_factory=list)
    ticks: int = 0
    pnl_a: float = 0.0
    pnl_b: float = 0.0
    first_divergence: dt.datetime | None = None


def _actions(r: TickResult) -> dict[Key, str]:
    out: dict[Key, list[str]] = {}
    for d in r.decisions:
        if d.kind == "regime":
            continue
        key = (d.rule_id, d.position_id or d.symbol or "portfolio")
        out.setdefault(key, []).append(d.action())
    return {k: "; ".join(v) for k, v in out.items()}


def _rules(r: TickResult) -> dict[Key, RuleTrace]:
    assert r.trace is not None
    return {(t.rule_id, t.subject): t for t in r.trace.rules}


def _values(a: RuleTrace | None, b: RuleTrace | None) -> tuple[str, ...]:
    """Conditions whose result or operand values differ between the two traces."""
    if a is None or b is None:
        return ()
    out = []
    conds_b = {c.text: c for c in b.conditions}
    for ca in a.conditions:
        cb = conds_b.get(ca.text)
        if cb is None:
            continue
        va = ", ".join(f"{o.text}={o.shown()}" for o in ca.operands)
        vb = ", ".join(f"{o.text}={o.shown()}" for o in cb.operands)
        if va != vb or ca.result != cb.result:
            out.append(
                f"{ca.text}: A {va} ({fmt_value(ca.result)}) | B {vb} ({fmt_value(cb.result)})"
            )
    return tuple(out)


class _Comparer:
    def __init__(self, result: DiffResult, initial_cash: float) -> None:
        self.result, self.cash = result, initial_cash
        self.pending: TickResult | None = None

    def a(self, r: TickResult) -> None:
        self.pending = r

    def b(self, rb: TickResult) -> None:
        ra, self.pending = self.pending, None
        assert ra is not None and ra.time == rb.time
        res = self.result
        res.ticks += 1
        res.pnl_a = ra.account.net_liq - self.cash
        res.pnl_b = rb.account.net_liq - self.cash
        acts_a, acts_b = _actions(ra), _actions(rb)
        if acts_a == acts_b:
            return
        rules_a, rules_b = _rules(ra), _rules(rb)
        for key in sorted(set(acts_a) | set(acts_b)):
            xa, xb = acts_a.get(key), acts_b.get(key)
            if xa == xb:
                continue
            if res.first_divergence is None:
                res.first_divergence = ra.time
            values = _values(rules_a.get(key), rules_b.get(key))
            res.differences.append(Difference(ra.time, key[0], key[1], xa, xb, values))


def diff_runs(spec: DiffSpec, tmp: Path) -> DiffResult:
    """Replay both rule sets over one feed; `tmp` holds a synthetic market if one is made."""
    rs_a, rs_b = load_ruleset(spec.ruleset_a), load_ruleset(spec.ruleset_b)
    fill = parse_fill_model(spec.fill_model)
    run = DryRunSpec(
        spec.ruleset_a, spec.start, spec.end, tmp, spec.store, spec.synthetic, spec.fill_model,
        Level.FULL, spec.initial_cash,
    )  # fmt: skip
    if spec.store is not None:
        store = open_store(spec.store)
        chains = tuple(sorted(set(check_store(store, rs_a, spec.start, spec.end))
                              | set(check_store(store, rs_b, spec.start, spec.end))))  # fmt: skip
    elif spec.synthetic is not None:
        store, chains = synthetic_store(run, rs_a)
        chains = tuple(sorted(set(chains) | set(check_store(store, rs_b, spec.start, spec.end))))
    else:
        raise ValueError("give exactly one market: --store STORE or --synthetic SEED")
    feed = history_feed(store, chains, run)
    result = DiffResult(rs_a.name, rs_b.name)
    cmp = _Comparer(result, spec.initial_cash)
    costs = run.costs
    eng_a = build_engine(rs_a, fill, costs, spec.initial_cash, Level.FULL)
    eng_b = build_engine(rs_b, fill, costs, spec.initial_cash, Level.FULL)
    replay(feed, [Runner("A", eng_a, observe=cmp.a), Runner("B", eng_b, observe=cmp.b)])
    return result


def run_diff(spec: DiffSpec, echo: Callable[[str], None] = print, limit: int = 50) -> DiffResult:
    with tempfile.TemporaryDirectory(prefix="v6-diff-") as tmp:
        result = diff_runs(spec, Path(tmp))
    for line in render(result, limit):
        echo(line)
    return result


def render(res: DiffResult, limit: int) -> list[str]:
    lines = [f"A = {res.name_a}, B = {res.name_b}: {res.ticks:,} ticks replayed"]
    if not res.differences:
        lines.append("no decision differs")
    else:
        first = f"{res.first_divergence:%Y-%m-%d}"
        lines.append(f"{len(res.differences):,} decisions differ, the first at {first}")
    for d in res.differences[:limit]:
        lines.append(
            f"{d.time:%Y-%m-%d %H:%M}  {d.rule_id} on {d.subject}: "
            f"A {d.action_a or '— (not fired)'} | B {d.action_b or '— (not fired)'}"
        )
        lines += [f"    {v}" for v in d.values]
    if len(res.differences) > limit:
        lines.append(f"… and {len(res.differences) - limit:,} more (--limit)")
    delta = res.pnl_b - res.pnl_a
    pnl_a, pnl_b, diff = (fmt_value(x, "money") for x in (res.pnl_a, res.pnl_b, delta))
    lines.append(f"P&L: A {pnl_a}, B {pnl_b}, B − A {diff}")
    return lines


def as_dict(res: DiffResult) -> dict[str, Any]:
    return {
        "a": res.name_a,
        "b": res.name_b,
        "ticks": res.ticks,
        "pnl_a": res.pnl_a,
        "pnl_b": res.pnl_b,
        "differences": [
            {"time": d.time.isoformat(), "rule_id": d.rule_id, "subject": d.subject,
             "a": d.action_a, "b": d.action_b, "values": list(d.values)}
            for d in res.differences
        ],
    }  # fmt: skip
