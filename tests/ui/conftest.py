"""Fixtures of the browser tests: Chromium, two small dry-run journals, the served dashboard.

The project has no pytest-asyncio, so a test drives the async Playwright API through `browse`,
which runs one scenario in a fresh event loop with its own browser (function-scoped: nothing
async outlives a test, so asyncio tests elsewhere are unaffected). With pytest-asyncio a test
can equally `async with open_tab(chromium) as tab:` itself.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from engine.dsl.trace import Level
from engine.paths import RISK_POLICIES_DIR, RULES_DIR, STRATEGIES_DIR
from engine.runtime.dry_run import DryRunSpec
from engine.runtime.session import run_dry_runs
from tests.ui.browser import Tab, chromium_or_skip, free_port, open_tab, served

SEED = 7  # the embedded synthetic market's seed
START, END = date(2018, 1, 1), date(2018, 3, 31)  # one quarter: 61 ticks, a few seconds

# The edit behind the diff view: a stricter IV-rank floor for iron condor entries.
ENTRIES_FILE = "entries.v6"
PARAM_BEFORE = "param iv_rank_min: percent in [0%, 100%] = 30%"
PARAM_AFTER = "param iv_rank_min: percent in [0%, 100%] = 1%"

Scenario = Callable[[Tab], Awaitable[None]]


@dataclass(frozen=True)
class Journals:
    """Two dry runs of the same market: the shipped V6 rules and the edited copy."""

    run: Path  # the shipped rule set
    edited: Path  # the rule set with PARAM_AFTER


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; skips saying how to install it (fails under V6_REQUIRE_BROWSER=1)."""
    return chromium_or_skip()


def edited_ruleset(dest: Path) -> Path:
    """Copy rules/, strategies/ and risk_policies/ into `dest` with PARAM_AFTER; the manifest.

    The folders keep their layout because the manifest names its files relatively
    (`../strategies/…`).
    """
    for src in (RULES_DIR, STRATEGIES_DIR, RISK_POLICIES_DIR):
        shutil.copytree(src, dest / src.name)
    entries = dest / RULES_DIR.name / ENTRIES_FILE
    text = entries.read_text()
    if text.count(PARAM_BEFORE) != 1:
        raise AssertionError(
            f"{entries}: expected the line {PARAM_BEFORE!r} once; the shipped rules changed, "
            "so update PARAM_BEFORE/PARAM_AFTER in tests/ui/conftest.py"
        )
    entries.write_text(text.replace(PARAM_BEFORE, PARAM_AFTER))
    return dest / RULES_DIR.name / "v6.ruleset.yaml"


@pytest.fixture(scope="session")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Journals:
    """Both runs in one replay (the market and its chains are built once), full traces."""
    root = tmp_path_factory.mktemp("journals")
    manifest = edited_ruleset(root / "edited-rules")
    run, edited = root / "v6", root / "v6-edited"
    specs = [
        DryRunSpec(name, START, END, out, synthetic=SEED, trace=Level.FULL)
        for name, out in (("v6", run), (str(manifest), edited))
    ]
    for summary in run_dry_runs(specs, progress=False):
        assert summary.status == "complete", summary.lines()
    return Journals(run, edited)


def dashboard_argv(journal: Path, port: int, compare: Path | None = None) -> list[str]:
    """`v6 dashboard` as a subprocess of this interpreter (the same venv, no console script)."""
    argv = [sys.executable, "-m", "engine.cli", "dashboard", "--journal", str(journal),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    return argv if compare is None else [*argv, "--compare", str(compare)]


@pytest.fixture(scope="session")
def dashboard(
    chromium: Path, journals: Journals, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The dashboard over `journals.run`, compared with `journals.edited`, served on loopback.

    Session-scoped: every browser session gets its own app, so tests cannot see each other's
    choices, and the server's start-up is paid once. Needs `chromium` first, so that without
    a browser nothing is built.
    """
    port = free_port()
    logs = tmp_path_factory.mktemp("dashboard-server")
    with served(dashboard_argv(journals.run, port, journals.edited), port, logs) as url:
        yield url


@pytest.fixture
def browse(chromium: Path) -> Callable[[Scenario], list[str]]:
    """Run `scenario(tab)` in a new browser; return the console and page errors it logged."""

    def run(scenario: Scenario) -> list[str]:
        async def main() -> list[str]:
            async with open_tab(chromium) as tab:
                await scenario(tab)
                return tab.errors

        return asyncio.run(main())

    return run
