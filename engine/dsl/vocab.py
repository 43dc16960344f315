"""The typed vocabulary: every name a rule can read or do, declared once with type and unit.

Accessors are Python expressions written here, by us, over the evaluation frame
(M market, U underlying, P position, PF portfolio, R risk, S snapshot, H helpers). The compiler
splices them into generated code; text from rule files never becomes code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.dsl.types import BOOL, STRATEGY, SYMBOL, TEXT, Ty, Unit, enum, num

PERCENT, MONEY, PRICE = num(Unit.PERCENT), num(Unit.MONEY), num(Unit.PRICE)
DAYS, DELTA, RATIO = num(Unit.DAYS), num(Unit.DELTA), num(Unit.RATIO)
NUMBER, COUNT, LEVEL = num(Unit.NUMBER), num(Unit.COUNT), num(Unit.LEVEL)

ENUMS: dict[str, tuple[str, ...]] = {
    "regime": ("crash", "high_vol", "normal", "low_vol"),
    "session": ("pre", "regular", "post", "closed"),
    "risk_state": ("ACTIVE", "REDUCING", "HALTED"),
    "severity": ("info", "warning", "critical"),
    "right": ("put", "call"),
    "leg_role": ("short_put", "long_put", "short_call", "long_call"),
    "hedge_instrument": ("SPY", "ES"),
    "adjustment": ("close_tested", "recenter"),
}
# Open enums: members come from the rule set (strategies) or the snapshot (symbols).
OPEN_ENUMS = ("symbol", "strategy")

PHASES = ("entry", "adjust", "exit", "take_profit")
POSITION_PHASES = ("adjust", "exit", "take_profit")
# Which scopes each kind of block can see. "position" implies its underlying too.
SCOPES_BY_CONTEXT: dict[str, frozenset[str]] = {
    "entry": frozenset({"any", "underlying"}),
    "adjust": frozenset({"any", "underlying", "position"}),
    "exit": frozenset({"any", "underlying", "position"}),
    "take_profit": frozenset({"any", "underlying", "position"}),
    "limit": frozenset({"any"}),
    "breaker": frozenset({"any"}),
    "hedge": frozenset({"any"}),
    "regime": frozenset({"any"}),
    "strategy": frozenset({"any"}),
}


@dataclass(frozen=True, slots=True)
class Field:
    path: str
    ty: Ty
    doc: str
    accessor: str
    scope: str = "any"  # any | underlying | position


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    ty: Ty
    required: bool = False
    default: Any = None


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    params: tuple[Param, ...]
    returns: Ty
    doc: str
    impl: str  # helper name in engine.dsl.helpers, called as H.<impl>(S, U, *args)
    scope: str = "any"
    variadic: bool = False  # min/max take any number of positional arguments of one type


@dataclass(frozen=True, slots=True)
class ActionSpec:
    verb: str
    doc: str
    contexts: tuple[str, ...]
    target: str | None = None  # None | "strategy" | "leg_role" | "adjustment"
    params: tuple[Param, ...] = field(default_factory=tuple)


def _f(path: str, ty: Ty, doc: str, accessor: str, scope: str = "any") -> Field:
    return Field(path, ty, doc, accessor, scope)


_MARKET = [
    _f("market.session", enum("session"), "trading session", "M.session"),
    _f("market.regime", enum("regime"), "market regime (from regime policies)", "X.regime"),
    _f("market.vix", LEVEL, "CBOE VIX index level", "M.vix"),
    _f("market.vix9d", LEVEL, "CBOE 9-day VIX", "M.vix9d"),
    _f("market.vix3m", LEVEL, "CBOE 3-month VIX", "M.vix3m"),
    _f("market.vvix", LEVEL, "CBOE VVIX (volatility of VIX)", "M.vvix"),
    _f("market.skew_index", LEVEL, "CBOE SKEW index", "M.skew_index"),
    _f("market.vix_change_pct", PERCENT, "VIX change vs previous close", "M.vix_change_pct"),
    _f(
        "market.vix_term_ratio",
        RATIO,
        "VIX / VIX3M; above 1 is backwardation (stress)",
        "H.ratio(M.vix, M.vix3m)",
    ),
    _f("market.vix9d_ratio", RATIO, "VIX9D / VIX; short-term stress", "H.ratio(M.vix9d, M.vix)"),
    _f(
        "market.spy_realized_vol_20d",
        PERCENT,
        "SPY 20-day realized volatility (regime input)",
        "H.underlying_field(S, 'SPY', 'realized_vol_20d')",
    ),
    _f(
        "market.spy_change_pct",
        PERCENT,
        "SPY change vs previous close",
        "H.underlying_field(S, 'SPY', 'change_pct')",
    ),
]
for _fut in ("ES", "NQ", "RTY"):
    _MARKET += [
        _f(
            f"market.{_fut.lower()}_price",
            PRICE,
            f"{_fut} front-month futures price",
            f"H.future(M, {_fut!r}, 'price')",
        ),
        _f(
            f"market.{_fut.lower()}_change_pct",
            PERCENT,
            f"{_fut} change vs previous close",
            f"H.future(M, {_fut!r}, 'change_pct')",
        ),
    ]

_UNDERLYING = [
    _f("underlying.symbol", SYMBOL, "ticker of the underlying", "U.symbol"),
    _f("underlying.price", PRICE, "last price", "U.price"),
    _f("underlying.change_pct", PERCENT, "change vs previous close", "U.change_pct"),
    _f("underlying.iv_rank", PERCENT, "IV rank over the last year (0-100%)", "U.iv_rank"),
    _f(
        "underlying.iv_percentile",
        PERCENT,
        "share of days in the last year with lower IV",
        "U.iv_percentile",
    ),
    _f("underlying.atm_iv", PERCENT, "at-the-money implied volatility, ~30 days", "U.atm_iv"),
    _f(
        "underlying.skew_25d_ratio", RATIO, "25-delta put IV / 25-delta call IV", "U.skew_25d_ratio"
    ),
    _f(
        "underlying.risk_reversal_25d",
        PERCENT,
        "25-delta call IV minus put IV",
        "U.risk_reversal_25d",
    ),
    _f("underlying.skew_slope", RATIO, "slope of IV against moneyness", "U.skew_slope"),
    _f("underlying.term_slope", RATIO, "30-day IV / 90-day IV", "U.term_slope"),
    _f(
        "underlying.realized_vol_20d",
        PERCENT,
        "20-day close-to-close realized volatility",
        "U.realized_vol_20d",
    ),
    _f(
        "underlying.iv_premium",
        PERCENT,
        "ATM IV minus 20-day realized volatility",
        "H.diff(U.atm_iv, U.realized_vol_20d)",
    ),
    _f("underlying.beta", RATIO, "beta against SPY", "U.beta"),
    _f("underlying.dividend_yield", PERCENT, "continuous dividend yield", "U.dividend_yield"),
]
for _f_ in _UNDERLYING:
    object.__setattr__(_f_, "scope", "underlying")

_POSITION = [
    _f("position.id", TEXT, "position identifier", "P.id"),
    _f("position.strategy", STRATEGY, "strategy structure it was opened as", "P.strategy"),
    _f("position.symbol", SYMBOL, "underlying ticker", "P.symbol"),
    _f("position.quantity", COUNT, "number of structures", "P.quantity"),
    _f("position.entry_credit", PRICE, "credit received per structure", "P.entry_credit"),
    _f("position.mark", PRICE, "cost to close per structure, at mid", "P.mark"),
    _f("position.pnl", MONEY, "unrealised P&L", "P.pnl"),
    _f(
        "position.pnl_pct_of_credit",
        PERCENT,
        "P&L as a share of the credit received",
        "P.pnl_pct_of_credit",
    ),
    _f(
        "position.high_water_pnl_pct",
        PERCENT,
        "best P&L % of credit seen since entry",
        "P.high_water_pnl_pct",
    ),
    _f(
        "position.giveback_pct",
        PERCENT,
        "high-water P&L % minus current P&L % (trailing stops)",
        "H.diff(P.high_water_pnl_pct, P.pnl_pct_of_credit)",
    ),
    _f("position.max_loss", MONEY, "maximum loss of a defined-risk position", "P.max_loss"),
    _f(
        "position.entry_regime",
        enum("regime"),
        "regime when the position was opened",
        "P.entry_regime",
    ),
    _f("position.entry_iv", PERCENT, "ATM IV when the position was opened", "P.entry_iv"),
    _f(
        "position.iv_change",
        PERCENT,
        "underlying ATM IV now minus at entry",
        "H.diff(U.atm_iv, P.entry_iv)",
    ),
    _f("position.days_held", DAYS, "days since entry", "P.days_held"),
    _f("position.dte", DAYS, "days to the nearest leg expiry", "P.dte"),
    _f("position.delta", DELTA, "position delta, share-equivalents", "P.delta"),
    _f("position.gamma", NUMBER, "position gamma, share-equivalents per $1", "P.gamma"),
    _f("position.vega", MONEY, "USD per vol point", "P.vega"),
    _f("position.theta", MONEY, "USD per calendar day", "P.theta"),
    _f("position.adjustments", COUNT, "adjustments made so far", "P.adjustments"),
    _f(
        "position.short_delta_max",
        DELTA,
        "largest |delta| among short legs",
        "H.short_delta_max(P)",
    ),
]
for _role in ENUMS["leg_role"]:
    _POSITION += [
        _f(
            f"position.{_role}.strike",
            PRICE,
            f"strike of the {_role} leg",
            f"H.leg(P, {_role!r}, 'strike')",
        ),
        _f(
            f"position.{_role}.delta",
            DELTA,
            f"delta of the {_role} leg (signed)",
            f"H.leg(P, {_role!r}, 'delta')",
        ),
        _f(
            f"position.{_role}.iv",
            PERCENT,
            f"implied volatility of the {_role} leg",
            f"H.leg(P, {_role!r}, 'iv')",
        ),
        _f(
            f"position.{_role}.mark",
            PRICE,
            f"mid price of the {_role} leg",
            f"H.leg(P, {_role!r}, 'mark')",
        ),
        _f(
            f"position.{_role}.otm_pct",
            PERCENT,
            f"distance of the {_role} strike out of the money, as a share of spot "
            "(negative when in the money)",
            f"H.otm_pct(P, U, {_role!r})",
        ),
    ]
for _f_ in _POSITION:
    object.__setattr__(_f_, "scope", "position")

_PORTFOLIO = [
    _f("portfolio.net_liq", MONEY, "net liquidation value", "PF.net_liq"),
    _f("portfolio.cash", MONEY, "cash balance", "PF.cash"),
    _f("portfolio.peak_net_liq", MONEY, "highest net liquidation value seen", "PF.peak_net_liq"),
    _f("portfolio.day_pnl", MONEY, "P&L since the previous close", "PF.day_pnl"),
    _f("portfolio.day_pnl_pct", PERCENT, "day P&L as a share of net liq", "PF.day_pnl_pct"),
    _f(
        "portfolio.drawdown_pct",
        PERCENT,
        "decline from peak net liq (0% at a peak)",
        "PF.drawdown_pct",
    ),
    _f("portfolio.open_positions", COUNT, "number of open positions", "PF.open_positions"),
    _f(
        "portfolio.bw_delta_spy",
        DELTA,
        "beta-weighted delta, SPY share-equivalents",
        "PF.bw_delta_spy",
    ),
    _f("portfolio.delta", DELTA, "net delta, share-equivalents", "PF.delta"),
    _f("portfolio.gamma", NUMBER, "net gamma", "PF.gamma"),
    _f("portfolio.vega", MONEY, "USD per vol point", "PF.vega"),
    _f("portfolio.theta", MONEY, "USD per calendar day", "PF.theta"),
    _f(
        "portfolio.buying_power_used", MONEY, "margin / buying power in use", "PF.buying_power_used"
    ),
    _f("portfolio.buying_power_available", MONEY, "buying power left", "PF.buying_power_available"),
    _f(
        "portfolio.margin_used_pct",
        PERCENT,
        "buying power used as a share of net liq",
        "PF.margin_used_pct",
    ),
    _f(
        "portfolio.cluster_delta",
        MONEY,
        "USD per 1% move of SPY, QQQ and IWM together, correlation-adjusted (they move together)",
        "PF.cluster_delta",
    ),
]

_RISK = [
    _f("risk.state", enum("risk_state"), "trading state: ACTIVE, REDUCING or HALTED", "R.state"),
    _f("risk.entries_blocked", BOOL, "new entries are blocked", "R.entries_blocked"),
    _f(
        "risk.orders_rejected_today",
        COUNT,
        "orders rejected by the broker today",
        "R.orders_rejected_today",
    ),
    _f("risk.data_age_seconds", NUMBER, "seconds since the last fresh quote", "R.data_age_seconds"),
    _f("risk.broker_connected", BOOL, "the broker connection is up", "R.broker_connected"),
]

FIELDS: dict[str, Field] = {
    f.path: f for f in _MARKET + _UNDERLYING + _POSITION + _PORTFOLIO + _RISK
}
ROOTS = frozenset(p.split(".")[0] for p in FIELDS)

_SEL = (
    Param("delta", DELTA, required=True),
    Param("dte", DAYS, required=True),
)
FUNCTIONS: dict[str, Function] = {
    fn.name: fn
    for fn in [
        Function("abs", (Param("x", NUMBER, True),), NUMBER, "absolute value", "abs_"),
        Function(
            "min", (Param("x", NUMBER, True),), NUMBER, "smallest argument", "min_", variadic=True
        ),
        Function(
            "max", (Param("x", NUMBER, True),), NUMBER, "largest argument", "max_", variadic=True
        ),
        Function(
            "is_known",
            (Param("x", NUMBER, True),),
            BOOL,
            "true when the value is known (data present)",
            "is_known",
        ),
        Function(
            "has_position",
            (Param("strategy", STRATEGY), Param("symbol", SYMBOL)),
            BOOL,
            "an open position matches (all given filters)",
            "has_position",
        ),
        Function(
            "count_positions",
            (Param("strategy", STRATEGY), Param("symbol", SYMBOL)),
            COUNT,
            "number of open positions matching the filters",
            "count_positions",
        ),
        Function(
            "breaker_tripped",
            (Param("name", TEXT, True),),
            BOOL,
            "the named circuit breaker is tripped",
            "breaker_tripped",
        ),
        Function(
            "chain.atm_iv",
            (Param("dte", DAYS, True),),
            PERCENT,
            "ATM implied volatility at the expiry nearest dte",
            "chain_atm_iv",
            "underlying",
        ),
        Function(
            "chain.put_iv",
            _SEL,
            PERCENT,
            "IV of the put nearest |delta| at the expiry nearest dte",
            "chain_put_iv",
            "underlying",
        ),
        Function(
            "chain.call_iv",
            _SEL,
            PERCENT,
            "IV of the call nearest delta at the expiry nearest dte",
            "chain_call_iv",
            "underlying",
        ),
        Function(
            "chain.put_strike", _SEL, PRICE, "strike of that put", "chain_put_strike", "underlying"
        ),
        Function(
            "chain.call_strike",
            _SEL,
            PRICE,
            "strike of that call",
            "chain_call_strike",
            "underlying",
        ),
        Function(
            "chain.put_mid", _SEL, PRICE, "mid price of that put", "chain_put_mid", "underlying"
        ),
        Function(
            "chain.call_mid", _SEL, PRICE, "mid price of that call", "chain_call_mid", "underlying"
        ),
        Function(
            "chain.spread_pct",
            _SEL,
            PERCENT,
            "bid/ask width of that put as a share of its mid",
            "chain_spread_pct",
            "underlying",
        ),
    ]
}

ACTIONS: dict[str, ActionSpec] = {
    a.verb: a
    for a in [
        ActionSpec(
            "open",
            "open a strategy structure (its params as arguments)",
            ("entry",),
            target="strategy",
            params=(Param("quantity", COUNT),),
        ),
        ActionSpec(
            "close", "close the whole position as one order", ("adjust", "exit", "take_profit")
        ),
        ActionSpec(
            "reduce",
            "close part of the position",
            ("adjust", "exit", "take_profit"),
            params=(Param("fraction", PERCENT, True),),
        ),
        ActionSpec(
            "roll",
            "roll one leg to a new expiry and/or delta",
            ("adjust",),
            target="leg_role",
            params=(Param("dte", DAYS), Param("delta", DELTA)),
        ),
        ActionSpec(
            "adjust",
            "apply a named adjustment (close_tested, recenter)",
            ("adjust",),
            target="adjustment",
        ),
        ActionSpec(
            "hedge",
            "trade SPY shares or ES futures toward a beta-weighted delta target",
            ("hedge", "limit", "breaker"),
            params=(
                Param("target", DELTA, default=0.0),
                Param("instrument", enum("hedge_instrument"), default="SPY"),
            ),
        ),
        ActionSpec(
            "alert",
            "notify operators",
            ("entry", "adjust", "exit", "take_profit", "limit", "breaker", "hedge"),
            params=(Param("severity", enum("severity"), default="warning"), Param("message", TEXT)),
        ),
        ActionSpec("block_entries", "no new risk: enter REDUCING state", ("limit", "breaker")),
        ActionSpec("halt", "stop all trading: enter HALTED state", ("limit", "breaker")),
        ActionSpec("flatten", "close every position, then HALT", ("limit", "breaker")),
    ]
}


def export() -> dict[str, Any]:
    """The vocabulary as plain data, for `v6 vocab --json`, editors and the dashboard."""

    def ty(t: Ty) -> dict[str, Any]:
        out: dict[str, Any] = {"type": t.kind}
        if t.unit:
            out["unit"] = t.unit.value
        if t.enum:
            out["enum"] = t.enum
            if t.enum in ENUMS:
                out["values"] = list(ENUMS[t.enum])
        return out

    def params(ps: tuple[Param, ...]) -> list[dict[str, Any]]:
        return [
            {"name": p.name, **ty(p.ty), "required": p.required, "default": p.default} for p in ps
        ]

    return {
        "language_version": 1,
        "fields": [
            {"path": f.path, **ty(f.ty), "scope": f.scope, "doc": f.doc} for f in FIELDS.values()
        ],
        "functions": [
            {
                "name": fn.name,
                "params": params(fn.params),
                "returns": ty(fn.returns),
                "doc": fn.doc,
                "scope": fn.scope,
                "variadic": fn.variadic,
            }
            for fn in FUNCTIONS.values()
        ],
        "actions": [
            {
                "verb": a.verb,
                "doc": a.doc,
                "contexts": list(a.contexts),
                "target": a.target,
                "params": params(a.params),
            }
            for a in ACTIONS.values()
        ],
        "enums": {k: list(v) for k, v in ENUMS.items()},
        "phases": list(PHASES),
        "units": [u.value for u in Unit],
    }
