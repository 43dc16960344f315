"""Strategy structures choose legs from a chain by delta, strike offset and DTE window."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.strategy import select_legs
from engine.state.snapshot import Snapshot
from engine.state.snapshot_io import load_snapshot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rs() -> RuleSet:
    return load_ruleset("v6")


@pytest.fixture(scope="module")
def calm() -> Snapshot:
    return load_snapshot(ROOT / "tests" / "snapshots" / "spy_calm.json")


def test_iron_condor_legs_by_delta_and_width(rs: RuleSet, calm: Snapshot) -> None:
    chain = calm.chains["SPY"]
    sel = select_legs(
        rs.strategies["iron_condor"],
        {"short_delta": 0.16, "wing_width": 5.0},
        chain,
        calm.time.date(),
    )
    assert sel.ok, sel.reason
    legs = {lg.name: lg for lg in sel.legs}
    assert set(legs) == {"short_put", "long_put", "short_call", "long_call"}
    assert legs["short_put"].strike - legs["long_put"].strike == 5.0
    assert legs["long_call"].strike - legs["short_call"].strike == 5.0
    # The short put is the listed put of that expiry whose delta is nearest -0.16.
    expiry = np.datetime64(legs["short_put"].expiry, "D")
    puts = (chain.expiry == expiry) & ~chain.is_call
    best = np.min(np.abs(chain.delta[puts] + 0.16))
    assert abs(legs["short_put"].delta + 0.16) == pytest.approx(best)
    assert legs["short_call"].delta == pytest.approx(0.16, abs=0.05)
    assert len({lg.expiry for lg in sel.legs}) == 1
    assert sel.credit > 0


def test_arguments_override_defaults(rs: RuleSet, calm: Snapshot) -> None:
    info = rs.strategies["put_credit_spread"]
    wide = select_legs(info, {"wing_width": 10.0}, calm.chains["SPY"], calm.time.date())
    narrow = select_legs(info, {"wing_width": 5.0}, calm.chains["SPY"], calm.time.date())
    width = {s: s.legs[0].strike - s.legs[1].strike for s in (wide, narrow)}
    assert width[wide] == 10.0 and width[narrow] == 5.0


def test_no_expiry_in_window_is_a_reason_not_an_error(rs: RuleSet, calm: Snapshot) -> None:
    sel = select_legs(
        rs.strategies["iron_condor"], {"dte": 120.0}, calm.chains["SPY"], calm.time.date()
    )
    assert not sel.ok
    assert sel.reason is not None and "no expiry within 14d of 120d" in sel.reason


def test_missing_chain(rs: RuleSet) -> None:
    sel = select_legs(rs.strategies["iron_condor"], {}, None, date(2024, 1, 2))
    assert sel.reason == "no option chain"


def test_negative_priority_keeps_its_sign(tmp_path: Path) -> None:
    # Regression: the grammar once dropped the '-' of `priority -5`.
    from engine.dsl.build import build
    from engine.dsl.parser import decode_source

    text = b"version 1\nrule a {\n  on exit\n  priority -5\n  then close\n}\n"
    rf = build(decode_source("p.v6", text))
    assert rf.blocks[0].priority == -5
