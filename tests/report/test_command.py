"""run_report: files written, one JSON object on stdout with --json, tables otherwise, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from engine.report.command import ReportOptionError, run_report
from engine.report.run_data import RunDataError

from .conftest import Trade, weekdays

DAYS = weekdays(date(2016, 12, 26), 10)
EQUITY = [100_000.0, 100_800, 99_700, 99_100, 101_300, 102_000, 101_000, 103_500, 104_100, 105_000]
OTHER = [100_000.0, 100_300, 100_100, 100_600, 101_000, 101_400, 101_200, 102_000, 102_500, 103_000]
TRADES = [Trade("p1", DAYS[0], DAYS[4], 310.0), Trade("p2", DAYS[5], DAYS[8], -120.0)]


class Echo:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> None:
        self.calls.append(text)


def test_json_prints_one_object_and_writes_metrics_json(make_run: Callable[..., Path]) -> None:
    run = make_run("a", days=DAYS, equity=EQUITY, trades=TRADES)
    echo = Echo()
    result = run_report(run, as_json=True, echo=echo, charts=False)
    assert len(echo.calls) == 1  # nothing else on stdout
    printed = json.loads(echo.calls[0])
    assert printed == json.loads(json.dumps(result))
    assert printed["total_return"] == pytest.approx(0.05)
    assert printed["trades"] == 2 and printed["win_rate"] == 0.5
    assert printed["max_drawdown"] == pytest.approx(99_100 / 100_800 - 1)
    assert printed["max_drawdown_peak"] == "2016-12-27"
    assert printed["files"] == [str(run / "report" / "metrics.json")]
    written = json.loads((run / "report" / "metrics.json").read_text())
    assert written == {k: v for k, v in printed.items() if k != "files"}
    assert sorted(p.name for p in (run / "report").iterdir()) == ["metrics.json"]


def test_metrics_recompute_from_equity_csv(make_run: Callable[..., Path]) -> None:
    """Anyone can recompute the headline figures from equity.csv alone."""
    run = make_run("a", days=DAYS, equity=EQUITY)
    result = run_report(run, as_json=True, echo=Echo(), charts=False)
    rows = (run / "equity.csv").read_text().splitlines()[1:]
    values = [float(r.split(",")[1]) for r in rows]
    assert result["total_return"] == pytest.approx(values[-1] / values[0] - 1)
    assert result["cagr"] == pytest.approx((values[-1] / values[0]) ** (252 / 9) - 1)


def test_text_report_with_vs_and_charts(make_run: Callable[..., Path]) -> None:
    a = make_run("a", days=DAYS, equity=EQUITY, trades=TRADES)
    b = make_run("b", days=DAYS, equity=OTHER, status="partial")
    echo = Echo()
    result = run_report(a, vs=b, echo=echo, split_at=date(2017, 1, 1))
    text = "\n".join(echo.calls)
    assert "Metrics, side by side" in text and "⚠ warning" in text
    assert "b: run is partial" in text
    assert echo.calls[-1].startswith(f"report files in {a / 'report'}: metrics.json, equity.html")
    names = sorted(p.name for p in (a / "report").iterdir())
    assert names == ["drawdown.html", "drawdown.png", "equity.html", "equity.png", "metrics.json"]
    assert not (b / "report").exists()  # the compared run is only read
    assert "B: b" in (a / "report" / "equity.html").read_text(encoding="utf-8")
    assert result["vs"]["status"] == "partial"
    assert result["diff"]["total_return"] == pytest.approx(0.03 - 0.05)
    # metrics.json is the run's own report, whatever --vs says
    own = json.loads((a / "report" / "metrics.json").read_text())
    assert "vs" not in own and own["split"]["at"] == "2017-01-01"


def test_reporting_twice_replaces_the_files(make_run: Callable[..., Path]) -> None:
    run = make_run("a", days=DAYS, equity=EQUITY)
    run_report(run, as_json=True, echo=Echo(), charts=False)
    first = (run / "report" / "metrics.json").read_text()
    run_report(run, as_json=True, echo=Echo(), charts=False)
    assert (run / "report" / "metrics.json").read_text() == first  # deterministic


def test_a_run_without_days_reports_nothing_undefined(make_run: Callable[..., Path]) -> None:
    run = make_run("a", days=[], equity=[], status="running")
    echo = Echo()
    result = run_report(run, as_json=True, echo=echo)  # charts on: nothing to draw, no error
    assert result["total_return"] is None and result["sharpe"] is None
    assert result["files"] == [str(run / "report" / "metrics.json")]
    assert result["warnings"] == ["run is running: its results are incomplete"]


def test_user_errors_come_before_any_file(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    with pytest.raises(RunDataError, match="no run folder"):
        run_report(tmp_path / "missing", echo=Echo())
    run = make_run("a", days=DAYS, equity=EQUITY)
    with pytest.raises(RunDataError, match="no run folder"):
        run_report(run, vs=tmp_path / "missing", echo=Echo())
    with pytest.raises(ReportOptionError, match=r"0\.02 for 2%"):
        run_report(run, risk_free_rate=2.0, echo=Echo())
    assert not (run / "report").exists()


def test_risk_free_rate_reaches_the_metrics(make_run: Callable[..., Path]) -> None:
    run = make_run("a", days=DAYS, equity=EQUITY)
    zero = run_report(run, as_json=True, echo=Echo(), charts=False)
    two = run_report(run, as_json=True, echo=Echo(), charts=False, risk_free_rate=0.02)
    assert two["conventions"]["risk_free_rate"] == 0.02
    assert two["sharpe"] < zero["sharpe"]
