"""Rule tests: snapshots (or overrides of a named base) with the decisions they must produce."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.error import YAMLError

from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.ruleset import RuleSet
from engine.dsl.runtime import evaluate
from engine.dsl.source import Location, display_name
from engine.dsl.trace import Decision, Level
from engine.paths import RULES_DIR

_CASE_KEYS = {
    "name",
    "base",
    "snapshot",
    "set",
    "fired",
    "not_fired",
    "decisions",
    "not_decisions",
    "no_decisions",
}


@dataclass
class CaseResult:
    file: str
    name: str
    line: int
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Coverage:
    """Per condition (rule id, index): which outcomes the tests have seen."""

    seen: dict[tuple[str, int], set[bool | None]] = field(default_factory=dict)

    def add(self, rs: RuleSet, results: Sequence[Any]) -> None:
        for rt in results:
            for c in rt.conditions:
                self.seen.setdefault((rt.rule_id, c.number), set()).add(c.result)

    def summary(self, rs: RuleSet) -> tuple[int, int, int, list[str]]:
        total = evaluated = both = 0
        never: list[str] = []
        for cb in rs.blocks:
            for c in cb.conditions:
                total += 1
                outcomes = self.seen.get((cb.id, c.index), set())
                evaluated += bool(outcomes)
                both += {True, False} <= outcomes
                if not outcomes:
                    never.append(f"{cb.id}: {c.text}")
        return total, evaluated, both, never


def _err(path: Path, msg: str, line: int = 1, col: int = 1) -> DslError:
    return DslError([Diagnostic(Code.RULE_TEST, msg, Location(display_name(path), line, col))])


def _base_path(test_file: Path, base: str) -> Path:
    for folder in (test_file.parent / "snapshots", RULES_DIR / "snapshots"):
        for ext in (".yaml", ".yml", ".json"):
            p = folder / f"{base}{ext}"
            if p.is_file():
                return p
    raise _err(
        test_file,
        f"no base snapshot named '{base}' "
        "(looked in snapshots/ beside the test and in rules/snapshots/)",
    )


def run_file(rs: RuleSet, path: Path, coverage: Coverage) -> list[CaseResult]:
    from engine.state.snapshot_io import load_document, snapshot_from_document, with_overrides

    try:
        doc = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except (YAMLError, UnicodeDecodeError, OSError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _err(
            path,
            f"cannot read rule tests: {getattr(exc, 'problem', exc)}",
            mark.line + 1 if mark else 1,
            mark.column + 1 if mark else 1,
        ) from None
    cases = (doc or {}).get("cases") if isinstance(doc, Mapping) else None
    if not isinstance(cases, CommentedSeq) or not cases:
        raise _err(path, "a rule test file has a non-empty 'cases:' list")
    results = []
    for i, case in enumerate(cases):
        line = cases.lc.item(i)[0] + 1
        if not isinstance(case, Mapping):
            raise _err(path, "each case is a mapping", line)
        unknown = set(case) - _CASE_KEYS
        if unknown:
            raise _err(
                path,
                f"unknown key(s) in case: {', '.join(sorted(unknown))}; "
                f"keys: {', '.join(sorted(_CASE_KEYS))}",
                line,
            )
        base = case.get("snapshot") or case.get("base")
        if not base:
            raise _err(path, "a case needs 'base: NAME' or 'snapshot: FILE'", line)
        snap_path = (
            (path.parent / str(base)) if case.get("snapshot") else _base_path(path, str(base))
        )
        raw, source = load_document(snap_path)
        set_map = case.get("set") or {}
        overrides = dict(set_map)
        where = {}
        if hasattr(set_map, "lc"):
            for key in set_map:
                kl, kc = set_map.lc.key(key)
                where[key] = Location(display_name(path), kl + 1, kc + 1)
        snap = snapshot_from_document(with_overrides(raw, overrides, locations=where), source)
        decisions, trace = evaluate(rs, snap, Level.FULL)
        assert trace is not None
        coverage.add(rs, trace.rules)
        failures = _compare(case, decisions, trace.rules)
        results.append(
            CaseResult(display_name(path), str(case.get("name") or f"case {i + 1}"), line, failures)
        )
    return results


def _compare(
    case: Mapping[str, Any], decisions: Sequence[Decision], traces: Sequence[Any]
) -> list[str]:
    fired = {rt.rule_id for rt in traces if rt.status == "fired"}
    failures = []
    for rule in case.get("fired") or []:
        if rule not in fired:
            why = next((rt for rt in traces if rt.rule_id == rule), None)
            detail = ""
            if why is not None and why.failed_index is not None:
                c = why.conditions[why.failed_index]
                detail = (
                    f": '{c.text}' was {'unknown' if c.result is None else 'false'} ("
                    + ", ".join(f"{o.text} = {o.shown()}" for o in c.operands)
                    + ")"
                )
            elif why is not None:
                detail = f": {why.status}" + (f" ({why.note})" if why.note else "")
            failures.append(f"expected '{rule}' to fire{detail}")
    for rule in case.get("not_fired") or []:
        if rule in fired:
            failures.append(f"expected '{rule}' not to fire, but it fired")
    if case.get("no_decisions") and decisions:
        failures.append("expected no decisions, got: " + "; ".join(d.describe() for d in decisions))
    for want in case.get("decisions") or []:
        if not any(_matches(d, want) for d in decisions):
            got = "; ".join(d.describe() for d in decisions) or "none"
            failures.append(f"expected a decision {dict(want)}, got: {got}")
    for unwanted in case.get("not_decisions") or []:
        hits = [d for d in decisions if _matches(d, unwanted)]
        if hits:
            failures.append(
                f"expected no decision {dict(unwanted)}, got: "
                + "; ".join(d.describe() for d in hits)
            )
    return failures


def _matches(d: Decision, want: Mapping[str, Any]) -> bool:
    action = f"{d.verb}{' ' + d.target if d.target else ''}"
    checks = {
        "rule": d.rule_id,
        "action": action,
        "symbol": d.symbol,
        "position": d.position_id,
    }
    return all(str(checks.get(k)) == str(v) for k, v in want.items() if k in checks)


def run_tests(rs: RuleSet) -> tuple[list[CaseResult], Coverage]:
    coverage = Coverage()
    results: list[CaseResult] = []
    for test_file in rs.manifest.tests:
        results.extend(run_file(rs, test_file, coverage))
    return results, coverage
