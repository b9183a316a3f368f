"""The monitor in a real browser (Debian's Chromium driven by Playwright) while sagas run.

Both styles run embedded in a background thread, with the monitor served beside them, as
`saga-compare demo --monitor` does. Set ``SAGA_MONITOR_SCREENSHOTS`` to a folder to save the
pictures docs/monitor.md shows.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
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
from tests.browser_support import chromium, png_size

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
COMPLETE_FAILS = FaultRule(step=StepName.COMPLETE_ORDER, permanent=True)
QUICK = POLICY.model_copy(update={"deadline_s": 3.0})
UNTIL_RETRIED = POLICY.model_copy(update={"deadline_s": 6.0})
"""The deadline of ``finish-1``, whose operator comes after it: the saga passed its pivot in
time, so the deadline was met whatever the wait."""
OPERATOR_WAIT_S = 4.0
"""How long the operator of ``late-1`` takes: several times the saga's own run."""


class Embedded:
    """Both styles and the monitor on an event loop of their own, driven from the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.ready: Future[str] = Future()
        self.stop = asyncio.Event()
        self.session: Session | None = None
        self.started: dict[str, float] = {}
        """When each saga was started (its deadline counts from about then)."""
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
        self.started[saga_id] = time.time()

    def retry(self, saga_id: str, who: str) -> None:
        """An operator's retry of the saga's failed compensations, on both styles."""

        async def both() -> None:
            assert self.session is not None
            for runtime in self.session.runtimes.values():
                await runtime.retry_compensation(saga_id, who)

        self.run(both(), timeout_s=120)

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
    running.start("unfinished-1", FaultPlan(rules=[COMPLETE_FAILS]))
    running.start("late-1", FaultPlan(rules=[SHIPMENT_FAILS, REFUND_FAILS]))
    running.start("quick-1", FaultPlan(), QUICK)
    running.start("finish-1", FaultPlan(rules=[COMPLETE_FAILS]), UNTIL_RETRIED)
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
    page.goto(embedded.ready.result())
    page.evaluate("() => { window.__loadedOnce = true; }")
    embedded.start("slow-1", FaultPlan(rules=[SLOW_PAYMENT]))

    for variant in VARIANTS:
        expect(row(page, variant, "slow-1")).to_have_attribute("data-status", "RUNNING")
    for variant in VARIANTS:
        expect(row(page, variant, "slow-1")).to_have_attribute("data-status", "COMPLETED")
    assert page.evaluate("() => window.__loadedOnce === true")


def test_both_styles_are_listed_with_their_outcomes(page: Page, embedded: Embedded) -> None:
    page.goto(embedded.ready.result())
    for variant in VARIANTS:
        expect(row(page, variant, "done-1")).to_have_attribute("data-status", "COMPLETED")
        expect(row(page, variant, "undone-1")).to_have_attribute("data-status", "COMPENSATED")
        expect(row(page, variant, "stuck-1")).to_have_attribute("data-status", "NEEDS_INTERVENTION")


def test_a_quiet_saga_is_listed_as_stuck_at_the_top_for_both_styles(
    page: Page, embedded: Embedded
) -> None:
    page.goto(embedded.ready.result())
    for variant in VARIANTS:
        alert = page.locator(f'section.alerts tr[data-variant="{variant}"][data-saga="hangs-1"]')
        expect(alert).to_contain_text("no progress")
        expect(alert).to_contain_text("create_shipment")


def test_the_intervention_queue_lists_the_saga_of_each_style(
    page: Page, embedded: Embedded
) -> None:
    page.goto(embedded.ready.result())
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


def test_the_pages_docs_monitor_shows_are_captured_whole(
    page: Page, embedded: Embedded, tmp_path: Path
) -> None:
    """The pictures docs/monitor.md shows, saved to SAGA_MONITOR_SCREENSHOTS=DIR when set."""
    target = Path(os.environ.get("SAGA_MONITOR_SCREENSHOTS") or tmp_path)
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
        width, height = png_size(target / name)
        assert width == 1280 and height >= 900, (name, width, height)  # the viewport, or more


def test_actions_are_offered_only_where_they_apply(page: Page, embedded: Embedded) -> None:
    url = embedded.ready.result()
    embedded.settled("unfinished-1")
    embedded.settled("stuck-1")
    for variant in VARIANTS:
        page.goto(f"{url}/sagas/{variant}/unfinished-1")
        operator = page.locator("section.operator")
        expect(operator).to_contain_text("complete_order")
        expect(operator.locator('form.act[action$="/resolve"]')).to_have_count(1)
        expect(operator.locator('form.act[action$="/retry"]')).to_have_count(0)
        retry_step = operator.locator('form.act[action$="/retry-step"]')
        expect(retry_step.locator("button")).to_have_text("retry complete_order")
        page.goto(f"{url}/sagas/{variant}/stuck-1")
        expect(page.locator('section.operator form.act[action$="/retry"]')).to_have_count(1)
        expect(page.locator('section.operator form.act[action$="/resolve"]')).to_have_count(1)
        expect(page.locator('section.operator form.act[action$="/retry-step"]')).to_have_count(0)
    page.goto(url)


def test_a_finished_saga_shows_its_deadline_as_met_not_as_a_time_ago(
    page: Page, embedded: Embedded
) -> None:
    url = embedded.ready.result()
    embedded.settled("quick-1")
    for variant in VARIANTS:
        page.goto(f"{url}/sagas/{variant}/quick-1")
        deadline = page.locator("dl.facts div", has_text="deadline").locator("dd")
        page.wait_for_function(
            "() => Date.now() / 1000 > %f" % (time.time() + QUICK.deadline_s + 0.5)
        )
        page.reload()
        expect(deadline).to_have_text("met")
    page.goto(url)


def test_after_a_late_retry_the_timeline_keeps_the_failed_round_and_readable_bars(
    page: Page, embedded: Embedded
) -> None:
    url = embedded.ready.result()
    embedded.settled("late-1")
    page.wait_for_timeout(OPERATOR_WAIT_S * 1000)  # the operator takes a while: the scenario
    embedded.retry("late-1", "ops-bea")
    for variant in VARIANTS:
        page.goto(f"{url}/sagas/{variant}/late-1")
        expect(page.locator("dd.saga-status")).to_have_text("COMPENSATED")
        refunds = page.locator('table.timeline tr[data-step="refund_payment"]')
        expect(refunds).to_have_count(2)
        expect(refunds.nth(0)).to_contain_text("failed")
        expect(refunds.nth(1)).to_contain_text("done")
        expect(page.locator("table.timeline tr.wait")).to_contain_text("for an operator")
        # Where each bar ends and how wide the wait is, as shares of this saga's drawn extent
        # (the page's scale may be shared with the other style, and the retried round takes
        # as long as the machine makes it: neither is the timeline's concern).
        # Measured in the page as it is when laid out: the live page swaps its parts in place,
        # and a table measured just after its swap (or before its bars had a size, under load)
        # reads zero everywhere (every share came out NaN), so the measure is retried until the
        # table in the document has an extent and a drawn wait.
        drawn = page.wait_for_function(
            """() => {
                const table = document.querySelector("table.timeline");
                const lane = table && table.querySelector("td.lane");
                const wait = table && table.querySelector("tr.wait span.bar");
                if (!lane || !wait) return null;
                const left = lane.getBoundingClientRect().left;
                const right = b => b.getBoundingClientRect().right - left;
                const extent = Math.max(...[...table.querySelectorAll("span.bar")].map(right));
                const own = [...table.querySelectorAll('tr[data-round="0"] span.bar')];
                const width = wait.getBoundingClientRect().width;
                if (!(extent > 0) || !(width > 0) || !own.length) return null;
                return {own: Math.max(...own.map(right)) / extent, wait: width / extent};
            }"""
        ).json_value()
        # The operator's 4 s wait, several times the saga's own run, is drawn shortened (a
        # tenth of the extent at most), and the saga's own run is not a sliver beside it.
        assert drawn["wait"] < 0.12, (variant, drawn)
        assert drawn["own"] > 2 * drawn["wait"], (variant, drawn)
    page.goto(url)


def test_the_latency_counters_say_whether_operator_waits_are_in_them(
    page: Page, embedded: Embedded
) -> None:
    page.goto(embedded.ready.result())
    for variant in VARIANTS:
        card = page.locator(f'section.counters .card[data-variant="{variant}"]')
        expect(card.locator(".hint")).to_contain_text("operator")
        expect(card.locator(".hint")).to_contain_text("compensated or completed")


HEADERS_BROKEN = """() => {
  const broken = [];
  for (const th of document.querySelectorAll("th")) {
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent;
      for (const match of text.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""


def test_no_column_header_breaks_inside_a_word(page: Page, embedded: Embedded) -> None:
    url = embedded.ready.result()
    for path, ready in (
        ("/", "table.sagas"),
        ("/sagas/orchestration/stuck-1", "table.timeline"),
        ("/sagas/choreography/stuck-1", "table.timeline"),
        ("/orders/undone?saga=undone-1", ".pair"),
    ):
        page.goto(url + path)
        expect(page.locator(ready).first).to_be_visible()
        assert page.evaluate(HEADERS_BROKEN) == [], path
    page.goto(url)


def test_the_page_has_a_favicon(page: Page, embedded: Embedded) -> None:
    url = embedded.ready.result()
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href is not None
    answer = page.request.get(url + href)
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/")
    assert page.request.get(url + "/favicon.ico").status == 200


BAR_EDGES = """rows => rows.map(row => {
  const bar = row.querySelector("span.bar").getBoundingClientRect();
  return [bar.left, bar.right];
})"""


def saga_state(embedded: Embedded, variant: str, saga_id: str) -> dict[str, object]:
    """What the saga left in the services: its charge, reservation, shipment and order."""

    async def read() -> dict[str, object]:
        assert embedded.session is not None
        state = await embedded.session.runtimes[variant].domain.snapshot()
        return {
            "charges": [(c.amount_cents, c.refunded_cents) for c in state.charges
                        if c.saga_id == saga_id],
            "reserved": state.reserved.get(saga_id),
            "shipments": [s.status for s in state.shipments if s.saga_id == saga_id],
            "orders": [r.status.value for r in state.orders if r.saga_id == saga_id],
        }  # fmt: skip

    result: dict[str, object] = embedded.run(read())
    return result


def test_retrying_the_step_past_the_pivot_completes_the_saga_in_both_styles_alike(
    page: Page, embedded: Embedded
) -> None:
    url = embedded.ready.result()
    embedded.settled("finish-1")
    deadline = embedded.started["finish-1"] + UNTIL_RETRIED.deadline_s
    page.wait_for_function(f"() => Date.now() / 1000 > {deadline:f}")  # the operator is late
    for variant in VARIANTS:
        page.goto(f"{url}/sagas/{variant}/finish-1")
        status = page.locator("dd.saga-status")
        expect(status).to_have_text("NEEDS_INTERVENTION")
        retry = page.locator('form.act[action$="/retry-step"]')
        retry.locator('input[name="who"]').fill("ops-cleo")
        retry.locator('button[name="retry_step"]').click()

        expect(status).to_have_text("COMPLETED")
        expect(page.locator(".act-result")).to_contain_text("retry of the failed step")
        expect(page.locator("table.actions td.result")).to_have_text(["completed"])
        expect(page.locator("table.actions")).to_contain_text("ops-cleo")
        expect(page.locator("section.operator")).to_be_hidden()
        page.reload()
        expect(page.locator("dd.deadline")).to_have_text("met")
        rounds = page.locator('table.timeline tr[data-step="complete_order"]')
        expect(rounds).to_have_count(2)
        expect(rounds.nth(0)).to_contain_text("failed")
        expect(rounds.nth(1)).to_contain_text("done")
        expect(rounds.nth(1)).to_contain_text("retry 1")
        expect(page.locator("table.timeline tr.wait")).to_contain_text("for an operator")
        (_, failed_right), (retried_left, _) = rounds.evaluate_all(BAR_EDGES)
        assert retried_left >= failed_right, (variant, failed_right, retried_left)

    orchestration, choreography = (saga_state(embedded, v, "finish-1") for v in VARIANTS)
    assert orchestration == choreography
    assert orchestration["orders"] == ["COMPLETED"] and orchestration["shipments"] == ["created"]
    assert orchestration["charges"] == [(order("finish").total_cents, 0)]
    assert orchestration["reserved"]
    page.goto(url)
