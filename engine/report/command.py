"""`v6 report RUN_DIR [--vs RUN_DIR] [--json]` without the CLI framework: load, compute, write.

The report of RUN_DIR is written to RUN_DIR/report/: metrics.json (that run's own report, the
same whatever --vs says) and the equity and drawdown charts (HTML and PNG; with --vs, both runs
overlaid). Then either the text tables or ONE JSON object is printed; with --json nothing else
reaches `echo`, so the output can be piped to a JSON parser.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from engine.report.breakdown import RunReport, analyze
from engine.report.render import render_text, to_json
from engine.report.run_data import load_run

REPORT_DIR = "report"
METRICS_FILE = "metrics.json"


class ReportOptionError(ValueError):
    """A report option the user got wrong (a risk-free rate given in percent, …)."""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` whole or not at all: a temporary file renamed over the target."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _charts(report: RunReport, vs: RunReport | None, out_dir: Path) -> list[Path]:
    from engine.report.charts import Series, write_charts

    pairs = [("", report)] if vs is None else [("A: ", report), ("B: ", vs)]
    series = [Series(f"{tag}{r.data.name}", r.data.dates, r.data.equity) for tag, r in pairs]
    if all(s.equity.size == 0 for s in series):
        return []  # nothing to draw yet (a run that has not finished its first day)
    return write_charts(series, out_dir)


def run_report(
    run_dir: Path | str,
    vs: Path | str | None = None,
    as_json: bool = False,
    echo: Callable[[str], object] = print,
    *,
    risk_free_rate: float = 0.0,
    split_at: date | None = None,
    charts: bool = True,
) -> dict[str, Any]:
    """Report on the run in `run_dir` (compared with the run in `vs`, if given).

    Writes RUN_DIR/report/metrics.json and, with `charts`, the chart files; prints the text
    tables, or with `as_json` the returned dict as one JSON object. `risk_free_rate` is an
    annual fraction; `split_at` adds in-sample (before) and out-of-sample (from) metrics.
    RunDataError or ReportOptionError (both ValueError) for anything the user can fix.
    """
    if not math.isfinite(risk_free_rate) or abs(risk_free_rate) >= 1:
        raise ReportOptionError(
            f"risk-free rate {risk_free_rate}: give an annual fraction, e.g. 0.02 for 2%"
        )
    data = load_run(run_dir)
    other = load_run(vs) if vs is not None else None
    report = analyze(data, risk_free_rate, split_at)
    versus = analyze(other, risk_free_rate, split_at) if other is not None else None

    out_dir = data.run_dir / REPORT_DIR
    out_dir.mkdir(exist_ok=True)
    metrics_path = out_dir / METRICS_FILE
    _write_json(metrics_path, to_json(report))
    files = [metrics_path, *(_charts(report, versus, out_dir) if charts else [])]

    result = to_json(report, versus)
    result["files"] = [str(f) for f in files]
    if as_json:
        echo(json.dumps(result, indent=2, allow_nan=False))
    else:
        echo(render_text(report, versus))
        echo(f"report files in {out_dir}: {', '.join(f.name for f in files)}")
    return result
