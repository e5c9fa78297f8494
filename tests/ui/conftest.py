"""The results page in a real headless Chromium (Debian's), driven by Playwright.

Playwright's own browser download is not used: `make install-browser` installs Debian's
chromium (TEST_CHROMIUM names another binary). Screenshots of every test's page are kept in
var/test-artifacts/ui/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import API_PORT
from tests.system import ROOT, System

CHROMIUM = Path(os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "var" / "test-artifacts" / "ui"
# Headless as root, and quiet: this machine's network is closed, so Chromium must not try to
# reach its own services.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Chromium, with a fresh profile (Playwright gives launch() a new user data dir)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: `make install-browser` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Screen:
    """A browser tab, the uncaught script errors seen in it, and its screenshots."""

    page: Page
    name: str
    errors: list[str] = field(default_factory=list)

    def shot(self, label: str = "") -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}{'-' + label if label else ''}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def screen(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Screen]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    tab = Screen(page, name)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    try:
        yield tab
        tab.shot("end")
        assert tab.errors == [], f"script errors in the page: {tab.errors}"
    finally:
        context.close()


@pytest.fixture
def ui_url(system: System) -> str:
    return f"http://127.0.0.1:{API_PORT}/ui"
