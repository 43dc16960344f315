"""The what-if benchmark: a realistic tick, both sides agree, and the report has its figures.

Timings are reported by `python -m engine.bench.whatif`, never asserted here.
"""

from __future__ import annotations

import gc
import re
from dataclasses import replace

import pytest

from engine.bench import whatif as bench
from engine.portfolio.book import HeldPosition


@pytest.fixture(scope="module")
def case() -> bench.WhatIfCase:
    return bench.build_case(positions=50)


def test_case_is_a_realistic_tick(case: bench.WhatIfCase) -> None:
    view = case.view
    assert len(view.positions) == 50 and view.portfolio.open_positions == 50
    assert dict(view.portfolio.positions_by_symbol) == {"SPY": 17, "QQQ": 17, "IWM": 16}
    assert len(set(view.portfolio.positions_by_strategy)) == 3
    assert set(view.chains) == {"SPY", "QQQ", "IWM"}
    assert all(len(c) > 500 for c in view.chains.values())
    assert all(len(p.legs) in (2, 4) and p.delta is not None for p in view.positions)
    order = case.order
    assert (order.intent, order.strategy, order.symbol, len(order.legs)) == (
        "open", "iron_condor", "SPY", 4,
    )  # fmt: skip
    assert case.proposal.margin_usd > 0 and order.quantity >= 1
    assert case.ctx.state == "ACTIVE"  # so the review reaches the what-if control
    assert view.portfolio.cluster_delta is not None


def test_build_is_deterministic() -> None:
    a, b = bench.build_case(positions=6, seed=3), bench.build_case(positions=6, seed=3)
    assert [p.legs for p in a.view.positions] == [p.legs for p in b.view.positions]
    assert a.view.portfolio == b.view.portfolio and a.order == b.order


def test_review_runs_the_what_if_limits_check(case: bench.WhatIfCase) -> None:
    (verdict,) = bench.review(case)
    # 50 positions are beyond the shipped caps: the order takes max_positions further beyond.
    assert verdict.control == "limits"
    assert "also max_positions further by 1" in (verdict.blocked or "")


def test_what_if_and_from_scratch_agree(case: bench.WhatIfCase) -> None:
    assert bench.disagreements(case) == []
    after = bench.recompute(case).portfolio
    assert after.open_positions == 51 and after.positions_by_symbol["SPY"] == 18


def test_agreement_check_has_teeth(case: bench.WhatIfCase) -> None:
    """An anchor that holds one more unit than the order buys must be told apart."""
    h = case.held
    bigger = HeldPosition(h.id, h.strategy, h.symbol, h.opened_at, h.quantity + 1, h.legs,
                          h.entry_credit)  # fmt: skip
    found = bench.disagreements(replace(case, held=bigger))
    assert any(d.startswith("vega ") for d in found) and any(d.startswith("delta ") for d in found)


def test_time_calls_samples_each_function_round_robin() -> None:
    calls: list[str] = []
    samples = bench.time_calls({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               repeat=3, warmup=1)  # fmt: skip
    assert calls == ["a", "b", "a", "b", "a", "b", "a", "b"]
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3}
    assert all(isinstance(ns, int) and ns >= 0 for v in samples.values() for ns in v)
    assert gc.isenabled()


def test_report_has_every_figure() -> None:
    lines = bench.bench_whatif(positions=50, repeat=3)
    text = "\n".join(lines)
    assert "against 50 open positions, rule set v6" in lines[0]
    assert "verdict: blocked by limits" in text
    assert "what-if vs from scratch: yes" in text
    assert "over 3 calls each" in text
    figures = r"\s+\d+\.\d /\s+\d+\.\d"
    for label in ("RiskGate.review of the one proposal", "order_impact", "Pending.plus",
                  "LimitsCheck.breaches", "violations", "once per tick", "one more order",
                  "anchor: portfolio from scratch (50 positions + order)",
                  "anchor + the same limits check"):  # fmt: skip
        assert re.search(re.escape(label) + r".*?" + figures, text), label
    assert re.search(r"target ≤ 100 µs: (PASS|MISS)", text)
    assert re.search(
        r"review / from scratch = \d+\.\d\d; review / from scratch \+ limits = "
        r"\d+\.\d\d; one more order / from scratch \+ limits = \d+\.\d\d",
        text,
    )


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(bench.WhatIfBenchError, match="repeat must be >= 1"):
        bench.bench_whatif(repeat=0)
    with pytest.raises(bench.WhatIfBenchError, match="positions must be >= 0"):
        bench.build_case(positions=-1)


def test_main_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--positions", "3", "--repeat", "2"])
    out = capsys.readouterr().out
    assert "against 3 open positions" in out and "RiskGate.review" in out
    with pytest.raises(SystemExit) as stop:
        bench.main(["--repeat", "0"])
    assert stop.value.code == 2
    assert "error: repeat must be >= 1" in capsys.readouterr().err
