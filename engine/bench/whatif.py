"""What-if benchmark: `python -m engine.bench.whatif` — the limits check of one order, 50 positions.

Subject: the risk gate's what-if limits check of one proposed iron-condor open against a book
of 50 open positions (synthetic SPY, QQQ and IWM chains, the v6 limits): the whole
`RiskGate.review` of that one proposal, and its parts — `order_impact` (the order's Greeks from
the tick's quotes), `Pending.plus` (the portfolio after it), `LimitsCheck.breaches` on that
portfolio and `violations` (the verdict) — plus the part of a review paid once per tick
(position counts and the breaches before any order). Target: ≤ 100 µs per check.

Anchor, in the same run: the portfolio after the order recomputed from scratch over the 50
positions and the order, as the engine does after a fill (`account_view`: a plain Python loop
over positions, the vectorised `exposure`, each position's margin, the index cluster), alone
and followed by the same limits check. Both sides are first checked to give the same
portfolio after the order, so the comparison is like for like.

Timing: time.perf_counter_ns around every call; the functions are called round-robin
`repeat` times after a warm-up, with the garbage collector paused (as timeit does); median
and p95 per call. Benchmarks report, they do not assert: the tests check the structure and
the agreement of both sides only.
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from engine.dsl.errors import DslError
from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.runtime import position_counts
from engine.dsl.strategy import LegChoice, select_legs
from engine.dsl.trace import ActionInfo, Decision
from engine.execution.fill_models import QuoteBook
from engine.execution.orders import Contract, Order, OrderLeg
from engine.market.surface import VolIndices
from engine.market.synth_chain import synth_chain
from engine.paths import ROOT
from engine.portfolio.account import AccountView, account_view
from engine.portfolio.book import Book, HeldLeg, HeldPosition, PositionMark, to_position
from engine.portfolio.marks import Mark, mark_contracts
from engine.portfolio.requirements import max_loss_per_unit, position_margin
from engine.risk.gate import GateContext, RiskGate, Verdict
from engine.risk.whatif import LimitsCheck, Pending, order_impact, violations
from engine.runtime.intents import Proposal, Sizing
from engine.state.snapshot import (
    EXCHANGE_TZ,
    MarketState,
    RiskState,
    Snapshot,
    UnderlyingState,
)  # fmt: skip

TARGET_US = 100.0
ASOF = datetime(2019, 3, 14, 15, 30, tzinfo=EXCHANGE_TZ)  # a regular session, mid-afternoon
# Per underlying: spot (price), beta to SPY, dividend yield and 20-day realized vol (fractions).
_UNDERLYINGS = {
    "SPY": (281.0, 1.0, 0.019, 0.11),
    "QQQ": (178.0, 1.12, 0.008, 0.15),
    "IWM": (156.0, 1.08, 0.013, 0.16),
}
_INDICES = VolIndices(vix=13.5, vix9d=12.6, vix3m=15.4)
_BOOK = (("iron_condor", 0.16), ("put_credit_spread", 0.25), ("call_credit_spread", 0.20))
_COMPARED = ("open_positions", "positions_by_symbol", "positions_by_strategy", "delta", "gamma",
             "vega", "theta", "bw_delta_spy", "buying_power_used", "cluster_delta")  # fmt: skip


class WhatIfBenchError(ValueError):
    """A benchmark setting out of range, or a rule set the benchmark book cannot be built for."""


@dataclass(frozen=True)
class WhatIfCase:
    """One tick: a marked book of open positions, and one proposed entry for the gate."""

    rs: RuleSet
    view: Snapshot
    book: Book
    marks: tuple[PositionMark, ...]
    account: AccountView
    proposal: Proposal
    order: Order
    held: HeldPosition  # the order as the book would hold it once filled (for the anchor)
    gate: RiskGate
    check: LimitsCheck
    ctx: GateContext
    quotes: QuoteBook  # the tick's quotes, indexed while the book was marked


def _contract(symbol: str, lc: LegChoice) -> Contract:
    return Contract(symbol, "option", lc.expiry, lc.strike, lc.is_call)


def _market() -> Snapshot:
    underlyings = {
        s: UnderlyingState(symbol=s, price=spot, beta=beta, dividend_yield=q,
                           realized_vol_20d=rv, atm_iv=0.13 * beta)
        for s, (spot, beta, q, rv) in _UNDERLYINGS.items()
    }  # fmt: skip
    chains = {s: synth_chain(s, ASOF, spot, _INDICES, q)
              for s, (spot, _, q, _) in _UNDERLYINGS.items()}  # fmt: skip
    market = MarketState(session="regular", vix=_INDICES.vix, vix9d=_INDICES.vix9d,
                         vix3m=_INDICES.vix3m, vix_change_pct=0.012)  # fmt: skip
    return Snapshot(time=ASOF, market=market, underlyings=underlyings, chains=chains)


def _fill_book(rs: RuleSet, snap: Snapshot, positions: int, seed: int) -> Book:
    """`positions` credit structures over the three underlyings, opened in the last weeks."""
    rng = np.random.default_rng(seed)
    book = Book(initial_cash=1_000_000.0)
    symbols = tuple(_UNDERLYINGS)
    for i in range(positions):
        symbol = symbols[i % len(symbols)]
        strategy, delta = _BOOK[int(rng.integers(len(_BOOK)))]
        args = {"short_delta": round(delta + float(rng.uniform(-0.05, 0.05)), 2),
                "dte": float(rng.choice([21, 28, 35, 42, 49, 56]))}  # fmt: skip
        sel = select_legs(rs.strategies[strategy], args, snap.chains[symbol], ASOF.date())
        if not sel.ok:
            raise WhatIfBenchError(f"benchmark book: no {strategy} on {symbol}: {sel.reason}")
        units = int(rng.integers(1, 6))
        opened = ASOF - timedelta(days=int(rng.integers(1, 20)))
        legs = [HeldLeg(lc.name, _contract(symbol, lc), (1 if lc.side == "buy" else -1) * lc.ratio,
                        lc.mid * float(rng.uniform(0.8, 1.2))) for lc in sel.legs]  # fmt: skip
        credit = -sum(hl.per_unit * hl.entry_price for hl in legs)  # per share, + credit
        received = credit * 100.0 * units
        pid = book.new_position_id(symbol, opened)
        book.positions[pid] = HeldPosition(
            pid, strategy, symbol, opened, units, legs, credit, entry_regime="normal",
            entry_iv=snap.underlyings[symbol].atm_iv, cash_flow=received, credit_basis=received,
        )  # fmt: skip
        book.cash += received
    return book


def _proposal(rs: RuleSet, view: Snapshot, book: Book) -> tuple[Proposal, HeldPosition]:
    """An iron condor on SPY at the strategy's defaults, sized as the engine sizes entries."""
    info = rs.strategies.get("iron_condor")
    if info is None:
        raise WhatIfBenchError(f"rule set {rs.name} has no iron_condor strategy to propose")
    sel = select_legs(info, {}, view.chains["SPY"], ASOF.date())
    if not sel.ok:
        raise WhatIfBenchError(f"benchmark order: no iron condor on SPY: {sel.reason}")
    spot = _UNDERLYINGS["SPY"][0]
    per_unit = max_loss_per_unit("SPY", sel.legs, spot)
    units = Sizing().units(view.portfolio.net_liq or 0.0, per_unit)
    action = next((a for a in rs.compiled.actions if a.verb == "open"
                   and a.target == "iron_condor"),
                  ActionInfo("bench_entry", "rule", "entry", "open", "iron_condor", (), (), None,
                             0, "bench"))  # fmt: skip
    legs = tuple(OrderLeg(_contract("SPY", lc), (1 if lc.side == "buy" else -1) * lc.ratio,
                          lc.name) for lc in sel.legs)  # fmt: skip
    pid = book.new_position_id("SPY", ASOF)
    order = Order(f"{ASOF:%Y%m%d%H%M}-1", ASOF, "open", "SPY", legs, units, action.rule_id,
                  action.reason or "benchmark entry", "iron_condor", pid)  # fmt: skip
    held = HeldPosition(pid, "iron_condor", "SPY", ASOF, units,
                        [HeldLeg(leg.role, leg.contract, leg.ratio, 0.0) for leg in legs],
                        sel.credit)  # fmt: skip
    decision = Decision(ASOF, rs.hash, action, (), "SPY", None)
    return Proposal(decision, order, margin_usd=per_unit * units), held


def build_case(positions: int = 50, seed: int = 6, ruleset: str = "v6") -> WhatIfCase:
    """The benchmark's tick, deterministic for a seed: chains, book, account, proposal, gate."""
    if positions < 0:
        raise WhatIfBenchError(f"positions must be >= 0, got {positions}")
    rs = load_ruleset(ruleset)
    missing = sorted({s for s, _ in _BOOK} - set(rs.strategies))
    if missing:
        raise WhatIfBenchError(f"rule set {rs.name} lacks the strategies {', '.join(missing)}")
    market = _market()
    book = _fill_book(rs, market, positions, seed)
    marks = tuple(book.mark(market))
    account = account_view(book, marks, market, position_margin)
    view = replace(market, positions=tuple(to_position(m, ASOF) for m in marks),
                   portfolio=account.portfolio, risk=RiskState(data_age_seconds=1.0))  # fmt: skip
    quotes = QuoteBook(view)
    mark_contracts(view, [hl.contract for m in marks for hl, _ in m.legs], quotes)
    proposal, held = _proposal(rs, view, book)
    assert proposal.order is not None
    check = LimitsCheck(rs)
    gate = RiskGate(check, rs.compiled.breaker_policies)
    ctx = gate.context([], view.portfolio, ASOF)  # ACTIVE: every control runs
    return WhatIfCase(rs, view, book, marks, account, proposal, proposal.order, held, gate,
                      check, ctx, quotes)  # fmt: skip


# ------------------------------------------------------------------ the two sides
def review(case: WhatIfCase) -> list[Verdict]:
    """The subject: the gate's whole review of the one proposal."""
    return case.gate.review([case.proposal], case.ctx, case.view, case.quotes,
                            case.account.cluster)  # fmt: skip


def before(case: WhatIfCase) -> Pending:
    """The portfolio before any order this tick (a review builds it once per tick)."""
    return Pending(case.view.portfolio, case.check.counts(case.view), case.account.cluster)


def whatif_after(case: WhatIfCase, now: Pending) -> Pending:
    """The subject's portfolio after the order: `now` plus the order's impact."""
    imp = order_impact(case.order, case.view, case.proposal.margin_usd, case.quotes)
    return now.plus(imp, case.check.shapes)


def _as_position(held: HeldPosition, marks: list[Mark | None]) -> PositionMark:
    """The order as a marked position, as `Book.mark` values one (Greeks summed per leg)."""
    value = delta = gamma = vega = theta = 0.0
    for hl, m in zip(held.legs, marks, strict=True):
        if m is None:
            continue
        n = hl.per_unit * held.quantity * hl.contract.multiplier
        value += n * m.mid
        delta, gamma = delta + n * m.delta, gamma + n * m.gamma
        vega, theta = vega + n * m.vega, theta + n * m.theta
    legs = tuple(zip(held.legs, marks, strict=True))
    return PositionMark(held, value, value, 0.0, None, delta, gamma, vega, theta, legs, 0, None)


def recompute(case: WhatIfCase) -> Pending:
    """The anchor: the portfolio after the order from scratch, over every position."""
    order_marks = mark_contracts(case.view, [leg.contract for leg in case.order.legs], case.quotes)
    every = [*case.marks, _as_position(case.held, order_marks)]
    acct = account_view(case.book, every, case.view, position_margin)
    held = ((m.held.strategy, m.held.symbol) for m in every if not m.held.is_hedge)
    counts = position_counts(held, case.check.shapes)
    return Pending(acct.portfolio, counts, acct.cluster)


def disagreements(case: WhatIfCase) -> list[str]:
    """Fields of the portfolio after the order on which the two sides differ (none: agree)."""
    a, b = whatif_after(case, before(case)), recompute(case)
    out = [] if dict(a.counts) == dict(b.counts) else ["position counts"]
    for name in _COMPARED:
        x, y = getattr(a.portfolio, name), getattr(b.portfolio, name)
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6):
                out.append(f"{name} {x:.6g} vs {y:.6g}")
        elif (dict(x) if hasattr(x, "items") else x) != (dict(y) if hasattr(y, "items") else y):
            out.append(f"{name} {x} vs {y}")
    return out


# ------------------------------------------------------------------ timing and report
def time_calls(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 20
               ) -> dict[str, list[int]]:  # fmt: skip
    """ns of each call, the functions called round-robin `repeat` times, GC paused."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in fns}
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, fn in fns.items():
                t0 = clock()
                fn()
                samples[name].append(clock() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def _us(ns: list[int]) -> tuple[float, float]:
    """(median, p95) in µs."""
    a = np.asarray(ns, dtype=np.float64) / 1e3
    return float(np.median(a)), float(np.percentile(a, 95))


def bench_whatif(
    positions: int = 50, repeat: int = 2000, seed: int = 6, ruleset: str = "v6"
) -> list[str]:
    """Lines to print: µs per check (median / p95), the target, the anchor and the ratios."""
    if repeat < 1:
        raise WhatIfBenchError(f"repeat must be >= 1, got {repeat}")
    case = build_case(positions, seed, ruleset)
    check, view = case.check, case.view
    now = before(case)
    after = whatif_after(case, now)
    was, will = check.breaches(view, now), check.breaches(view, after)
    imp = order_impact(case.order, view, case.proposal.margin_usd, case.quotes)

    def one_more() -> object:
        return violations(was, check.breaches(view, whatif_after(case, now)))

    fns: dict[str, Callable[[], object]] = {
        "review": lambda: review(case),
        "impact": lambda: order_impact(case.order, view, case.proposal.margin_usd, case.quotes),
        "plus": lambda: now.plus(imp, check.shapes),
        "breaches": lambda: check.breaches(view, after),
        "violations": lambda: violations(was, will),
        "one_more": one_more,
        "per_tick": lambda: check.breaches(view, before(case)),
        "anchor": lambda: recompute(case),
        "anchor_limits": lambda: violations(was, check.breaches(view, recompute(case))),
        "empty": lambda: None,
    }
    t = {name: _us(ns) for name, ns in time_calls(fns, repeat).items()}
    (verdict,) = review(case)
    outcome = f"blocked by {verdict.control}" if verdict.blocked else "passes"
    differ = disagreements(case)
    status = "PASS" if t["review"][0] <= TARGET_US else "MISS"

    def row(label: str, name: str, extra: str = "") -> str:
        med, p95 = t[name]
        return f"  {label:<58}{med:8.1f} /{p95:8.1f}{extra}"

    return [
        f"what-if limits check: one iron-condor open ({case.order.quantity} units on SPY) "
        f"against {positions} open positions, rule set {case.rs.name}",
        f"  {len(case.rs.limits)} limits; breached before the order: {len(was)}, after: "
        f"{len(will)}; verdict: {outcome}",
        "  same portfolio after the order, what-if vs from scratch: "
        + ("yes" if not differ else "NO (" + "; ".join(differ) + ")"),
        f"  µs per call, median / p95 over {repeat:,} calls each (round-robin, GC paused; "
        f"an empty call costs {t['empty'][0]:.2f} µs, included)",
        row("RiskGate.review of the one proposal", "review",
            f"   target ≤ {TARGET_US:.0f} µs: {status}"),
        row("  order_impact (Greeks of the order's legs)", "impact"),
        row("  Pending.plus (the portfolio after it)", "plus"),
        row("  LimitsCheck.breaches (every limit, after)", "breaches"),
        row("  violations (the verdict)", "violations"),
        row("  once per tick: counts + breaches before any order", "per_tick"),
        row("what-if of one more order (impact+plus+breaches+verdict)", "one_more"),
        row(f"anchor: portfolio from scratch ({positions} positions + order)", "anchor"),
        row("anchor + the same limits check", "anchor_limits"),
        "  ratios of medians: review / from scratch = "
        f"{t['review'][0] / t['anchor'][0]:.2f}; review / from scratch + limits = "
        f"{t['review'][0] / t['anchor_limits'][0]:.2f}; one more order / from scratch + "
        f"limits = {t['one_more'][0] / t['anchor_limits'][0]:.2f}",
    ]  # fmt: skip


# Limits of a book sized for `positions` open positions: the shipped limits with their caps
# raised (a trader running 50 positions would set them so); each edit must match the file.
_SIZED = {
    "param max_positions: count in [1, 50] = 6": "param max_positions: count in [1, 500] = {n2}",
    "param max_per_underlying: count in [1, 10] = 2":
        "param max_per_underlying: count in [1, 500] = {n2}",
    "param max_per_strategy: count in [1, 20] = 3":
        "param max_per_strategy: count in [1, 500] = {n2}",
    "param bw_delta_band: delta in [10, 5000] = 250":
        "param bw_delta_band: delta in [10, 1000000] = 1000000",
    "param cluster_move_cap: percent in [0.1%, 10%] = 1.5%":
        "param cluster_move_cap: percent in [0.1%, 100%] = 100%",
    "count_positions(symbol = IWM) <= 4": "count_positions(symbol = IWM) <= {n2}",
    "-portfolio.vega <= 1% * portfolio.net_liq": "-portfolio.vega <= 100% * portfolio.net_liq",
    "portfolio.margin_used_pct <= 50%": "portfolio.margin_used_pct <= 1000%",
}  # fmt: skip


def sized_ruleset(positions: int, dest: Path) -> Path:
    """A copy of the shipped v6 rule set under `dest` whose limits hold `positions` positions;
    returns its manifest."""
    for folder in ("rules", "strategies", "risk_policies"):
        shutil.copytree(ROOT / folder, dest / folder)
    limits = dest / "risk_policies" / "limits.v6"
    text = limits.read_text(encoding="utf-8")
    for old, new in _SIZED.items():
        if old not in text:
            raise WhatIfBenchError(f"{limits.name} no longer has `{old}`: update _SIZED")
        text = text.replace(old, new.format(n2=2 * positions + 2))
    limits.write_text(text, encoding="utf-8")
    return dest / "rules" / "v6.ruleset.yaml"


def bench_risk(positions: int = 50, repeat: int = 2000) -> list[str]:
    """Both cases: the shipped limits (breached by a 50-position book, so the order is refused
    and the refusal explained) and limits sized for the book (the order passes)."""
    with tempfile.TemporaryDirectory(prefix="v6-bench-risk-") as tmp:
        sized = sized_ruleset(positions, Path(tmp))
        lines = bench_whatif(positions, repeat)
        lines += ["", "with limits sized for the book (caps raised to hold it):"]
        lines += bench_whatif(positions, repeat, ruleset=str(sized))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m engine.bench.whatif",
        description="The what-if limits check of one order against open positions, timed.",
    )
    parser.add_argument("--positions", type=int, default=50, help="open positions in the book")
    parser.add_argument("--repeat", type=int, default=2000, help="timed calls per function")
    parser.add_argument("--ruleset", default=None, help="rule set name or manifest path "
                        "(default: the shipped v6 limits, then the same sized for the book)")
    args = parser.parse_args(argv)
    try:
        if args.ruleset is None:
            lines = bench_risk(args.positions, args.repeat)
        else:
            lines = bench_whatif(args.positions, args.repeat, ruleset=args.ruleset)
    except WhatIfBenchError as exc:
        parser.exit(2, f"error: {exc}\n")
    except DslError as exc:
        parser.exit(2, exc.render() + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
