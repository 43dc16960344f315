"""Text to parse tree: the Lark LALR parser over grammar/v6.lark, errors made located."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import (
    Lark,
    Token,
    Tree,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.exceptions import LarkError

from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.source import MAX_SOURCE_BYTES, Location, Source, display_name
from engine.paths import GRAMMAR_DIR

LANGUAGE_VERSIONS = (1,)
GRAMMAR_FILE = GRAMMAR_DIR / "v6.lark"

# Terminal names as a trader would say them, for "expected ..." lists.
_TERMINAL_WORDS = {
    "_NL": "a line break",
    "NAME": "a name",
    "INT": "a whole number",
    "NUMBER": "a number",
    "PERCENT": "a percentage like 50%",
    "MONEY": "a dollar amount like $5",
    "DAYS": "a number of days like 45d",
    "STRING": 'a quoted text like "..."',
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "COMP_OP": "a comparison (< <= > >= == !=)",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "MINUS": "'-'",
    "DOT": "'.'",
    "$END": "the end of the file",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        GRAMMAR_FILE.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=False,
    )


def read_source(path: Path) -> Source:
    """Read a rule file as UTF-8; any problem is a located diagnostic, never an exception."""
    name = display_name(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DslError(
            [Diagnostic(Code.FILE_NOT_FOUND, "no such file", Location(name, 0, 0))]
        ) from None
    except OSError as exc:
        msg = f"cannot read file: {exc.strerror}"
        raise DslError([Diagnostic(Code.FILE_NOT_FOUND, msg, Location(name, 0, 0))]) from None
    return decode_source(name, raw)


def decode_source(name: str, raw: bytes) -> Source:
    if len(raw) > MAX_SOURCE_BYTES:
        msg = f"file is {len(raw):,} bytes; rule files are limited to {MAX_SOURCE_BYTES:,}"
        raise DslError([Diagnostic(Code.TOO_LARGE, msg, Location(name, 1, 1))])
    body = raw.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark is not part of the text
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        line_start = body.rfind(b"\n", 0, exc.start) + 1
        # Columns count characters, as editors do, not bytes.
        col = len(body[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        msg = f"file is not UTF-8 text (byte 0x{body[exc.start]:02x})"
        diag = Diagnostic(Code.ENCODING, msg, Location(name, line, col), "save the file as UTF-8")
        raise DslError([diag]) from None
    return Source(name, text)


def parse(source: Source) -> Tree[Token]:
    """Parse one source; raises DslError with a located, human-worded diagnostic."""
    if not source.text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in source.lines
    ):
        diag = Diagnostic(
            Code.EMPTY,
            "file has no rules",
            Location(source.name, 1, 1),
            "start it with 'version 1'",
        )
        raise DslError([diag], {source.name: source})
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    if "\x00" in text:
        at = text.index("\x00")
        line = text[:at].count("\n") + 1
        col = at - (text.rfind("\n", 0, at) + 1) + 1
        diag = Diagnostic(
            Code.BAD_CHARACTER, "file contains a NUL byte", Location(source.name, line, col)
        )
        raise DslError([diag], {source.name: source})
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise DslError([_syntax_diagnostic(source, exc)], {source.name: source}) from None
    except (LarkError, RecursionError) as exc:  # e.g. pathological nesting
        diag = Diagnostic(
            Code.SYNTAX, f"cannot parse: {type(exc).__name__}", Location(source.name, 1, 1)
        )
        raise DslError([diag], {source.name: source}) from None
    _check_version(source, tree)
    return tree


def _check_version(source: Source, tree: Tree[Token]) -> None:
    header = tree.children[0]
    assert isinstance(header, Tree)
    token = header.children[0]
    digits = str(token)
    version = int(digits) if len(digits) < 10 else -1  # a huge number is just unsupported
    if version not in LANGUAGE_VERSIONS:
        loc = Location(source.name, header.meta.line, header.meta.column)
        supported = ", ".join(str(v) for v in LANGUAGE_VERSIONS)
        diag = Diagnostic(
            Code.VERSION,
            f"language version {version} is not supported",
            loc,
            f"supported: {supported}",
        )
        raise DslError([diag], {source.name: source})


def _describe(names: set[str]) -> str:
    words = sorted({_TERMINAL_WORDS.get(n, _keyword(n)) for n in names})
    if len(words) > 8:
        words = [*words[:8], "…"]
    return ", ".join(words)


def _keyword(terminal: str) -> str:
    # Anonymous keyword terminals are named after their text, e.g. "RULE" for "rule".
    return f"'{terminal.lower()}'"


def _syntax_diagnostic(source: Source, exc: UnexpectedInput) -> Diagnostic:
    line, col = max(exc.line, 1), max(exc.column, 1)
    loc = Location(source.name, line, col)
    if (isinstance(exc, UnexpectedToken) and exc.token.type == "$END") or isinstance(
        exc, UnexpectedEOF
    ):
        expected = (
            _describe(set(exc.expected))
            if isinstance(exc, UnexpectedEOF)
            else _describe(set(exc.accepts or exc.expected))
        )
        lines = list(source.lines)
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        end = Location(source.name, len(lines), len(lines[-1].rstrip()) + 1)
        return Diagnostic(Code.UNEXPECTED_END, "file ends too early", end, f"expected {expected}")
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        shown = "line break" if tok.type == "_NL" else f"'{tok!s}'"
        loc = Location(source.name, line, col, tok.end_line, tok.end_column)
        if not _has_version(source):
            return _missing_version(source)
        return Diagnostic(
            Code.SYNTAX,
            f"unexpected {shown}",
            loc,
            f"expected {_describe(set(exc.accepts or exc.expected))}",
        )
    if isinstance(exc, UnexpectedCharacters):
        if not _has_version(source):
            return _missing_version(source)
        pos = exc.pos_in_stream or 0
        char = source.text[pos] if pos < len(source.text) else "?"
        allowed = _describe(set(exc.allowed or ()))
        return Diagnostic(
            Code.BAD_CHARACTER, f"unexpected character {char!r}", loc, f"expected {allowed}"
        )
    return Diagnostic(Code.SYNTAX, "syntax error", loc)


def _has_version(source: Source) -> bool:
    for ln in source.lines:
        s = ln.strip()
        if s and not s.startswith("#"):
            return s.startswith("version")
    return False


def _missing_version(source: Source) -> Diagnostic:
    return Diagnostic(
        Code.VERSION,
        "file must start with a language version header",
        Location(source.name, 1, 1),
        "add 'version 1' as the first line",
    )
