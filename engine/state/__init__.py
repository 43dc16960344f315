"""The immutable market/position Snapshot and its v6-snapshot/1 file format."""

from engine.state.snapshot import (
    REGIMES,
    RISK_STATES,
    SESSIONS,
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
from engine.state.snapshot_io import (
    load_document,
    load_snapshot,
    snapshot_from_document,
    snapshot_to_document,
    with_overrides,
)

__all__ = [
    "REGIMES",
    "RISK_STATES",
    "SESSIONS",
    "Chain",
    "FutureQuote",
    "Leg",
    "MarketState",
    "PortfolioState",
    "Position",
    "RiskState",
    "Snapshot",
    "UnderlyingState",
    "load_document",
    "load_snapshot",
    "snapshot_from_document",
    "snapshot_to_document",
    "with_overrides",
]
