"""bench.md and the charts: every table and axis is there, knees are marked, provisional says so."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from harness.bench.markdown import bench_markdown
from harness.bench.plots import closed_svg, sweep_svg, timeline_svg
from harness.bench.run import BenchPlan, Style, document
from tests.unit.harness.bench.measurements import closed_run, made, sweep

STYLES = (Style("choreography"), Style("orchestration", "remote"))
BUSY = (2.5, 2.0, 1.5)
QUIET = (0.2, 0.3, 0.3)


def closed_doc(load: tuple[float, float, float] = BUSY) -> dict[str, Any]:
    runs = [
        *closed_run("choreography", 1, floor=400, traced=100, untraced=110),
        made(kind="durable floor", tracing=False, throughput=200.0, step_p95_ms={}),
        *closed_run("orchestration/remote", 1, floor=12, traced=11, untraced=11.5),
    ]
    cold = [
        {
            "style": "choreography",
            "repeat": 1,
            "imports_s": 1.0,
            "ready_s": 2.0,
            "first_saga_s": 2.5,
        }
    ]
    return document(BenchPlan(STYLES), runs, cold, load, load)


def open_doc() -> dict[str, Any]:
    runs = [
        *sweep("choreography", [(5, 100, 1.0), (10, 150, 1.0), (20, 400, 1.0)]),
        *sweep("orchestration/remote", [(5, 900, 1.0), (10, 2500, 1.0), (20, 9000, 0.7)]),
    ]
    plan = BenchPlan(STYLES, rates=(5, 10, 20), duration_s=10, p95_bound_ms=2000)
    return document(plan, runs, [], QUIET, QUIET)


def test_the_closed_page_has_every_run_the_verdicts_and_the_cold_start() -> None:
    page = bench_markdown(closed_doc(), "saga-compare bench --orders 300")

    assert "saga-compare bench --orders 300" in page
    assert "Provisional, machine shared (load 2.50" in page
    for row in ("| choreography | durable floor |", "| orchestration/remote | saga, untraced |"):
        assert row in page
    assert "0.25x (target >= 0.25x: met)" in page
    assert "0.92x (target >= 0.85x: met)" in page
    assert "reserve_inventory" in page and "| 23 |" in page
    assert "### Cold start" in page and "| choreography | 2.50 |" in page


def test_a_quiet_machine_is_not_called_provisional() -> None:
    page = bench_markdown(closed_doc(QUIET), "cmd")

    assert "Provisional" not in page and "Quiet machine" in page


def test_the_sweep_page_lists_every_rate_and_each_knee() -> None:
    page = bench_markdown(open_doc(), "cmd")

    assert "| choreography | >= 20 (not reached) |" in page
    assert "| orchestration/remote | 5 |" in page
    assert page.count("| orchestration/remote | ") >= 4


def svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}text")]


def test_the_sweep_chart_has_labelled_axes_both_styles_and_a_mark_per_knee() -> None:
    svg = sweep_svg(open_doc())
    texts = svg_texts(svg)

    assert "offered rate (sagas/s)" in texts and "latency from scheduled start" in texts
    assert "choreography" in texts and "orchestration/remote" in texts
    assert "knee 5/s" in texts and "knee 20/s (not reached)" in texts
    assert svg.count("class='knee'") == 2
    assert "p95 bound 2000 ms" in texts


def test_the_timeline_and_closed_charts_are_well_formed_with_axis_labels() -> None:
    timeline = svg_texts(timeline_svg(open_doc()))
    closed = svg_texts(closed_svg(closed_doc()))

    assert "seconds since the run started" in timeline
    assert any(t.startswith("resident memory") for t in timeline)
    assert any(t.startswith("throughput (sagas/s") for t in closed)
    assert any(re.match(r"choreography - durable floor", t) for t in closed)
