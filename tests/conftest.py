"""Fixtures shared by the whole suite: where the real market data lives; hypothesis in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from engine.paths import DATA_ENV, shared_data_dir

# In CI (CI=true) property tests replay the same examples on every run, so a red run can be
# reproduced and a green one means the same thing twice; locally they keep exploring.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $V6_DATA); the test skips, saying how to enable it, when absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real market data not found at {path}: put it there or set {DATA_ENV}")
    return path
