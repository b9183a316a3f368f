"""Screenshot one trace in a running Arize Phoenix with headless Chromium (docs/traces.md).

    .venv/bin/python scripts/trace_screenshot.py PHOENIX_URL TRACE_ID SPAN_NAME OUT.png

Opens the trace in the default project, widens the span tree, selects SPAN_NAME (its attributes
show on the right) and writes the PNG. Uses the system Chromium (/usr/bin/chromium): Playwright's
own browser download is not needed.
"""

from __future__ import annotations

import json
import sys
import urllib.request

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def project_id(base: str) -> str:
    """The id of Phoenix's ``default`` project, where OTLP spans land."""
    with urllib.request.urlopen(f"{base}/v1/projects") as response:
        projects = json.load(response)["data"]
    return str(next(p["id"] for p in projects if p["name"] == "default"))


def widen_tree(page: Page, by: float = 450) -> None:
    """Drag the splitter between the span tree and the span details to the right."""
    splitter = page.locator("[role=separator]").nth(2)
    box = splitter.bounding_box()
    if box is None:
        return
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + by, y, steps=10)
    page.mouse.up()


def main(base: str, trace_id: str, span: str, out: str) -> None:
    url = f"{base}/projects/{project_id(base)}/traces/{trace_id}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 2000, "height": 1300})
        page.goto(url, wait_until="networkidle")
        page.wait_for_selector("text=Latency", timeout=60_000)
        widen_tree(page)
        page.get_by_text(span, exact=True).first.click()
        page.mouse.move(1, 1)  # no hover tooltip in the picture
        page.wait_for_timeout(1_500)
        page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
