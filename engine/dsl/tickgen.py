"""One generated Python function per tick: regimes, breakers, limits, hedges, positions, entries.

Two variants come from the same emitter: `tick_off(S, X)` returns decisions only, and
`tick_traced(S, X, rec)` also appends one compact record per rule evaluation (every condition
result, operand value, distance and let). Both follow the same order and first-match rules, so
live, dry-run and explain modes cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from engine.dsl import ast, helpers
from engine.dsl.checker import Program
from engine.dsl.compiler import NOT_CONST, ConstPool, ExprGen, block_info, condition_operands
from engine.dsl.trace import ActionInfo, BlockInfo, Decision, unit_name
from engine.dsl.types import UNKNOWN, Ty
from engine.dsl.vocab import ACTIONS

GROUPS = ("regime", "breaker", "limit", "hedge", "close", "adjust", "entry")
_GROUP_OF = {"exit": "close", "take_profit": "close"}


@dataclass(frozen=True)
class CompiledProgram:
    """The tick functions of one program. The traced variant (explain, rule tests, journals
    with traces) is generated and compiled on first use: a process that never traces never
    pays for it."""

    program: Program = field(repr=False)
    groups: dict[str, tuple[int, ...]]  # group name -> block indexes, in evaluation order
    actions: tuple[ActionInfo, ...]
    tick_off: Callable[..., list[Decision]]
    resets: Callable[..., dict[str, bool | None]]  # breaker id -> reset conditions hold now
    # The limits alone, traced: `limits(S, X, rec)` for the what-if check of a proposed order.
    limits: Callable[..., list[Decision]]
    breaker_policies: tuple[BreakerPolicy, ...]
    count_keys: frozenset[tuple[bool, bool]]  # position-count shapes the rules read
    off_source: str = field(repr=False)
    _consts: ConstPool = field(repr=False)
    _action_names: dict[int, list[str]] = field(repr=False)
    _namespace: dict[str, Any] = field(repr=False)

    @cached_property
    def blocks(self) -> tuple[BlockInfo, ...]:
        return tuple(block_info(b, self.program) for b in self.program.blocks)

    @cached_property
    def traced_source(self) -> str:
        em = _Emitter(self.program, self._consts, self._action_names, traced=True)
        _emit_tick(em, self.program, {k: list(v) for k, v in self.groups.items()})
        return "\n".join(em.out) + "\n"

    @property
    def source(self) -> str:
        """Both generated variants, for inspection and tests."""
        return self.off_source + "\n\n" + self.traced_source

    @cached_property
    def tick_traced(self) -> Callable[..., list[Decision]]:
        source = self.traced_source
        self._namespace.update(self._consts.values)  # constants the traced variant added
        exec(compile(source, "<v6-rules-traced>", "exec"), self._namespace)
        fn: Callable[..., list[Decision]] = self._namespace["_tick_traced"]
        return fn


def group_of(b: ast.Block) -> str:
    phase = b.phase or b.kind
    return _GROUP_OF.get(phase, phase)


class _Emitter:
    def __init__(
        self, program: Program, consts: ConstPool, actions: dict[int, list[str]], traced: bool
    ) -> None:
        self.p, self.traced, self.actions = program, traced, actions
        self.g = ExprGen(program, consts)
        self.out: list[str] = []

    def w(self, indent: int, text: str) -> None:
        self.out.append("    " * indent + text)

    def block(
        self,
        n: int,
        b: ast.Block,
        ind: int,
        subject: str,
        sym: str,
        pos: str,
        first_match: bool,
        on_fire: Sequence[str] = (),
    ) -> None:
        """Evaluate block n; on firing append its decisions (a limit acts when its check fails)."""
        g = self.g
        g.let_slots, g.pre = {f"{lt.name}": f"_l{i}" for i, lt in enumerate(b.lets)}, {}
        if first_match and self.traced:
            self.w(ind, "if _done:")
            self.w(ind + 1, f"_rec(('s', {n}, {subject}, _first))")
            self.w(ind, "else:")
            ind += 1
        elif first_match:
            self.w(ind, "if not _done:")
            ind += 1
        self.w(ind, "try:")
        body = ind + 1
        for i, lt in enumerate(b.lets):
            self.w(body, f"_l{i} = {g.expr(lt.value)}")
        if self.traced:
            self._traced_conditions(n, b, body, subject)
        else:
            conds = " and ".join(g.holds(c) for c in b.conditions) or "True"
            self.w(body, f"_f = {conds}")
        acts = "not _f" if b.kind == "limit" else "_f"
        self.w(body, f"if {acts}:")
        for code in self._decisions(b, sym, pos, none_args=False):
            self.w(body + 1, code)
        for code in on_fire:
            self.w(body + 1, code)
        if first_match:
            self.w(body + 1, "_done = True")
            if self.traced:
                what = f"regime '{b.id}'" if b.kind == "regime" else f"'{b.id}'"
                self.w(body + 1, f"_first = {g.const(what + ' matched first')}")
        # Only data problems become "unknown"; an engine bug (NameError, …) must surface.
        self.w(ind, "except _DATA_ERRORS as _x:")
        if self.traced:
            self.w(ind + 1, f"_rec(('x', {n}, {subject}, _ename(_x)))")
        if b.kind == "limit":  # a limit that cannot be evaluated counts as breached
            for code in self._decisions(b, sym, pos, none_args=True):
                self.w(ind + 1, code)
        else:
            self.w(ind + 1, "pass")

    def _traced_conditions(self, n: int, b: ast.Block, ind: int, subject: str) -> None:
        g = self.g
        results, operands = [], []
        for i, c in enumerate(b.conditions):
            ops = condition_operands(c, self.p)
            order = sorted(
                ops,
                key=lambda o: 0 if isinstance(o, ast.Path) else 1 if isinstance(o, ast.Call) else 2,
            )
            for o in order:
                code = g.expr(o)
                temp = f"_v{len(g.pre)}"
                self.w(ind, f"{temp} = {code}")
                g.pre[id(o)] = temp
            self.w(ind, f"_c{i} = {g.expr(c)}")
            results.append(f"_c{i}")
            operands.append("(" + "".join(g.pre[id(o)] + ", " for o in ops) + ")")
        self.w(ind, "_f = " + (" and ".join(f"{r} is True" for r in results) or "True"))
        lets = "(" + "".join(f"_l{i}, " for i in range(len(b.lets))) + ")"
        self.w(
            ind,
            f"_rec(('e', {n}, {subject}, ({''.join(r + ', ' for r in results)}), "
            f"({''.join(o + ', ' for o in operands)}), {lets}))",
        )

    def _decisions(self, b: ast.Block, sym: str, pos: str, none_args: bool) -> list[str]:
        out = []
        for action, info_name in zip(b.actions, self.actions[id(b)], strict=True):
            if none_args or not action.args:
                args = (
                    self.g.const(tuple((a.name, None) for a in action.args))
                    if action.args
                    else "()"
                )
            elif all(self.g.static(a.value) is not NOT_CONST for a in action.args):
                args = self.g.const(tuple((a.name, self.g.static(a.value)) for a in action.args))
            else:
                args = (
                    "("
                    + "".join(f"({a.name!r}, {self.g.expr(a.value)}), " for a in action.args)
                    + ")"
                )
            # tuple.__new__ skips the namedtuple's Python-level __new__: same object, faster.
            out.append(f"_ap(_new(_D, (_T, _HS, {info_name}, {args}, {sym}, {pos})))")
        return out


def _emit_tick(e: _Emitter, program: Program, groups: dict[str, list[int]]) -> None:
    blocks = program.blocks
    rec = ", _rec" if e.traced else ""
    e.w(0, f"def {'_tick_traced' if e.traced else '_tick_off'}(S, X{rec}):")
    e.w(1, "M = S.market; PF = S.portfolio; R = S.risk; P = None; _E = U = X.empty_u")
    e.w(1, "_out = []; _ap = _out.append; _ug = S.underlyings.get; _T = X.time; _HS = X.hash")
    e.w(1, "_first = None")
    if groups["regime"]:
        e.w(1, "if X.regime is None:")
        e.w(2, "_done = False")
        for n in groups["regime"]:
            b = blocks[n]
            e.block(
                n,
                b,
                2,
                "'market'",
                "None",
                "None",
                True,
                on_fire=[f"X.regime = {b.id!r}", "X.regime_source = 'policy'"],
            )
    for group in ("breaker", "limit", "hedge"):
        for n in groups[group]:
            e.block(n, blocks[n], 1, "'portfolio'", "None", "None", False)
    if groups["close"] or groups["adjust"]:
        e.w(1, "for P in X.positions:")
        e.w(2, "U = _ug(P.symbol, _E)")
        e.w(2, "_done = False")
        for n in groups["close"]:
            e.block(n, blocks[n], 2, "P.id", "P.symbol", "P.id", True)
        if groups["adjust"]:
            e.w(2, "if _done:")
            if e.traced:
                for n in groups["adjust"]:
                    e.w(3, f"_rec(('s', {n}, P.id, 'position is being closed'))")
            else:
                e.w(3, "pass")
            e.w(2, "else:")
            for n in groups["adjust"]:
                e.block(n, blocks[n], 3, "P.id", "P.symbol", "P.id", True)
        e.w(1, "P = None")
    if groups["entry"]:
        e.w(1, "for _sym in X.symbols:")
        e.w(2, "U = _ug(_sym)")
        e.w(2, "_done = False")
        for n in groups["entry"]:
            b = blocks[n]
            ind = 2
            if b.symbols is not None:
                e.w(2, f"if _sym in {e.g.const(frozenset(b.symbols))}:")
                ind = 3
            e.block(n, b, ind, "_sym", "_sym", "None", True)
    e.w(1, "return _out")


def _emit_limits(e: _Emitter, program: Program, limits: list[int]) -> None:
    """`_limits(S, X, _rec)`: every limit, traced, on a hypothetical portfolio (what-if)."""
    e.w(0, "def _limits(S, X, _rec):")
    e.w(1, "M = S.market; PF = S.portfolio; R = S.risk; P = None; _E = U = X.empty_u")
    e.w(1, "_out = []; _ap = _out.append; _ug = S.underlyings.get; _T = X.time; _HS = X.hash")
    for n in limits:
        e.block(n, program.blocks[n], 1, "'portfolio'", "None", "None", False)
    e.w(1, "return _out")


def _emit_resets(e: _Emitter, program: Program, breakers: list[int]) -> None:
    """`_resets(S, X)`: for each breaker with a `reset when` clause, whether every reset
    condition holds now (True), fails (False) or cannot be evaluated (None: stays tripped)."""
    e.w(0, "def _resets(S, X):")
    e.w(1, "M = S.market; PF = S.portfolio; R = S.risk; P = None; _E = U = X.empty_u")
    e.w(1, "_out = {}")
    for n in breakers:
        b = program.blocks[n]
        if not b.reset:
            continue
        e.g.let_slots, e.g.pre = {}, {}
        e.w(1, "try:")
        ok = " and ".join(e.g.holds(c) for c in b.reset)
        bad = " or ".join(e.g.fails(c) for c in b.reset)
        e.w(2, f"_out[{b.id!r}] = True if ({ok}) else (False if ({bad}) else None)")
        e.w(1, "except _DATA_ERRORS:")
        e.w(2, f"_out[{b.id!r}] = None")
    e.w(1, "return _out")


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """How a tripped breaker is released: after `cooldown_days` (None: at once) and when its
    reset conditions hold (`resets`), or only by an operator (`manual`)."""

    id: str
    cooldown_days: float | None
    manual: bool
    resets: bool  # has a `reset when` clause


def _breaker_policy(b: ast.Block, g: ExprGen) -> BreakerPolicy:
    cooldown = None if b.cooldown is None else float(g.static(b.cooldown))
    return BreakerPolicy(b.id, cooldown, b.reset_manual, bool(b.reset))


def _declared_params(program: Program, a: ast.Action) -> dict[str, Ty]:
    """The declared type of each argument of an action (a strategy's params for `open`)."""
    spec = ACTIONS[a.verb]
    out = {p.name: p.ty for p in spec.params}
    if spec.target == "strategy" and a.target in program.strategies:
        out.update({n: t for n, (t, _) in program.strategies[a.target].params.items()})
    return out


def _error_name(x: BaseException) -> str:
    return type(x).__name__


def compile_program(program: Program) -> CompiledProgram:
    """Compile a checked program into its two tick functions and static trace info."""
    groups: dict[str, list[int]] = {g: [] for g in GROUPS}
    for n, b in enumerate(program.blocks):
        groups[group_of(b)].append(n)
    consts = ConstPool()
    actions: list[ActionInfo] = []
    action_names: dict[int, list[str]] = {}
    for b in program.blocks:
        names = []
        for a in b.actions:
            names.append(f"_a{len(actions)}")
            declared = _declared_params(program, a)
            actions.append(
                ActionInfo(
                    b.id,
                    b.kind,
                    b.phase or b.kind,
                    a.verb,
                    a.target,
                    tuple(x.name for x in a.args),
                    tuple(
                        unit_name(declared.get(x.name) or program.types.get(id(x.value), UNKNOWN))
                        for x in a.args
                    ),
                    b.reason or b.title,
                    b.priority,
                    str(b.loc),
                )
            )
        action_names[id(b)] = names
    em = _Emitter(program, consts, action_names, traced=False)
    _emit_tick(em, program, groups)
    em.out.append("")
    _emit_resets(em, program, groups["breaker"])
    policies = tuple(_breaker_policy(program.blocks[n], em.g) for n in groups["breaker"])
    limits_em = _Emitter(program, consts, action_names, traced=True)
    _emit_limits(limits_em, program, groups["limit"])
    off_source = "\n".join([*em.out, "", *limits_em.out]) + "\n"
    namespace: dict[str, Any] = {
        "__builtins__": {"abs": abs},
        "H": helpers,
        "_D": Decision,
        "_new": tuple.__new__,
        "_ename": _error_name,
        "_DATA_ERRORS": (ArithmeticError, TypeError, ValueError, AttributeError, LookupError),
        **consts.values,
        **{f"_a{i}": a for i, a in enumerate(actions)},
    }
    exec(compile(off_source, "<v6-rules>", "exec"), namespace)
    return CompiledProgram(
        program=program,
        groups={k: tuple(v) for k, v in groups.items()},
        actions=tuple(actions),
        tick_off=namespace["_tick_off"],
        resets=namespace["_resets"],
        limits=namespace["_limits"],
        breaker_policies=policies,
        count_keys=frozenset(consts.count_keys),
        off_source=off_source,
        _consts=consts,
        _action_names=action_names,
        _namespace=namespace,
    )
