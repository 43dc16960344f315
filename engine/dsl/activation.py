"""Atomic rule-set activation: a new set replaces the running one only if it is fully valid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.dsl.errors import DslError
from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.ruletests import run_tests


@dataclass(frozen=True)
class Activation:
    """The outcome of an attempt: what runs now, and why a rejected set was refused."""

    activated: bool
    running: RuleSet
    errors: str = ""
    failed_tests: tuple[str, ...] = field(default_factory=tuple)


class ActiveRuleSet:
    """The rule set an engine evaluates. Replacing it is one reference assignment, so a tick
    sees either the old set or the new one, never a mix."""

    def __init__(self, initial: RuleSet, loader: Callable[[str], RuleSet] = load_ruleset) -> None:
        self._current = initial
        self._loader = loader

    @property
    def current(self) -> RuleSet:
        return self._current

    def activate(self, name_or_path: str) -> Activation:
        try:
            candidate = self._loader(name_or_path)
            results, _ = run_tests(candidate)
        except DslError as exc:
            return Activation(False, self._current, errors=exc.render())
        failed = tuple(
            f"{r.name} ({r.file}:{r.line}): {'; '.join(r.failures)}" for r in results if not r.ok
        )
        if failed:
            return Activation(False, self._current, failed_tests=failed)
        self._current = candidate
        return Activation(True, candidate)
