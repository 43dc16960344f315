"""The `v6` command line: check, format, test and explain rules; print the vocabulary."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from engine.dsl.errors import DslError

if TYPE_CHECKING:
    from engine.risk.trading_state import Command

app = typer.Typer(
    help="V6: an autonomous options trading rule engine. Rules live in text files; "
    "these commands check, format, test and explain them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(fn: F) -> F:
    """A trader's mistake is a located message and exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DslError as exc:
            typer.echo(exc.render(), err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _data_errors(fn: F) -> F:
    """Bad files, stores and dates are the user's to fix: one clear line, exit code 1.

    The data modules raise ValueError (with file:line:col where there is a file),
    FileNotFoundError or KeyError subclasses for everything a user can get wrong."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, OSError, KeyError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            typer.echo(f"error: {text}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


class TraceLevel(str, Enum):
    fails = "fails"
    full = "full"


def _load(target: str) -> Any:
    from engine.dsl.ruleset import load_ruleset

    return load_ruleset(target)


@app.command()
@_user_errors
def check(
    paths: Annotated[
        list[Path], typer.Argument(help="rule files, folders or *.ruleset.yaml manifests")
    ],
) -> None:
    """Parse and check rules; list every error. Exit 0 when all are valid, 1 otherwise."""
    from engine.dsl.ruleset import MANIFEST_SUFFIX, load, loose_manifest, read_manifest

    manifests = [p for p in paths if p.name.endswith(MANIFEST_SUFFIX)]
    loose = [p for p in paths if p not in manifests]
    targets = [read_manifest(m) for m in manifests] if manifests else []
    if loose:
        targets.append(loose_manifest(loose))
    failed = False
    for m in targets:
        try:
            rs = load(m)
        except DslError as exc:
            failed = True
            typer.echo(exc.render() + "\n", err=True)
            n = len(exc.diagnostics)
            typer.echo(f"✘ {m.name}: {n} error{'s' * (n != 1)}", err=True)
            continue
        typer.echo(
            f"✔ {rs.name}: {len(m.files)} files, {len(rs.blocks)} blocks, "
            f"{len(rs.strategies)} strategies, hash {rs.hash}"
        )
    raise typer.Exit(1 if failed else 0)


@app.command()
@_user_errors
def fmt(
    paths: Annotated[list[Path], typer.Argument(help="rule files or folders")],
    check_only: Annotated[
        bool, typer.Option("--check", help="only report files that would change")
    ] = False,
) -> None:
    """Format rule files canonically (idempotent; comments are kept)."""
    from engine.dsl.fmt import format_path

    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob("*.v6")) if p.is_dir() else [p])
    changed = [f for f in files if not format_path(f, write=not check_only)]
    for f in changed:
        typer.echo(f"{'would reformat' if check_only else 'reformatted'} {f}")
    typer.echo(
        f"{len(files)} files, {len(changed)} {'to reformat' if check_only else 'reformatted'}"
    )
    raise typer.Exit(1 if check_only and changed else 0)


@app.command("test")
@_user_errors
def test_rules(
    targets: Annotated[
        list[str] | None, typer.Argument(help="rule-set names or manifests (default: shipped sets)")
    ] = None,
) -> None:
    """Run the rule tests of rule sets and report condition coverage."""
    from engine.dsl.ruletests import run_tests
    from engine.paths import RULES_DIR

    names = targets or [str(p) for p in sorted(RULES_DIR.rglob("*.ruleset.yaml"))]
    failed = 0
    for name in names:
        rs = _load(name)
        results, cov = run_tests(rs)
        typer.echo(f"{rs.name} ({rs.hash}): {len(results)} cases")
        for r in results:
            typer.echo(f"  {'✔' if r.ok else '✘'} {r.name}   {r.file}:{r.line}")
            for f in r.failures:
                typer.echo(f"      {f}")
        failed += sum(not r.ok for r in results)
        total, evaluated, both, never = cov.summary(rs)
        typer.echo(
            f"  condition coverage: {evaluated}/{total} evaluated, "
            f"{both}/{total} seen both true and false"
        )
        for n in never:
            typer.echo(f"      never evaluated: {n}")
    typer.echo(f"{'FAILED' if failed else 'ok'}: {failed} failing case{'s' * (failed != 1)}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def vocab(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print the rule vocabulary: fields with types and units, functions, actions, enums."""
    from engine.dsl.vocab import export

    data = export()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"V6 rule language, version {data['language_version']}\n\nFIELDS")
    for f in data["fields"]:
        unit = f.get("unit") or f.get("enum") or f["type"]
        scope = "" if f["scope"] == "any" else f"  [{f['scope']} rules]"
        typer.echo(f"  {f['path']:<36} {unit:<10} {f['doc']}{scope}")
    typer.echo("\nFUNCTIONS")
    for fn in data["functions"]:
        params = ", ".join(
            f"{p['name']}: {p.get('unit') or p.get('enum') or p['type']}" for p in fn["params"]
        )
        ret = fn["returns"].get("unit") or fn["returns"]["type"]
        typer.echo(
            f"  {fn['name']}({params}{', …' if fn['variadic'] else ''}) -> {ret}   {fn['doc']}"
        )
    typer.echo("\nACTIONS")
    for a in data["actions"]:
        target = f" <{a['target']}>" if a["target"] else ""
        params = ", ".join(p["name"] for p in a["params"])
        typer.echo(
            f"  {a['verb']}{target}{f'({params})' if params else ''}   {a['doc']}"
            f"  [in: {', '.join(a['contexts'])}]"
        )
    typer.echo("\nENUMS")
    for k, v in data["enums"].items():
        typer.echo(f"  {k}: {', '.join(v)}")
    typer.echo(f"\nUNITS: {', '.join(data['units'])}   (literals: 50%  $5  45d  0.16)")


@app.command()
@_user_errors
def explain(
    rules: Annotated[str, typer.Option(help="rule-set name, manifest, or folder of rules")],
    snapshot: Annotated[
        Path, typer.Option(help="snapshot file (JSON or YAML, format v6-snapshot/1)")
    ],
    rule: Annotated[str | None, typer.Option(help="show only this rule id")] = None,
    level: Annotated[
        TraceLevel, typer.Option(help="fails: first failing condition; full: everything")
    ] = TraceLevel.full,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Evaluate rules against one snapshot and show which fired, which did not, and why."""
    from engine.dsl.explain import render_text, to_data
    from engine.dsl.runtime import evaluate
    from engine.dsl.trace import Level
    from engine.state.snapshot_io import load_snapshot

    rs = _load(rules)
    if rule is not None and rs.block(rule) is None:
        from engine.dsl.errors import did_you_mean

        hint = did_you_mean(rule, [b.id for b in rs.blocks]) or ""
        typer.echo(f"error: no rule '{rule}' in rule set {rs.name}. {hint}", err=True)
        raise typer.Exit(1)
    snap = load_snapshot(snapshot)
    decisions, trace = evaluate(rs, snap, Level(level.value))
    assert trace is not None
    if as_json:
        typer.echo(json.dumps(to_data(rs, decisions, trace), indent=2, default=str))
    else:
        typer.echo(render_text(rs, decisions, trace, rule))


@app.command()
@_user_errors
@_data_errors
def demo(
    out: Annotated[Path, typer.Option(help="the folder the demo writes (its own)")] = Path(
        "v6-demo"
    ),
    store: Annotated[
        Path | None,
        typer.Option(help="a market store of real history (default: the synthetic market)"),
    ] = None,
    start: Annotated[str, typer.Option("--from", help="first session")] = "2007-01-01",
    end: Annotated[str, typer.Option("--to", help="last session")] = "2019-12-31",
    progress: Annotated[bool, typer.Option(help="show the progress bar")] = True,
) -> None:
    """The end-to-end tour: check and test the shipped rule sets, dry-run V6 and the V5
    baseline on the embedded synthetic market (or real history with --store) and compare."""
    from engine.demo import run

    failures = run(typer.echo, out, store, _date(start, "--from"), _date(end, "--to"), progress)
    raise typer.Exit(1 if failures else 0)


@app.command("import-history")
@_data_errors
def import_history(
    out: Annotated[Path, typer.Option("--out", help="the market store folder to write")],
    underlying: Annotated[
        list[str], typer.Option(help="SYMBOL=FILE, a daily OHLCV CSV (Yahoo layouts); repeatable")
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    index: Annotated[
        list[str], typer.Option(help="SYMBOL=FILE, a CBOE index history CSV; repeatable")
    ] = [],  # noqa: B006
    future: Annotated[
        list[str], typer.Option(help="SYMBOL=FILE, a front-month futures CSV; repeatable")
    ] = [],  # noqa: B006
    data: Annotated[
        Path | None,
        typer.Option(
            help="with no SYMBOL=FILE at all: import every file of DATA/daily "
            "(default $V6_DATA or ../shared/data)"
        ),
    ] = None,
) -> None:
    """Import daily history into a Delta Lake market store, on the NYSE calendar.

    All files are checked before anything is written: a malformed file is reported with its
    line and column and the store is left as it was. Re-importing replaces those symbols.
    """
    from engine.market.import_command import run_import_history

    report = run_import_history(out, underlying, index, future, data)
    typer.echo(report.summary())


@app.command("synth-chain")
@_data_errors
def synth_chain(
    store: Annotated[Path, typer.Option(help="a market store (v6 import-history)")],
    date: Annotated[str, typer.Option(help="the session, YYYY-MM-DD (chain at the close)")],
    out: Annotated[Path, typer.Option(help="output file, .csv or .parquet")],
    symbol: Annotated[str, typer.Option(help="the underlying")] = "SPY",
    rate: Annotated[float, typer.Option(help="risk-free rate, continuous, per year")] = 0.04,
    max_days: Annotated[int, typer.Option(help="list expiries up to this many days")] = 70,
    strike_range: Annotated[float, typer.Option(help="strikes within this fraction of spot")] = 0.2,
) -> None:
    """Export the synthetic option chain a dry run would see for SYMBOL at DATE's close."""
    import datetime as dt

    from engine.feeds.history import export_synth_chain
    from engine.market.store import MarketStore
    from engine.market.synth_chain import ChainSpec

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"--date {date!r} is not a date in YYYY-MM-DD form") from None
    spec = ChainSpec(max_days=max_days, strike_range=strike_range, rate=rate)
    rows = export_synth_chain(MarketStore(store), symbol.upper(), day, out, spec)
    typer.echo(f"{rows} contracts of {symbol.upper()} on {day} written to {out}")


def _date(text: str, option: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a date in YYYY-MM-DD form") from None


_RULESET_HELP = "a shipped rule set (v6, v5-baseline) or the path of a *.ruleset.yaml"


@app.command("dry-run")
@_user_errors
@_data_errors
def dry_run(
    ruleset: Annotated[str, typer.Option(help=_RULESET_HELP)],
    start: Annotated[str, typer.Option("--from", help="first session, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last session, YYYY-MM-DD")],
    out: Annotated[Path, typer.Option(help="the run folder to write (new or empty)")],
    store: Annotated[Path | None, typer.Option(help="a market store (v6 import-history)")] = None,
    synthetic: Annotated[
        int | None, typer.Option(help="use the embedded synthetic market with this seed")
    ] = None,
    fill_model: Annotated[
        str,
        typer.Option(help="mid | natural | mid-minus:F (F of the spread), optional ,partial:N"),
    ] = "mid-minus:0.25",
    trace: Annotated[TraceLevel, typer.Option(help="explain level kept in the journal")] = (
        TraceLevel.fails
    ),
    cash: Annotated[float, typer.Option(help="starting cash, USD")] = 100_000.0,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run in --out")] = False,
    progress: Annotated[bool, typer.Option(help="show the progress bar")] = True,
) -> None:
    """Replay a market through the engine: rules, risk gate, simulated broker, journal.

    Writes the journal's Delta tables, run.json and equity.csv into --out. Ctrl-C stops after
    the current tick and marks the run partial; --resume continues it.
    """
    from engine.dsl.trace import Level
    from engine.runtime.dry_run import DryRunSpec
    from engine.runtime.session import run_dry_run

    spec = DryRunSpec(
        ruleset=ruleset,
        start=_date(start, "--from"),
        end=_date(end, "--to"),
        out=out,
        store=store,
        synthetic=synthetic,
        fill_model=fill_model,
        trace=Level(trace.value),
        initial_cash=cash,
    )
    summary = run_dry_run(spec, resume=resume, progress=progress)
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"report: v6 report {out}")
    if summary.status != "complete":
        typer.echo("interrupted: continue with the same command and --resume", err=True)
        raise typer.Exit(130)


@app.command()
@_data_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run folder written by v6 dry-run")],
    vs: Annotated[Path | None, typer.Option(help="a second run folder to compare with")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
    split: Annotated[
        str | None,
        typer.Option(help="also report before/from this date (in-sample, out-of-sample)"),
    ] = None,
    risk_free: Annotated[float, typer.Option(help="annual risk-free rate, a fraction")] = 0.0,
) -> None:
    """Metrics, breakdowns by regime and year, and equity/drawdown charts of a run."""
    from engine.report.command import run_report

    split_at = _date(split, "--split") if split else None
    run_report(
        run_dir, vs=vs, as_json=as_json, echo=typer.echo, risk_free_rate=risk_free,
        split_at=split_at,
    )  # fmt: skip


@app.command("audit")
@_data_errors
def audit_command(
    run_dir: Annotated[Path, typer.Argument(help="a run folder written by v6 dry-run")],
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ruleset: Annotated[
        str | None, typer.Option(help="the run's rule set, when the name in run.json is not enough")
    ] = None,
) -> None:
    """Check a run's journal against the risk invariants. Exit 0 when all hold, 1 otherwise."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.risk.audit import audit_run

    report = audit_run(run_dir, ruleset)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    table = Table(title=escape(f"{run_dir}: {report.ruleset}, {report.ticks} ticks, run "
                               f"{report.status}"))  # fmt: skip
    table.add_column("invariant")
    table.add_column("checked", justify="right")
    table.add_column("result")
    for i in report.invariants:
        result = "[green]pass[/]" if i.passed else f"[red]FAIL[/] ({i.found:,})"
        table.add_row(i.name, f"{i.checked:,} {i.counts}", result)
    Console(highlight=False).print(table)
    for i in report.invariants:
        if i.violations or i.note:
            typer.echo(f"\n{i.name}:")
        for line in i.violations:
            typer.echo(f"  {line}")
        if i.found > len(i.violations):
            typer.echo(f"  … and {i.found - len(i.violations):,} more")
        if i.note:
            typer.echo(f"  note: {i.note}")
    failed, n = sum(not i.passed for i in report.invariants), len(report.invariants)
    typer.echo(
        f"\nFAILED: {failed} of {n} invariants" if failed else f"\nok: all {n} invariants hold"
    )
    raise typer.Exit(1 if failed else 0)


_RUN_DIR_HELP = "the run folder of a running dry run (its --out) or of the live engine"


def _queue(run_dir: Path, command: Command, reason: str, what: str) -> None:
    from engine.journal.run_journal import read_info
    from engine.risk.commands import CommandError, send

    if (run_dir / "run.json").is_file() and read_info(run_dir).get("status") == "complete":
        raise CommandError(f"{run_dir} is a complete run: no engine reads its commands any more")
    path = send(run_dir, command, reason)
    typer.echo(f"queued {what} for {run_dir} ({path.name}): it takes effect at the engine's "
               "next tick")  # fmt: skip


@app.command("halt")
@_data_errors
def halt_command(
    run_dir: Annotated[Path, typer.Argument(help=_RUN_DIR_HELP)],
    flatten: Annotated[bool, typer.Option(help="also close every position and hedge")] = False,
    reason: Annotated[str, typer.Option(help="why, kept with the command")] = "",
) -> None:
    """Kill switch: no new trading from the engine's next tick, until `v6 resume`."""
    what = "flatten (halt, then close every position)" if flatten else "halt"
    _queue(run_dir, "flatten" if flatten else "halt", reason, what)


@app.command("resume")
@_data_errors
def resume_command(
    run_dir: Annotated[Path, typer.Argument(help=_RUN_DIR_HELP)],
    reason: Annotated[str, typer.Option(help="why, kept with the command")] = "",
) -> None:
    """Lift an operator or breaker halt (HALTED → ACTIVE, or REDUCING while a breaker or
    limit still asks for it) at the engine's next tick."""
    _queue(run_dir, "resume", reason, "resume")


@app.command()
@_user_errors
@_data_errors
def diff(
    ruleset: Annotated[list[str], typer.Option(help=_RULESET_HELP + "; give it twice")],
    start: Annotated[str, typer.Option("--from", help="first session, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last session, YYYY-MM-DD")],
    store: Annotated[Path | None, typer.Option(help="a market store")] = None,
    synthetic: Annotated[int | None, typer.Option(help="embedded synthetic market seed")] = None,
    fill_model: Annotated[str, typer.Option(help="as for dry-run")] = "mid-minus:0.25",
    limit: Annotated[int, typer.Option(help="differences listed at most")] = 50,
) -> None:
    """Replay two rule set versions on the same market; list where their decisions differ."""
    from engine.runtime.diff import DiffSpec, run_diff

    if len(ruleset) != 2:
        raise ValueError(f"give --ruleset exactly twice (A and B), got {len(ruleset)}")
    spec = DiffSpec(
        ruleset[0], ruleset[1], _date(start, "--from"), _date(end, "--to"), store, synthetic,
        fill_model,
    )  # fmt: skip
    run_diff(spec, echo=typer.echo, limit=limit)


bench_app = typer.Typer(
    help="Benchmarks: the project against its anchors, ratios printed.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("dsl")
def bench_dsl(
    quick: Annotated[bool, typer.Option(help="fewer iterations (smoke run)")] = False,
) -> None:
    """Rule evaluation vs hand-written Python, explain overhead, and compile time of 1,000 rules."""
    from engine.bench.dsl import report, run

    typer.echo(report(run(quick=quick)))


@bench_app.command("kernels")
def bench_kernels(
    quick: Annotated[bool, typer.Option(help="fewer iterations (smoke run)")] = False,
) -> None:
    """Greeks and implied vol vs py_vollib_vectorized (uv sync --group bench), JIT times."""
    from engine.bench.kernels import report, run

    typer.echo(report(run(quick=quick)))


@bench_app.command("market")
def bench_market(
    quick: Annotated[
        bool, typer.Option(help="fewer rounds; record 2,000 ticks, not a year")
    ] = False,
) -> None:
    """History import, one day's synthetic chain, replay overhead per tick, and recording."""
    from engine.bench.market import report, run

    typer.echo(report(run(quick=quick)))


@bench_app.command("dryrun")
def bench_dryrun(
    quick: Annotated[bool, typer.Option(help="one year daily, five sessions intraday")] = False,
) -> None:
    """The dry-run loop: 13 years daily and 63 sessions of minute ticks, split by stage."""
    from engine.bench.dryrun import main

    typer.echo(main(quick=quick))


@bench_app.command("risk")
def bench_risk(
    positions: Annotated[int, typer.Option(min=1, help="open positions in the book")] = 50,
    repeat: Annotated[int, typer.Option(min=1, help="timed calls per function")] = 2000,
) -> None:
    """The what-if limits check of one order against N open positions, vs recomputing."""
    from engine.bench.whatif import bench_risk as run

    typer.echo("\n".join(run(positions, repeat)))


@app.command()
def dashboard(
    journal: Annotated[
        Path | None, typer.Option(help="a run folder: a dry run's, or later the live engine's")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option(help="a second run folder, for side by side and the diff")
    ] = None,
    host: Annotated[str, typer.Option(help="address to bind; not loopback needs a login")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 5006,
) -> None:
    """Serve the dashboard: run overview, rule trace explorer, positions and risk, rules."""
    from ui.app import app_factory, check_journal
    from ui.server import ServeError, serve

    try:
        for run in (journal, compare):
            problem = None if run is None else check_journal(run)
            if problem:  # shown on the page as well; the server still starts
                typer.echo(f"warning: {problem}", err=True)
        serve(app_factory(journal, compare), host, port,
              on_start=lambda url: typer.echo(f"V6 dashboard at {url} (Ctrl-C stops it)"))
    except ServeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # the port is taken, or the address is not ours
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
@_data_errors
def compact(
    table: Annotated[
        Path, typer.Argument(help="a Delta table folder (a recording's snapshots, a journal table)")
    ],
) -> None:
    """Compact a Delta table: merge small files and delete the replaced ones.

    Run it when nothing is writing to or reading from the table."""
    from engine.journal.delta_table import compact as compact_table

    if not (table / "_delta_log").is_dir():
        raise FileNotFoundError(f"{table} is not a Delta table (no _delta_log folder)")
    r = compact_table(table)
    typer.echo(
        f"{table}: {r['files_before']} files ({r['bytes_before']:,} bytes) -> "
        f"{r['files_after']} files ({r['bytes_after']:,} bytes)"
    )


if __name__ == "__main__":  # pragma: no cover
    app(prog_name="v6")
