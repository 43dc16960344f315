"""Checked snapshot documents to Snapshot objects (filling derived fields) and back to JSON data."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import fields
from datetime import date, datetime
from typing import Any

import numpy as np

from engine.state.snapshot import (
    CONTRACT_MULTIPLIER,
    OPTIONAL_CHAIN_COLUMNS,
    Chain,
    FutureQuote,
    Leg,
    MarketState,
    PortfolioState,
    Position,
    RiskState,
    Snapshot,
    UnderlyingState,
)
from engine.state.snapshot_schema import (
    FORMAT,
    ChainDoc,
    LegDoc,
    PortfolioDoc,
    PositionDoc,
    SnapshotDoc,
)


def _scalars(model: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f: getattr(model, f) for f in type(model).model_fields if f not in skip}


def _chain(symbol: str, doc: ChainDoc) -> Chain:
    optional = {c: getattr(doc, c) for c in OPTIONAL_CHAIN_COLUMNS}
    return Chain.from_columns(
        symbol,
        np.array([d.isoformat() for d in doc.expiry], dtype="datetime64[D]"),
        doc.strike,
        doc.right,
        **optional,
    )


def _leg(doc: LegDoc) -> Leg:
    return Leg(is_call=doc.right, **_scalars(doc, skip=("right",)))


def _position(doc: PositionDoc, now: datetime) -> Position:
    legs = tuple(_leg(leg) for leg in doc.legs)
    values = _scalars(doc, skip=("legs",))
    if doc.dte is None:
        values["dte"] = float((min(leg.expiry for leg in legs) - now.date()).days)
    if doc.days_held is None:
        # Timestamps, not datetime subtraction: same-zone subtraction ignores DST changes.
        values["days_held"] = (now.timestamp() - doc.opened_at.timestamp()) / 86400
    credit, size = doc.entry_credit, CONTRACT_MULTIPLIER * doc.quantity
    pnl = doc.pnl
    if pnl is None and credit is not None and doc.mark is not None:
        pnl = values["pnl"] = (credit - doc.mark) * size
    if doc.pnl_pct_of_credit is None and pnl is not None and credit:
        # abs(): for a debit structure this is the P&L as a share of the debit paid.
        values["pnl_pct_of_credit"] = pnl / (abs(credit) * size)
    return Position(legs=legs, **values)


def _portfolio(doc: PortfolioDoc, positions: tuple[Position, ...]) -> PortfolioState:
    values = _scalars(doc)
    if doc.open_positions is None:
        values["open_positions"] = len(positions)
    if doc.positions_by_symbol is None:
        values["positions_by_symbol"] = dict(Counter(p.symbol for p in positions))
    if doc.positions_by_strategy is None:
        values["positions_by_strategy"] = dict(Counter(p.strategy for p in positions))
    net, peak = doc.net_liq, doc.peak_net_liq
    if doc.drawdown_pct is None and net is not None and peak is not None and peak > 0:
        values["drawdown_pct"] = max(0.0, 1 - net / peak)
    return PortfolioState(**values)


def to_snapshot(doc: SnapshotDoc) -> Snapshot:
    """The Snapshot a checked document describes, with derived fields filled where absent."""
    market = doc.market
    futures = {k: FutureQuote(symbol=k, **_scalars(f)) for k, f in market.futures.items()}
    positions = tuple(_position(p, doc.time) for p in doc.positions)
    return Snapshot(
        time=doc.time,
        market=MarketState(futures=futures, **_scalars(market, skip=("futures",))),
        underlyings={
            k: UnderlyingState(symbol=k, **_scalars(u)) for k, u in doc.underlyings.items()
        },
        chains={k: _chain(k, c) for k, c in doc.chains.items()},
        positions=positions,
        portfolio=_portfolio(doc.portfolio, positions),
        risk=RiskState(
            **_scalars(doc.risk, skip=("breakers_tripped",)),
            breakers_tripped=tuple(doc.risk.breakers_tripped),
        ),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple):
        return [_plain(x) for x in value]
    if hasattr(value, "keys"):
        return {k: _plain(x) for k, x in value.items()}
    return value


def _fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if f.name not in skip}


def _right(is_call: bool) -> str:
    return "C" if is_call else "P"


def _chain_document(chain: Chain) -> dict[str, Any]:
    out: dict[str, Any] = {
        "expiry": [str(d) for d in chain.expiry],
        "strike": chain.strike.tolist(),
        "right": [_right(bool(c)) for c in chain.is_call],
    }
    for col in OPTIONAL_CHAIN_COLUMNS:
        out[col] = [None if math.isnan(x) else x for x in getattr(chain, col).tolist()]
    return out


def _position_document(p: Position) -> dict[str, Any]:
    legs = [{"right": _right(leg.is_call), **_fields(leg, skip=("is_call",))} for leg in p.legs]
    return {**_fields(p, skip=("legs",)), "legs": legs}


def snapshot_to_document(snap: Snapshot) -> dict[str, Any]:
    """JSON-able data in the v6-snapshot/1 format: fractions for percentages, ISO times."""
    m = snap.market
    return {
        "format": FORMAT,
        "time": snap.time.isoformat(),
        "market": {
            **_fields(m, skip=("futures",)),
            "futures": {k: _fields(f, skip=("symbol",)) for k, f in m.futures.items()},
        },
        "underlyings": {k: _fields(u, skip=("symbol",)) for k, u in snap.underlyings.items()},
        "chains": {k: _chain_document(c) for k, c in snap.chains.items()},
        "positions": [_position_document(p) for p in snap.positions],
        "portfolio": _fields(snap.portfolio),
        "risk": _fields(snap.risk),
    }
