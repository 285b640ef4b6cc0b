"""The README's pictures of the console (`make screenshots`): the stack and the browser of the
console's tests (tests/browser), on the demo data, each page as a user reaches it.

    .venv/bin/python scripts/screenshots.py [FOLDER]     # default: docs/images
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.browser.conftest import CHROMIUM  # noqa: E402
from tests.browser.stack import SCHEDULE, console_stack  # noqa: E402

WIDTH = 1280


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, console_stack(Path(scratch)) as stack, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(base_url=stack.api.url, viewport={"width": WIDTH, "height": 800})
        page.goto("/ui/#/models/churn")
        page.fill("#key-value", stack.key)
        page.click("#key button")
        expect(page.locator("#profile svg").first).to_be_visible()
        shoot(page, folder / "console-model.png")

        page.goto("/ui/#/try/churn")
        page.click("#record button[type=submit]")
        expect(page.locator("#prediction-value")).not_to_be_empty()
        shoot(page, folder / "console-try.png")

        page.goto("/ui/#/schedules")
        page.get_by_role("button", name="Run now").click()
        expect(page.locator("[data-run]").first).to_contain_text("finished", timeout=60_000)
        shoot(page, folder / "console-schedules.png")

        page.goto("/ui/#/jobs")
        page.fill("#job-input", "incoming/customers.csv")
        page.click("#submit-job button[type=submit]")
        expect(page.locator("tr[data-status=finished]")).to_have_count(2, timeout=60_000)
        shoot(page, folder / "console-jobs.png")

        page.locator(f"tr[data-job^='{SCHEDULE}'] a.button").click()
        expect(page.locator("svg[data-chart=drift]")).to_be_visible()
        shoot(page, folder / "console-report.png")
        browser.close()
    for picture in sorted(folder.glob("console-*.png")):
        print(f"{picture.relative_to(ROOT) if picture.is_relative_to(ROOT) else picture}  {picture.stat().st_size:,} bytes")


def shoot(page: Page, path: Path) -> None:
    page.mouse.move(0, 0)  # no hover effect in the picture
    page.screenshot(path=str(path), full_page=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images")
