"""Fixtures shared by the whole suite: where the real market data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.paths import DATA_ENV, shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $V6_DATA); the test skips, saying how to enable it, when absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real market data not found at {path}: put it there or set {DATA_ENV}")
    return path
