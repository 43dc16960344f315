"""Where the project's own files live: grammar, shipped rules, strategies and policies."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR_DIR = ROOT / "grammar"
RULES_DIR = ROOT / "rules"
STRATEGIES_DIR = ROOT / "strategies"
RISK_POLICIES_DIR = ROOT / "risk_policies"
