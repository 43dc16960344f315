"""`audit_run` on a real dry run (it passes), and on tampered copies (each invariant fails)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

from engine.cli import app
from engine.journal.run_journal import RunJournal, read_table
from engine.journal.run_tables import PARTITION_BY, TABLES
from engine.risk.audit import AuditError, AuditReport, audit_run, load_run
from engine.risk.commands import CommandFolder
from engine.runtime.dry_run import (
    DryRunSpec,
    build_engine,
    history_feed,
    prepare,
    run_header,
    synthetic_store,
)
from engine.runtime.replay import Runner, replay
from engine.state.snapshot import EXCHANGE_TZ

Row = dict[str, Any]
HALT_AFTER, RESUME_AFTER = 55, 75  # tick numbers: the engine reads each command one tick later


def journaled_run(
    out: Path, seed: int, start: date, end: date, commands: Mapping[int, Sequence[Sequence[str]]]
) -> None:
    """`v6 dry-run --ruleset v6 --synthetic SEED` into `out`, the dry run's own parts put
    together so that CLI commands (`v6 ARGS... OUT`) run between ticks: after tick n (from 1)
    the commands of `commands[n]`, which the engine reads at tick n + 1."""
    spec = DryRunSpec("v6", start, end, out, synthetic=seed)
    prep = prepare(spec)
    engine = build_engine(prep.ruleset, prep.fill, spec.costs, spec.initial_cash, spec.trace,
                          CommandFolder(out))  # fmt: skip
    journal = RunJournal.create(out, run_header(spec, prep.ruleset, engine))
    store, chains = synthetic_store(spec, prep.ruleset)
    done = 0

    def between_ticks(_: object) -> None:
        nonlocal done
        done += 1
        for args in commands.get(done, ()):
            res = CliRunner().invoke(app, [*args, str(out)])
            assert res.exit_code == 0, res.output

    replay(
        history_feed(store, chains, spec), [Runner("v6", engine, journal, observe=between_ticks)]
    )
    journal.close("complete", {})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven months of the V6 rule set on the synthetic market, halted by an operator for
    twenty ticks (with positions open) and resumed."""
    out = tmp_path_factory.mktemp("audit") / "run"
    journaled_run(out, 7, date(2008, 1, 2), date(2008, 7, 31),
                  {HALT_AFTER: [["halt"]], RESUME_AFTER: [["resume"]]})  # fmt: skip
    return out


@pytest.fixture
def copy(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run to tamper with (without its market store)."""
    out = tmp_path / "run"
    shutil.copytree(run_dir, out, ignore=shutil.ignore_patterns("market"))
    return out


def append(run: Path, table: str, *rows: Row) -> None:
    """Rows appended to a journal table as a new Delta commit, as a buggy writer would."""
    table_ = pa.Table.from_pylist(list(rows), schema=TABLES[table])
    write_deltalake(run / table, table_, mode="append", partition_by=list(PARTITION_BY))


def rewrite(run: Path, table: str, change: Callable[[Row], Row]) -> None:
    rows = [change(r) for r in read_table(run, table).to_pylist()]
    write_deltalake(run / table, pa.Table.from_pylist(rows, schema=TABLES[table]),
                    mode="overwrite", partition_by=list(PARTITION_BY))  # fmt: skip


def tick(t: datetime) -> str:
    return f"{t.astimezone(EXCHANGE_TZ):%Y-%m-%d %H:%M} ET"


def failing(report: AuditReport) -> dict[str, tuple[str, ...]]:
    return {i.name: i.violations for i in report.invariants if not i.passed}


def rows(run: Path, table: str) -> list[Row]:
    return read_table(run, table).to_pylist()


def ticks_in(run: Path, state: str) -> list[datetime]:
    return [r["time"] for r in rows(run, "equity") if r["risk_state"] == state]


def order(like: Row, **changes: Any) -> Row:
    return {**like, "order_id": f"tampered-{changes.get('intent', like['intent'])}", **changes}


# ------------------------------------------------------------------------- a real run
def test_a_real_run_with_a_halt_and_a_resume_passes(run_dir: Path) -> None:
    report = audit_run(run_dir)
    assert report.passed, failing(report)
    checked = {i.name: i.checked for i in report.invariants}
    # Each check saw something: entries, exits and adjustments while HALTED, positions.
    assert all(checked.values()), checked
    assert report.ticks == checked["risk_states_chain"] - len(rows(run_dir, "risk_events"))
    halted = ticks_in(run_dir, "HALTED")
    assert len(halted) == RESUME_AFTER - HALT_AFTER  # from the tick after each command
    blocked = [o for o in rows(run_dir, "orders") if o["time"] in halted and o["intent"] == "open"]
    assert blocked and all(o["status"] == "blocked" for o in blocked)


def test_the_report_is_plain_data(run_dir: Path) -> None:
    data = json.loads(json.dumps(audit_run(run_dir).to_dict()))
    assert data["passed"] is True and data["status"] == "complete"
    assert [i["name"] for i in data["invariants"]] == [
        "no_entries_unless_active", "only_closing_while_halted", "exit_fires_once",
        "limits_hold_after_entries", "risk_states_chain",
    ]  # fmt: skip


# ---------------------------------------------------------------- (a) entries while blocked
def test_an_entry_sent_while_reducing_fails_naming_tick_and_order(copy: Path) -> None:
    t = ticks_in(copy, "REDUCING")[0]
    entry = next(o for o in rows(copy, "orders") if o["intent"] == "open" and o["filled"] > 0)
    append(copy, "orders", order(entry, time=t, position_id="SPY-tampered"))
    found = failing(audit_run(copy))
    assert list(found) == ["no_entries_unless_active"]
    assert found["no_entries_unless_active"] == (
        f"{tick(t)}: entry open order tampered-open ({entry['symbol']}, filled) sent while "
        "the trading state was REDUCING",
    )


def test_a_blocked_entry_while_halted_is_fine(copy: Path) -> None:
    t = ticks_in(copy, "HALTED")[0]
    entry = next(o for o in rows(copy, "orders") if o["intent"] == "open")
    append(copy, "orders", order(entry, time=t, status="blocked", filled=0, position_id=None))
    assert audit_run(copy).passed


# ------------------------------------------------------------ (b) only closing while HALTED
def test_a_roll_sent_while_halted_fails(copy: Path) -> None:
    t = ticks_in(copy, "HALTED")[3]
    like = next(o for o in rows(copy, "orders") if o["intent"] == "close")
    append(copy, "orders", order(like, time=t, intent="roll", position_id=None))
    found = failing(audit_run(copy))
    assert list(found) == ["only_closing_while_halted"]
    assert found["only_closing_while_halted"][0].startswith(f"{tick(t)}: roll order tampered-roll")


def _held_while_halted(run: Path) -> tuple[datetime, Row]:
    """A HALTED tick, and a position held on the tick before it."""
    halted = ticks_in(run, "HALTED")
    t = halted[1]
    held = [r for r in rows(run, "positions") if r["time"] == halted[0] and r["status"] == "open"]
    assert held, "the halt should catch open positions"
    return t, held[0]


@pytest.mark.parametrize(("sign", "passes"), [(-1, True), (1, False)])
def test_an_adjustment_while_halted_passes_only_if_it_closes_legs(
    copy: Path, sign: int, passes: bool
) -> None:
    t, pos = _held_while_halted(copy)
    leg = json.loads(pos["legs"])[0]
    legs = json.dumps([{"contract": leg["contract"], "ratio": sign * leg["per_unit"],
                        "role": leg["role"]}])  # fmt: skip
    like = next(o for o in rows(copy, "orders") if o["intent"] == "close")
    append(copy, "orders", order(like, time=t, intent="adjust", position_id=pos["position_id"],
                                 quantity=pos["quantity"], legs=legs))  # fmt: skip
    assert audit_run(copy).passed is passes


# ---------------------------------------------------------------- (c) an exit fires once
def _closed(run: Path) -> tuple[Row, Row]:
    """A position closed by a filled `close` order: its closed row and that order."""
    closes = {(o["position_id"], o["time"]): o for o in rows(run, "orders")
              if o["intent"] == "close" and o["status"] == "filled"}  # fmt: skip
    row = next(r for r in rows(run, "positions")
               if r["status"] == "closed" and (r["position_id"], r["time"]) in closes)  # fmt: skip
    return row, closes[(row["position_id"], row["time"])]


def test_a_second_filled_close_of_a_position_fails(copy: Path) -> None:
    row, close = _closed(copy)
    append(copy, "orders", order(close, order_id="tampered-close-2"))
    found = failing(audit_run(copy))
    assert list(found) == ["exit_fires_once"]
    (line,) = found["exit_fires_once"]  # the order of rows within a tick is the journal's
    assert line.startswith(f"{tick(row['time'])}: close order ")
    assert line.endswith(f"filled): a second filled exit of position {row['position_id']}")


def test_an_order_after_the_close_fails(copy: Path) -> None:
    row, close = _closed(copy)
    later = next(t for t in ticks_in(copy, "ACTIVE") if t > row["time"])
    append(copy, "orders", order(close, time=later, intent="roll", status="blocked", filled=0))
    found = failing(audit_run(copy))
    assert found["exit_fires_once"] == (
        f"{tick(later)}: roll order tampered-roll ({close['symbol']}, blocked) for position "
        f"{row['position_id']}, closed {tick(row['time'])}",
    )


def test_two_exits_fired_for_one_position_on_one_tick_fail(copy: Path) -> None:
    fired = next(d for d in rows(copy, "decisions")
                 if d["phase"] == "exit" and d["fired"])  # fmt: skip
    append(copy, "decisions", {**fired, "rule_id": "tp_by_regime", "phase": "take_profit"})
    found = failing(audit_run(copy))
    rules = ", ".join(sorted([fired["rule_id"], "tp_by_regime"]))
    assert found["exit_fires_once"] == (
        f"{tick(fired['time'])}: 2 exits fired for position {fired['subject']}: {rules}",
    )


def test_a_hedge_reopened_after_its_close_starts_a_new_life(copy: Path) -> None:
    """Hedge positions keep one id per instrument (`hedge-SPY`): hedge, flatten, hedge again
    and flatten again is two lives, each closed once; a blocked hedge after that is fine."""
    t = ticks_in(copy, "ACTIVE")[:5]
    pos = next(r for r in rows(copy, "positions") if r["status"] == "closed")
    like = next(o for o in rows(copy, "orders") if o["intent"] == "close")
    hedge = {"position_id": "hedge-SPY", "strategy": "hedge", "symbol": "SPY"}
    append(copy, "positions", *({**pos, **hedge, "time": when} for when in (t[1], t[3])))
    intents = ("hedge", "flatten", "hedge", "flatten")
    orders = [{**like, **hedge, "time": when, "intent": intent, "order_id": f"h-{n}"}
              for n, (when, intent) in enumerate(zip(t, intents, strict=False))]  # fmt: skip
    blocked = {**orders[0], "time": t[4], "order_id": "h-4", "status": "blocked", "filled": 0}
    append(copy, "orders", *orders, blocked)
    assert failing(audit_run(copy)) == {}
    append(copy, "orders", {**like, **hedge, "time": t[2], "intent": "roll", "order_id": "h-x"})
    (line,) = failing(audit_run(copy))["exit_fires_once"]
    assert line == f"{tick(t[2])}: roll order h-x (SPY, filled) for position hedge-SPY, closed " \
        f"{tick(t[1])}"  # fmt: skip


# ------------------------------------------------------------------ (d) limits after entries
def _entry_tick(run: Path) -> tuple[datetime, Row]:
    """A tick where an entry filled, and one of the open rows after it."""
    filled = {o["time"] for o in rows(run, "orders") if o["intent"] == "open" and o["filled"]}
    held = [r for r in rows(run, "positions") if r["time"] in filled and r["status"] == "open"]
    return held[0]["time"], held[0]


def _crowd(run: Path, like: Row) -> None:
    """Three more SPY positions after the tick of `like`: beyond two per underlying."""
    extra = [{**like, "position_id": f"SPY-extra-{n}", "symbol": "SPY"} for n in range(3)]
    append(run, "positions", *extra)


def test_a_limit_breached_after_an_entry_fails(copy: Path) -> None:
    t, like = _entry_tick(copy)
    _crowd(copy, like)
    found = failing(audit_run(copy))
    assert list(found) == ["limits_hold_after_entries"]
    lines = found["limits_hold_after_entries"]
    spy = next(x for x in lines if "limit spy_concentration" in x)
    assert spy.startswith(f"{tick(t)}: limit spy_concentration breached after entry ")
    assert "`count_positions(symbol = SPY) <= max_per_underlying` fails by" in spy


def test_a_limit_breached_before_trading_is_not_blamed_on_the_entry(copy: Path) -> None:
    t, like = _entry_tick(copy)
    _crowd(copy, like)
    (lines,) = failing(audit_run(copy)).values()
    limits = {line.split("limit ")[1].split()[0] for line in lines}
    assert "spy_concentration" in limits
    row = next(d for d in rows(copy, "decisions") if d["kind"] == "limit" and d["time"] == t)
    append(copy, "decisions", *({**row, "rule_id": limit, "status": "not_fired", "fired": True}
                                for limit in sorted(limits)))  # fmt: skip
    assert audit_run(copy).passed


def _edit_ruleset(run: Path, **changes: str) -> None:
    info = json.loads((run / "run.json").read_text())
    info["ruleset"] |= changes
    (run / "run.json").write_text(json.dumps(info))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"hash": "0123456789abcdef"}, "the run used 0123456789abcdef: its files changed since"),
        ({"name": "renamed"}, "cannot load the run's rule set 'renamed' ("),
    ],
)
def test_limits_of_edited_or_unknown_rules_cannot_be_checked(
    copy: Path, changes: dict[str, str], says: str
) -> None:
    _edit_ruleset(copy, **changes)
    report = audit_run(copy)
    (limits,) = [i for i in report.invariants if not i.passed]
    assert limits.name == "limits_hold_after_entries" and limits.checked == 0
    assert limits.note is not None and says in limits.note


def test_a_rule_set_not_found_by_name_can_be_given(copy: Path) -> None:
    _edit_ruleset(copy, name="renamed")
    assert audit_run(copy, ruleset="v6").passed


# ------------------------------------------------------------------ (e) the risk-state chain
def test_leaving_halted_without_an_operator_resume_fails(copy: Path) -> None:
    def resumed(r: Row) -> bool:
        return r["kind"] == "transition" and r["state_before"] == "HALTED"

    rewrite(copy, "risk_events", lambda r: {**r, "cause": "all clear"} if resumed(r) else r)
    left = next(r for r in rows(copy, "risk_events") if resumed(r))
    found = failing(audit_run(copy))
    assert found == {"risk_states_chain": (
        f"{tick(left['time'])}: left HALTED for {left['state_after']} without an operator "
        "resume (all clear)",
    )}  # fmt: skip


def test_a_state_that_disagrees_with_the_transitions_fails(copy: Path) -> None:
    t = ticks_in(copy, "HALTED")[5]
    rewrite(copy, "equity", lambda r: {**r, "risk_state": "ACTIVE"} if r["time"] == t else r)
    found = failing(audit_run(copy))
    assert found["risk_states_chain"] == (
        f"{tick(t)}: equity.risk_state is ACTIVE, the transitions say HALTED",
    )


def test_a_transition_that_breaks_the_chain_fails(copy: Path) -> None:
    t = ticks_in(copy, "HALTED")[5]
    last = rows(copy, "risk_events")[-1]
    append(copy, "risk_events", {**last, "time": t, "kind": "transition", "cause": "tampered",
                                 "state_before": "ACTIVE", "state_after": "HALTED"})  # fmt: skip
    found = failing(audit_run(copy))["risk_states_chain"]
    assert found == (
        f"{tick(t)}: transition ACTIVE→HALTED (tampered) does not follow the state before it, "
        "HALTED",
    )


# ------------------------------------------------------------------------------ bad input
def test_a_folder_without_run_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match=r"not a run folder \(no run.json\)"):
        audit_run(tmp_path)


def test_a_run_without_ticks_is_refused(tmp_path: Path) -> None:
    RunJournal.create(tmp_path / "run", {"ruleset": {"name": "v6"}}).close("partial")
    with pytest.raises(AuditError, match="holds no tick yet"):
        audit_run(tmp_path / "run")


def test_a_missing_table_is_named(copy: Path) -> None:
    shutil.rmtree(copy / "orders")
    with pytest.raises(AuditError, match="no 'orders' table"):
        load_run(copy)


def test_a_malformed_run_json_is_located(copy: Path) -> None:
    (copy / "run.json").write_text('{"format": 1,\n "status": }')
    with pytest.raises(AuditError, match=r"run.json:2:\d+: not valid JSON"):
        audit_run(copy)


def test_the_first_violations_are_listed_and_all_counted(copy: Path) -> None:
    t = ticks_in(copy, "REDUCING")[0]
    entry = next(o for o in rows(copy, "orders") if o["intent"] == "open" and o["filled"] > 0)
    append(copy, "orders", *(order(entry, time=t, order_id=f"x-{n}", position_id=None)
                             for n in range(5)))  # fmt: skip
    (inv,) = [i for i in audit_run(copy, max_lines=2).invariants if not i.passed]
    assert (len(inv.violations), inv.found) == (2, 5)
