"""The checked program's shape: frozen syntax nodes, each with its source location."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.dsl.source import Location, Source


@dataclass(frozen=True, slots=True)
class Node:
    loc: Location


# ------------------------------------------------------------------ expressions
@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: float | str | bool | None
    kind: str  # percent | money | days | number | string | bool | unknown
    text: str


@dataclass(frozen=True, slots=True)
class Path(Node):
    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Arg(Node):
    name: str
    value: Expr


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Neg(Node):
    operand: Expr


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Expr


@dataclass(frozen=True, slots=True)
class BinOp(Node):
    op: str  # + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # and | or
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    operands: tuple[Expr, ...]
    ops: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class In(Node):
    needle: Expr
    items: tuple[Expr, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class MatchArm(Node):
    name: str | None  # None for `else`
    value: Expr


@dataclass(frozen=True, slots=True)
class Match(Node):
    subject: Expr
    arms: tuple[MatchArm, ...]


Expr = Literal | Path | Call | Neg | Not | BinOp | BoolOp | Compare | In | Match


def children(x: Expr) -> tuple[Expr, ...]:
    if isinstance(x, Neg | Not):
        return (x.operand,)
    if isinstance(x, BinOp):
        return (x.left, x.right)
    if isinstance(x, BoolOp | Compare):
        return x.operands
    if isinstance(x, In):
        return (x.needle, *x.items)
    if isinstance(x, Match):
        return (x.subject, *(a.value for a in x.arms))
    if isinstance(x, Call):
        return (*x.args, *(k.value for k in x.kwargs))
    return ()


def depth_and_literals(e: Expr) -> tuple[int, list[Literal]]:
    """Nesting depth of an expression and its literals, without recursion (any input is safe)."""
    deepest, literals = 0, []
    level: list[Expr] = [e]
    while level:
        deepest += 1
        nxt: list[Expr] = []
        for node in level:
            if isinstance(node, Literal):
                literals.append(node)
            elif not isinstance(node, Path):
                nxt.extend(children(node))
        level = nxt
    return deepest, literals


# ------------------------------------------------------------------ declarations
@dataclass(frozen=True, slots=True)
class ParamDecl(Node):
    name: str
    unit: str
    unit_loc: Location
    default: Expr
    low: Expr | None
    high: Expr | None


@dataclass(frozen=True, slots=True)
class Let(Node):
    name: str
    value: Expr


@dataclass(frozen=True, slots=True)
class Action(Node):
    verb: str
    target: str | None
    args: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Clause(Node):
    """A clause as written, kept for structural checks (repeats, misplacement)."""

    keyword: str


@dataclass(frozen=True, slots=True)
class Block(Node):
    """A rule, limit, breaker, hedge or regime block.

    `kind` is the block keyword; `phase` is the rule phase, or the kind for policy blocks.
    `conditions` are the `when` / `check` / `trigger` lines, `actions` the `then` / `on_breach`.
    """

    kind: str
    id: str
    title: str | None
    phase: str | None
    phase_loc: Location | None
    priority: int
    symbols: tuple[str, ...] | None
    lets: tuple[Let, ...]
    conditions: tuple[Expr, ...]
    actions: tuple[Action, ...]
    reason: str | None
    cooldown: Expr | None = None
    reset: tuple[Expr, ...] | None = None  # None: no reset clause; () with reset_manual
    reset_manual: bool = False
    clauses: tuple[Clause, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class LegDecl(Node):
    name: str
    side: str
    side_loc: Location
    ratio: int
    right: str
    right_loc: Location
    selector: str  # delta | strike
    selector_loc: Location
    value: Expr


@dataclass(frozen=True, slots=True)
class StrategyDecl(Node):
    id: str
    title: str | None
    params: tuple[ParamDecl, ...]
    expiry_target: Expr | None
    expiry_within: Expr | None
    legs: tuple[LegDecl, ...]


@dataclass(frozen=True, slots=True)
class RuleFile:
    source: Source
    version: int
    params: tuple[ParamDecl, ...]
    blocks: tuple[Block, ...]
    strategies: tuple[StrategyDecl, ...]
