"""The immutable Snapshot: everything a rule can read at one tick, with declared units."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

# Units used below (rule literals carry the same units, see engine/dsl/vocab.py):
#   fraction  - percent-like values as fractions: 0.42 means 42%
#   USD       - money in US dollars
#   price     - USD per share (option prices are per share: 1.85 is $185 per contract)
#   level     - an index level (VIX 14.2)
#   ratio     - a dimensionless ratio
#   days      - calendar days, as a float
# Every optional scalar is `float | None`; None means unknown (missing data), never NaN.

EXCHANGE_TZ = ZoneInfo("America/New_York")  # snapshot time and session dates are New York's
SESSIONS = ("pre", "regular", "post", "closed")
REGIMES = ("crash", "high_vol", "normal", "low_vol")
RISK_STATES = ("ACTIVE", "REDUCING", "HALTED")
CONTRACT_MULTIPLIER = 100
BENCHMARK = "SPY"  # beta, beta-weighted delta and the regime policies are against SPY

_K = TypeVar("_K")
_V = TypeVar("_V")


def frozen_map(items: Mapping[_K, _V] | None = None) -> Mapping[_K, _V]:
    """A read-only copy, so a snapshot cannot be changed through one of its mappings."""
    return MappingProxyType(dict(items or {}))


_PLAIN_TYPES = (int, str, bool, type(None), tuple)


def _plain_scalars(obj: Any) -> None:
    """numpy scalars become Python numbers and NaN becomes None (unknown).

    Values often arrive from numpy arrays; a numpy comparison returns np.bool_, which is not
    `True`, so the rule engine's three-valued logic would read it as unknown. One
    representation for "missing" (None) keeps every evaluation mode in agreement.
    """
    for name in obj.__slots__:
        v = getattr(obj, name)
        t = type(v)
        if t is float:
            if math.isnan(v):
                object.__setattr__(obj, name, None)
        elif t in _PLAIN_TYPES:
            continue
        elif isinstance(v, np.generic):
            item = v.item()
            missing = isinstance(item, float) and math.isnan(item)
            object.__setattr__(obj, name, None if missing else item)


def _check_choice(value: str | None, options: tuple[str, ...], what: str) -> None:
    if value is not None and value not in options:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(options)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FutureQuote:
    """A front-month index future (ES, NQ, RTY)."""

    symbol: str
    price: float | None = None  # index points
    change_pct: float | None = None  # fraction, vs previous settlement

    def __post_init__(self) -> None:
        _plain_scalars(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketState:
    """Market-wide state. `regime` None means "not given": the regime policies compute it."""

    session: str  # one of SESSIONS
    regime: str | None = None  # one of REGIMES
    vix: float | None = None  # level
    vix9d: float | None = None  # level
    vix3m: float | None = None  # level
    vvix: float | None = None  # level
    skew_index: float | None = None  # level (CBOE SKEW)
    vix_change_pct: float | None = None  # fraction, vs previous close
    futures: Mapping[str, FutureQuote] = field(default_factory=frozen_map)  # keyed ES, NQ, RTY

    def __post_init__(self) -> None:
        _plain_scalars(self)
        _check_choice(self.session, SESSIONS, "session")
        _check_choice(self.regime, REGIMES, "regime")
        object.__setattr__(self, "futures", frozen_map(self.futures))


@dataclass(frozen=True, slots=True, kw_only=True)
class UnderlyingState:
    """One underlying's quote, its session's OHLC and its volatility features."""

    symbol: str
    price: float | None = None  # price: last trade (a daily snapshot: the close)
    bid: float | None = None  # price
    ask: float | None = None  # price
    open: float | None = None  # price, this session so far
    high: float | None = None  # price, this session so far
    low: float | None = None  # price, this session so far
    prev_close: float | None = None  # price
    change_pct: float | None = None  # fraction, vs previous close
    dividend_yield: float | None = None  # fraction per year, continuous
    iv_rank: float | None = None  # fraction 0..1 over the last year
    iv_percentile: float | None = None  # fraction 0..1: share of days in the year with lower IV
    atm_iv: float | None = None  # fraction (0.14 = 14 vol), ~30 days
    iv_30d: float | None = None  # fraction, 30-day constant-maturity IV
    skew_25d_ratio: float | None = None  # ratio: 25-delta put IV / 25-delta call IV
    risk_reversal_25d: float | None = None  # fraction: 25-delta call IV - put IV
    skew_slope: float | None = None  # ratio: slope of IV against moneyness
    term_slope: float | None = None  # ratio: 30-day IV / 90-day IV
    realized_vol_20d: float | None = None  # fraction, annualised close-to-close
    beta: float | None = None  # ratio, against SPY

    def __post_init__(self) -> None:
        _plain_scalars(self)


FloatArray = npt.NDArray[np.float64]
_FLOAT_COLUMNS = (
    "strike", "bid", "ask", "last", "volume", "open_interest",
    "iv", "delta", "gamma", "vega", "theta",
)  # fmt: skip
OPTIONAL_CHAIN_COLUMNS = _FLOAT_COLUMNS[1:]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Chain:
    """An option chain as read-only columns, one row per contract; NaN means missing.

    Units: expiry datetime64[D]; strike, bid, ask, last in price; volume and open_interest in
    contracts; iv a fraction; delta per share (-1..1); gamma per $1 of the underlying; vega price
    per vol point; theta price per calendar day.
    """

    symbol: str
    expiry: npt.NDArray[np.datetime64]
    strike: FloatArray
    is_call: npt.NDArray[np.bool_]
    bid: FloatArray
    ask: FloatArray
    last: FloatArray
    volume: FloatArray
    open_interest: FloatArray
    iv: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray

    def __post_init__(self) -> None:
        # Copies, so freezing them never freezes (or aliases) the caller's arrays.
        columns: dict[str, npt.NDArray[Any]] = {
            "expiry": np.array(self.expiry, dtype="datetime64[D]"),
            "is_call": np.array(self.is_call, dtype=np.bool_),
        }
        columns |= {n: np.array(getattr(self, n), dtype=np.float64) for n in _FLOAT_COLUMNS}
        lengths = {n: a.shape for n, a in columns.items()}
        if len(set(lengths.values())) > 1 or any(len(s) != 1 for s in lengths.values()):
            raise ValueError(
                f"chain {self.symbol}: columns must be 1-D and equal length: {lengths}"
            )
        for name, arr in columns.items():
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    @classmethod
    def from_columns(
        cls,
        symbol: str,
        expiry: npt.ArrayLike,
        strike: npt.ArrayLike,
        is_call: npt.ArrayLike,
        **optional: npt.ArrayLike | None,
    ) -> Chain:
        """Build a chain from the required columns; optional columns left out are all NaN."""
        unknown = set(optional) - set(OPTIONAL_CHAIN_COLUMNS)
        if unknown:
            raise TypeError(f"unknown chain columns: {sorted(unknown)}")
        n = len(np.atleast_1d(np.asarray(strike)))
        cols = {
            c: np.full(n, np.nan) if optional.get(c) is None else optional[c]
            for c in OPTIONAL_CHAIN_COLUMNS
        }
        return cls(symbol=symbol, expiry=expiry, strike=strike, is_call=is_call, **cols)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.strike)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Chain):
            return NotImplemented
        return (
            self.symbol == other.symbol
            and np.array_equal(self.expiry, other.expiry)
            and np.array_equal(self.is_call, other.is_call)
            and all(
                np.array_equal(getattr(self, n), getattr(other, n), equal_nan=True)
                for n in _FLOAT_COLUMNS
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def expiries(self) -> npt.NDArray[np.datetime64]:
        """The distinct expiries, sorted."""
        return np.unique(self.expiry)


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """One option leg of a position, per structure."""

    role: str  # e.g. short_put, long_put, short_call, long_call
    is_call: bool
    strike: float  # price
    expiry: date
    quantity: int  # signed contracts per structure: -1 short, +1 long
    entry_price: float | None = None  # price per share at entry
    mark: float | None = None  # price per share now (mid)
    delta: float | None = None  # per share, the option's own delta (puts negative)
    iv: float | None = None  # fraction

    def __post_init__(self) -> None:
        _plain_scalars(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """An open position: `quantity` structures, each made of `legs`."""

    id: str
    strategy: str  # e.g. iron_condor
    symbol: str
    opened_at: datetime
    quantity: int  # structures, > 0
    legs: tuple[Leg, ...] = ()
    entry_credit: float | None = None  # price per structure (1.85 = $185 per structure)
    mark: float | None = None  # price per structure: cost to close now
    pnl: float | None = None  # USD, whole position, unrealised
    pnl_pct_of_credit: float | None = None  # fraction of the credit received
    high_water_pnl_pct: float | None = None  # fraction: best pnl_pct_of_credit since entry
    max_loss: float | None = None  # USD, whole position (defined-risk structures)
    entry_regime: str | None = None  # one of REGIMES
    entry_iv: float | None = None  # fraction: underlying ATM IV at entry
    days_held: float | None = None  # days since opened_at
    dte: float | None = None  # days to the nearest leg expiry
    delta: float | None = None  # share-equivalents, whole position
    gamma: float | None = None  # share-equivalents per $1, whole position
    vega: float | None = None  # USD per vol point, whole position
    theta: float | None = None  # USD per calendar day, whole position
    adjustments: int = 0  # adjustments made so far

    def __post_init__(self) -> None:
        _plain_scalars(self)
        if self.quantity <= 0:
            raise ValueError(f"position {self.id}: quantity must be > 0, got {self.quantity}")
        _check_choice(self.entry_regime, REGIMES, "regime")
        object.__setattr__(self, "legs", tuple(self.legs))

    def leg(self, role: str) -> Leg | None:
        """The first leg with this role, or None."""
        return next((leg for leg in self.legs if leg.role == role), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class PortfolioState:
    """Account-wide values. The count mappings are read-only."""

    net_liq: float | None = None  # USD
    cash: float | None = None  # USD
    peak_net_liq: float | None = None  # USD, highest net liq seen
    day_pnl: float | None = None  # USD, since the previous close
    day_pnl_pct: float | None = None  # fraction of net liq
    drawdown_pct: float | None = None  # fraction >= 0 below peak_net_liq
    open_positions: int = 0
    positions_by_symbol: Mapping[str, int] = field(default_factory=frozen_map)
    positions_by_strategy: Mapping[str, int] = field(default_factory=frozen_map)
    bw_delta_spy: float | None = None  # SPY share-equivalents, beta-weighted
    delta: float | None = None  # share-equivalents
    gamma: float | None = None  # share-equivalents per $1
    vega: float | None = None  # USD per vol point
    theta: float | None = None  # USD per calendar day
    buying_power_used: float | None = None  # USD
    buying_power_available: float | None = None  # USD
    margin_used_pct: float | None = None  # fraction of net liq
    cluster_delta: float | None = None  # USD per 1% move of SPY, QQQ, IWM: correlation-adjusted

    def __post_init__(self) -> None:
        _plain_scalars(self)
        object.__setattr__(self, "positions_by_symbol", frozen_map(self.positions_by_symbol))
        object.__setattr__(self, "positions_by_strategy", frozen_map(self.positions_by_strategy))


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskState:
    """The trading state machine and the health signals the breakers read."""

    state: str = "ACTIVE"  # one of RISK_STATES
    breakers_tripped: tuple[str, ...] = ()
    entries_blocked: bool = False
    orders_rejected_today: int = 0
    data_age_seconds: float | None = None  # seconds since the last fresh quote
    broker_connected: bool = True

    def __post_init__(self) -> None:
        _plain_scalars(self)
        _check_choice(self.state, RISK_STATES, "risk state")
        object.__setattr__(self, "breakers_tripped", tuple(self.breakers_tripped))


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """One tick. `time` is tz-aware exchange time (America/New_York); mappings are read-only."""

    time: datetime
    market: MarketState
    underlyings: Mapping[str, UnderlyingState] = field(default_factory=frozen_map)
    chains: Mapping[str, Chain] = field(default_factory=frozen_map)
    positions: tuple[Position, ...] = ()
    portfolio: PortfolioState = field(default_factory=PortfolioState)
    risk: RiskState = field(default_factory=RiskState)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("snapshot time must be timezone-aware")
        object.__setattr__(self, "underlyings", frozen_map(self.underlyings))
        object.__setattr__(self, "chains", frozen_map(self.chains))
        object.__setattr__(self, "positions", tuple(self.positions))

    def underlying(self, symbol: str) -> UnderlyingState | None:
        return self.underlyings.get(symbol)

    def chain(self, symbol: str) -> Chain | None:
        return self.chains.get(symbol)
