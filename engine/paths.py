"""Where the project's own files live: grammar, shipped rules, strategies and policies."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR_DIR = ROOT / "grammar"
RULES_DIR = ROOT / "rules"
STRATEGIES_DIR = ROOT / "strategies"
RISK_POLICIES_DIR = ROOT / "risk_policies"

DATA_ENV = "V6_DATA"  # overrides where the shared market data folder is


def shared_data_dir() -> Path:
    """The real market data folder: $V6_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else ROOT.parent / "shared" / "data"
