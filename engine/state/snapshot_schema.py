"""The v6-snapshot/1 document schema: pydantic models that check a snapshot file's content."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.state import snapshot_values as v
from engine.state.snapshot import REGIMES, RISK_STATES, SESSIONS

FORMAT = "v6-snapshot/1"
_RANK_HINT = "plain numbers are fractions: write 42% (or 0.42) for forty-two percent"


def _format(value: object) -> str:
    if value != FORMAT:
        v.fail(f"unknown snapshot format {value!r}", f"this engine reads format: {FORMAT}")
    return FORMAT


Num = Annotated[float | None, BeforeValidator(v.number)]
NonNeg = Annotated[float | None, BeforeValidator(v.bounded(v.number, 0))]
Pct = Annotated[float | None, BeforeValidator(v.percent)]
NonNegPct = Annotated[float | None, BeforeValidator(v.bounded(v.percent, 0))]
Rank = Annotated[float | None, BeforeValidator(v.bounded(v.percent, 0, 1, hint=_RANK_HINT))]
Usd = Annotated[float | None, BeforeValidator(v.money)]
Price = Annotated[float | None, BeforeValidator(v.bounded(v.money, 0))]
_strike = v.bounded(v.money, 0, lo_open=True)
Strike = Annotated[float, BeforeValidator(_strike)]
Time = Annotated[datetime, BeforeValidator(v.as_datetime)]
Day = Annotated[date, BeforeValidator(v.as_date)]
Right = Annotated[bool, BeforeValidator(v.right)]
Name = Annotated[str, BeforeValidator(v.name)]
Count = Annotated[int, Strict(), Field(ge=0)]
Session = Annotated[str, BeforeValidator(v.choice(SESSIONS, "session"))]
Regime = Annotated[str, BeforeValidator(v.choice(REGIMES, "regime"))]
RiskName = Annotated[str, BeforeValidator(v.choice(RISK_STATES, "risk state", upper=True))]

CellNum = Annotated[float, BeforeValidator(v.chain_cell(v.number))]
CellPrice = Annotated[float, BeforeValidator(v.chain_cell(v.money, 0))]
CellCount = Annotated[float, BeforeValidator(v.chain_cell(v.number, 0))]
CellIv = Annotated[float, BeforeValidator(v.chain_cell(v.percent, 0))]
CellStrike = Annotated[float, BeforeValidator(v.chain_cell(_strike, required=True))]
CellExpiry = Annotated[date, BeforeValidator(v.as_date)]


def _or_empty(empty: Any) -> BeforeValidator:
    return BeforeValidator(lambda value: v.empty_if_null(value, empty))


def _raise(title: str, errors: list[InitErrorDetails]) -> None:
    # A ValidationError raised in an after-validator is merged, with its locs prefixed.
    if errors:
        raise PydanticValidationError.from_exception_data(title, errors)


def _error(
    loc: tuple[str | int, ...], value: object, message: str, hint: str | None = None
) -> InitErrorDetails:
    ctx: dict[str, Any] = {"message": message}
    if hint:
        ctx["hint"] = hint
    return InitErrorDetails(
        type=PydanticCustomError(v.ERROR_TYPE, "{message}", ctx), loc=loc, input=value
    )


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FutureDoc(_Doc):
    price: Usd = None
    change_pct: Pct = None


class MarketDoc(_Doc):
    session: Session
    regime: Regime | None = None
    vix: NonNeg = None
    vix9d: NonNeg = None
    vix3m: NonNeg = None
    vvix: NonNeg = None
    skew_index: NonNeg = None
    vix_change_pct: Pct = None
    futures: Annotated[dict[str, FutureDoc], _or_empty({})] = {}


class UnderlyingDoc(_Doc):
    price: Price = None
    bid: Price = None
    ask: Price = None
    open: Price = None
    high: Price = None
    low: Price = None
    prev_close: Price = None
    change_pct: Pct = None
    dividend_yield: Pct = None
    iv_rank: Rank = None
    iv_percentile: Rank = None
    atm_iv: NonNegPct = None
    iv_30d: NonNegPct = None
    skew_25d_ratio: NonNeg = None
    risk_reversal_25d: Pct = None
    skew_slope: Num = None
    term_slope: NonNeg = None
    realized_vol_20d: NonNegPct = None
    beta: Num = None

    @field_validator("ask", mode="after")
    @classmethod
    def _not_crossed(cls, ask: float | None, info: ValidationInfo) -> float | None:
        bid = info.data.get("bid")
        if ask is not None and bid is not None and bid > ask:
            _raise("ask", [_error((), ask, f"crossed quote: bid {bid:g} > ask {ask:g}")])
        return ask

    @field_validator("low", mode="after")
    @classmethod
    def _range(cls, low: float | None, info: ValidationInfo) -> float | None:
        high = info.data.get("high")
        if low is not None and high is not None and low > high:
            _raise("low", [_error((), low, f"low {low:g} is above high {high:g}")])
        return low


class ChainDoc(_Doc):
    # Validated in this order: strike first, so every later column can be checked against it
    # even when another column has errors of its own.
    strike: list[CellStrike]
    expiry: list[CellExpiry]
    right: list[Right]
    bid: list[CellPrice] | None = None
    ask: list[CellPrice] | None = None
    last: list[CellPrice] | None = None
    volume: list[CellCount] | None = None
    open_interest: list[CellCount] | None = None
    iv: list[CellIv] | None = None
    delta: list[CellNum] | None = None
    gamma: list[CellNum] | None = None
    vega: list[CellNum] | None = None
    theta: list[CellNum] | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _one_entry_per_row(cls, values: list[Any] | None, info: ValidationInfo) -> Any:
        strikes = info.data.get("strike")
        if values is not None and strikes is not None and len(values) != len(strikes):
            col, n = info.field_name, len(strikes)
            msg = f"column '{col}' has {len(values)} entries but 'strike' has {n}"
            v.fail(msg, "every column of a chain has one entry per contract")
        return values

    @field_validator("ask", mode="after")
    @classmethod
    def _not_crossed(cls, asks: list[float] | None, info: ValidationInfo) -> list[float] | None:
        bids = info.data.get("bid")
        if asks is not None and bids is not None:
            _raise(
                "ask",
                [
                    _error((i,), a, f"crossed quote: bid {b:g} > ask {a:g}")
                    for i, (b, a) in enumerate(zip(bids, asks, strict=False))
                    if b > a  # NaN compares False: a missing side is never "crossed"
                ],
            )
        return asks


class LegDoc(_Doc):
    role: Name
    right: Right
    strike: Strike
    expiry: Day
    quantity: Annotated[int, Strict()]
    entry_price: Price = None
    mark: Price = None
    delta: Num = None
    iv: NonNegPct = None

    @model_validator(mode="after")
    def _nonzero(self) -> LegDoc:
        if self.quantity == 0:
            _raise(
                "leg",
                [
                    _error(
                        ("quantity",),
                        0,
                        "a leg's quantity is never 0",
                        "-1 for a short leg, +1 for a long leg",
                    )
                ],
            )
        return self


class PositionDoc(_Doc):
    id: Name
    strategy: Name
    symbol: Name
    opened_at: Time
    quantity: Annotated[int, Strict(), Field(gt=0)]
    legs: Annotated[list[LegDoc], Field(min_length=1)]
    entry_credit: Usd = None
    mark: Usd = None
    pnl: Usd = None
    pnl_pct_of_credit: Pct = None
    high_water_pnl_pct: Pct = None
    max_loss: Usd = None
    entry_regime: Regime | None = None
    entry_iv: NonNegPct = None
    days_held: NonNeg = None
    dte: Num = None
    delta: Num = None
    gamma: Num = None
    vega: Usd = None
    theta: Usd = None
    adjustments: Count = 0


class PortfolioDoc(_Doc):
    net_liq: Usd = None
    cash: Usd = None
    peak_net_liq: Usd = None
    day_pnl: Usd = None
    day_pnl_pct: Pct = None
    drawdown_pct: NonNegPct = None
    open_positions: Count | None = None
    positions_by_symbol: dict[str, Count] | None = None
    positions_by_strategy: dict[str, Count] | None = None
    bw_delta_spy: Num = None
    delta: Num = None
    gamma: Num = None
    vega: Usd = None
    theta: Usd = None
    buying_power_used: Usd = None
    buying_power_available: Usd = None
    margin_used_pct: NonNegPct = None
    cluster_delta: Usd = None


class RiskDoc(_Doc):
    state: RiskName = "ACTIVE"
    breakers_tripped: Annotated[list[Name], _or_empty([])] = []
    entries_blocked: Annotated[bool, Strict()] = False
    orders_rejected_today: Count = 0
    data_age_seconds: NonNeg = None
    broker_connected: Annotated[bool, Strict()] = True


class SnapshotDoc(_Doc):
    format: Annotated[str, BeforeValidator(_format)]
    time: Time
    market: MarketDoc
    underlyings: Annotated[dict[str, UnderlyingDoc], _or_empty({})] = {}
    chains: Annotated[dict[str, ChainDoc], _or_empty({})] = {}
    positions: Annotated[list[PositionDoc], _or_empty([])] = []
    portfolio: Annotated[PortfolioDoc, _or_empty({})] = PortfolioDoc()
    risk: Annotated[RiskDoc, _or_empty({})] = RiskDoc()

    @model_validator(mode="after")
    def _positions(self) -> SnapshotDoc:
        errors: list[InitErrorDetails] = []
        seen: set[str] = set()
        for i, p in enumerate(self.positions):
            if p.id in seen:
                errors.append(
                    _error(("positions", i, "id"), p.id, f"duplicate position id {p.id!r}")
                )
            seen.add(p.id)
            if p.opened_at.timestamp() > self.time.timestamp():
                errors.append(
                    _error(
                        ("positions", i, "opened_at"),
                        str(p.opened_at),
                        "position opened after the snapshot time",
                    )
                )
        _raise("snapshot", errors)
        return self
