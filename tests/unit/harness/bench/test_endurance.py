"""An endurance run: which process grows after the first minutes, and whether p95 drifts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.bench.endurance import by_process, endurance, p95_drift, settle_s, slopes_after
from harness.bench.load import Sample
from harness.bench.markdown import bench_markdown, endurance_table
from harness.bench.plots import timeline_svg
from harness.bench.resources import MemorySample
from harness.bench.run import BenchPlan, Style, document
from tests.unit.harness.bench.measurements import made


def memory(seconds: int, server_mb_per_min: float) -> list[MemorySample]:
    """A harness that warms up for a minute then stays flat, a server growing steadily."""
    return [
        MemorySample(
            float(t),
            {"harness": 100.0 + min(t, 60) / 2, "server": 200.0 + server_mb_per_min * t / 60},
        )
        for t in range(seconds)
    ]


def sagas(latencies_ms: list[float], rate: float = 5.0) -> list[Sample]:
    return [
        Sample(i / rate, i / rate, i / rate + ms / 1000, True) for i, ms in enumerate(latencies_ms)
    ]


def test_the_first_two_minutes_of_a_ten_minute_run_are_left_out_and_a_fifth_of_a_short_one() -> (
    None
):
    assert settle_s(600) == 120
    assert settle_s(60) == 12


def test_a_warming_harness_is_flat_after_settling_and_a_growing_server_shows_its_slope() -> None:
    slopes = slopes_after(memory(600, server_mb_per_min=6.0), settle_s(600))

    assert slopes["harness"] == pytest.approx(0.0, abs=1e-9)
    assert slopes["server"] == pytest.approx(6.0)


def test_p95_drift_compares_the_later_half_of_the_settled_sagas_with_the_earlier() -> None:
    steady = sagas([100.0] * 3000)
    slower = sagas([100.0] * 1800 + [130.0] * 1200)

    assert p95_drift(steady, 120) == pytest.approx(0.0)
    assert p95_drift(slower, 120) == pytest.approx(0.3)
    assert p95_drift(sagas([100.0] * 20), 0) is None  # too few to say


def test_each_process_kind_has_its_own_memory_series() -> None:
    series = by_process(memory(3, 0.0))

    assert set(series) == {"memory:harness", "memory:server"}
    assert series["memory:server"] == [[0.0, 200.0], [1.0, 200.0], [2.0, 200.0]]


def endurance_doc(server_slope: float, drift: float | None) -> dict[str, object]:
    run = made(
        style="orchestration/remote",
        variant="orchestration",
        load="open",
        rate=5.0,
        settle_s=120.0,
        rss_slope_after_settle={"harness": 0.4, "server": server_slope},
        p95_drift=drift,
        timeline={
            "memory": [[0.0, 300.0], [600.0, 360.0]],
            "memory:harness": [[0.0, 100.0], [600.0, 104.0]],
            "memory:server": [[0.0, 200.0], [600.0, 256.0]],
            "latency": [[0.0, 200.0, 400.0, 100.0]],
        },
    )
    plan = BenchPlan((Style("orchestration", "remote"),), rates=(5.0,), duration_s=600.0)
    return document(plan, [run], [], (0.1,) * 3, (0.1,) * 3)


def test_a_growing_server_misses_the_endurance_target_and_bench_md_names_it() -> None:
    doc = endurance_doc(server_slope=5.6, drift=0.02)

    (found,) = doc["endurance"].values()  # type: ignore[attr-defined]
    assert found["growing"] == ["server"] and not found["met"]
    page = bench_markdown(doc, "saga-compare bench --rate 5 --duration 600")
    assert "### Endurance: memory by process and p95 drift" in page
    assert "| orchestration/remote | 5/s | 120 s | harness +0.4, server +5.6 | +2% " in page
    assert "**MISSED**: server grows" in page


def test_flat_processes_and_a_steady_p95_meet_the_endurance_target() -> None:
    doc = endurance_doc(server_slope=1.5, drift=0.05)

    (found,) = doc["endurance"].values()  # type: ignore[attr-defined]
    assert found["met"]
    assert "| met |" in "\n".join(endurance_table(doc))


def test_short_open_runs_are_not_held_to_the_endurance_target() -> None:
    assert endurance([made(load="open", rate=5.0).as_dict()], duration_s=20) == {}


def test_the_timeline_draws_each_process_memory_with_its_name() -> None:
    svg = timeline_svg(endurance_doc(server_slope=5.6, drift=0.02))

    texts = " ".join(ET.fromstring(svg).itertext())
    assert "resident memory by process (MB)" in texts
    assert "server" in texts and "harness" in texts
    assert "p95 latency of the sagas due in each window" in texts


def attached_memory(seconds: int) -> list[MemorySample]:
    """A deployment's samples: by kind, the services in one sum; by process, each its own."""
    samples = []
    for t in range(seconds):
        payment, tracker = 80.0 + 3.0 * t / 60, 90.0
        by_name = {"harness": 100.0, "payment": payment, "tracker": tracker, "broker": 30.0}
        by_kind = {"harness": 100.0, "services": payment + tracker, "broker": 30.0}
        samples.append(MemorySample(float(t), by_kind, by_name))
    return samples


def test_attached_each_process_of_the_deployment_has_its_own_slope_and_series() -> None:
    samples = attached_memory(600)

    slopes = slopes_after(samples, settle_s(600))
    series = by_process(samples[:2])

    assert slopes["payment"] == pytest.approx(3.0) and slopes["tracker"] == pytest.approx(0.0)
    assert "services" not in slopes
    assert set(series) == {"memory:harness", "memory:payment", "memory:tracker", "memory:broker"}


def test_a_growing_participant_of_a_deployment_is_named_in_the_verdict_and_the_timeline() -> None:
    run = made(
        style="choreography",
        variant="choreography",
        load="open",
        rate=20.0,
        settle_s=120.0,
        rss_slope_after_settle={"harness": 0.1, "payment": 3.0, "tracker": 0.2},
        p95_drift=0.01,
        timeline={
            "memory": [[0.0, 300.0], [600.0, 330.0]],
            "memory:harness": [[0.0, 100.0], [600.0, 100.0]],
            "memory:payment": [[0.0, 80.0], [600.0, 110.0]],
            "memory:tracker": [[0.0, 90.0], [600.0, 90.0]],
            "latency": [[0.0, 20.0, 40.0, 100.0]],
        },
    )
    plan = BenchPlan((Style("choreography"),), rates=(20.0,), duration_s=600.0)
    doc = {
        **document(plan, [run], [], (0.1,) * 3, (0.1,) * 3),
        "conditions": {"attached": "/srv/state"},
    }

    (found,) = doc["endurance"].values()
    assert found["growing"] == ["payment"]
    page = bench_markdown(doc, "saga-compare bench --rate 20 --duration 600 --attach")
    assert "**MISSED**: payment grows" in page
    assert "The harness process hosts" not in page  # attached: each process is apart
    texts = " ".join(ET.fromstring(timeline_svg(doc)).itertext())
    assert "payment" in texts and "tracker" in texts


def test_in_process_the_endurance_table_says_the_harness_line_is_the_services_too() -> None:
    table = "\n".join(endurance_table(endurance_doc(server_slope=1.0, drift=0.0)))

    assert "The harness process hosts the client and the style's own code" in table
    assert "--attach" in table
