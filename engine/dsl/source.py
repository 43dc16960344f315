"""Rule source text and locations: reading files safely and pointing into them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# A rule file is hand-written text; anything past this is a mistake (or an attack), and
# refusing it early keeps parse time bounded.
MAX_SOURCE_BYTES = 2_000_000


@dataclass(frozen=True, slots=True)
class Location:
    """A span in a source file; lines and columns are 1-based, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Source:
    """The decoded text of one rule file and the name it is reported under."""

    name: str
    text: str
    # Split once: traces and errors ask for many spans of the same file. Only "\n" ends a
    # line, as in the grammar (str.splitlines also splits on \x0c, \u2028, a lone \r …).
    lines: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lines = tuple(ln.removesuffix("\r") for ln in self.text.split("\n"))
        object.__setattr__(self, "lines", lines)

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def snippet(self, loc: Location) -> str:
        return self.text_between(loc)

    def text_between(self, loc: Location) -> str:
        """The exact source text a location spans (the condition text shown in traces)."""
        if loc.end_line is None or loc.end_column is None:
            return self.line_text(loc.line)
        lines = self.lines
        if loc.line == loc.end_line:
            return lines[loc.line - 1][loc.column - 1 : loc.end_column - 1]
        parts = [lines[loc.line - 1][loc.column - 1 :]]
        parts += [ln.strip() for ln in lines[loc.line : loc.end_line - 1]]
        parts.append(lines[loc.end_line - 1][: loc.end_column - 1].strip())
        return " ".join(p for p in parts if p)


def display_name(path: Path) -> str:
    """Paths in messages are relative to the working directory when that is shorter."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
