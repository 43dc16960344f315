"""Browser tests' plumbing: find Debian's Chromium, serve an app on loopback, drive it, snap it.

Playwright drives the system Chromium through `executable_path`: a browser download
(`playwright install`) is never needed. Where Chromium is missing the browser tests skip with
the way to enable them, except under V6_REQUIRE_BROWSER=1 (CI), where a skipped browser test
would hide a broken dashboard, so they fail with the same message.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright

from engine.paths import ROOT

CHROMIUM_ENV = "V6_CHROMIUM"  # the path of a Chromium binary, when not on PATH
REQUIRE_ENV = "V6_REQUIRE_BROWSER"  # "1": a missing Chromium fails the tests instead
DOCS_ENV = "V6_UPDATE_DOCS_SCREENSHOTS"  # "1": snap() also refreshes docs/ui/screenshots
CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")

ENABLE_HINT = (
    "install Debian's Chromium: `sudo apt-get install chromium`, "
    f"or set {CHROMIUM_ENV}=/path/to/chromium"
)

ARTIFACTS_DIR = ROOT / "test-artifacts" / "screenshots"
DOCS_DIR = ROOT / "docs" / "ui" / "screenshots"

SERVER_START_S = 60.0  # a cold Panel import plus the first journal read, on 2 busy cores
POLL_S = 0.25
STOP_S = 10.0
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}  # wide enough for the dashboard's tables
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class ServerStartError(RuntimeError):
    """A served app never answered over HTTP; the message carries the server's stderr."""


def find_chromium() -> Path | None:
    """$V6_CHROMIUM, else the first of `chromium`, `chromium-browser`, /usr/bin/chromium."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        path = Path(env)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def chromium_or_skip() -> Path:
    """The Chromium to drive; skips (or under V6_REQUIRE_BROWSER=1 fails) when there is none."""
    path = find_chromium()
    if path is not None:
        return path
    env = os.environ.get(CHROMIUM_ENV)
    where = f"{CHROMIUM_ENV}={env} is not an executable file" if env else "Chromium not found"
    message = f"browser tests need Chromium ({where}): {ENABLE_HINT}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1 requires them)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A loopback port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:  # a 4xx still means the server is up
        return exc.code < 500
    except OSError:  # refused, reset or timed out: not listening yet
        return False


def _tail(path: Path, chars: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-chars:] if text.strip() else "(stderr was empty)"


def wait_until_served(
    url: str, proc: subprocess.Popen[bytes], stderr: Path, timeout_s: float = SERVER_START_S
) -> None:
    """Poll `url` until it answers; raise with the server's stderr if it exits or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(
                f"the server for {url} exited with code {proc.returncode} before answering; "
                f"its stderr:\n{_tail(stderr)}"
            )
        if _answers(url):
            return
        time.sleep(POLL_S)
    raise ServerStartError(
        f"the server for {url} did not answer within {timeout_s:g} s; its stderr:\n{_tail(stderr)}"
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server (SIGTERM), then kill it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_S)


@contextmanager
def served(
    argv: Sequence[str],
    port: int,
    logs: Path,
    path: str = "/",
    timeout_s: float = SERVER_START_S,
) -> Iterator[str]:
    """Run `argv` (a server listening on 127.0.0.1:`port`) and yield its URL once it answers.

    Its output goes to files in `logs`, not pipes: a chatty server would block on a full pipe
    that nobody reads.
    """
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "server.stdout", logs / "server.stderr"
    url = f"http://127.0.0.1:{port}{path}"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(list(argv), cwd=ROOT, stdout=stdout, stderr=stderr)
        try:
            wait_until_served(url, proc, err, timeout_s)
            yield url
        finally:
            stop(proc)


@dataclass(frozen=True)
class Tab:
    """A page and the console errors and uncaught exceptions it has logged so far."""

    page: Page
    errors: list[str] = field(default_factory=list)


def _on_console(errors: list[str]) -> Callable[[ConsoleMessage], None]:
    def record(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            where = msg.location.get("url", "")
            errors.append(f"console error: {msg.text}" + (f" ({where})" if where else ""))

    return record


def launch_args() -> list[str]:
    # Chromium refuses to run its sandbox as root (containers, CI); as a user it keeps it.
    return ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


@asynccontextmanager
async def open_browser(chromium: Path) -> AsyncIterator[Browser]:
    """A headless Chromium for one test, closed afterwards."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium), args=launch_args(), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def open_tab(chromium: Path) -> AsyncIterator[Tab]:
    """A fresh browser and page whose console errors and page errors are collected."""
    async with open_browser(chromium) as browser:
        page = await browser.new_page(viewport=VIEWPORT)
        tab = Tab(page)
        page.on("console", _on_console(tab.errors))
        page.on("pageerror", lambda exc: tab.errors.append(f"page error: {exc}"))
        yield tab


def screenshot_paths(name: str) -> list[Path]:
    """Where snap(page, name) writes: the artifacts, and the docs under V6_UPDATE_DOCS_…=1."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"screenshot name {name!r}: use lower-case letters, digits, - and _")
    paths = [ARTIFACTS_DIR / f"{name}.png"]
    if os.environ.get(DOCS_ENV) == "1":
        paths.append(DOCS_DIR / f"{name}.png")
    return paths


async def snap(page: Page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/NAME.png (and in the docs, on ask)."""
    paths = screenshot_paths(name)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    png = await page.screenshot(full_page=True)
    for path in paths:
        path.write_bytes(png)
    return paths[0]
