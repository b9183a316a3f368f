"""The report in a real browser (Debian's Chromium driven by Playwright), as a reviewer sees it.

The page comes from a real run of two catalogue scenarios on both variants, twice over. Set
``SAGA_REPORT_PAGE`` to check another report instead (the committed demo run), and
``SAGA_REPORT_SCREENSHOTS`` to a folder to save screenshots of it there (docs/img for the docs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from harness.report.health import trace_health
from tests.browser_support import chromium, png_size

RACE = "race_for_last_items"
RUN_TWO_SCENARIOS = """
import asyncio, sys
from pathlib import Path
from harness.compare.conditions import gather
from harness.report.drift import check_flows
from harness.report.health import trace_health
from harness.report.render import write_report
from harness.compare.results import document, save_results
from harness.compare.scenarios import get
from harness.session import VARIANTS, open_session
from harness.report.traces import load_traces

async def main(folder: Path) -> None:
    traces = folder / "traces.jsonl"
    conditions = gather(store="sqlite", definition="v1")
    async with open_session(list(VARIANTS), folder / "state", traces) as session:
        runs = await session.run([get("shipment_failed"), get("race_for_last_items")], repeat=2)
    results = check_flows(document(runs, conditions), load_traces(traces))
    save_results(results, folder / "results.json")
    write_report(folder, results, load_traces(traces), trace_health(traces))

asyncio.run(main(Path(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report from a real run of a compensation scenario and the race, on both variants."""
    chosen = os.environ.get("SAGA_REPORT_PAGE")
    if chosen:
        return Path(chosen).resolve()
    folder = tmp_path_factory.mktemp("report")
    done = subprocess.run(
        [sys.executable, "-c", RUN_TWO_SCENARIOS, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return folder / "report.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as opened:
        yield opened


@pytest.fixture(scope="module")
def page(browser: Browser, report_page: Path) -> Iterator[Page]:
    """The report as loaded, shared by the tests that only read it."""
    opened = browser.new_page(viewport={"width": 1200, "height": 900})
    opened.goto(report_page.as_uri())
    yield opened
    opened.close()


OVERFLOWS = """() => {
  const out = [];
  for (const lane of document.querySelectorAll("svg.chart .lane-group")) {
    const box = lane.querySelector("rect.lane").getBoundingClientRect();
    for (const bar of lane.querySelectorAll("rect.bar")) {
      const b = bar.getBoundingClientRect();
      if (b.left < box.left - 0.5 || b.right > box.right + 0.5 ||
          b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5) {
        out.push(lane.dataset.lane + ": " + bar.querySelector("title").textContent);
      }
    }
  }
  return out;
}"""

AXES = """() => Array.from(document.querySelectorAll("svg.chart")).map(svg => ({
  caption: svg.getAttribute("aria-label"),
  ticks: Array.from(svg.querySelectorAll(".axis .tick text")).map(t => t.textContent.trim()),
  tickX: Array.from(svg.querySelectorAll(".axis .tick text")).map(
    t => Math.round(t.getBoundingClientRect().left + t.getBoundingClientRect().width / 2)),
  title: (svg.querySelector(".axis-title") || {textContent: ""}).textContent.trim(),
  scenario: (svg.closest("section.scenario") || {id: ""}).id,
  zoom: svg.classList.contains("zoom"),
}))"""

RACE_STRIPS = """(id) => Array.from(
  document.querySelectorAll(`#${id} svg.chart:not(.zoom)`)).map(svg =>
  Array.from(svg.querySelectorAll(".lane-group")).map(lane => ({
    name: lane.dataset.lane,
    drawn: Array.from(lane.querySelectorAll("rect.bar.saga")).some(
      bar => bar.getBoundingClientRect().width > 0),
  })))"""


def test_no_bar_leaves_its_lane_and_nothing_spills_out_of_the_page(page: Page) -> None:
    assert page.evaluate(OVERFLOWS) == []
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1]


def test_every_chart_has_tick_labels_and_an_axis_title(page: Page) -> None:
    charts: list[dict[str, Any]] = page.evaluate(AXES)

    assert len(charts) >= 5  # the overview, and both styles of each scenario
    for chart in charts:
        assert len(chart["ticks"]) >= 3 and all(chart["ticks"]), chart["caption"]
        assert chart["title"], chart["caption"]


def test_both_styles_of_a_scenario_share_one_time_axis(page: Page) -> None:
    charts: list[dict[str, Any]] = page.evaluate(AXES)
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for chart in charts:
        if chart["scenario"] and not chart["zoom"]:  # a style's own scale is drawn apart
            by_scenario.setdefault(chart["scenario"], []).append(chart)

    assert {"s-shipment_failed", f"s-{RACE}"} <= set(by_scenario)
    for scenario, pair in by_scenario.items():
        assert len(pair) == 2, scenario
        assert pair[0]["ticks"] == pair[1]["ticks"], scenario
        assert pair[0]["tickX"] == pair[1]["tickX"], scenario


def test_every_saga_of_the_race_is_drawn_for_both_styles(page: Page) -> None:
    charts = page.evaluate(RACE_STRIPS, f"s-{RACE}")

    assert len(charts) == 2
    for strips in charts:
        assert [s["name"] for s in strips] == [f"race-{i:02d}" for i in range(1, 21)]
        assert all(s["drawn"] for s in strips)


SEQUENCES = """() => Array.from(document.querySelectorAll("section.scenario")).map(section => ({
  scenario: section.id,
  diagrams: Array.from(section.querySelectorAll(".flows figure")).map(figure => {
    const svg = figure.querySelector("svg.seq");
    const box = svg.getBoundingClientRect();
    return {
      variant: figure.dataset.variant,
      top: Math.round(box.top),
      actors: Array.from(svg.querySelectorAll(".actor text")).map(t => t.textContent),
      messages: Array.from(svg.querySelectorAll(".msg text")).map(t => t.textContent),
      outside: Array.from(svg.querySelectorAll("text")).filter(t => {
        const b = t.getBoundingClientRect();
        return b.width > 0 && (b.left < box.left - 1 || b.right > box.right + 1);
      }).length,
    };
  }),
}))"""


def test_each_scenario_has_both_styles_sequence_diagrams_side_by_side(page: Page) -> None:
    sections: list[dict[str, Any]] = page.evaluate(SEQUENCES)

    assert {"s-shipment_failed", f"s-{RACE}"} <= {s["scenario"] for s in sections}
    for section in sections:
        orchestrated, choreographed = section["diagrams"]
        assert (orchestrated["variant"], choreographed["variant"]) == (
            "orchestration",
            "choreography",
        )
        assert orchestrated["top"] == choreographed["top"]  # side by side
        for diagram in (orchestrated, choreographed):
            assert diagram["outside"] == 0
            assert "harness" in diagram["actors"] and all(diagram["messages"])
        assert any(m.startswith("reserve_inventory @") for m in orchestrated["messages"])
        assert any(m.startswith("order.placed @") for m in choreographed["messages"])
    failed = next(s for s in sections if s["scenario"] == "s-shipment_failed")
    _, choreographed = failed["diagrams"]
    assert any(m.startswith("shipping.failed @") for m in choreographed["messages"])


def test_the_run_conditions_and_the_one_trace_per_saga_rule_are_on_the_page(
    page: Page, report_page: Path
) -> None:
    conditions = page.locator("dl.conditions").inner_text()
    one_trace = page.locator("#one-trace").inner_text()
    health = trace_health(report_page.parent / "traces.jsonl")

    for what in ("commit", "cores", "load average", "sqlite", "nats-server", "temporal"):
        assert what in conditions
    assert health.one_trace_per_saga
    assert f"yes: each of the {health.sagas} sagas is one trace" in one_trace
    assert "yes" in page.locator("#flow-verdict").inner_text()


def test_each_run_of_the_scenarios_is_numbered_ends_as_expected_and_feeds_the_medians(
    report_page: Path,
) -> None:
    """Two runs on the same servers (one namespace per scenario and run): each ends as the
    catalogue expects, both styles alike, and the report's medians say they span both runs."""
    doc = json.loads((report_page.parent / "results.json").read_text())
    runs = doc["repeats"] if os.environ.get("SAGA_REPORT_PAGE") else 2
    numbers = set(range(1, runs + 1))

    assert doc["repeats"] == runs
    assert {r["repeat"] for r in doc["results"]} == numbers
    assert {c["repeat"] for c in doc["comparisons"]} == numbers
    assert doc["equivalent"] and all(doc["invariants"].values()) and doc["expected_met"]
    assert f"1 saga x {runs} runs |" in (report_page.parent / "report.md").read_text()


def test_the_pictures_docs_show_are_captured_whole(
    browser: Browser, report_page: Path, tmp_path: Path
) -> None:
    """The pictures docs/report.md shows, saved to SAGA_REPORT_SCREENSHOTS=DIR when set (on a
    page of its own: the style it adds would change the page the other tests read)."""
    target = Path(os.environ.get("SAGA_REPORT_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(report_page.as_uri())
    page.add_style_tag(content=".legend { position: static; }")
    page.screenshot(path=str(target / "report.png"))
    # cancel_after_pivot_commit shows the committed pivot's attempt lingering before the order
    # completes, in both styles; the two-scenario run lacks it.
    tails = (
        "#s-cancel_after_pivot_commit"
        if page.locator("#s-cancel_after_pivot_commit").count()
        else ""
    )
    pictures = (
        ("report-latency.png", "#latency + figure"),
        ("report-swimlanes.png", f"{tails or '#s-shipment_failed'} figure.chart-box"),
        ("report-race.png", f"#s-{RACE} figure.chart-strips"),
        ("report-flows.png", "#s-shipment_failed .flows"),
        ("report-findings.png", "#findings + ul"),
    )
    for name, selector in pictures:
        page.locator(selector).first.screenshot(path=str(target / name))
    page.close()
    for name in ("report.png", *(picture for picture, _ in pictures)):
        width, height = png_size(target / name)
        assert width >= 300 and height >= 60, (name, width, height)
