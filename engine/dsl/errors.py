"""Diagnostics a trader can act on: stable codes, file:line:col, the line with a caret."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from engine.dsl.source import Location, Source


class Code(str, Enum):
    """Stable error codes. Never renumber: traders and tools match on them."""

    # reading and syntax
    ENCODING = "V6E001"
    TOO_LARGE = "V6E002"
    EMPTY = "V6E003"
    SYNTAX = "V6E010"
    UNEXPECTED_END = "V6E011"
    BAD_CHARACTER = "V6E012"
    VERSION = "V6E020"
    # names
    UNKNOWN_NAME = "V6E100"
    UNKNOWN_FUNCTION = "V6E101"
    UNKNOWN_ACTION = "V6E102"
    UNKNOWN_PHASE = "V6E103"
    UNKNOWN_UNIT = "V6E104"
    UNKNOWN_STRATEGY = "V6E105"
    UNKNOWN_ARGUMENT = "V6E106"
    UNKNOWN_VALUE = "V6E107"
    UNKNOWN_LEG = "V6E108"
    WRONG_CONTEXT = "V6E110"
    # types and units
    UNIT_MISMATCH = "V6E200"
    TYPE_MISMATCH = "V6E201"
    NOT_EXHAUSTIVE = "V6E202"
    OUT_OF_RANGE = "V6E203"
    MISSING_ARGUMENT = "V6E204"
    # structure
    DUPLICATE = "V6E300"
    MISSING_CLAUSE = "V6E301"
    REPEATED_CLAUSE = "V6E302"
    UNREACHABLE = "V6E303"
    BAD_CLAUSE = "V6E304"
    TOO_DEEP = "V6E305"
    # rule sets, snapshots and rule tests
    MANIFEST = "V6E400"
    FILE_NOT_FOUND = "V6E401"
    SNAPSHOT = "V6E410"
    RULE_TEST = "V6E420"


_WINDOW = 120


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located problem. `hint` is the "did you mean" or the fix, when there is one."""

    code: Code
    message: str
    location: Location
    hint: str | None = None

    def render(self, source: Source | None = None) -> str:
        loc = self.location
        out = [f"{loc}: error {self.code.value}: {self.message}"]
        if source is not None and loc.line > 0:
            text = source.line_text(loc.line).expandtabs(1).rstrip("\r")
            col = loc.column
            if len(text) > _WINDOW:
                # A window around the caret keeps a generated or minified line readable.
                start = max(0, min(col - 1 - _WINDOW // 3, len(text) - _WINDOW))
                text = ("…" if start else "") + text[start : start + _WINDOW] + "…"
                col = col - start + (1 if start else 0)
                loc = Location(
                    loc.file,
                    loc.line,
                    col,
                    loc.end_line,
                    None
                    if loc.end_column is None
                    else loc.end_column - start + (1 if start else 0),
                )
            gutter = f"{loc.line:>5} | "
            out.append(f"{gutter}{text}")
            width = 1
            if loc.end_line == loc.line and loc.end_column is not None:
                width = max(1, loc.end_column - loc.column)
            width = max(1, min(width, len(text) - loc.column + 2))
            out.append(" " * (len(gutter) - 2) + "| " + " " * (loc.column - 1) + "^" * width)
        if self.hint:
            out.append(f"  = {self.hint}")
        return "\n".join(out)


@dataclass
class DslError(Exception):
    """Raised with every diagnostic found, so one run shows all the errors in a file."""

    diagnostics: Sequence[Diagnostic]
    sources: dict[str, Source] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources.get(d.location.file)) for d in self.diagnostics)

    @property
    def codes(self) -> list[str]:
        return [d.code.value for d in self.diagnostics]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidates by edit distance, as a hint, or None if nothing is close."""
    import difflib

    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
    if not close and "." in name:
        # A wrong last segment ("underlying.iv_rnk"): compare on the last segment too.
        head, _, tail = name.rpartition(".")
        same_head = [c for c in pool if c.startswith(head + ".")]
        tails = difflib.get_close_matches(tail, [c.rpartition(".")[2] for c in same_head], n=3)
        close = [f"{head}.{t}" for t in tails]
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
