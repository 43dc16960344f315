"""Reading v6-snapshot/1 files (JSON or YAML) into Snapshots, with every error located."""

from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping, MutableSequence
from pathlib import Path
from typing import Any, NoReturn, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.dsl.errors import Code, Diagnostic, DslError, did_you_mean
from engine.dsl.source import Location, Source, display_name
from engine.state.snapshot import Snapshot
from engine.state.snapshot_convert import snapshot_to_document, to_snapshot
from engine.state.snapshot_schema import SnapshotDoc
from engine.state.snapshot_values import ERROR_TYPE, shown

__all__ = [
    "load_document",
    "load_snapshot",
    "snapshot_from_document",
    "snapshot_to_document",
    "with_overrides",
]

# Snapshots carry whole option chains, so they may be far larger than rule files.
MAX_SNAPSHOT_BYTES = 64_000_000
_MEMORY = "<snapshot>"
_EXAMPLE = "a snapshot starts with format: v6-snapshot/1, time: ..., market: {session: ...}"
# Names from other tools, and the field this format uses instead.
_RENAMED = {
    "is_call": "write right: P or C",
    "put_call": "write right: P or C",
    "option_type": "write right: P or C",
}


# pydantic's messages name our internal classes; these say what the file should contain.
_PLAIN_WORDS = {
    "model_type": "expected a mapping of fields (name: value)",
    "model_attributes_type": "expected a mapping of fields (name: value)",
    "dict_type": "expected a mapping (key: value)",
    "list_type": "expected a list",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "string_type": "expected text",
}


# Timestamps stay text: the schema parses ISO times itself, one way for JSON and YAML. A
# subclass, so the shared RoundTripConstructor (used by other loaders) is left alone.
_Constructor: Any = type("_Constructor", (RoundTripConstructor,), {})
_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda c, node: c.construct_scalar(node)
)


def _error(name: str, line: int, col: int, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(Code.SNAPSHOT, message, Location(name, line, col), hint)


def _raise(diags: list[Diagnostic], source: Source | None) -> NoReturn:
    sources = {source.name: source} if source is not None else {}
    raise DslError(sorted(diags, key=lambda d: (d.location.line, d.location.column)), sources)


def _decode(name: str, raw: bytes) -> Source:
    if len(raw) > MAX_SNAPSHOT_BYTES:
        msg = f"file is {len(raw):,} bytes; snapshots are limited to {MAX_SNAPSHOT_BYTES:,}"
        _raise([_error(name, 1, 1, msg)], None)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        msg = f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})"
        _raise([_error(name, line, col, msg, "save the file as UTF-8")], None)
    return Source(name, text)


def _parse(source: Source) -> CommentedMap:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    name = source.name
    try:
        doc = yaml.load(source.text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = str(exc.problem or exc.context or "invalid YAML/JSON")
        if problem.startswith("but ") and exc.context:  # "but found another document"
            problem = f"{exc.context}, {problem}"
        problem = problem.replace("'<stream end>'", "the end of the file")
        _raise([_error(name, line, col, f"syntax error: {problem}")], source)
    except YAMLError as exc:  # reader errors (control characters) carry a position, no mark
        pos = getattr(exc, "position", None)
        text = source.text
        if isinstance(pos, int) and 0 <= pos <= len(text):
            line, col = text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1
        else:
            line, col = 1, 1
        reason = getattr(exc, "reason", None) or exc
        _raise([_error(name, line, col, f"syntax error: {reason}")], source)
    except RecursionError:
        _raise([_error(name, 1, 1, "document is nested too deeply")], source)
    except Exception as exc:  # e.g. `!!int x`: a tag the value cannot satisfy; never a traceback
        _raise([_error(name, 1, 1, f"cannot read the document: {exc}")], source)
    if doc is None:
        _raise([_error(name, 1, 1, "the snapshot file is empty", _EXAMPLE)], source)
    if not isinstance(doc, CommentedMap):
        _raise([_error(name, 1, 1, "a snapshot file must be a mapping", _EXAMPLE)], source)
    return doc


def load_document(path: Path) -> tuple[CommentedMap, Source]:
    """The raw document (line/column info kept) and its text, for rendering diagnostics."""
    name = display_name(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        code, msg = Code.FILE_NOT_FOUND, f"cannot read snapshot: {exc.strerror or exc}"
        raise DslError([Diagnostic(code, msg, Location(name, 0, 0))]) from None
    source = _decode(name, raw)
    return _parse(source), source


def _step(node: Any, part: object) -> tuple[Any, tuple[int, int] | None, tuple[int, int] | None]:
    """The child at `part`, and its key and value positions (0-based) when the file has them."""
    if isinstance(node, Mapping) and part in node:
        lc = getattr(node, "lc", None)
        try:
            pos = lc.key(part), lc.value(part)  # type: ignore[union-attr]
        except (AttributeError, KeyError, TypeError):
            pos = None, None
        return node[part], pos[0], pos[1]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        lc = getattr(node, "lc", None)
        try:
            item = lc.item(part)  # type: ignore[union-attr]
        except (AttributeError, KeyError, TypeError, IndexError):
            item = None
        return node[part], item, item
    raise LookupError(part)


def _locate(doc: Any, loc: tuple[Any, ...], at_key: bool) -> tuple[int, int, bool]:
    """1-based line and column for a pydantic loc, and whether the value came from an override.

    Walks as deep as the file has positions; the last position found is the answer, so a
    missing field points at its parent and an override's bad value at the nearest file line.
    """
    line, col = (doc.lc.line, doc.lc.col) if isinstance(doc, CommentedMap) else (0, 0)
    node = doc
    for i, part in enumerate(loc):
        parent = node
        try:
            node, key_pos, value_pos = _step(node, part)
        except LookupError:
            break
        if key_pos is None:
            # A file-loaded parent without a position for this child: an override put it there.
            return line + 1, col + 1, isinstance(parent, CommentedMap | CommentedSeq)
        last = i == len(loc) - 1
        scalar = not isinstance(node, MutableMapping | MutableSequence)
        line, col = value_pos if last and scalar and not at_key else key_pos  # type: ignore[misc]
    return line + 1, col + 1, False


def _strip(tp: Any) -> Any:
    while True:
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) is not None and get_origin(tp) not in (list, dict) and args:
            tp = args[0]  # Annotated[X, ...] and X | None
        else:
            return tp


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the schema model at `loc` (for "did you mean")."""
    tp: Any = SnapshotDoc
    for part in loc:
        tp = _strip(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if part not in tp.model_fields:
                return []
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        else:
            return []
    tp = _strip(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _diagnostic(err: Mapping[str, Any], doc: Any, name: str) -> Diagnostic:
    loc, kind = tuple(err["loc"]), err["type"]
    path = ".".join(str(p) for p in loc)
    line, col, overridden = _locate(doc, loc, at_key=kind == "extra_forbidden")
    hint = None
    if kind == "missing":
        message = f"missing required field '{path}'"
    elif kind == "extra_forbidden":
        message = f"unknown field '{path}'"
        field = str(loc[-1])
        hint = did_you_mean(field, _fields_at(loc[:-1])) or _RENAMED.get(field)
    elif kind == ERROR_TYPE:
        message = f"{path}: {err['ctx']['message']}"
        hint = err["ctx"].get("hint")
    elif kind in _PLAIN_WORDS:
        message = f"{path}: {_PLAIN_WORDS[kind]}, got {shown(err.get('input'))}"
    else:
        text = str(err["msg"])
        message = f"{path}: {text[:1].lower()}{text[1:]}"
    if overridden:
        message += " (value set by an override)"
    return _error(name, line, col, message, hint)


def snapshot_from_document(doc: Any, source: Source | None = None) -> Snapshot:
    """Check a raw document and build its Snapshot; all problems are raised together."""
    name = source.name if source is not None else _MEMORY
    try:
        checked = SnapshotDoc.model_validate(doc)
    except ValidationError as exc:
        _raise([_diagnostic(e, doc, name) for e in exc.errors(include_url=False)], source)
    try:
        return to_snapshot(checked)
    except (ValueError, TypeError) as exc:  # a gap between schema and model: still located
        _raise([_error(name, 1, 1, f"inconsistent snapshot: {exc}")], source)


def load_snapshot(path: Path) -> Snapshot:
    doc, source = load_document(path)
    return snapshot_from_document(doc, source)


def _override_error(path: str, message: str, locations: Mapping[str, Location] | None) -> DslError:
    where = (locations or {}).get(path, Location("<overrides>", 0, 0))
    return DslError([Diagnostic(Code.SNAPSHOT, f"override '{path}': {message}", where)])


def _detach(value: Any) -> Any:
    """A plain deep copy: an override's own line info belongs to another file."""
    if isinstance(value, Mapping):
        return {k: _detach(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [_detach(x) for x in value]
    return value


def with_overrides(
    doc: Any,
    overrides: Mapping[str, object],
    *,
    locations: Mapping[str, Location] | None = None,
) -> Any:
    """A deep copy of `doc` with each dotted path (`underlyings.SPY.iv_rank`,
    `positions.0.pnl_pct_of_credit`) set to its value, creating missing maps on the way.

    List indexes must exist. `locations` (path -> where the override was written) places
    the errors; otherwise they are reported under "<overrides>". Segments are split on every
    dot, so a symbol with a dot in it (BRK.B) cannot be addressed by a path.
    """
    out = copy.deepcopy(doc)
    for path, value in overrides.items():
        parts = path.split(".")
        if not all(parts):
            raise _override_error(path, "empty name in the path", locations)
        node = out
        for depth, part in enumerate(parts):
            here = ".".join(parts[:depth]) or "the document"
            last = depth == len(parts) - 1
            if isinstance(node, MutableSequence):
                if not part.isdigit() or int(part) >= len(node):
                    msg = f"'{here}' has {len(node)} entries; no index {part}"
                    raise _override_error(path, msg, locations)
                index = int(part)
                if last:
                    node[index] = _detach(value)
                    lc = getattr(node, "lc", None)
                    if lc is not None and lc.data:  # it described the replaced value
                        lc.data.pop(index, None)
                else:
                    node = node[index]
            elif isinstance(node, MutableMapping):
                if last:
                    node[part] = _detach(value)
                    lc = getattr(node, "lc", None)
                    if lc is not None and lc.data:  # it described the replaced value
                        lc.data.pop(part, None)
                else:
                    if node.get(part) is None:
                        node[part] = CommentedMap()
                    node = node[part]
            else:
                msg = f"'{here}' is a value ({node!r}), not a mapping or a list"
                raise _override_error(path, msg, locations)
    return out
