"""Shared helpers for the rule-language tests: snapshots built from the dataclasses, inline rules.

Snapshots are built directly from engine.state.snapshot (not snapshot_io), and inline rule text
is written to tmp_path and loaded with the shared strategy library, exactly as `v6 check` would.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.dsl.errors import DslError
from engine.dsl.ruleset import RuleSet, load, loose_manifest
from engine.state.snapshot import (
    FutureQuote,
    Leg,
    MarketState,
    PortfolioState,
    Position,
    RiskState,
    Snapshot,
    UnderlyingState,
)

T0 = datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
EXPIRY = date(2024, 6, 14)

MakeSnap = Callable[..., Snapshot]
CompileRules = Callable[..., RuleSet]


def _leg(spec: Mapping[str, Any]) -> Leg:
    base: dict[str, Any] = {"is_call": "call" in spec["role"], "expiry": EXPIRY,
                            "quantity": -1 if spec["role"].startswith("short") else 1}
    return Leg(**{**base, **spec})


def _position(spec: Mapping[str, Any]) -> Position:
    base: dict[str, Any] = {"strategy": "iron_condor", "symbol": "SPY", "opened_at": T0,
                            "quantity": 1}
    legs = tuple(_leg(lg) for lg in spec.get("legs", ()))
    return Position(**{**base, **spec, "legs": legs})


def make_snapshot(
    market: Mapping[str, Any] | None = None,
    underlyings: Mapping[str, Mapping[str, Any]] | None = None,
    positions: list[Mapping[str, Any]] | None = None,
    portfolio: Mapping[str, Any] | None = None,
    risk: Mapping[str, Any] | None = None,
    time: datetime = T0,
) -> Snapshot:
    """A small snapshot: `market` fields (session defaults to regular), underlyings by symbol,
    positions as dicts of Position fields (legs as dicts of Leg fields), portfolio and risk."""
    m = dict(market or {})
    futures = {s: FutureQuote(symbol=s, **q) for s, q in m.pop("futures", {}).items()}
    return Snapshot(
        time=time,
        market=MarketState(**{"session": "regular", **m}, futures=futures),
        underlyings={s: UnderlyingState(symbol=s, **u) for s, u in (underlyings or {}).items()},
        positions=tuple(_position(p) for p in positions or ()),
        portfolio=PortfolioState(**(portfolio or {})),
        risk=RiskState(**(risk or {})),
    )


def realistic_snapshot(regime: str | None = None) -> Snapshot:
    """A calm-ish tick: three index ETFs, an iron condor near its profit target, a tested
    put credit spread, and a portfolio inside its limits."""
    ic_legs = [
        {"role": "short_put", "strike": 480.0, "delta": -0.12, "iv": 0.16, "mark": 0.55},
        {"role": "long_put", "strike": 475.0, "delta": -0.08, "iv": 0.17, "mark": 0.35},
        {"role": "short_call", "strike": 535.0, "delta": 0.10, "iv": 0.12, "mark": 0.40},
        {"role": "long_call", "strike": 540.0, "delta": 0.06, "iv": 0.12, "mark": 0.22},
    ]
    pcs_legs = [
        {"role": "short_put", "strike": 430.0, "delta": -0.38, "iv": 0.22, "mark": 3.10},
        {"role": "long_put", "strike": 425.0, "delta": -0.30, "iv": 0.23, "mark": 2.05},
    ]
    return make_snapshot(
        market={"regime": regime, "vix": 15.2, "vix9d": 14.1, "vix3m": 17.0, "vvix": 88.0,
                "skew_index": 142.0, "vix_change_pct": 0.03,
                "futures": {"ES": {"price": 5120.0, "change_pct": 0.004}}},
        underlyings={
            "SPY": {"price": 510.0, "change_pct": 0.004, "iv_rank": 0.35, "atm_iv": 0.14,
                    "realized_vol_20d": 0.11, "skew_25d_ratio": 1.18, "beta": 1.0},
            "QQQ": {"price": 438.0, "change_pct": -0.006, "iv_rank": 0.22, "atm_iv": 0.19,
                    "realized_vol_20d": 0.17, "skew_25d_ratio": 1.05, "beta": 1.2},
            "IWM": {"price": 201.0, "change_pct": 0.001, "iv_rank": None, "atm_iv": 0.21,
                    "realized_vol_20d": 0.18, "skew_25d_ratio": 1.22, "beta": 1.1},
        },
        positions=[
            {"id": "P1", "symbol": "SPY", "legs": ic_legs, "entry_credit": 1.60, "mark": 0.72,
             "pnl": 88.0, "pnl_pct_of_credit": 0.55, "high_water_pnl_pct": 0.58,
             "max_loss": 340.0, "entry_regime": "normal", "entry_iv": 0.15, "days_held": 12.0,
             "dte": 33.0, "delta": -2.0, "vega": -25.0, "theta": 6.0},
            {"id": "P2", "strategy": "put_credit_spread", "symbol": "QQQ", "legs": pcs_legs,
             "entry_credit": 1.10, "mark": 1.05, "pnl": 5.0, "pnl_pct_of_credit": 0.045,
             "high_water_pnl_pct": 0.20, "max_loss": 390.0, "entry_regime": "normal",
             "entry_iv": 0.18, "days_held": 8.0, "dte": 37.0, "delta": 8.0, "vega": -12.0},
        ],
        portfolio={"net_liq": 100_000.0, "cash": 60_000.0, "peak_net_liq": 104_000.0,
                   "day_pnl": 350.0, "day_pnl_pct": 0.0035, "drawdown_pct": 0.0385,
                   "open_positions": 2, "bw_delta_spy": 11.6, "delta": 6.0, "vega": -37.0,
                   "theta": 6.0, "margin_used_pct": 0.62,
                   "cluster_delta": 640.0},
        risk={"data_age_seconds": 2.0},
    )


@pytest.fixture
def make_snap() -> MakeSnap:
    return make_snapshot


def rule_text(text: str) -> str:
    """Dedent, and add the `version 1` header unless the text has one."""
    text = textwrap.dedent(text).lstrip("\n")
    return text if text.startswith("version") else "version 1\n" + text


@pytest.fixture
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, so locations read `x.v6:line:col`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def compile_files(rules_dir: Path) -> Callable[[dict[str, str]], RuleSet]:
    """Several inline files (name -> text), loaded together with strategies/."""

    def go(files: dict[str, str]) -> RuleSet:
        paths = []
        for name, text in files.items():
            p = rules_dir / name
            p.write_text(rule_text(text), encoding="utf-8")
            paths.append(p)
        return load(loose_manifest(paths))

    return go


@pytest.fixture
def compile_rules(compile_files: Callable[[dict[str, str]], RuleSet]) -> CompileRules:
    """Inline rule text -> RuleSet, via tmp_path/x.v6 and engine.dsl.ruleset.load."""

    def go(text: str, name: str = "x.v6") -> RuleSet:
        return compile_files({name: text})

    return go


@pytest.fixture
def rule_errors(compile_files: Callable[[dict[str, str]], RuleSet]) -> Callable[..., DslError]:
    """Inline rule text (or several files) that must fail to load: the DslError raised."""

    def go(text: str | dict[str, str]) -> DslError:
        files = text if isinstance(text, dict) else {"x.v6": text}
        with pytest.raises(DslError) as info:
            compile_files(files)
        return info.value

    return go
