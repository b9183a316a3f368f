"""The monitor in a real browser (Debian's Chromium driven by Playwright) while sagas run.

Both styles run embedded in a background thread, with the monitor served beside them, as
`saga-compare demo --monitor` does. Set ``SAGA_MONITOR_SCREENSHOTS`` to a folder to save the
pictures docs/monitor.md shows.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from browser_support import chromium
from playwright.sync_api import Page, expect

from harness.compare.scenarios import order
from harness.session import VARIANTS, Session, open_session
from monitor.app import create_app, fixed
from monitor.security import Guard
from monitor.serve import serving
from monitor.settings import MonitorSettings
from monitor.wiring import board_for
from shared.contracts import Phase, SagaPolicy, StepName
from shared.faults import FaultPlan, FaultRule
from shared.seed import seed

POLICY = SagaPolicy(
    deadline_s=60.0,
    attempt_timeout_s=5.0,
    initial_backoff_s=0.05,
    max_backoff_s=0.2,
    compensation_attempts=2,
)
HANGS = SagaPolicy(deadline_s=120.0, attempt_timeout_s=120.0)
SHIPMENT_FAILS = FaultRule(step=StepName.CREATE_SHIPMENT, permanent=True)
REFUND_FAILS = FaultRule(step=StepName.CHARGE_PAYMENT, phase=Phase.COMPENSATE, permanent=True)
SLOW_PAYMENT = FaultRule(step=StepName.CHARGE_PAYMENT, delay_ms=2_500)


class Embedded:
    """Both styles and the monitor on an event loop of their own, driven from the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.ready: Future[str] = Future()
        self.stop = asyncio.Event()
        self.session: Session | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        try:
            folder = self.folder
            options = {"orchestration": {"ui": True}}
            async with open_session(
                list(VARIANTS), folder / "state", folder / "traces.jsonl", options=options
            ) as session:
                self.session = session
                for runtime in session.runtimes.values():
                    await seed(runtime.domain)
                settings = MonitorSettings(
                    stuck_after_s=1.5,
                    refresh_ms=400,
                    cache_s=0.2,
                    trace_url="http://127.0.0.1:16686/trace/{trace_id}",
                )
                board = board_for(session.runtimes, settings)
                async with serving(create_app(fixed(board), Guard(loopback=True))) as url:
                    self.ready.set_result(url)
                    await self.stop.wait()
        except BaseException as error:
            if not self.ready.done():
                self.ready.set_exception(error)
            raise

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout_s: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def start(self, saga_id: str, faults: FaultPlan, policy: SagaPolicy = POLICY) -> None:
        """Start the saga on both styles (same saga id, same order id)."""
        assert self.session is not None

        async def both() -> None:
            assert self.session is not None
            for runtime in self.session.drivers.values():
                await runtime.start_saga(saga_id, order(saga_id.rsplit("-", 1)[0]), faults, policy)

        self.run(both())

    def settled(self, saga_id: str) -> None:
        """Wait until the saga settled on both styles (waiting for an operator counts)."""

        async def both() -> None:
            assert self.session is not None
            for runtime in self.session.runtimes.values():
                await runtime.wait(saga_id, 60)

        self.run(both(), timeout_s=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=60)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    running = Embedded(tmp_path_factory.mktemp("monitor"))
    running.thread.start()
    running.ready.result(timeout=120)
    running.start("done-1", FaultPlan())
    running.start("undone-1", FaultPlan(rules=[SHIPMENT_FAILS]))
    running.start("stuck-1", FaultPlan(rules=[SHIPMENT_FAILS, REFUND_FAILS]))
    # The refund fails in the saga's own run only: an operator's retry succeeds.
    running.start("ops-1", FaultPlan(rules=[SHIPMENT_FAILS, REFUND_FAILS]))
    running.start(
        "hangs-1", FaultPlan(rules=[FaultRule(step=StepName.CREATE_SHIPMENT, hang=True)]), HANGS
    )
    yield running
    running.close()


@pytest.fixture(scope="module")
def page(embedded: Embedded) -> Iterator[Page]:
    with chromium() as browser:
        opened = browser.new_page(viewport={"width": 1280, "height": 900})
        opened.set_default_timeout(60_000)
        opened.goto(embedded.ready.result())
        yield opened


OVERFLOWS = """() => {
  const out = [];
  for (const el of document.querySelectorAll("main *")) {
    const box = el.getBoundingClientRect();
    const parent = el.parentElement.getBoundingClientRect();
    if (box.width === 0 || getComputedStyle(el).display === "contents") continue;
    if (box.left < parent.left - 1 || box.right > parent.right + 1) {
      out.push(`${el.tagName.toLowerCase()}.${el.className} in ${el.parentElement.tagName}`);
    }
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === "visible"
        && el.clientWidth > 0 && !["SPAN", "A", "CODE"].includes(el.tagName)) {
      out.push(`${el.tagName}.${el.className} spills: ${el.textContent.slice(0, 30)}`);
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth) out.push("page scrolls sideways");
  return out;
}"""


def row(page: Page, variant: str, saga_id: str) -> Any:
    return page.locator(f'table.sagas tr[data-variant="{variant}"][data-saga="{saga_id}"]')


def test_a_saga_s_status_changes_on_the_page_without_a_reload(
    page: Page, embedded: Embedded
) -> None:
    page.evaluate("() => { window.__loadedOnce = true; }")
    embedded.start("slow-1", FaultPlan(rules=[SLOW_PAYMENT]))

    for variant in VARIANTS:
        expect(row(page, variant, "slow-1")).to_have_attribute("data-status", "RUNNING")
    for variant in VARIANTS:
        expect(row(page, variant, "slow-1")).to_have_attribute("data-status", "COMPLETED")
    assert page.evaluate("() => window.__loadedOnce === true")


def test_both_styles_are_listed_with_their_outcomes(page: Page) -> None:
    for variant in VARIANTS:
        expect(row(page, variant, "done-1")).to_have_attribute("data-status", "COMPLETED")
        expect(row(page, variant, "undone-1")).to_have_attribute("data-status", "COMPENSATED")
        expect(row(page, variant, "stuck-1")).to_have_attribute("data-status", "NEEDS_INTERVENTION")


def test_a_quiet_saga_is_listed_as_stuck_at_the_top_for_both_styles(page: Page) -> None:
    for variant in VARIANTS:
        alert = page.locator(f'section.alerts tr[data-variant="{variant}"][data-saga="hangs-1"]')
        expect(alert).to_contain_text("no progress")
        expect(alert).to_contain_text("create_shipment")


def test_the_intervention_queue_lists_the_saga_of_each_style(page: Page) -> None:
    for variant in VARIANTS:
        waiting = page.locator(f'section.queue tr[data-variant="{variant}"][data-saga="stuck-1"]')
        expect(waiting).to_contain_text("refund_payment")


def test_nothing_overflows_its_container_at_1280_px(page: Page, embedded: Embedded) -> None:
    url = embedded.ready.result()
    for path, ready in (
        ("/", "table.sagas"),
        ("/sagas/orchestration/undone-1", "table.timeline"),
        ("/sagas/choreography/stuck-1", "table.timeline"),
        ("/orders/undone?saga=undone-1", ".pair"),
    ):
        page.goto(url + path)
        expect(page.locator(ready).first).to_be_visible()
        assert sorted(set(page.evaluate(OVERFLOWS))) == [], path
    page.goto(url)


def test_the_side_by_side_page_shows_both_timelines(page: Page, embedded: Embedded) -> None:
    page.goto(embedded.ready.result() + "/orders/undone?saga=undone-1")

    for variant in VARIANTS:
        side = page.locator(f'section.side[data-variant="{variant}"]')
        expect(side.locator('tr[data-step="refund_payment"]')).to_contain_text("done")
        expect(side.locator('tr[data-step="create_shipment"]')).to_contain_text("failed")
    page.goto(embedded.ready.result())


@pytest.mark.parametrize("variant", VARIANTS)
def test_retry_compensation_resolves_a_waiting_saga_without_a_reload(
    page: Page, embedded: Embedded, variant: str
) -> None:
    url = embedded.ready.result()
    embedded.settled("ops-1")
    page.goto(f"{url}/sagas/{variant}/ops-1")
    status = page.locator("dd.saga-status")
    expect(status).to_have_text("NEEDS_INTERVENTION")
    page.evaluate("() => { window.__loadedOnce = true; }")

    retry = page.locator('form.act[action$="/retry"]')
    retry.locator('input[name="who"]').fill("ops-anna")
    retry.locator('button[name="retry"]').click()

    expect(status).to_have_text("COMPENSATED")
    expect(page.locator("table.actions td.result")).to_have_text(["compensated"])
    expect(page.locator("table.actions")).to_contain_text("ops-anna")
    expect(page.locator(".act-result")).to_contain_text("retry of the failed compensation")
    expect(page.locator("section.operator")).to_be_hidden()
    assert page.evaluate("() => window.__loadedOnce === true")  # the page never reloaded
    page.goto(url)
    queue = page.locator(f'section.queue tr[data-variant="{variant}"][data-saga="ops-1"]')
    expect(queue).to_have_count(0)


def test_screenshots_are_saved_when_asked(page: Page, embedded: Embedded) -> None:
    """Only with SAGA_MONITOR_SCREENSHOTS=DIR: the pictures docs/monitor.md shows."""
    folder = os.environ.get("SAGA_MONITOR_SCREENSHOTS")
    if not folder:
        return
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    url = embedded.ready.result()
    for name, path, ready in (
        ("monitor.png", "/", "section.alerts tr.alert"),
        ("monitor-saga.png", "/sagas/orchestration/stuck-1", "table.timeline"),
        ("monitor-order.png", "/orders/undone?saga=undone-1", ".pair"),
    ):
        page.goto(url + path)
        expect(page.locator(ready).first).to_be_visible()
        page.screenshot(path=str(target / name), full_page=name != "monitor-saga.png")
    assert (target / "monitor.png").stat().st_size > 0
