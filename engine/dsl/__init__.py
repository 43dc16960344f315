"""The V6 rule language: parse, check, compile and evaluate trading rules with explanations."""

from engine.dsl.errors import Code, Diagnostic, DslError
from engine.dsl.ruleset import RuleSet, load_ruleset
from engine.dsl.runtime import evaluate
from engine.dsl.trace import Decision, Level, RuleTrace, Trace

__all__ = [
    "Code",
    "Decision",
    "Diagnostic",
    "DslError",
    "Level",
    "RuleSet",
    "RuleTrace",
    "Trace",
    "evaluate",
    "load_ruleset",
]
