"""The `v6` command line: exit codes, messages and output formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_help_everywhere() -> None:
    for args in (
        [],
        ["check"],
        ["fmt"],
        ["test"],
        ["vocab"],
        ["explain"],
        ["demo"],
        ["bench", "dsl"],
        ["bench", "market"],
        ["bench", "dryrun"],
        ["dry-run"],
        ["report"],
        ["diff"],
        ["import-history"],
        ["synth-chain"],
        ["compact"],
    ):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output


def test_check_valid_sets() -> None:
    result = runner.invoke(
        app, ["check", "rules/v6.ruleset.yaml", "rules/baseline_v5/v5-baseline.ruleset.yaml"]
    )
    assert result.exit_code == 0, result.output
    assert "✔ v6:" in result.output and "✔ v5-baseline:" in result.output


def test_check_invalid_file_lists_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.v6"
    bad.write_text(
        "version 1\nrule a {\n  on entry\n  when underlying.iv_rnk > 50%\n"
        "  then open iron_condr\n}\n"
    )
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert "bad.v6:4:8: error V6E100: unknown name 'underlying.iv_rnk'" in result.output
    assert "bad.v6:5:8: error V6E105: unknown strategy 'iron_condr'" in result.output
    assert "did you mean 'iron_condor'?" in result.output
    assert "Traceback" not in result.output


def test_check_binary_garbage_is_a_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.v6"
    bad.write_bytes(b"version 1\n\xff\xfe\x00rule")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert "garbage.v6:2:1: error V6E001: file is not UTF-8 text" in result.output


def test_vocab_json() -> None:
    result = runner.invoke(app, ["vocab", "--json"])
    data = json.loads(result.output)
    fields = {f["path"]: f for f in data["fields"]}
    assert fields["underlying.iv_rank"]["unit"] == "percent"
    assert fields["position.pnl"]["scope"] == "position"
    assert data["enums"]["regime"] == ["crash", "high_vol", "normal", "low_vol"]
    assert {a["verb"] for a in data["actions"]} >= {
        "open",
        "close",
        "roll",
        "adjust",
        "hedge",
        "alert",
        "block_entries",
        "halt",
        "flatten",
    }


def test_explain_shows_values_for_fired_and_unfired_rules() -> None:
    result = runner.invoke(
        app, ["explain", "--rules", "v6", "--snapshot", "tests/snapshots/spy_ic_open.json"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "✔ dte_exit [exit] on IC-SPY-20240520: fired" in out
    assert "position.dte = 21d,  dte_exit = 21d" in out
    assert "✘ trailing_stop [exit] on IC-SPY-20240520: not fired" in out
    assert "position.high_water_pnl_pct >= trail_start ← first failing" in out


def test_explain_single_rule_and_json() -> None:
    result = runner.invoke(
        app,
        [
            "explain",
            "--rules",
            "v6",
            "--snapshot",
            "tests/snapshots/spy_stressed.json",
            "--rule",
            "vix_spike",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ruleset"]["name"] == "v6"
    assert any(
        d["rule_id"] == "vix_spike" and d["verb"] == "block_entries" for d in data["decisions"]
    )


def test_explain_unknown_rule_and_bad_snapshot(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "explain",
            "--rules",
            "v6",
            "--snapshot",
            "tests/snapshots/spy_calm.json",
            "--rule",
            "ic_entyr",
        ],
    )
    assert result.exit_code == 1 and "did you mean 'ic_entry'" in result.output
    snap = tmp_path / "s.yaml"
    snap.write_text(
        "format: v6-snapshot/1\ntime: 2024-01-02T10:00:00-05:00\nmarket: {sesion: regular}\n"
    )
    result = runner.invoke(app, ["explain", "--rules", "v6", "--snapshot", str(snap)])
    assert result.exit_code == 1
    assert (
        "s.yaml:3" in result.output
        and "V6E410" in result.output
        and "Traceback" not in result.output
    )


def test_unknown_ruleset() -> None:
    result = runner.invoke(
        app, ["explain", "--rules", "v7", "--snapshot", "tests/snapshots/spy_calm.json"]
    )
    assert result.exit_code == 1
    assert "no rule set named 'v7'" in result.output and "v5-baseline, v6" in result.output


def test_rule_tests_command() -> None:
    result = runner.invoke(app, ["test"])
    assert result.exit_code == 0, result.output
    assert "ok: 0 failing cases" in result.output and "condition coverage" in result.output


def test_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--from", "2019-01-01", "--to", "2019-06-30",
            "--no-progress"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "spy_stressed.json" in result.output and "daily_loss [breaker] halt" in result.output
    assert "embedded synthetic market (seed 6" in result.output
    assert (out / "market" / "daily_bars" / "_delta_log").is_dir()
    assert "Metrics, side by side" in result.output and "A: v6" in result.output
    assert "B: v5-baseline" in result.output and "mid − 25% of the spread" in result.output
    for name in ("v6", "v5-baseline"):
        run = out / "runs" / name
        assert json.loads((run / "run.json").read_text())["status"] == "complete"
        assert (run / "report" / "equity.png").stat().st_size > 10_000
        assert len((run / "equity.csv").read_text().splitlines()) == 1 + 124  # 124 sessions
    again = runner.invoke(app, args)  # the demo replaces its own folder
    assert again.exit_code == 0, again.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    refused = runner.invoke(app, ["demo", "--out", str(foreign), "--no-progress"])
    assert refused.exit_code == 1 and "not made by `v6 demo`" in refused.output
    assert (foreign / "notes.txt").read_text() == "keep"


def test_compact_command(tmp_path: Path) -> None:
    from engine.bench.recording import synthetic_ticks
    from engine.feeds.recording import Recorder, RecordingFeed, table_path

    snaps = list(synthetic_ticks(12, 10))
    with Recorder(tmp_path / "rec", batch_ticks=3) as recorder:
        for snap in snaps:
            recorder.record(snap)
    result = runner.invoke(app, ["compact", str(table_path(tmp_path / "rec"))])
    assert result.exit_code == 0, result.output
    assert "4 files" in result.output and "-> 1 files" in result.output
    assert list(RecordingFeed(tmp_path / "rec").ticks()) == snaps
    bad = runner.invoke(app, ["compact", str(tmp_path)])
    assert bad.exit_code == 1 and "not a Delta table" in bad.output
