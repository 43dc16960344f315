"""`v6 diff`: two rule set versions on one market, the decisions that differ and why."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from engine.paths import ROOT
from engine.runtime.diff import DiffSpec, diff_runs
from tests.runtime.conftest import END, START

runner = CliRunner()


def edited_v6(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the shipped v6 set with one text edit; returns its manifest."""
    for d in ("rules", "strategies", "risk_policies"):
        shutil.copytree(ROOT / d, tmp_path / d)
    path = tmp_path / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return tmp_path / "rules" / "v6.ruleset.yaml"


def test_a_rule_set_against_itself_differs_nowhere(store: Path, tmp_path: Path) -> None:
    res = diff_runs(DiffSpec("v6", "v6", START, END, store=store), tmp_path)
    assert res.ticks > 55 and res.differences == [] and res.pnl_a == res.pnl_b


def test_a_changed_parameter_shows_where_and_the_values(store: Path, tmp_path: Path) -> None:
    manifest = edited_v6(
        tmp_path,
        "rules/entries.v6",
        "param put_skew_min: ratio in [1.0, 2.0] = 1.10",
        "param put_skew_min: ratio in [1.0, 2.0] = 2.00",
    )
    args = ["diff", "--ruleset", "v6", "--ruleset", str(manifest), "--store", str(store),
            "--from", str(START), "--to", str(END)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "decisions differ, the first at" in out
    line = next(x for x in out.splitlines() if "pcs_entry on" in x)
    assert "A open put_credit_spread" in line and "B — (not fired)" in line
    # the condition that decided it, with both sides' values
    assert "underlying.skew_25d_ratio >= put_skew_min: A" in out
    assert "put_skew_min=2" in out
    assert re.search(r"P&L: A -?\$[\d,]+\.\d\d, B -?\$[\d,]+\.\d\d, B − A", out), out


def test_diff_needs_two_rule_sets(store: Path) -> None:
    result = runner.invoke(
        app, ["diff", "--ruleset", "v6", "--store", str(store), "--from", str(START),
              "--to", str(END)],
    )  # fmt: skip
    assert result.exit_code == 1 and "exactly twice" in result.output
