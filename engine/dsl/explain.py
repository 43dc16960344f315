"""Explain output: a trace rendered for a terminal, or as plain JSON-able data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.dsl.ruleset import RuleSet
from engine.dsl.trace import Decision, RuleTrace, Trace, fmt_value

_MARK = {"fired": "✔", "not_fired": "✘", "unknown": "?", "skipped": "·"}


def render_text(
    rs: RuleSet, decisions: Sequence[Decision], trace: Trace, rule: str | None = None
) -> str:
    rev = f", git {rs.git_revision}" if rs.git_revision else ""
    out = [
        f"tick {trace.time.isoformat()}   rule set {rs.name} {rs.hash}{rev}",
        f"regime: {trace.regime or 'unknown'} (from {trace.regime_source})",
        "",
        "decisions:" if decisions else "decisions: none",
    ]
    for d in decisions:
        if rule is None or d.rule_id == rule:
            out.append(f"  → {d.describe()}" + (f"  — {d.reason}" if d.reason else ""))
    out += ["", "rules:"]
    for rt in trace.rules:
        if rule is not None and rt.rule_id != rule:
            continue
        out.extend(_rule_lines(rt))
    return "\n".join(out)


def _rule_lines(rt: RuleTrace) -> list[str]:
    status = rt.status.replace("_", " ")
    mark = _MARK[rt.status]
    if rt.kind == "limit" and rt.status in ("fired", "not_fired", "unknown"):
        # For a limit, the check holding is the good case; failing or unknown is a breach.
        status = (
            "check holds"
            if rt.status == "fired"
            else "BREACHED" + (" (unknown data)" if rt.status == "unknown" else "")
        )
        mark = "✔" if rt.status == "fired" else "!"
    head = f"  {mark} {rt.rule_id} [{rt.phase}] on {rt.subject}: {status}"
    if rt.note:
        head += f" ({rt.note})"
    lines = [f"{head}   {rt.location}"]
    for let in rt.lets:
        lines.append(f"      let {let.text} = {let.shown()}")
    for c in rt.conditions:
        mark = {True: "✔", False: "✘", None: "?"}[c.result]
        why = " ← first failing" if rt.failed_index == c.number else ""
        lines.append(f"      {mark} {c.text}{why}   {c.location}")
        if c.operands:
            shown = ",  ".join(f"{o.text} = {o.shown()}" for o in c.operands)
            lines.append(f"          {shown}")
        if c.distance is not None:
            sign = "+" if c.distance >= 0 else "-"
            lines.append(
                "          distance to threshold: "
                f"{sign}{fmt_value(abs(c.distance), c.distance_unit)}"
            )
    return lines


def to_data(rs: RuleSet, decisions: Sequence[Decision], trace: Trace | None) -> dict[str, Any]:
    return {
        "ruleset": {"name": rs.name, "hash": rs.hash, "git_revision": rs.git_revision},
        "decisions": [d.to_dict() for d in decisions],
        "trace": None if trace is None else trace.to_dict(),
    }
