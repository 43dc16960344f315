"""Output lines for the formatter, and weaving the source's comments and blank lines back in."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Literal

# How a blank line before a printed line is decided: never, kept if the source had one, always.
Blank = Literal["none", "keep", "one"]


@dataclass(frozen=True, slots=True)
class Comment:
    pos: int
    text: str
    trailing: bool  # code precedes it on its source line


@dataclass(slots=True)
class Line:
    """One output line; `pos` is the source offset of the first code it prints."""

    indent: int
    pos: int
    lead: Blank = "keep"
    tail: bool = True  # may a blank line separate it from an own-line comment just above?
    closer: bool = False
    text: str = ""


@dataclass
class Layout:
    """Lines under construction, in source order."""

    lines: list[Line] = field(default_factory=list)

    @classmethod
    def scratch(cls, column: int) -> Layout:
        """An empty layout whose first line starts at `column`, for measuring a fragment."""
        return cls([Line(column, -1)])

    def line(
        self, indent: int, pos: int, lead: Blank = "keep", tail: bool = True, closer: bool = False
    ) -> None:
        self.lines.append(Line(indent, pos, lead, tail, closer))

    def write(self, text: str) -> None:
        self.lines[-1].text += text

    @property
    def indent(self) -> int:
        return self.lines[-1].indent

    @property
    def column(self) -> int:
        return self.lines[-1].indent + len(self.lines[-1].text)


class SourceText:
    """The parsed text with its comments recovered (the grammar folds them into line breaks)."""

    def __init__(self, text: str) -> None:
        self.text = text
        raw_lines = text.split("\n")
        self._starts: list[int] = []
        offset = 0
        for raw in raw_lines:
            self._starts.append(offset)
            offset += len(raw) + 1
        # A line holding only a backslash merely continues the one before: as good as blank.
        self._blank = [raw.strip(" \t\f\r\\") == "" for raw in raw_lines]
        self.comments: list[Comment] = []
        self._comment_end: list[int] = []
        for start, raw in zip(self._starts, raw_lines, strict=True):
            col = _comment_column(raw)
            if col is not None:
                body = raw[col:].rstrip().expandtabs(4)
                self.comments.append(Comment(start + col, body, raw[:col].strip() != ""))
                self._comment_end.append(start + len(raw))
        self._comment_pos = [c.pos for c in self.comments]

    def has_comment(self, start: int, end: int) -> bool:
        i = bisect_right(self._comment_pos, start)
        return i < len(self._comment_pos) and self._comment_pos[i] < end

    def blank_before(self, pos: int) -> bool:
        """Whether `pos` opens its source line and a blank line lies just above it."""
        n = bisect_right(self._starts, pos) - 1
        at_start = self.text[self._starts[n] : pos].strip() == ""
        return at_start and n > 0 and self._blank[n - 1]

    def code_before(self, pos: int) -> int:
        """Offset of the last code character before `pos`, skipping space, breaks and comments."""
        p = pos - 1
        while p >= 0:
            i = bisect_right(self._comment_pos, p) - 1
            if i >= 0 and p < self._comment_end[i]:
                p = self._comment_pos[i] - 1
            elif self.text[p].isspace() or (self.text[p] == "\\" and self.text[p + 1] in "\r\n"):
                p -= 1
            else:
                break
        return p


def _comment_column(line: str) -> int | None:
    in_string = escaped = False
    for col, ch in enumerate(line):
        if escaped:
            escaped = False
        elif in_string and ch == "\\":
            escaped = True
        elif ch == '"':
            in_string = not in_string
        elif ch == "#" and not in_string:
            return col
    return None


def weave(lines: list[Line], src: SourceText) -> str:
    """Render `lines`, putting each comment back before the line it preceded or after its code."""
    out: list[str] = []
    pending = iter(src.comments)
    comment = next(pending, None)

    def blank() -> None:
        if out and out[-1]:
            out.append("")

    for line in lines:
        own: list[Comment] = []
        while comment is not None and comment.pos < line.pos:
            if comment.trailing and out:
                out[-1] += f"  {comment.text}"
            else:
                own.append(comment)
            comment = next(pending, None)
        # With no comment in between, the blank line would sit right above `line` itself.
        allowed = line.lead == "keep" and (bool(own) or line.tail)
        if line.lead == "one" or (allowed and src.blank_before(own[0].pos if own else line.pos)):
            blank()
        # Comments just above a closing brace are still inside the block.
        indent = line.indent + 2 * line.closer
        for i, c in enumerate(own):
            if i and src.blank_before(c.pos):
                blank()
            out.append(" " * indent + c.text)
        if own and line.tail and src.blank_before(line.pos):
            blank()
        out.append(" " * line.indent + line.text)
    while comment is not None:
        if comment.trailing and out:
            out[-1] += f"  {comment.text}"
        else:
            if src.blank_before(comment.pos):
                blank()
            out.append(comment.text)
        comment = next(pending, None)
    return "\n".join(text.rstrip() for text in out) + "\n"
