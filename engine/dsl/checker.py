"""Whole-program checks: declarations, clauses, actions, duplicates and reachability."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.dsl import ast
from engine.dsl.errors import Code, Diagnostic, DslError, did_you_mean
from engine.dsl.typecheck import Resolved, Scope, check_args, infer, literal_type
from engine.dsl.types import Ty, Unit, UnitError, convert_to, num
from engine.dsl.vocab import ACTIONS, ENUMS, PHASES, Param

_UNITS = {u.value: num(u) for u in Unit}

# Clauses each block kind accepts (beyond what the grammar already enforces).
_ALLOWED = {
    "entry": {"on", "priority", "symbols", "let", "when", "then", "reason"},
    "adjust": {"on", "priority", "let", "when", "then", "reason"},
    "exit": {"on", "priority", "let", "when", "then", "reason"},
    "take_profit": {"on", "priority", "let", "when", "then", "reason"},
}
_REQUIRED = {
    "rule": ("on", "then"),
    "limit": ("check", "on_breach"),
    "breaker": ("trigger", "then"),
    "hedge": ("when", "then"),
    "regime": ("when",),
}
# Blocks evaluated first-match-wins within a group: anything ranked below an unconditional
# block of the same group can never fire.
FIRST_MATCH_GROUPS = {
    "exit": "close",
    "take_profit": "close",
    "adjust": "adjust",
    "regime": "regime",
}


@dataclass(frozen=True)
class StrategyInfo:
    decl: ast.StrategyDecl
    params: dict[str, tuple[Ty, Any]]
    file: ast.RuleFile


@dataclass(frozen=True)
class Program:
    """A checked rule set: everything the compiler needs, and nothing unchecked."""

    files: tuple[ast.RuleFile, ...]
    blocks: tuple[ast.Block, ...]
    block_files: dict[str, ast.RuleFile]
    params: dict[str, dict[str, tuple[Ty, Any]]]  # per file name
    strategies: dict[str, StrategyInfo]
    resolutions: dict[int, Resolved]
    types: dict[int, Ty]


def sort_key(block: ast.Block) -> tuple[int, str, str]:
    """Higher priority first; ties broken by file, then id, so the order is deterministic."""
    return (-block.priority, block.loc.file, block.id)


_EXAMPLE = {"percent": "50%", "money": "$500", "price": "$5", "days": "45d"}
# Deeper expressions are rejected: every rule must cost a small, bounded amount, and Python's
# own parser limits how deeply generated code may nest.
MAX_DEPTH = 32


def _const(e: ast.Expr) -> Any:
    return e.value if isinstance(e, ast.Literal) else None


def _is_number(v: object) -> bool:
    return isinstance(v, float) and not isinstance(v, bool)


class _Checker:
    def __init__(self, files: Sequence[ast.RuleFile]) -> None:
        self.files = files
        self.diags: list[Diagnostic] = []
        self.resolutions: dict[int, Resolved] = {}
        self.types: dict[int, Ty] = {}
        self.params: dict[str, dict[str, tuple[Ty, Any]]] = {}
        self.strategies: dict[str, StrategyInfo] = {}

    def err(self, code: Code, msg: str, node: ast.Node, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, node.loc, hint))

    def scope(
        self, context: str, file: ast.RuleFile, params: dict[str, tuple[Ty, Any]] | None = None
    ) -> Scope:
        return Scope(
            context=context,
            params=self.params.get(file.source.name, {}) if params is None else params,
            strategies=frozenset(self.strategies),
            diagnostics=self.diags,
            resolutions=self.resolutions,
            types=self.types,
        )

    # ---------------------------------------------------------------- params
    def param_decls(
        self, decls: Sequence[ast.ParamDecl], file: ast.RuleFile
    ) -> dict[str, tuple[Ty, Any]]:
        out: dict[str, tuple[Ty, Any]] = {}
        for p in decls:
            ty = _UNITS.get(p.unit)
            if ty is None:
                self.diags.append(
                    Diagnostic(
                        Code.UNKNOWN_UNIT,
                        f"unknown unit '{p.unit}'",
                        p.unit_loc,
                        did_you_mean(p.unit, _UNITS) or "units: " + ", ".join(_UNITS),
                    )
                )
                continue
            if p.name in out:
                self.err(Code.DUPLICATE, f"param '{p.name}' is declared twice", p)
            valid = True
            for e in (p.default, p.low, p.high):
                if e is None:
                    continue
                if not isinstance(e, ast.Literal) or not _is_number(e.value):
                    self.err(
                        Code.TYPE_MISMATCH,
                        f"param '{p.name}' needs a number with its unit",
                        e,
                        f"e.g. {_EXAMPLE.get(p.unit, '1.0')}",
                    )
                    valid = False
                    continue
                try:
                    convert_to(literal_type(e), ty)
                except UnitError as exc:
                    self.err(
                        Code.UNIT_MISMATCH, f"param '{p.name}' is {p.unit}: {exc}", e, exc.hint
                    )
            if not valid:
                continue
            d = _const(p.default)
            lo = _const(p.low) if p.low else None
            hi = _const(p.high) if p.high else None
            if lo is not None and hi is not None and lo > hi:
                self.err(Code.OUT_OF_RANGE, f"range of '{p.name}' is empty: {lo} > {hi}", p)
            elif d is not None and ((lo is not None and d < lo) or (hi is not None and d > hi)):
                assert p.low is not None and p.high is not None
                self.err(
                    Code.OUT_OF_RANGE,
                    f"default of '{p.name}' is outside its range [{_text(p.low)}, {_text(p.high)}]",
                    p.default,
                )
            out[p.name] = (ty, d)
        return out

    # ---------------------------------------------------------------- strategies
    def strategy(self, s: ast.StrategyDecl, file: ast.RuleFile) -> None:
        if not self.sane([s.expiry_target, s.expiry_within, *(lg.value for lg in s.legs)]):
            return
        if s.id in self.strategies:
            first = self.strategies[s.id].decl.loc
            self.err(
                Code.DUPLICATE,
                f"strategy '{s.id}' is declared twice",
                s,
                f"first declared at {first}",
            )
        params = self.param_decls(s.params, file)
        sc = self.scope("strategy", file, params)
        if s.expiry_target is None or s.expiry_within is None:
            self.err(Code.MISSING_CLAUSE, f"strategy '{s.id}' needs an 'expiry' clause", s)
        else:
            for e in (s.expiry_target, s.expiry_within):
                self._want(e, num(Unit.DAYS), sc, "expiry")
        if not s.legs:
            self.err(Code.MISSING_CLAUSE, f"strategy '{s.id}' has no legs", s)
        seen: set[str] = set()
        for leg in s.legs:
            if leg.name in seen:
                self.err(Code.DUPLICATE, f"leg '{leg.name}' is declared twice", leg)
            for value, allowed, loc, what in (
                (leg.side, ("buy", "sell"), leg.side_loc, "side"),
                (leg.right, ("put", "call"), leg.right_loc, "right"),
                (leg.selector, ("delta", "strike"), leg.selector_loc, "selector"),
            ):
                if value not in allowed:
                    hint = did_you_mean(value, allowed) or "one of: " + ", ".join(allowed)
                    self.diags.append(
                        Diagnostic(Code.UNKNOWN_VALUE, f"'{value}' is not a leg {what}", loc, hint)
                    )
            if leg.ratio < 1:
                self.err(Code.OUT_OF_RANGE, "a leg ratio is at least 1", leg)
            sc.legs = frozenset(seen)
            want = num(Unit.DELTA) if leg.selector == "delta" else num(Unit.PRICE)
            self._want(leg.value, want, sc, f"leg {leg.selector}")
            seen.add(leg.name)
        self.strategies[s.id] = StrategyInfo(s, params, file)

    def _want(self, e: ast.Expr, ty: Ty, sc: Scope, what: str) -> None:
        t = infer(e, sc, ty)
        try:
            convert_to(t, ty)
        except UnitError as exc:
            self.err(Code.UNIT_MISMATCH, f"{what} must be {ty}: {exc}", e, exc.hint)

    # ---------------------------------------------------------------- blocks
    def sane(self, exprs: Sequence[ast.Expr | None]) -> bool:
        """Reject expressions nested too deeply, and numbers too large to be finite."""
        ok = True
        for e in exprs:
            if e is None:
                continue
            depth, literals = ast.depth_and_literals(e)
            if depth > MAX_DEPTH:
                self.err(
                    Code.TOO_DEEP,
                    f"expression nested too deeply ({depth} levels; the limit is {MAX_DEPTH})",
                    e,
                    "split it with 'let'",
                )
                ok = False
            for lit in literals:
                if isinstance(lit.value, float) and not math.isfinite(lit.value):
                    self.err(Code.OUT_OF_RANGE, f"number {lit.text} is too large", lit)
                    ok = False
        return ok

    def block(self, b: ast.Block, file: ast.RuleFile) -> None:
        exprs = [
            *(lt.value for lt in b.lets),
            *b.conditions,
            *(b.reset or ()),
            b.cooldown,
            *(a.value for act in b.actions for a in act.args),
        ]
        if not self.sane(exprs):
            return
        context = b.phase or "entry"
        where = next((c for c in b.clauses if c.keyword == "symbols"), b)
        for sym in b.symbols or ():
            if not (sym.isupper() and sym.isalnum() and sym[0].isalpha()):
                self.err(
                    Code.UNKNOWN_VALUE,
                    f"'{sym}' is not a ticker symbol",
                    where,
                    "symbols are upper case, e.g. SPY",
                )
        if b.symbols is not None and len(set(b.symbols)) != len(b.symbols):
            self.err(Code.DUPLICATE, "a symbol is listed twice in 'symbols'", where)
        if b.kind == "rule":
            if b.phase is None:
                self.err(
                    Code.MISSING_CLAUSE,
                    f"rule '{b.id}' needs 'on <phase>'",
                    b,
                    "phases: " + ", ".join(PHASES),
                )
                return
            if b.phase not in PHASES:
                assert b.phase_loc is not None
                self.diags.append(
                    Diagnostic(
                        Code.UNKNOWN_PHASE,
                        f"unknown phase '{b.phase}'",
                        b.phase_loc,
                        did_you_mean(b.phase, PHASES) or "phases: " + ", ".join(PHASES),
                    )
                )
                return
        if b.kind == "regime" and b.id not in ENUMS["regime"]:
            self.err(
                Code.UNKNOWN_VALUE,
                f"'{b.id}' is not a regime",
                b,
                did_you_mean(b.id, ENUMS["regime"]) or "regimes: " + ", ".join(ENUMS["regime"]),
            )
        self._clauses(b)
        sc = self.scope(context, file)
        for i, let in enumerate(b.lets):
            if let.name in sc.lets or let.name in sc.params:
                self.err(Code.DUPLICATE, f"'{let.name}' is already defined", let)
            sc.lets[let.name] = infer(let.value, sc)
            sc.let_index[let.name] = i
        for cond in b.conditions:
            t = infer(cond, sc)
            if t.kind not in ("bool", "unknown"):
                self.err(Code.TYPE_MISMATCH, f"a condition must be true or false, not {t}", cond)
            if isinstance(cond, ast.Literal) and cond.value is False:
                self.err(
                    Code.UNREACHABLE,
                    f"{b.kind} '{b.id}' can never fire: condition is 'false'",
                    cond,
                )
        for e in b.reset or ():
            if infer(e, sc).kind not in ("bool", "unknown"):
                self.err(Code.TYPE_MISMATCH, "a reset condition must be true or false", e)
        if b.cooldown is not None:
            self._want(b.cooldown, num(Unit.DAYS), sc, "cooldown")
        for action in b.actions:
            self.action(action, b, sc)

    def _clauses(self, b: ast.Block) -> None:
        seen: dict[str, ast.Clause] = {}
        allowed = _ALLOWED.get(b.phase or "") if b.kind == "rule" else None
        for c in b.clauses:
            if c.keyword != "let" and c.keyword in seen:
                self.err(
                    Code.REPEATED_CLAUSE,
                    f"'{c.keyword}' appears twice in {b.kind} '{b.id}'",
                    c,
                    f"first at {seen[c.keyword].loc}",
                )
            seen[c.keyword] = c
            if allowed is not None and c.keyword not in allowed:
                self.err(Code.BAD_CLAUSE, f"'{c.keyword}' does not apply to {b.phase} rules", c)
        for need in _REQUIRED[b.kind]:
            if need not in seen and not (need == "on" and b.phase):
                self.err(Code.MISSING_CLAUSE, f"{b.kind} '{b.id}' needs a '{need}' clause", b)

    def action(self, a: ast.Action, b: ast.Block, sc: Scope) -> None:
        spec = ACTIONS.get(a.verb)
        context = b.phase if b.kind == "rule" else b.kind
        if spec is None:
            self.err(
                Code.UNKNOWN_ACTION,
                f"unknown action '{a.verb}'",
                a,
                did_you_mean(a.verb, ACTIONS) or "actions: " + ", ".join(ACTIONS),
            )
            return
        if context not in spec.contexts:
            self.err(
                Code.WRONG_CONTEXT,
                f"'{a.verb}' cannot be used in {context} "
                f"{'rules' if b.kind == 'rule' else 'blocks'}",
                a,
                "allowed in: " + ", ".join(spec.contexts),
            )
            return
        params = spec.params
        if spec.target is None and a.target is not None:
            self.err(Code.BAD_CLAUSE, f"'{a.verb}' takes no target, got '{a.target}'", a)
        elif spec.target is not None and a.target is None:
            self.err(
                Code.MISSING_ARGUMENT, f"'{a.verb}' needs a {spec.target.replace('_', ' ')}", a
            )
            return
        elif spec.target == "strategy" and a.target is not None:
            info = self.strategies.get(a.target)
            if info is None:
                self.err(
                    Code.UNKNOWN_STRATEGY,
                    f"unknown strategy '{a.target}'",
                    a,
                    did_you_mean(a.target, self.strategies)
                    or "strategies: " + ", ".join(sorted(self.strategies)),
                )
                return
            params = params + tuple(Param(n, t, False, v) for n, (t, v) in info.params.items())
        elif (
            spec.target is not None and a.target is not None and a.target not in ENUMS[spec.target]
        ):
            self.err(
                Code.UNKNOWN_LEG if spec.target == "leg_role" else Code.UNKNOWN_VALUE,
                f"'{a.target}' is not a {spec.target.replace('_', ' ')}",
                a,
                did_you_mean(a.target, ENUMS[spec.target])
                or "one of: " + ", ".join(ENUMS[spec.target]),
            )
        check_args(a, params, a.args, sc, f"'{a.verb}{' ' + a.target if a.target else ''}'")
        if spec.target == "strategy" and a.target in self.strategies:
            self._strategy_ranges(a, self.strategies[a.target])

    def _strategy_ranges(self, a: ast.Action, info: StrategyInfo) -> None:
        decls = {p.name: p for p in info.decl.params}
        for arg in a.args:
            p = decls.get(arg.name)
            v = _const(arg.value)
            r = self.resolutions.get(id(arg.value))
            if r is not None and r.kind == "param":
                v = r.value  # a param's default must also respect the strategy's range
            if p is None or not isinstance(v, float):
                continue
            lo = _const(p.low) if p.low else None
            hi = _const(p.high) if p.high else None
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                assert p.low is not None and p.high is not None
                self.err(
                    Code.OUT_OF_RANGE,
                    f"{arg.name} = {_text(arg.value)} is outside the range "
                    f"[{_text(p.low)}, {_text(p.high)}] declared by strategy '{info.decl.id}'",
                    arg.value,
                )

    # ---------------------------------------------------------------- program
    def run(self) -> Program:
        for f in self.files:
            self.params[f.source.name] = self.param_decls(f.params, f)
        for f in self.files:
            for s in f.strategies:
                self.strategy(s, f)
        first: dict[str, ast.Block] = {}
        block_files: dict[str, ast.RuleFile] = {}
        for f in self.files:
            for b in f.blocks:
                if b.id in first:
                    self.err(
                        Code.DUPLICATE,
                        f"id '{b.id}' is used twice",
                        b,
                        f"first used at {first[b.id].loc}",
                    )
                first.setdefault(b.id, b)
                block_files[b.id] = f
                self.block(b, f)
        blocks = tuple(sorted(first.values(), key=sort_key))
        self._reachability(blocks)
        if self.diags:
            # An operand may be typed twice (to resolve a bare enum name from the other side).
            unique = list(dict.fromkeys(self.diags))
            raise DslError(
                sorted(unique, key=lambda d: (d.location.file, d.location.line, d.location.column)),
                {f.source.name: f.source for f in self.files},
            )
        return Program(
            tuple(self.files),
            blocks,
            block_files,
            self.params,
            self.strategies,
            self.resolutions,
            self.types,
        )

    def _reachability(self, blocks: Sequence[ast.Block]) -> None:
        shadow: dict[str, ast.Block] = {}
        for b in blocks:
            group = FIRST_MATCH_GROUPS.get(b.phase or "")
            if group is None:
                continue
            if group in shadow:
                s = shadow[group]
                self.err(
                    Code.UNREACHABLE,
                    f"{b.kind} '{b.id}' can never fire: '{s.id}' "
                    f"(priority {s.priority}) always matches first",
                    b,
                    f"see {s.loc}",
                )
            elif all(isinstance(c, ast.Literal) and c.value is True for c in b.conditions):
                shadow[group] = b


def _text(e: ast.Expr) -> str:
    return e.text if isinstance(e, ast.Literal) else "value"


def check(files: Sequence[ast.RuleFile]) -> Program:
    """Check a rule set's files together; raises DslError listing every problem found."""
    return _Checker(files).run()


__all__ = ["FIRST_MATCH_GROUPS", "Program", "StrategyInfo", "check", "sort_key"]
