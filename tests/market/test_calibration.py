"""Calibration against the real chains: errors within the targets, the fit, the report."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from engine.feeds.cboe_chains import OptionChain
from engine.market.calibration import (
    FIT_FIELDS,
    REAL_DAYS,
    RealDay,
    Row,
    compare_day,
    fit_data,
    fit_error,
    fit_surface,
    load_days,
    main,
    markdown_table,
    nelder_mead,
    real_smiles,
)
from engine.market.surface import DEFAULT

ATM_TARGET = 1.5  # vol points, ~30-day expiry (the "normal day" targets)
WING_25D_TARGET = 2.5


@pytest.fixture(scope="module")
def days(shared_data: Path) -> list[tuple[RealDay, OptionChain]]:
    return load_days(shared_data)


@pytest.fixture(scope="module")
def rows(days: list[tuple[RealDay, OptionChain]]) -> list[Row]:
    return [r for d, c in days for r in compare_day(d, c)]


def test_every_chain_has_a_30_day_row(rows: list[Row]) -> None:
    thirty = [r for r in rows if r.label == "30d"]
    assert len(thirty) == len(REAL_DAYS)
    assert all(20 <= r.dte <= 40 for r in thirty)


def test_30_day_iv_errors_within_targets(rows: list[Row]) -> None:
    for r in (r for r in rows if r.label == "30d"):
        assert abs(r.synth["atm"] - r.real["atm"]) <= ATM_TARGET, r
        for key in ("p25", "c25"):
            assert abs(r.synth[key] - r.real[key]) <= WING_25D_TARGET, (key, r)


def test_short_and_long_expiries_stay_close(rows: list[Row]) -> None:
    # Not a target of the issue; a guard that nothing degrades badly away from 30 days.
    for r in rows:
        errs = [r.synth[k] - r.real[k] for k in ("atm", "p25", "c25", "p10", "c10")]
        assert all(abs(e) <= 2.5 for e in errs), r


def test_bid_ask_widths_are_realistic(rows: list[Row]) -> None:
    for r in rows:
        assert 0.5 <= r.width_synth / r.width_real <= 2.0, r


def test_real_smiles_are_consistent(days: list[tuple[RealDay, OptionChain]]) -> None:
    day, chain = days[0]
    smiles = real_smiles(day, chain)
    assert len(smiles) > 20
    for s in smiles:
        assert abs(s.forward / day.close - 1) < 0.1
        assert np.all(np.diff(s.log_moneyness) > 0)
        assert np.all((s.iv > 0.02) & (s.iv < 2.0))
        assert s.log_moneyness[0] <= 0 <= s.log_moneyness[-1]


def test_defaults_are_the_fitted_constants(days: list[tuple[RealDay, OptionChain]]) -> None:
    data = [fit_data(d, real_smiles(d, c)) for d, c in days]
    # Refitting from a perturbed start lands back on the shipped defaults.
    start = replace(DEFAULT, atm_to_vix=0.85, smile_amplitude=0.8, smile_rho=-0.5)
    fitted = fit_surface(data, start)
    for name in FIT_FIELDS:
        assert getattr(fitted, name) == pytest.approx(getattr(DEFAULT, name), abs=0.01), name
    assert fit_error(DEFAULT, data) < 0.7  # vol points RMS, 7-100-day expiries
    assert fit_error(DEFAULT, data) <= fit_error(start, data)


def test_nelder_mead_finds_a_quadratic_minimum() -> None:
    target = np.array([1.0, -2.0, 0.5])
    best = nelder_mead(lambda x: float(np.sum((x - target) ** 2)), np.zeros(3), tol=1e-14)
    np.testing.assert_allclose(best, target, atol=1e-5)


def test_markdown_table_layout() -> None:
    metrics = {"atm": 10.0, "p25": 12.0, "c25": 9.0, "p10": 15.0, "c10": math.nan}
    row = Row("spy_x", "30d", date(2023, 10, 13), 29, metrics, metrics, 0.013, 0.011)
    lines = markdown_table([row]).splitlines()
    assert len(lines) == 3
    assert all(line.count("|") == 16 for line in lines)
    assert "| spy_x | 2023-10-13 | 29 | 10.00 | +0.00 |" in lines[2]
    assert "| – |" in lines[2] and lines[2].endswith("| 1.3% | 1.1% |")


def test_main_without_data_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(tmp_path)]) == 2
    assert str(tmp_path / "option_chains") in capsys.readouterr().err
