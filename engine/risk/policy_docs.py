"""The risk policies reference page, generated from a loaded rule set (never written by hand).

`policy_reference(rs)` renders, for every limit, circuit breaker, hedge, regime and exit of
`rs`, its source text (conditions, actions, cool-down and reset), the params it reads with
their values and ranges, and the journal records it produces, after a fixed introduction to
the trading states, the risk gate's controls and the operator commands. The page
docs/risk/policies.md holds this text between its markers; a test fails when they drift.

    uv run python -m engine.risk.policy_docs [RULESET]           # print it
    uv run python -m engine.risk.policy_docs --write             # refresh docs/risk/policies.md
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from engine.dsl import ast
from engine.dsl.errors import DslError
from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.source import Location, Source
from engine.paths import ROOT
from engine.risk.gate import CLOSING, DEFAULT_CONTROLS, RISK_INCREASING

DOC = ROOT / "docs" / "risk" / "policies.md"
BEGIN, END = "<!-- policies:begin -->", "<!-- policies:end -->"
_WANTS = {"block_entries": "REDUCING", "halt": "HALTED", "flatten": "HALTED"}
_KEYWORD = {"limit": "Check", "breaker": "Trigger"}  # the others say `when`


class PolicyDocError(ValueError):
    """The reference page cannot be written: the message names the file and what is wrong."""


# ------------------------------------------------------------------ fixed introduction
_CONTROLS = {
    "halted": "**HALTED**: only closing orders pass — `trading HALTED by <cause>: only closing "
    "orders pass`",
    "reducing": "**REDUCING**: entries and risk-increasing adjustments are refused — "
    "`entries blocked (REDUCING) by <cause>` / `risk-increasing adjustments blocked "
    "(REDUCING) by <cause>`",
    "buying_power": "**buying power** (entries): the entry must fit in what is left after the "
    "entries passed before it this tick — `needs $A of buying power, $B available`",
    "limits": "**what-if limits** (every order but closing ones and smaller hedges): every "
    "limit is evaluated on the portfolio as it would be after this order and the orders passed "
    "before it this tick (closes count only for hedges, which are sized net of them); the "
    "order is refused if it breaches a limit that held, or takes a breached one further "
    'beyond — "would breach limit L: `check` fails by N (values) [file:line:col]" / '
    '"would take limit L further beyond: …"; other limits it breaches follow by name and '
    "amount. A limit that cannot be evaluated (unknown data) after the order counts as "
    "breached, even if it was unknown before.",
}


def _verbs(verbs: frozenset[str]) -> str:
    return ", ".join(f"`{v}`" for v in sorted(verbs))


def _intro() -> list[str]:
    controls = [
        f"{i}. {_CONTROLS.get(c.name, f'`{c.name}`')}" for i, c in enumerate(DEFAULT_CONTROLS, 1)
    ]
    return [
        "## How the policies act",
        "",
        "Every tick the engine evaluates regimes, circuit breakers, limits, hedges, exits and "
        "take-profits, adjustments, then entries; within a group, higher `priority` first, ties "
        "broken by file and id (the order used below). Money in USD, fractions shown as %, "
        "deltas in share-equivalents (beta-weighted: SPY shares).",
        "",
        "### Trading states",
        "",
        "| state | entered when | what it blocks |",
        "|---|---|---|",
        "| `ACTIVE` | no breaker tripped, no limit breached | nothing beyond the controls below |",
        "| `REDUCING` | a tripped breaker or a breached limit asks for `block_entries` | new "
        f"risk: {_verbs(RISK_INCREASING)} orders; exits, hedges and other adjustments pass |",
        "| `HALTED` | a breaker or limit asks for `halt` or `flatten`, or `v6 halt` | everything "
        f"but closing orders ({_verbs(CLOSING)}, the `close_tested` adjustment and a hedge "
        "made smaller); with `flatten`, every open position is closed, tick after tick, "
        "until `v6 resume` |",
        "",
        "The state is the most severe one wanted by a tripped breaker or a breached limit. A "
        "breaker stays tripped after its trigger clears, until its reset (below); a limit acts "
        "only while it is breached. `HALTED` is left only by `v6 resume`, even once its "
        "breakers have reset: someone must look before trading starts again. A `reset manual` "
        "breaker still firing on the tick of a resume stays tripped. Every change of "
        "state is a `risk_events` row of kind `transition` (cause, the rules behind it and "
        "their condition values), and every tick's state is `equity.risk_state`.",
        "",
        "### Before every order: the risk gate",
        "",
        "Each proposed order runs through these controls in order; the first objection blocks "
        "it. A blocked order is an `orders` row with `status` blocked and the objection in "
        "`status_reason`; the rule that asked for it gets `outcome` `blocked: <status_reason>` "
        "in its `decisions` row. `<cause>` lists every breaker, limit or operator command "
        "holding the state, comma-separated.",
        "",
        *controls,
        "",
        "### Operator commands",
        "",
        "- `v6 halt RUN_DIR [--flatten]` — the kill switch: `HALTED` from the next tick, for a "
        "running engine or a dry run, from any terminal; `--flatten` also closes every position.",
        "- `v6 resume RUN_DIR` — releases the breakers with `reset manual` and clears an "
        "operator halt: the state becomes what the breakers still tripped and the limits still "
        "breached ask for.",
        "- `v6 audit RUN_DIR` — reads a run's journal and verifies the invariants after the "
        "fact: no entry sent while `REDUCING` or `HALTED`, no sent order left the portfolio "
        "beyond a limit, an exit fired at most once per position.",
        "",
        "A command read by the engine is a `risk_events` row of kind `command` (`cause` "
        "operator, `detail` the command). An `alert` action has no table of its own in a "
        "run's journal: it is part of the `action` text of the `decisions` row of the breaker, "
        "hedge or rule that fired.",
    ]


# ------------------------------------------------------------------ one policy
class _Block:
    """One block with its source, for rendering."""

    def __init__(self, rs: RuleSet, b: ast.Block) -> None:
        self.rs, self.b = rs, b
        self.file = rs.program.block_files[b.id]
        self.src: Source = self.file.source

    def text(self, node: ast.Node) -> str:
        return self.src.text_between(node.loc).strip()

    def where(self, loc: Location | None = None) -> str:
        loc = loc or self.b.loc
        return f"{_shown(loc.file)}:{loc.line}"

    def wants(self) -> str | None:
        states = {_WANTS[a.verb] for a in self.b.actions if a.verb in _WANTS}
        return "HALTED" if "HALTED" in states else ("REDUCING" if states else None)

    def params(self) -> list[str]:
        resolved = (self.rs.program.resolutions.get(id(n)) for n in _nodes(self.b))
        used = {r.name for r in resolved if r is not None and r.kind == "param"}
        out = []
        for p in (p for p in self.file.params if p.name in used):  # in declaration order
            rng = ""
            if p.low is not None and p.high is not None:
                rng = f", range [{self.text(p.low)}, {self.text(p.high)}]"
            value = f"`{p.name}` = `{self.text(p.default)}`"
            out.append(f"{value} ({p.unit}{rng}; {self.where(p.loc)})")
        return out


def _nodes(b: ast.Block) -> Iterator[ast.Expr]:
    """Every expression node of the block: lets, conditions, reset and action arguments."""
    todo = [lt.value for lt in b.lets] + [*b.conditions, *(b.reset or ())]
    todo += [arg.value for a in b.actions for arg in a.args]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(ast.children(node))


def _shown(file: str) -> str:
    """A rule file's name relative to the repository, whatever the working directory."""
    p = Path(file)
    try:
        return str((p if p.is_absolute() else Path.cwd() / p).resolve().relative_to(ROOT))
    except ValueError:
        return file


def _code(text: str) -> str:
    """Inline code; the rule language has no backticks, but a string literal might."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _policy(x: _Block) -> list[str]:
    b = x.b
    title = f" — {b.title}" if b.title else ""
    out = [f"### `{b.id}`{title}", "", f"- **Where**: `{x.where()}`, priority {b.priority}"]
    if b.kind == "rule":
        out.append(f"- **Phase**: `{b.phase}`")
    if b.symbols:
        out.append(f"- **Applies to**: {', '.join(b.symbols)}")
    out += [f"- **Let**: {_code(x.text(lt))}" for lt in b.lets]
    keyword = _KEYWORD.get(b.kind, "When")
    conds = [_code(x.text(c)) for c in b.conditions]
    if len(conds) == 1:
        out.append(f"- **{keyword}**: {conds[0]}")
    elif conds:
        out.append(f"- **{keyword}** (all of):")
        out += [f"  - {c}" for c in conds]
    if b.actions:
        acts = ", ".join(_code(x.text(a)) for a in b.actions)
        wants = x.wants()
        acts += f" (→ `{wants}`)" if wants else ""
        out.append(f"- **{'On breach' if b.kind == 'limit' else 'Then'}**: {acts}")
    if b.reason:
        out.append(f"- **Reason**: {b.reason}")
    if b.kind == "breaker":
        out.append(f"- **Reset**: {_reset(x)}")
    params = x.params()
    if params:
        out.append("- **Parameters**: " + "; ".join(params))
    out.append(f"- **Journal**: {_journal(x)}")
    return [*out, ""]


def _reset(x: _Block) -> str:
    b = x.b
    cool = f"once {x.text(b.cooldown)} has passed since it last fired" if b.cooldown else ""
    if b.reset_manual:
        how = "manual: stays tripped until an operator runs `v6 resume RUN_DIR`"
    elif b.reset:
        conds = " and ".join(_code(x.text(c)) for c in b.reset)
        when = f"{cool} and " if cool else ""
        how = f"released {when}when {conds} holds (unknown keeps it tripped)"
    else:
        how = f"released {cool or 'as soon as the trigger stops holding'}"
    if x.wants() == "HALTED":
        how += "; `HALTED` itself is left only by `v6 resume`"
    return how


def _journal(x: _Block) -> str:
    """The values this policy writes into a run's journal (the columns: each section's top)."""
    b, rid = x.b, x.b.id
    wants = x.wants()
    verbs = {a.verb for a in b.actions}
    out = [f"`rule_id` {rid}"]
    if b.kind == "limit" and b.conditions:
        c = b.conditions[0]
        at = f"{_shown(c.loc.file)}:{c.loc.line}:{c.loc.column}"
        out.append(
            f'a refused order: "would breach limit {rid}: {_code(x.text(c))} fails by N (…) [{at}]"'
        )
    elif b.kind == "breaker":
        out.append(f"`risk_events` trip `wants {wants}`" if wants else "no `risk_events`")
    elif b.kind == "hedge":
        out.append(f"`orders.reason` {_reason(b)}")
    elif b.kind == "regime":
        out.append(f"`equity.regime` and `positions.entry_regime` {rid}")
    else:
        verb = "reduce" if verbs == {"reduce"} else "close"
        out.append(f"`orders.intent` {verb}, `orders.reason` {_reason(b)}")
        out.append(f"`positions.close_rule` {rid}, `close_reason` {_reason(b)}")
    if wants is not None:
        blocked = (
            f"trading HALTED by {rid}: only closing orders pass"
            if wants == "HALTED"
            else f"entries blocked (REDUCING) by {rid}"
        )
        held = "tripped" if b.kind == "breaker" else "breached"
        out.append(f'while {held}: `equity.risk_state` {wants}, other orders "{blocked}"')
    if "flatten" in verbs:
        out.append(f"`orders.intent` flatten for every open position, `positions.close_rule` {rid}")
    for a in b.actions:
        if a.verb == "hedge":
            instrument = next((x.text(g.value) for g in a.args if g.name == "instrument"), "SPY")
            kind = "stock" if instrument == "SPY" else "future"
            out.append(
                f"`orders.intent` hedge, `symbol` {instrument}, `position_id` hedge-{instrument}, "
                f"`fills.kind` {kind}"
            )
    return "; ".join(out)


def _reason(b: ast.Block) -> str:
    return f'"{b.reason}"' if b.reason else "the action's text"


# ------------------------------------------------------------------ the page
class _Section(NamedTuple):
    heading: str
    kind: str
    blurb: str
    journal: str  # the records every policy of the section writes


_SECTIONS = (
    _Section(
        "Limits", "limit",
        "Checked every tick on the portfolio, and before every order on the portfolio as it "
        "would be after it (the what-if control above).",
        "`decisions`: one row per tick (`kind` limit, `subject` portfolio). `fired` is true "
        "while the limit is breached, and then `action` and `outcome` say what it did; "
        "`status` is the check's own result: fired while it holds, not_fired (the check's text "
        "in `failed_condition`) while breached, unknown when it cannot be evaluated, which "
        "counts as breached; `trace` holds the operand values. An order the what-if control "
        "refuses is an `orders` row with `status` blocked and the `status_reason` shown below "
        "(\"would take limit L further beyond: …\" when it was already breached). A limit "
        "asking for a trading state holds it only while breached; a `risk_events` transition "
        "row names it when the state changes.",
    ),
    _Section(
        "Circuit breakers", "breaker",
        "Evaluated every tick before the limits; a breaker that fires is tripped until its "
        "reset.",
        "`decisions`: one row per tick (`kind` breaker, `subject` portfolio), fired on the "
        "ticks its trigger holds, with its actions in `action` and `trading state <state>` in "
        "`outcome`. `risk_events`: `trip` when it fires while not tripped (`detail` "
        "`wants <state>`, `values` the trigger's operands), `reset` when released (`detail` "
        "`tripped …, last fired …`, or `operator resume`), `transition` when the trading state "
        "changes because of it. A breaker asking for no trading state never trips.",
    ),
    _Section(
        "Hedges", "hedge",
        "Orders in SPY shares or ES futures toward a beta-weighted delta target. They pass "
        "`REDUCING` but not `HALTED`, and go through the what-if limits like any order.",
        "`decisions`: one row per tick (`kind` hedge, `subject` portfolio), fired when its "
        "conditions hold, with `outcome` `order <id> filled`, `blocked: …` or why no order "
        "(e.g. smaller than one unit). Its order: an `orders` row with `intent` hedge and "
        "`strategy` hedge; its `fills`; `positions` rows with `strategy` hedge while held; "
        "`equity.hedge_shares`, the SPY shares held.",
    ),
    _Section(
        "Regimes", "regime",
        "The market regime every rule reads as `market.regime`: the matching regime with the "
        "highest priority wins.",
        "`decisions`: one row per tick (`kind` regime, `subject` market); the first to match "
        "is fired and the later ones are skipped (`'<id>' matched first`).",
    ),
    _Section(
        "Exits", "exit",
        "Per position, phases `exit` and `take_profit`: first match wins, and a multi-leg "
        "position closes as one order. Closing orders are never refused by `REDUCING`, "
        "`HALTED` or the limits: a limit must not trap a position.",
        "`decisions`: one row per open position per tick (`kind` rule, `subject` the position "
        "id); once an exit fires for a position, the later ones are skipped. Its order: an "
        "`orders` row with `position_id`; its `fills`, one per leg; the position's final "
        "`positions` row has `status` closed and `realized_pnl`.",
    ),
)  # fmt: skip


def _members(rs: RuleSet, kind: str) -> list[ast.Block]:
    if kind == "exit":
        return [b for b in rs.program.blocks if b.kind == "rule"
                and b.phase in ("exit", "take_profit")]  # fmt: skip
    return [b for b in rs.program.blocks if b.kind == kind]


def policy_reference(rs: RuleSet) -> str:
    """Markdown: the introduction, then every limit, breaker, hedge, regime and exit of `rs`."""
    shown = [b for sec in _SECTIONS for b in _members(rs, sec.kind)]
    files = sorted({_shown(b.loc.file) for b in shown})
    names = ", ".join(f"`{f}`" for f in files) or "no file"
    out = [f"Rule set `{rs.name}`: the policies of {names}.", "", *_intro(), ""]
    for sec in _SECTIONS:
        blocks = _members(rs, sec.kind)
        out += [f"## {sec.heading} ({len(blocks)})", "", sec.blurb, ""]
        if not blocks:
            out += ["None in this rule set.", ""]
            continue
        out += [f"Journal records of every one: {sec.journal}", ""]
        for b in blocks:
            out += _policy(_Block(rs, b))
    return "\n".join(out).rstrip("\n") + "\n"


def write_doc(text: str, path: Path = DOC) -> None:
    """Replace what lies between the markers of `path` with `text`, atomically."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyDocError(f"{path}: cannot read it ({exc.strerror})") from None
    found = re.search(re.escape(BEGIN) + r"\n.*?" + re.escape(END), old, re.S)
    if found is None:
        raise PolicyDocError(f"{path}: no '{BEGIN}' ... '{END}' markers to write between")
    new = old[: found.start()] + f"{BEGIN}\n{text}{END}" + old[found.end() :]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)  # a reader sees the old page or the new one, never half of one


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.risk.policy_docs",
        description="Print the risk policies reference page.",
    )
    parser.add_argument("ruleset", nargs="?", default="v6", help="rule set name or manifest")
    parser.add_argument("--write", action="store_true", help=f"refresh {_shown(str(DOC))}")
    args = parser.parse_args(argv)
    try:
        text = policy_reference(load_ruleset(args.ruleset))
        if args.write:
            write_doc(text)
        else:
            sys.stdout.write(text)
    except (DslError, PolicyDocError) as exc:
        print(exc.render() if isinstance(exc, DslError) else f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
