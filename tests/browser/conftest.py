"""A real browser (Debian's Chromium, driven by Playwright's Python package) on the console of a
real stack. Every page a test opens is watched: an error in the browser's console, a script error,
or a request to any other origin fails the test."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, Request, sync_playwright

from tests.browser.stack import ConsoleStack, console_stack

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    with console_stack(tmp_path_factory.mktemp("console")) as running:
        yield running


# Package scope, not session: Playwright's sync API holds an event loop running on this thread until
# it stops, and later tests (asyncio.run in the micro-batcher's) need the thread free.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium); "
            "Playwright's own browser download is never used"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Watched:
    page: Page
    origin: str
    key: str | None
    problems: list[str] = field(default_factory=list)
    refusals_expected: bool = False
    api_calls: list[Request] = field(default_factory=list)

    def open(self, address: str = "#/models") -> Page:
        """The console at `address`, the key given when it asks."""
        self.page.goto(f"/ui/{address}")
        if self.key:
            self.page.fill("#key-value", self.key)
            self.page.click("#key button")
        return self.page

    def saw(self, request: Request) -> None:
        if not (request.url.startswith(f"{self.origin}/") or request.url.startswith(f"blob:{self.origin}/")):
            self.problems.append(f"a request left the origin: {request.method} {request.url}")
        if request.url.startswith(f"{self.origin}/v1/"):
            self.api_calls.append(request)

    def dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"a dialog opened (a script ran?): {dialog.message}")
        dialog.dismiss()

    def logged(self, kind: str, text: str) -> None:
        if kind != "error":
            return
        if self.refusals_expected and "status of 401" in text:
            return
        self.problems.append(f"console error: {text}")


@contextlib.contextmanager
def watching(browser: Browser, origin: str, key: str | None) -> Iterator[Watched]:
    """A page of its own (a new browser session) on the console at `origin`, failing the test on
    anything seen that should not be."""
    context = browser.new_context(
        base_url=origin, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    watched = Watched(page, origin, key)
    page.on("console", lambda message: watched.logged(message.type, message.text))
    page.on("pageerror", lambda error: watched.problems.append(f"script error: {error}"))
    page.on("dialog", watched.dialog)
    page.on("request", watched.saw)
    yield watched
    context.close()
    assert watched.problems == [], watched.problems


@pytest.fixture
def console(browser: Browser, stack: ConsoleStack) -> Iterator[Watched]:
    with watching(browser, stack.api.url, stack.key) as watched:
        yield watched
