"""Headless Chromium for the tests that open a page, the way `cassandra_node` gives them a
Cassandra node: Debian's `chromium` package, installed with apt-get on first use when
/usr/bin/chromium is missing (the tests and CI run as root), and driven by Playwright for Python
through its own driver (never `playwright install`, which downloads a browser build).

The `chromium` fixture skips, naming the reason, only when the browser cannot be installed.
Every page is opened with the console's errors and the page's uncaught errors collected, and
with every request that leaves the file:// scheme recorded (a self-contained page makes none).

This module is a helper, not a test file; a test module imports the fixture it uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_TIMEOUT_S = 900
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _install_reason() -> str | None:
    """Install Debian's chromium; None when it is there afterwards, else why not."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium"
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and installing Debian's chromium needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` did not finish in {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {(done.stderr or done.stdout)[-800:]}"
    return None if CHROMIUM.exists() else f"apt-get installed chromium but {CHROMIUM} is missing"


@attrs.define
class Visit:
    """A page opened in Chromium, with what went wrong while it loaded."""

    page: Any
    errors: list[str] = attrs.field(factory=list)
    requests: list[str] = attrs.field(factory=list)


class Chromium:
    """One headless Chromium (through Playwright) for a test module."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser

    @contextmanager
    def open(self, path: Path, width: int = 1280, height: int = 900) -> Iterator[Visit]:
        page = self.browser.new_page(viewport={"width": width, "height": height})
        visit = Visit(page)
        page.on(
            "console",
            lambda message: (
                visit.errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: visit.errors.append(f"page error: {error}"))
        page.on(
            "request",
            lambda request: (
                visit.requests.append(request.url)
                if not request.url.startswith(("file:", "data:", "about:"))
                else None
            ),
        )
        try:
            page.goto(path.resolve().as_uri(), wait_until="load")
            yield visit
        finally:
            page.close()


@pytest.fixture(scope="module", name="chromium")
def chromium_fixture() -> Iterator[Chromium]:
    reason = _install_reason()
    if reason is not None:
        pytest.skip(f"headless Chromium is not available: {reason}")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is missing (the `test` extra)"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield Chromium(browser)
        finally:
            browser.close()
