"""What the browser end-to-end tests share: Debian's Chromium driven by Playwright, the
page served by the real runner, plain API calls for setup, and what a person does on the
page. The fixtures that hand these out live in ``tests/e2e/conftest.py``.

The page is opened on http://localhost:<port>, as the README tells people to: browsers
refuse an IP address as a WebAuthn relying party, so passkeys work on ``localhost`` only.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.conftest import PROJECT_DIR
from tests.e2e.runner import Runner

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_DIR / "artifacts"
PASSWORD = "correct horse battery staple"
TIMEOUT_MS = 15_000
DESKTOP: ViewportSize = {"width": 1200, "height": 860}
PHONE: ViewportSize = {"width": 360, "height": 740}

expect.set_options(timeout=TIMEOUT_MS)


# ------------------------------------------------------------------ the browser


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium; a missing browser fails the tests, it never skips them."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium`")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Site:
    """The page served by one runner, opened in fresh browser contexts (one per user),
    collecting every CSP violation and script error the page raises."""

    runner: Runner
    browser: Browser
    problems: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.runner.port}/"

    def new_page(self, viewport: ViewportSize = DESKTOP) -> Page:
        """A blank page in a context of its own, watched for problems, not yet opened."""
        context = self.browser.new_context(viewport=viewport)
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        return page

    def open(self, viewport: ViewportSize = DESKTOP) -> Page:
        page = self.new_page(viewport)
        page.goto(self.url)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Uncaught" in text:
            self.problems.append(f"console {message.type}: {text}")

    def _page_error(self, error: Error) -> None:
        self.problems.append(f"page error: {error.message}")

    def api(self) -> Api:
        return Api(self.runner.port)


# ------------------------------------------------------------------ the API, for setup


class Api:
    """Plain JSON calls to the runner, to set up what a test needs faster than the page."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "User-Agent": "gatehouse-tests"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode("utf-8")
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, answer = self.call(method, path, body, token)
        assert 200 <= status < 300, (status, answer)
        return answer

    def register(self, username: str, **fields: str) -> None:
        self.ok("POST", "/register", {"username": username, "password": PASSWORD, **fields})

    def login(self, username: str) -> str:
        pair = self.ok("POST", "/login", {"username": username, "password": PASSWORD})
        return str(pair["access_token"])


def unique(prefix: str = "web") -> str:
    return f"{prefix}{os.urandom(5).hex()}"


# ------------------------------------------------------------------ what a person does


def by_id(page: Page, test_id: str) -> Locator:
    return page.get_by_test_id(test_id)


def view(page: Page, name: str) -> Locator:
    """One screen of the page (several screens have a field labelled "Password")."""
    return page.locator(f"#view-{name}")


def register(page: Page, username: str, password: str = PASSWORD, **optional: str) -> None:
    by_id(page, "go-register").click()
    form = view(page, "register")
    form.get_by_label("Username", exact=True).fill(username)
    if "email" in optional:
        form.get_by_label("Email (optional)").fill(optional["email"])
    if "display_name" in optional:
        form.get_by_label("Display name (optional)").fill(optional["display_name"])
    form.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Create account").click()


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    form = view(page, "login")
    form.get_by_label("Username or email").fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def expect_dashboard(page: Page, username: str) -> None:
    expect(by_id(page, "profile-username")).to_have_text(username)
    expect(by_id(page, "signed-in-as")).to_have_text(f"Signed in as {username}")


def expect_login_screen(page: Page) -> None:
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(by_id(page, "profile-username")).to_be_hidden()


def assert_every_input_is_labelled(page: Page) -> None:
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
              .filter(el => !el.labels || el.labels.length === 0)
              .map(el => el.id || el.outerHTML)"""
    )
    assert unlabelled == []


def assert_no_horizontal_scroll(page: Page, width: int) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    assert widths[2] == width
    assert max(widths[0], widths[1]) <= width, widths


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
