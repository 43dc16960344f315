"""Text tables and the JSON dict of a report: fill model and costs stated, --vs side by side."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from engine.report.breakdown import RunReport, analyze
from engine.report.render import (
    describe_costs,
    describe_fill_model,
    fmt,
    fmt_diff,
    render_text,
    to_json,
)
from engine.report.run_data import load_run

from .conftest import Trade, weekdays

DAYS = weekdays(date(2016, 12, 26), 8)
A_EQUITY = [100_000.0, 101_000, 99_000, 98_000, 102_000, 103_000, 101_500, 104_000]
B_EQUITY = [100_000.0, 100_500, 100_200, 100_900, 101_700, 101_600, 102_400, 103_100]
REGIMES = ["calm", "calm", "stress", "stress", "calm", "normal", "normal", "calm"]


def report(
    make_run: Callable[..., Path],
    name: str,
    equity: list[float],
    split_at: date | None = None,
    **kw: object,
) -> RunReport:
    trades = [Trade("p1", DAYS[0], DAYS[3], 250.0), Trade("p2", DAYS[2], DAYS[6], -100.0)]
    run = make_run(name, days=DAYS, equity=equity, regimes=REGIMES, trades=trades, **kw)
    return analyze(load_run(run), split_at=split_at)


def test_text_states_fill_model_costs_and_every_table(make_run: Callable[..., Path]) -> None:
    text = render_text(report(make_run, "a", A_EQUITY))
    assert "fill model: mid_minus (fraction 0.25, partial fills off)" in text
    assert "costs: $0.65/contract, min $1/order, fees $0.02/contract, $0.005/share" in text
    assert "ruleset v6 (abc123)" in text
    assert "risk-free rate 0.00% a year" in text
    for title in ("Metrics", "By regime", "By year"):
        assert f"\n{title}\n" in text
    assert "warning" not in text
    assert "In-sample" not in text
    assert " calm " in text and " stress " in text and " 2016 " in text and " 2017 " in text
    lines = text.splitlines()
    total = next(line for line in lines if "Total return" in line)
    assert total.split()[-1] == "4.00%"
    assert all(line == line.rstrip() for line in lines)


def test_warning_banner_for_an_unfinished_run(make_run: Callable[..., Path]) -> None:
    text = render_text(report(make_run, "a", A_EQUITY, status="partial"))
    assert "⚠ warning" in text
    assert "a: run is partial: its results are incomplete" in text


def test_side_by_side(make_run: Callable[..., Path]) -> None:
    a = report(make_run, "a", A_EQUITY)
    b = report(make_run, "b", B_EQUITY)
    text = render_text(a, b)
    assert "A: a" in text and "B: b" in text and "B − A" in text
    assert text.count("fill model: mid_minus") == 2  # one per run
    sharpe = next(line for line in text.splitlines() if line.strip().startswith("Sharpe"))
    sa, sb, diff = sharpe.split()[1:]
    assert float(diff) == pytest.approx(float(sb) - float(sa), abs=0.011)
    total = next(line for line in text.splitlines() if "Total return" in line).split()
    assert total[2:] == ["4.00%", "3.10%", "-0.90pp"]
    assert "By regime, side by side (Δ = B − A)" in text
    assert "By year, side by side" in text


def test_split_table(make_run: Callable[..., Path]) -> None:
    r = report(make_run, "a", A_EQUITY, split_at=date(2017, 1, 1))
    text = render_text(r)
    assert "In-sample / out-of-sample (split at 2017-01-01)" in text
    assert "before 2017-01-01" in text and "from 2017-01-01" in text


def test_split_side_by_side(make_run: Callable[..., Path]) -> None:
    at = date(2017, 1, 1)
    a = report(make_run, "a", A_EQUITY, split_at=at)
    b = report(make_run, "b", B_EQUITY, split_at=at)
    text = render_text(a, b)
    assert "In-sample: before 2017-01-01" in text and "Out-of-sample: from 2017-01-01" in text
    tail = text[text.index("Out-of-sample") :]
    start = next(line for line in tail.splitlines() if line.strip().startswith("Start "))
    assert "2016-" in start  # the out-of-sample starts from the last in-sample day


def test_json_keys_and_values(make_run: Callable[..., Path]) -> None:
    r = report(make_run, "a", A_EQUITY, split_at=date(2017, 1, 1))
    data = json.loads(json.dumps(to_json(r), allow_nan=False))
    required = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
                "calmar", "trades", "win_rate")  # fmt: skip
    for key in required:
        assert key in data
        assert data[key] == r.metrics.to_dict()[key]
    assert data["max_drawdown"] < 0
    assert data["trades"] == 2 and data["win_rate"] == 0.5
    assert data["status"] == "complete"
    assert data["fill_model"] == {"name": "mid_minus", "fraction": 0.25, "partial": False}
    assert data["costs"]["per_contract"] == 0.65
    assert data["conventions"] == {"returns": "simple daily", "days_per_year": 252,
                                   "risk_free_rate": 0.0}  # fmt: skip
    assert set(data["by_regime"]) == {"calm", "normal", "stress"}
    assert set(data["by_year"]) == {"2016", "2017"}
    assert data["by_year"]["2017"]["days"] == 3  # 01-02, 01-03, 01-04
    assert data["split"]["at"] == "2017-01-01"
    assert data["split"]["out_of_sample"]["start"] == "2016-12-30"
    assert data["run"]["name"] == "a" and data["run"]["ruleset"]["hash"] == "abc123"
    assert "vs" not in data and "diff" not in data


def test_json_with_vs(make_run: Callable[..., Path]) -> None:
    a, b = report(make_run, "a", A_EQUITY), report(make_run, "b", B_EQUITY)
    data = to_json(a, b)
    assert data["vs"]["run"]["name"] == "b"
    assert data["diff"]["sharpe"] == pytest.approx(b.metrics.sharpe - a.metrics.sharpe)
    assert data["diff"]["trades"] == 0
    json.dumps(data, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (None, "pct", "—"),
        (-0.12345, "pct", "-12.35%"),
        (0.00012, "bp", "1.2bp"),
        (1.234, "ratio", "1.23"),
        (-1234.5, "usd", "-$1,234"),
        (12.5, "usd", "$12.50"),
        (date(2019, 1, 2), "date", "2019-01-02"),
        (7, "int", "7"),
    ],
)
def test_fmt(value: object, kind: str, text: str) -> None:
    assert fmt(value, kind) == text


def test_fmt_diff() -> None:
    assert fmt_diff(0.1, 0.15, "pct") == "+5.00pp"
    assert fmt_diff(2000.0, 500.0, "usd") == "-$1,500"
    assert fmt_diff(1, 3, "int") == "+2"
    assert fmt_diff(None, 3.0, "ratio") == ""
    assert fmt_diff(date(2019, 1, 1), date(2019, 1, 2), "date") == ""


def test_describe_fill_model_and_costs() -> None:
    assert describe_fill_model({"name": "mid"}) == "mid"
    assert describe_fill_model({"name": "natural", "partial": True}) == (
        "natural (partial fills on)"
    )
    assert describe_fill_model(None) == "fill model not stated"
    assert describe_costs({"per_contract": 0.65, "exchange": "x"}) == "$0.65/contract, exchange x"
    assert describe_costs({}) == "costs not stated"
