"""Rule sets: a manifest naming rule, strategy and policy files, loaded, hashed and compiled."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from engine.dsl import ast
from engine.dsl.build import build
from engine.dsl.checker import Program, StrategyInfo, check
from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.parser import read_source
from engine.dsl.source import Location, display_name
from engine.dsl.tickgen import CompiledProgram, compile_program
from engine.dsl.trace import BlockInfo
from engine.paths import ROOT, RULES_DIR, STRATEGIES_DIR

RULE_SUFFIX = ".v6"
MANIFEST_SUFFIX = ".ruleset.yaml"
_SECTIONS = ("rules", "strategies", "policies", "tests")


@dataclass(frozen=True)
class Manifest:
    name: str
    path: Path | None
    description: str
    files: tuple[Path, ...]  # rules, strategies and policies, in manifest order
    tests: tuple[Path, ...]


@dataclass(frozen=True)
class RuleSet:
    """A loaded, checked and compiled rule set, ready for evaluate()."""

    name: str
    manifest: Manifest
    program: Program
    compiled: CompiledProgram
    hash: str  # sha256 of the manifest and every file's path and content, first 16 hex digits
    git_revision: str | None

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        return self.compiled.blocks

    def group(self, name: str) -> tuple[BlockInfo, ...]:
        return tuple(self.compiled.blocks[i] for i in self.compiled.groups[name])

    @property
    def regimes(self) -> tuple[BlockInfo, ...]:
        return self.group("regime")

    @property
    def breakers(self) -> tuple[BlockInfo, ...]:
        return self.group("breaker")

    @property
    def limits(self) -> tuple[BlockInfo, ...]:
        return self.group("limit")

    @property
    def hedges(self) -> tuple[BlockInfo, ...]:
        return self.group("hedge")

    @property
    def closes(self) -> tuple[BlockInfo, ...]:
        return self.group("close")

    @property
    def adjusts(self) -> tuple[BlockInfo, ...]:
        return self.group("adjust")

    @property
    def entries(self) -> tuple[BlockInfo, ...]:
        return self.group("entry")

    @property
    def strategies(self) -> dict[str, StrategyInfo]:
        return self.program.strategies

    def block(self, rule_id: str) -> BlockInfo | None:
        return next((b for b in self.blocks if b.id == rule_id), None)


def _manifest_error(
    path: Path, msg: str, line: int = 1, col: int = 1, hint: str | None = None
) -> DslError:
    return DslError([Diagnostic(Code.MANIFEST, msg, Location(display_name(path), line, col), hint)])


def read_manifest(path: Path) -> Manifest:
    """Parse a `*.ruleset.yaml`; paths inside are relative to the manifest's folder."""
    try:
        doc = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _manifest_error(path, "no such rule-set manifest") from None
    except (YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise _manifest_error(
            path, f"not valid YAML: {getattr(exc, 'problem', exc)}", line, col
        ) from None
    if not isinstance(doc, CommentedMap) or "ruleset" not in doc:
        raise _manifest_error(path, "a manifest is a mapping with a 'ruleset: NAME' key")
    unknown = set(doc) - {"ruleset", "description", "version", *_SECTIONS}
    for key in sorted(unknown):
        line, col = doc.lc.key(key)
        raise _manifest_error(
            path,
            f"unknown key '{key}'",
            line + 1,
            col + 1,
            "keys: ruleset, description, " + ", ".join(_SECTIONS),
        )
    files: list[Path] = []
    tests: list[Path] = []
    for section in _SECTIONS:
        items = doc.get(section) or CommentedSeq()
        if not isinstance(items, CommentedSeq):
            line, col = doc.lc.key(section)
            raise _manifest_error(path, f"'{section}' must be a list of files", line + 1, col + 1)
        for i, item in enumerate(items):
            target = (path.parent / str(item)).resolve()
            if not target.is_file():
                line, col = items.lc.item(i)
                raise _manifest_error(path, f"listed file not found: {item}", line + 1, col + 1)
            (tests if section == "tests" else files).append(target)
    return Manifest(
        str(doc["ruleset"]),
        path.resolve(),
        str(doc.get("description") or ""),
        tuple(files),
        tuple(tests),
    )


def loose_manifest(paths: Sequence[Path]) -> Manifest:
    """Rule files given directly: checked together with the shared strategy library."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob(f"*{RULE_SUFFIX}")) if p.is_dir() else [p])
    have = {f.resolve() for f in files}
    library = [s for s in sorted(STRATEGIES_DIR.glob(f"*{RULE_SUFFIX}")) if s.resolve() not in have]
    return Manifest("(files)", None, "", tuple(f.resolve() for f in [*files, *library]), ())


def find_manifest(name_or_path: str) -> Path:
    """A shipped rule set by name (`v6`, `v5-baseline`), or a manifest / folder by path."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.is_dir():
        found = sorted(p.glob(f"*{MANIFEST_SUFFIX}"))
        if len(found) == 1:
            return found[0]
        raise _manifest_error(
            p, f"expected exactly one *{MANIFEST_SUFFIX} in this folder, found {len(found)}"
        )
    shipped = {
        m.name.removesuffix(MANIFEST_SUFFIX): m
        for m in sorted(RULES_DIR.rglob(f"*{MANIFEST_SUFFIX}"))
    }
    if name_or_path in shipped:
        return shipped[name_or_path]
    raise _manifest_error(
        p,
        f"no rule set named '{name_or_path}'",
        hint="shipped rule sets: " + ", ".join(sorted(shipped)),
    )


def content_hash(manifest: Manifest) -> str:
    h = hashlib.sha256()
    if manifest.path is not None:
        h.update(manifest.path.read_bytes())
    for f in sorted(manifest.files):
        h.update(_rel(f).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return p.name


def git_revision(path: Path) -> str | None:
    """The repository revision the files come from, if they are in a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def parse_files(files: Sequence[Path]) -> list[ast.RuleFile]:
    """Build every file, collecting all syntax errors before giving up."""
    built: list[ast.RuleFile] = []
    errors: list[Diagnostic] = []
    sources: dict[str, Any] = {}
    for f in files:
        try:
            built.append(build(read_source(f)))
        except DslError as exc:
            errors.extend(exc.diagnostics)
            sources.update(exc.sources)
    if errors:
        raise DslError(errors, sources)
    return built


def load(manifest: Manifest) -> RuleSet:
    """Parse, check and compile; raises DslError listing every problem."""
    files = parse_files(manifest.files)
    program = check(files)
    anchor = manifest.path.parent if manifest.path else ROOT
    return RuleSet(
        manifest.name,
        manifest,
        program,
        compile_program(program),
        content_hash(manifest),
        git_revision(anchor),
    )


def load_ruleset(name_or_path: str) -> RuleSet:
    p = Path(name_or_path)
    if p.suffix == RULE_SUFFIX or (p.is_dir() and not list(p.glob(f"*{MANIFEST_SUFFIX}"))):
        return load(loose_manifest([p]))
    return load(read_manifest(find_manifest(name_or_path)))
