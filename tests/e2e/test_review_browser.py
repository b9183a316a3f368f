"""The review page in a real browser (Debian's Chromium driven by Playwright), from a real review.

`saga-compare review` runs at its smallest sizes here (the whole catalogue once, the operator's
paths, 5-saga benchmark runs, a 5-order chaos run, the anomaly lab's matrix for one anomaly),
without the versioning matrix (minutes on its own deployment: `--skip versioning`; its rows are
tested over a constructed document, tests/unit/harness/test_review_change.py).
Set ``SAGA_REVIEW_PAGE`` to check another review instead (the committed
docs/review-run/review.html), and ``SAGA_REVIEW_SCREENSHOTS`` to a folder to save screenshots of
it there (docs/img for the docs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from playwright.sync_api import Browser, Page

from harness.compare.scenarios import CATALOGUE
from harness.report.health import trace_health
from tests.browser_support import chromium, png_size

COMMAND = Path(sys.executable).parent / "saga-compare"
DIMENSIONS = [
    "correctness",
    "latency",
    "throughput",
    "resilience",
    "isolation",
    "operability",
    "code size",
]


@pytest.fixture(scope="module")
def review_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("SAGA_REVIEW_PAGE")
    if chosen:
        return Path(chosen).resolve()
    out = tmp_path_factory.mktemp("review") / "review"
    done = subprocess.run(
        [
            str(COMMAND),
            "review",
            "--out",
            str(out),
            "--bench-orders",
            "5",
            "--chaos-orders",
            "5",
            "--anomaly",
            "lost_update",
            "--skip",
            "versioning",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"review: {out / 'review.html'}" in done.stdout
    return out / "review.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as opened:
        yield opened


@pytest.fixture(scope="module")
def page(browser: Browser, review_page: Path) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1200, "height": 900})
    opened.goto(review_page.as_uri())
    yield opened
    opened.close()


ROWS = """() => Array.from(document.querySelectorAll("table.review tr.row")).map(row => ({
  dimension: row.dataset.dimension,
  conditions: row.querySelector(".conditions-line").textContent,
  styles: Array.from(row.querySelectorAll("td.cell")).map(cell => cell.dataset.style),
  links: Array.from(row.querySelectorAll("td.cell a")).map(a => a.getAttribute("href")),
}))"""

SEQUENCES = """(selector) => Array.from(document.querySelectorAll(selector)).map(svg => {
  const box = svg.getBoundingClientRect();
  const figure = svg.closest("figure");
  return {
    variant: figure ? figure.dataset.variant : "",
    actors: Array.from(svg.querySelectorAll(".actor text")).map(t => t.textContent),
    messages: Array.from(svg.querySelectorAll(".msg text")).map(t => t.textContent),
    notes: Array.from(svg.querySelectorAll(".note text")).length,
    outside: Array.from(svg.querySelectorAll("text")).filter(t => {
      const b = t.getBoundingClientRect();
      return b.width > 0 && (b.left < box.left - 1 || b.right > box.right + 1);
    }).map(t => t.textContent),
  };
})"""


def test_the_findings_come_first_then_one_row_group_per_dimension_that_ran(page: Page) -> None:
    headings = page.evaluate("() => Array.from(document.querySelectorAll('h2')).map(h => h.id)")
    rows: list[dict[str, Any]] = page.evaluate(ROWS)

    assert headings[:2] == ["findings", "dimensions"]
    expected = list(DIMENSIONS)
    if os.environ.get("SAGA_REVIEW_PAGE") and any(r["dimension"] == "change" for r in rows):
        expected.insert(expected.index("isolation") + 1, "change")  # a review that ran it
    assert list(dict.fromkeys(r["dimension"] for r in rows)) == expected
    assert all(r["styles"] == ["orchestration", "choreography"] for r in rows)
    findings = page.locator("ul.findings li").all_inner_texts()
    assert len(findings) == len(rows)
    assert not page.locator("ul.findings .no").count(), findings


def test_every_row_carries_its_run_conditions(page: Page) -> None:
    rows: list[dict[str, Any]] = page.evaluate(ROWS)

    for row in rows:
        text = row["conditions"]
        assert "commit" in text and "cores" in text and "load" in text, row
    runs = page.locator("#runs + dl.conditions dt").all_inner_texts()
    assert {r["conditions"].split(" run")[0] for r in rows} <= set(runs)


def test_every_cell_links_to_evidence_that_exists(page: Page, review_page: Path) -> None:
    rows: list[dict[str, Any]] = page.evaluate(ROWS)

    for row in rows:
        for href in row["links"]:
            target = review_page.parent / unquote(urlparse(href).path)
            assert target.is_file(), href
            fragment = urlparse(href).fragment
            if fragment:
                assert f'id="{fragment}"' in target.read_text(), href


def test_the_sequence_diagrams_name_every_message_and_stay_inside_their_box(
    page: Page, browser: Browser, review_page: Path
) -> None:
    spec = page.evaluate(SEQUENCES, ".spec-flows svg.seq")
    traces = page.evaluate(SEQUENCES, ".trace-flows svg.seq")

    assert [d["variant"] for d in spec] == ["orchestration", "choreography"]
    assert [d["variant"] for d in traces] == ["orchestration", "choreography"]
    for diagram in spec + traces:
        assert diagram["outside"] == [], diagram["variant"]
        assert {"harness", "inventory", "payment", "orders"} <= set(diagram["actors"])
        assert all(m.strip() for m in diagram["messages"]) and diagram["notes"] >= 1
    orchestrated, choreographed = traces
    assert any(m.startswith("reserve_inventory @") for m in orchestrated["messages"])
    assert any(m.startswith("inventory.reserved @") for m in choreographed["messages"])
    assert any("shipping.failed" in m for m in choreographed["messages"])
    report = browser.new_page(viewport={"width": 1200, "height": 900})
    report.goto((review_page.parent / "catalogue" / "report.html").as_uri())
    sections = report.evaluate(SEQUENCES, "section.scenario .flows svg.seq")
    report.close()
    assert len(sections) == 2 * 19
    assert all(d["outside"] == [] for d in sections)


def test_every_saga_is_one_trace_and_the_page_says_so(page: Page, review_page: Path) -> None:
    health = trace_health(review_page.parent / "catalogue" / "traces.jsonl")
    row = page.locator("tr.row", has_text="one trace per saga")
    cells = row.locator("td.cell").all_inner_texts()

    per_style = health.sagas // 2  # both styles alike
    per_run = sum(len(s.sagas) for s in CATALOGUE)
    assert health.one_trace_per_saga, health.strays
    assert not health.harness_only  # the services' spans are in it, not the harness's alone
    assert health.sagas == 2 * per_style and per_style % per_run == 0
    if not os.environ.get("SAGA_REVIEW_PAGE"):
        assert per_style == per_run  # the review's one run of the catalogue, every saga
    assert cells == [f"{per_style} of {per_style} sagas one trace"] * 2
    assert "ok-True" in (row.locator("td.cell").first.get_attribute("class") or "")


def test_the_isolation_row_sums_up_the_anomaly_lab_and_opens_its_cells(
    page: Page, browser: Browser, review_page: Path
) -> None:
    row = page.locator("tr.row[data-dimension='isolation']")
    cells = row.locator("td.cell")
    parts = row.locator("td.cell .cell-parts a")

    assert row.get_attribute("data-run") == "anomalies"
    assert "anomalies run" in row.locator(".conditions-line").inner_text()
    for text in cells.all_inner_texts():
        assert "appear with their countermeasure off" in text
        assert "prevented with it on" in text
    assert all("ok-True" in (cell.get_attribute("class") or "") for cell in cells.all())
    finding = page.locator("ul.findings li[data-dimension='isolation']").inner_text()
    assert "With their countermeasure off" in finding
    assert parts.count() >= 2
    href = parts.first.get_attribute("href") or ""
    assert href.startswith("anomalies/anomalies.html#cell-")
    lab = browser.new_page(viewport={"width": 1200, "height": 900})
    lab.goto(review_page.as_uri())
    lab.locator("tr.row[data-dimension='isolation'] td.cell .cell-parts a").first.click()
    lab.wait_for_url(f"**/{href}")
    section = lab.locator(f"section#{href.split('#')[1]}")
    heading = section.locator("h3").inner_text()
    charts = section.locator("figure.chart").count()
    top = lab.evaluate(
        "(id) => document.getElementById(id).getBoundingClientRect().top", href.split("#")[1]
    )
    lab.close()
    assert "orchestration" in heading and heading.endswith(": observed")
    assert charts >= 1 and -1 < top < 900  # in view; the anchor may land a subpixel past


def test_the_change_row_says_the_versioning_matrix_was_left_out(page: Page) -> None:
    absent = page.locator("table.review tr#d-change + tr.absent[data-dimension='change']")
    ran = page.locator("tr.row[data-dimension='change'][data-run='versioning']")

    if os.environ.get("SAGA_REVIEW_PAGE") and ran.count():
        assert not absent.count()  # another review that ran the matrix: its rows instead
        return
    assert absent.inner_text() == "left out of this review (--skip versioning)"
    assert not page.locator("tr.row[data-dimension='change']").count()
    assert "the versioning matrix (--skip versioning)" in page.locator("p.left-out").inner_text()


def test_the_pictures_docs_show_are_captured_whole(page: Page, tmp_path: Path) -> None:
    """The pictures docs/architecture-review.md shows, saved to SAGA_REVIEW_SCREENSHOTS=DIR
    when set."""
    target = Path(os.environ.get("SAGA_REVIEW_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / "review.png"))
    page.locator("table.review").screenshot(path=str(target / "review-dimensions.png"))
    page.locator(".trace-flows").screenshot(path=str(target / "review-traces.png"))
    for name in ("review.png", "review-dimensions.png", "review-traces.png"):
        width, height = png_size(target / name)
        assert width >= 600 and height >= 100, (name, width, height)
