"""The browser plumbing on its own: locating Chromium, serving, screenshots, a tiny Panel app."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.ui import browser
from tests.ui.browser import (
    CHROMIUM_ENV,
    DOCS_ENV,
    ENABLE_HINT,
    REQUIRE_ENV,
    ServerStartError,
    Tab,
    find_chromium,
    free_port,
    served,
    snap,
)
from tests.ui.conftest import Scenario

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HELLO_APP = 'import panel as pn\n\npn.pane.Markdown("# hello", name="greeting").servable()\n'


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without Chromium: V6_CHROMIUM names nothing executable."""
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "missing-chromium"))


def test_v6_chromium_wins_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(CHROMIUM_ENV, str(fake))
    assert find_chromium() == fake


def test_v6_chromium_must_be_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("")
    monkeypatch.setenv(CHROMIUM_ENV, str(plain))
    assert find_chromium() is None


def test_without_chromium_the_tests_skip_saying_how_to_enable_them(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        browser.chromium_or_skip()
    assert ENABLE_HINT in str(skipped.value)
    assert "sudo apt-get install chromium" in str(skipped.value)


def test_without_chromium_ci_fails_instead(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        browser.chromium_or_skip()
    assert ENABLE_HINT in str(failed.value)
    assert f"{REQUIRE_ENV}=1" in str(failed.value)


def test_a_server_that_dies_reports_its_stderr(tmp_path: Path) -> None:
    crash = [sys.executable, "-c", "import sys; sys.exit('no journal at /nowhere')"]
    with (
        pytest.raises(ServerStartError, match=r"exited with code 1(.|\n)*no journal at /nowhere"),
        served(crash, free_port(), tmp_path),
    ):
        pytest.fail("a dead server must not be yielded")


def test_a_server_that_never_answers_is_stopped(tmp_path: Path) -> None:
    mute = [sys.executable, "-c", "import time; time.sleep(60)"]
    with (
        pytest.raises(ServerStartError, match=r"did not answer within 0.5 s; its stderr:"),
        served(mute, free_port(), tmp_path, timeout_s=0.5),
    ):
        pytest.fail("a silent server must not be yielded")


def test_screenshot_names_are_checked() -> None:
    with pytest.raises(ValueError, match="screenshot name"):
        browser.screenshot_paths("../escape")


def test_docs_screenshots_only_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOCS_ENV, raising=False)
    assert browser.screenshot_paths("overview") == [browser.ARTIFACTS_DIR / "overview.png"]
    monkeypatch.setenv(DOCS_ENV, "1")
    assert browser.screenshot_paths("overview")[1] == browser.DOCS_DIR / "overview.png"


@pytest.fixture
def hello_url(chromium: Path, tmp_path: Path) -> Iterator[str]:
    """A one-pane Panel app served by `panel serve` on loopback, as the dashboard is."""
    app = tmp_path / "hello.py"
    app.write_text(HELLO_APP)
    port = free_port()
    argv = [sys.executable, "-m", "panel", "serve", str(app), "--address", "127.0.0.1",
            "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}"]  # fmt: skip
    with served(argv, port, tmp_path / "logs", path="/hello") as url:
        yield url


def test_chromium_renders_a_panel_app(
    hello_url: str, browse: Callable[[Scenario], list[str]]
) -> None:
    shots: list[Path] = []

    async def scenario(tab: Tab) -> None:
        await tab.page.goto(hello_url)
        # Panel renders panes in open shadow roots; Playwright's selectors pierce them.
        await expect(tab.page.get_by_role("heading", name="hello")).to_be_visible()
        shots.append(await snap(tab.page, "smoke-hello"))

    assert browse(scenario) == []
    assert shots[0].read_bytes().startswith(PNG_MAGIC)


def test_console_errors_are_collected(
    hello_url: str, browse: Callable[[Scenario], list[str]]
) -> None:
    """The list the browser tests assert empty does fill: otherwise they could never fail."""

    async def scenario(tab: Tab) -> None:
        await tab.page.goto(hello_url)
        async with tab.page.expect_event("pageerror"):
            await tab.page.evaluate("console.error('deliberate'); setTimeout(() => null.x, 0)")

    errors = browse(scenario)
    assert any("console error: deliberate" in e for e in errors), errors
    assert any(e.startswith("page error:") for e in errors), errors
