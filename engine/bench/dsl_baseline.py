"""The shipped `v6` rule set written by hand in plain Python, and the snapshots it is checked on.

`decide(snapshot)` is what a competent engineer would write instead of the rule files: the
same phases in the same order as engine/dsl/runtime.py, with the same three-valued handling of
missing data (None): a rule fires only when its conditions are known to hold, and a limit is
breached unless its check is known to hold. Keep it in step with rules/entries.v6,
rules/exits.v6, rules/adjustments.v6 and risk_policies/*.v6; the benchmark and its test check
that both produce the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from math import erf, sqrt
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from engine.state.snapshot import (
    Chain,
    FloatArray,
    FutureQuote,
    Leg,
    MarketState,
    PortfolioState,
    Position,
    RiskState,
    Snapshot,
    UnderlyingState,
)

Args = tuple[tuple[str, Any], ...]
# (rule id, verb, target, arguments, symbol, position id)
DecisionTuple = tuple[str, str, str | None, Args, str | None, str | None]

ENTRY_SYMBOLS = frozenset({"SPY", "QQQ", "IWM"})
STOP_BY_REGIME = {"crash": -1.0, "high_vol": -1.5, "normal": -2.0, "low_vol": -2.0}
TARGET_BY_REGIME = {"crash": 0.4, "high_vol": 0.5, "normal": 0.8, "low_vol": 0.9}
IC_ARGS: Args = (("short_delta", 0.16), ("wing_width", 5.0), ("dte", 45.0))
PCS_ARGS: Args = (("short_delta", 0.25), ("wing_width", 5.0), ("dte", 45.0))
HEDGE_ARGS: Args = (("target", 0.0), ("instrument", "SPY"))
_by_id = attrgetter("id")


def _alert(severity: str, message: str) -> Args:
    return (("severity", severity), ("message", message))


def select_regime(s: Snapshot) -> str | None:
    """risk_policies/regimes.v6: the matching regime of highest priority; `normal` otherwise."""
    m = s.market
    if m.regime is not None:
        return m.regime
    vix, vix3m = m.vix, m.vix3m
    term = vix / vix3m if vix is not None and vix3m else None
    spy = s.underlyings.get("SPY")
    rv = spy.realized_vol_20d if spy is not None else None
    if (vix is not None and vix >= 35) or (term is not None and term >= 1.10):
        return "crash"
    if (vix is not None and vix >= 25) or (term is not None and term >= 1.0) or (
        rv is not None and rv >= 0.25
    ):
        return "high_vol"
    if vix is not None and vix < 14 and rv is not None and rv < 0.10:
        return "low_vol"
    return "normal"


def _short_delta_max(p: Position) -> float | None:
    deltas = [leg.delta for leg in p.legs if leg.quantity < 0]
    if not deltas or None in deltas:
        return None
    return max(abs(d) for d in deltas if d is not None)


def _portfolio(
    s: Snapshot, counts: dict[str, int], by_strategy: dict[str, int], out: list[DecisionTuple]
) -> None:
    """Breakers (by priority), limits (equal priority, so by id), then the hedge."""
    m, pf, r = s.market, s.portfolio, s.risk
    vix, vix3m, vix_chg = m.vix, m.vix3m, m.vix_change_pct
    term = vix / vix3m if vix is not None and vix3m else None
    if pf.drawdown_pct is not None and pf.drawdown_pct >= 0.15:
        out.append(("drawdown", "flatten", None, (), None, None))
        out.append(("drawdown", "alert", None,
                    _alert("critical", "drawdown breaker: flattened"), None, None))
    if pf.day_pnl_pct is not None and pf.day_pnl_pct <= -0.03:
        out.append(("daily_loss", "halt", None, (), None, None))
        out.append(("daily_loss", "alert", None,
                    _alert("critical", "daily loss breaker"), None, None))
    if (vix is not None and vix >= 40) or (vix_chg is not None and vix_chg >= 0.30):
        out.append(("vix_spike", "block_entries", None, (), None, None))
        out.append(("vix_spike", "alert", None, _alert("warning", "VIX spike"), None, None))
    if term is not None and term >= 1.05:
        out.append(("backwardation", "block_entries", None, (), None, None))
        out.append(("backwardation", "alert", None,
                    _alert("warning", "VIX term structure inverted"), None, None))
    if r.data_age_seconds is not None and r.data_age_seconds > 120:
        out.append(("stale_data", "block_entries", None, (), None, None))
        out.append(("stale_data", "alert", None,
                    _alert("warning", "market data is stale"), None, None))
    if r.orders_rejected_today >= 5:
        out.append(("order_rejects", "halt", None, (), None, None))
        out.append(("order_rejects", "alert", None,
                    _alert("critical", "order rejects breaker"), None, None))
    if not r.broker_connected:
        out.append(("disconnect", "block_entries", None, (), None, None))
        out.append(("disconnect", "alert", None,
                    _alert("critical", "broker disconnected"), None, None))

    # Limits: breached unless the check is known to hold.
    bw, vega, net_liq, margin = pf.bw_delta_spy, pf.vega, pf.net_liq, pf.margin_used_pct
    n_spy, n_qqq, n_iwm = counts.get("SPY", 0), counts.get("QQQ", 0), counts.get("IWM", 0)
    if margin is None or margin > 0.5:
        out.append(("buying_power", "block_entries", None, (), None, None))
    if bw is None or not -250 <= bw <= 250:
        out.append(("bw_delta", "block_entries", None, (), None, None))
    cluster = pf.cluster_delta
    if cluster is None or net_liq is None or cluster > 0.015 * net_liq:
        out.append(("cluster_delta", "block_entries", None, (), None, None))
    if n_spy + n_qqq + n_iwm > 4:
        out.append(("correlated_cluster", "block_entries", None, (), None, None))
    if by_strategy.get("iron_condor", 0) > 3:
        out.append(("iron_condor_count", "block_entries", None, (), None, None))
    if n_iwm > 2:
        out.append(("iwm_concentration", "block_entries", None, (), None, None))
    if pf.open_positions > 6:
        out.append(("max_positions", "block_entries", None, (), None, None))
        out.append(("max_positions", "alert", None,
                    _alert("warning", "position count limit"), None, None))
    if by_strategy.get("put_credit_spread", 0) > 3:
        out.append(("put_spread_count", "block_entries", None, (), None, None))
    if n_qqq > 2:
        out.append(("qqq_concentration", "block_entries", None, (), None, None))
    if n_spy > 2:
        out.append(("spy_concentration", "block_entries", None, (), None, None))
    if vega is None or net_liq is None or -vega > 0.01 * net_liq:
        out.append(("vega_cap", "block_entries", None, (), None, None))
        out.append(("vega_cap", "alert", None, _alert("warning", "vega cap"), None, None))

    if bw is not None and (bw > 1000 or bw < -1000):
        out.append(("bw_delta_hedge", "hedge", None, HEDGE_ARGS, None, None))
    if pf.open_positions == 0 and bw is not None and (bw > 0.5 or bw < -0.5):
        out.append(("unwind_when_flat", "hedge", None, HEDGE_ARGS, None, None))


def _position(p: Position, regime: str | None, out: list[DecisionTuple]) -> None:
    """Close group (exit + take_profit, first match by priority), else the adjust group."""
    pnl, high, dte = p.pnl_pct_of_credit, p.high_water_pnl_pct, p.dte
    sdm = _short_delta_max(p)
    stop = STOP_BY_REGIME.get(regime) if regime is not None else None
    target = TARGET_BY_REGIME.get(regime) if regime is not None else None
    rule = None
    if pnl is not None and stop is not None and pnl <= stop:
        rule = "stop_vol_adjusted"
    elif sdm is not None and sdm >= 0.60:
        rule = "exit_short_strike_breach"
    elif high is not None and high >= 0.90 and pnl is not None and high - pnl >= 0.20:
        rule = "trailing_stop"
    elif pnl is not None and target is not None and pnl >= target:
        rule = "tp_by_regime"
    elif dte is not None and dte <= 21:
        rule = "dte_exit"
    if rule is not None:
        out.append((rule, "close", None, (), p.symbol, p.id))
        return
    if dte is None or p.adjustments >= 1:
        return
    if p.strategy == "iron_condor" and sdm is not None and sdm >= 0.30 and dte > 21:
        out.append(("ic_close_tested", "adjust", "close_tested", (), p.symbol, p.id))
    elif p.strategy == "put_credit_spread" and dte > 14:
        short_put = p.leg("short_put")
        if short_put is not None and short_put.delta is not None and short_put.delta <= -0.35:
            out.append(("pcs_roll_down", "roll", "short_put", (("delta", 0.2), ("dte", 45.0)),
                        p.symbol, p.id))


def _entry(u: UnderlyingState, regime: str | None, held: bool, out: list[DecisionTuple]) -> None:
    """Entries, first match by priority: iron condor, else put credit spread."""
    if held:  # both entries need `not has_position(symbol = underlying.symbol)`
        return
    iv_rank, atm_iv, rv = u.iv_rank, u.atm_iv, u.realized_vol_20d
    if regime in ("normal", "high_vol") and iv_rank is not None and iv_rank >= 0.30 \
            and atm_iv is not None and rv is not None and atm_iv - rv > 0:
        out.append(("ic_entry", "open", "iron_condor", IC_ARGS, u.symbol, None))
    elif regime in ("normal", "low_vol") and u.skew_25d_ratio is not None \
            and u.skew_25d_ratio >= 1.10:
        out.append(("pcs_entry", "open", "put_credit_spread", PCS_ARGS, u.symbol, None))


def decide(s: Snapshot) -> list[DecisionTuple]:
    """One tick of the `v6` rule set, by hand."""
    out: list[DecisionTuple] = []
    regime = select_regime(s)
    counts: dict[str, int] = {}
    by_strategy: dict[str, int] = {}
    for p in s.positions:
        counts[p.symbol] = counts.get(p.symbol, 0) + 1
        by_strategy[p.strategy] = by_strategy.get(p.strategy, 0) + 1
    _portfolio(s, counts, by_strategy, out)
    for p in sorted(s.positions, key=_by_id):
        _position(p, regime, out)
    for symbol in sorted(s.underlyings):
        if symbol in ENTRY_SYMBOLS:
            u = s.underlyings[symbol]
            _entry(u, regime, counts.get(u.symbol, 0) > 0, out)
    return out


def decision_tuple(d: Any) -> DecisionTuple:
    """An engine Decision in the baseline's shape, for comparison."""
    return (d.rule_id, d.verb, d.target, d.args, d.symbol, d.position_id)


# ------------------------------------------------------------------ the snapshots
NY = ZoneInfo("America/New_York")
TODAY = date(2024, 6, 12)
_SPOTS = {"SPY": 536.8, "QQQ": 468.2, "IWM": 202.4}


_erf = np.frompyfunc(erf, 1, 1)


def _ncdf(x: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + _erf(x / sqrt(2.0))), dtype=np.float64)


def spy_chain(spot: float = _SPOTS["SPY"], atm_iv: float = 0.128) -> Chain:
    """An SPY chain of 402 contracts: 3 monthly expiries x 67 strikes x put/call, BSM-priced."""
    expiries = np.array(["2024-06-21", "2024-07-19", "2024-08-16"], dtype="datetime64[D]")
    strikes = np.arange(round(spot) - 66, round(spot) + 67, 2.0)
    expiry = np.repeat(expiries, 2 * len(strikes))
    strike = np.tile(np.concatenate([strikes, strikes]), len(expiries))
    is_call = np.tile(np.repeat([False, True], len(strikes)), len(expiries))
    t = (expiry - np.datetime64(TODAY, "D")).astype(np.float64) / 365.0
    iv = atm_iv * (1.0 - 1.8 * (strike / spot - 1.0))  # a put-skewed smile
    sd = iv * np.sqrt(t)
    d1 = (np.log(spot / strike) + 0.5 * sd * sd) / sd
    n1, n2 = _ncdf(d1), _ncdf(d1 - sd)
    call = spot * n1 - strike * n2
    mid = np.maximum(np.where(is_call, call, call - spot + strike), 0.01)
    half = np.maximum(0.01, 0.02 * mid)
    vega = spot * np.exp(-0.5 * d1 * d1) / sqrt(2.0 * np.pi) * np.sqrt(t) / 100.0
    return Chain(symbol="SPY", expiry=expiry, strike=strike, is_call=is_call, bid=mid - half,
                 ask=mid + half, last=mid, volume=np.full(len(mid), 1200.0),
                 open_interest=np.full(len(mid), 8500.0), iv=iv,
                 delta=np.where(is_call, n1, n1 - 1.0), gamma=np.full(len(mid), 0.01), vega=vega,
                 theta=-vega / 3.0)


def _underlying(
    symbol: str, iv: float, rv: float, skew: float, rank: float, beta: float
) -> UnderlyingState:
    spot = _SPOTS[symbol]
    return UnderlyingState(
        symbol=symbol, price=spot, prev_close=spot / 1.004, change_pct=0.004,
        dividend_yield=0.013, iv_rank=rank, iv_percentile=rank + 0.05, atm_iv=iv, iv_30d=iv * 0.98,
        skew_25d_ratio=skew, risk_reversal_25d=-0.035, skew_slope=-0.42, term_slope=0.93,
        realized_vol_20d=rv, beta=beta,
    )


def _position_of(pid: str, strategy: str, symbol: str, pnl: float, high: float, dte: float,
                 put_delta: float, call_delta: float | None, adjustments: int = 0) -> Position:
    spot, expiry = _SPOTS[symbol], TODAY + timedelta(days=int(dte))
    sp, sc = round(spot * 0.94), round(spot * 1.05)
    legs = [Leg(role="short_put", is_call=False, strike=sp, expiry=expiry, quantity=-1,
                entry_price=1.9, mark=1.5, delta=put_delta, iv=0.16),
            Leg(role="long_put", is_call=False, strike=sp - 5, expiry=expiry, quantity=1,
                entry_price=1.2, mark=0.9, delta=put_delta * 0.7, iv=0.17)]
    if call_delta is not None:
        legs += [Leg(role="short_call", is_call=True, strike=sc, expiry=expiry, quantity=-1,
                     entry_price=1.4, mark=1.1, delta=call_delta, iv=0.12),
                 Leg(role="long_call", is_call=True, strike=sc + 5, expiry=expiry, quantity=1,
                     entry_price=0.8, mark=0.6, delta=call_delta * 0.6, iv=0.12)]
    credit = 1.3 if call_delta is not None else 0.7
    return Position(
        id=pid, strategy=strategy, symbol=symbol, opened_at=datetime(2024, 5, 1, 10, 5, tzinfo=NY),
        quantity=2, legs=tuple(legs), entry_credit=credit, mark=credit * (1 - pnl),
        pnl=200 * credit * pnl, pnl_pct_of_credit=pnl, high_water_pnl_pct=high,
        max_loss=200 * (5 - credit), entry_regime="normal", entry_iv=0.14, days_held=42.0, dte=dte,
        delta=-4.0, gamma=-0.8, vega=-38.0, theta=9.5, adjustments=adjustments,
    )


def bench_snapshot() -> Snapshot:
    """A regular session, normal regime (computed), five positions: one roll, one DTE exit,
    one tested iron condor, two quiet; five positions on the cluster breach its limit."""
    return Snapshot(
        time=datetime(2024, 6, 12, 11, 30, tzinfo=NY),
        market=MarketState(session="regular", vix=16.4, vix9d=15.1, vix3m=18.2, vvix=88.0,
                           skew_index=141.0, vix_change_pct=0.035,
                           futures={s: FutureQuote(symbol=s, price=p, change_pct=0.003) for s, p
                                    in (("ES", 5412.0), ("NQ", 19310.0), ("RTY", 2041.0))}),
        underlyings={"SPY": _underlying("SPY", 0.128, 0.112, 1.14, 0.34, 1.0),
                     "QQQ": _underlying("QQQ", 0.171, 0.154, 1.08, 0.41, 1.2),
                     "IWM": _underlying("IWM", 0.214, 0.187, 1.12, 0.38, 1.25)},
        chains={"SPY": spy_chain()},
        positions=(_position_of("P1", "iron_condor", "SPY", 0.35, 0.42, 30, -0.14, 0.18),
                   _position_of("P2", "put_credit_spread", "SPY", -0.4, 0.1, 33, -0.37, None),
                   _position_of("P3", "iron_condor", "QQQ", 0.55, 0.6, 19, -0.1, 0.12),
                   _position_of("P4", "iron_condor", "IWM", 0.2, 0.25, 40, -0.12, 0.32),
                   _position_of("P5", "put_credit_spread", "QQQ", 0.1, 0.15, 38, -0.2, None)),
        portfolio=PortfolioState(
            net_liq=250_000.0, cash=180_000.0, peak_net_liq=262_000.0, day_pnl=1_200.0,
            day_pnl_pct=0.0048, drawdown_pct=0.046, open_positions=5,
            positions_by_symbol={"SPY": 2, "QQQ": 2, "IWM": 1},
            positions_by_strategy={"iron_condor": 3, "put_credit_spread": 2},
            bw_delta_spy=-42.0, delta=-38.0, gamma=-4.1, vega=-190.0, theta=47.0,
            buying_power_used=48_000.0, buying_power_available=202_000.0, margin_used_pct=0.19),
        risk=RiskState(data_age_seconds=1.5),
    )


def stressed_snapshot() -> Snapshot:
    """VIX spike into backwardation (crash), stale data, drawdown and daily loss breakers,
    delta out of band; a position beyond the crash stop."""
    base = bench_snapshot()
    spy = replace(base.underlyings["SPY"], realized_vol_20d=0.31, change_pct=-0.045)
    pos = (replace(base.positions[0], pnl_pct_of_credit=-1.2), *base.positions[1:])
    return replace(
        base, market=replace(base.market, vix=42.5, vix3m=36.0, vix_change_pct=0.62),
        underlyings={**base.underlyings, "SPY": spy}, positions=pos,
        portfolio=replace(base.portfolio, drawdown_pct=0.16, day_pnl_pct=-0.041,
                          bw_delta_spy=-1_200.0),
        risk=RiskState(data_age_seconds=150.0, orders_rejected_today=6, broker_connected=False))


def take_profit_snapshot() -> Snapshot:
    """Calm market (low_vol): one position past its take-profit, one trailing stop, and no
    position on IWM so an entry fires."""
    base = bench_snapshot()
    spy = replace(base.underlyings["SPY"], realized_vol_20d=0.08)
    pos = (replace(base.positions[0], pnl_pct_of_credit=0.92, high_water_pnl_pct=0.92),
           replace(base.positions[2], pnl_pct_of_credit=0.7, high_water_pnl_pct=0.95, dte=30.0),
           *base.positions[4:])
    return replace(
        base, market=replace(base.market, vix=12.6, vix3m=15.0),
        underlyings={**base.underlyings, "SPY": spy}, positions=pos,
        portfolio=replace(base.portfolio, open_positions=3))


def missing_data_snapshot() -> Snapshot:
    """Regime given (high_vol) and data missing: unknown limits breach, unknown rules don't fire."""
    base = bench_snapshot()
    p1 = base.positions[0]
    p1 = replace(p1, legs=tuple(replace(lg, delta=None) for lg in p1.legs), pnl_pct_of_credit=None)
    p2 = replace(base.positions[1], dte=None)
    return replace(
        base, market=replace(base.market, regime="high_vol", vix=None, vix_change_pct=None),
        underlyings={**base.underlyings, "IWM": replace(base.underlyings["IWM"], atm_iv=None)},
        positions=(p1, p2, base.positions[3]),
        portfolio=replace(base.portfolio, margin_used_pct=None, vega=None, bw_delta_spy=None),
        risk=RiskState(data_age_seconds=None))


SCENARIOS: dict[str, Callable[[], Snapshot]] = {
    "bench": bench_snapshot,
    "stressed": stressed_snapshot,
    "take_profit": take_profit_snapshot,
    "missing_data": missing_data_snapshot,
}
