"""The written report: medians with ranges per scenario, a self-contained and escaped page."""

from __future__ import annotations

import re
from pathlib import Path

from harness.compare.conditions import gather
from harness.compare.results import Results
from harness.report.health import trace_health
from harness.report.render import write_report
from harness.report.traces import load_traces
from tests.unit.harness.trace_support import TraceBuilder, root, step, write

LATENCIES = {  # scenario -> variant -> one latency per run
    "happy_path": {"orchestration": (150, 90, 110), "choreography": (20, 12, 16)},
    "race_for_last_items": {"orchestration": (300, 310, 320), "choreography": (60, 70, 80)},
}


def catalogue_traces(tmp_path: Path, scenario_name: str = "happy_path") -> Path:
    """Three runs of two scenarios on both variants; the race has two sagas per run."""
    traces: list[TraceBuilder] = []
    for scenario, by_variant in LATENCIES.items():
        for variant, latencies in by_variant.items():
            for repeat, ms in enumerate(latencies, start=1):
                for order in ("race-01", "race-02") if scenario.startswith("race") else ("o-1",):
                    trace = TraceBuilder(trace_id=f"{len(traces) + 1:032x}")
                    name = scenario_name if scenario == "happy_path" else scenario
                    extra: dict[str, str | int] = {"saga.scenario": name, "saga.repeat": repeat}
                    saga_root = root(trace, variant, order, ms, extra)
                    step(trace, "reserve_inventory", 1, ms / 2, parent=saga_root)
                    traces.append(trace)
    return write(tmp_path / "traces.jsonl", *traces)


def test_markdown_gives_each_scenario_its_median_and_min_max_never_pooled(tmp_path: Path) -> None:
    write_report(tmp_path, None, load_traces(catalogue_traces(tmp_path)))

    report = (tmp_path / "report.md").read_text()
    assert "| happy_path | COMPLETED | COMPLETED | n/a | n/a/n/a | 110 (90-150) | 16 (12-20) |" in (
        report
    )
    assert "| race_for_last_items | 2 x COMPLETED | 2 x COMPLETED |" in report
    assert "| 310 (300-320) | 70 (60-80) |" in report
    assert "| happy_path | orchestration | 1 saga x 3 runs | 110 (90-150) |" in report
    assert "| race_for_last_items | choreography | 2 sagas x 3 runs | 70 (60-80) |" in report


def test_the_page_is_self_contained_with_no_fetches(tmp_path: Path) -> None:
    page = write_report(tmp_path, None, load_traces(catalogue_traces(tmp_path))).read_text()

    assert "<style>" in page
    assert not re.search(r"<(script|link|img)\b", page)
    addresses = set(re.findall(r"https?://[^\s\"')]+", page))
    assert addresses <= {"http://www.w3.org/2000/svg"}


def test_every_chart_has_ticks_and_an_axis_title_and_the_race_draws_every_saga(
    tmp_path: Path,
) -> None:
    page = write_report(tmp_path, None, load_traces(catalogue_traces(tmp_path))).read_text()

    charts = page.split('<svg class="chart"')[1:]
    assert len(charts) == 1 + 2 + 2  # the overview, then both styles of each scenario
    for chart in charts:
        assert '<g class="tick">' in chart and 'class="axis-title"' in chart
    race = page[page.index('id="s-race_for_last_items"') :]
    shared = race.split('class="chart zoom"')[0]  # the faster style's own scale comes after
    assert shared.count('data-lane="race-01"') == 2 and shared.count('data-lane="race-02"') == 2


def test_names_from_a_trace_file_are_escaped_in_the_page(tmp_path: Path) -> None:
    traces = load_traces(catalogue_traces(tmp_path, scenario_name="<b>bold</b>"))

    page = write_report(tmp_path, None, traces).read_text()

    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


def test_each_scenario_draws_both_styles_median_saga_as_a_sequence_diagram(
    tmp_path: Path,
) -> None:
    page = write_report(tmp_path, None, load_traces(catalogue_traces(tmp_path))).read_text()

    happy = page[page.index('id="s-happy_path"') : page.index('id="s-race_for_last_items"')]
    assert happy.count('<svg class="seq"') == 2
    assert 'data-variant="orchestration"' in happy and 'data-variant="choreography"' in happy
    assert "What differs:" in happy
    assert "sequenceDiagram" in happy  # the Mermaid text the diagram was drawn from


def test_the_page_and_the_markdown_show_the_run_conditions(tmp_path: Path) -> None:
    traces = load_traces(catalogue_traces(tmp_path))
    results = Results(
        equivalent=True,
        invariants={},
        expected_met=True,
        results=[],
        conditions=gather(store="sqlite", definition="v1"),
    )

    page = write_report(tmp_path, results, traces).read_text()
    markdown = (tmp_path / "report.md").read_text()

    assert results.conditions is not None
    commit = results.conditions.code
    for text in (page, markdown):
        assert commit in text
        assert "load average" in text and "nats-server" in text and "sqlite" in text


def test_a_report_of_traces_holding_only_the_harness_spans_says_so(tmp_path: Path) -> None:
    trace = TraceBuilder()
    root(trace, "choreography", "o-1", 40)
    path = write(tmp_path / "traces.jsonl", trace)

    page = write_report(tmp_path, None, load_traces(path), trace_health(path)).read_text()

    assert "These traces hold only the harness's spans" in page
    assert "not checked" in page


def test_a_drifting_saga_is_marked_in_the_findings_and_its_scenario(tmp_path: Path) -> None:
    traces = load_traces(catalogue_traces(tmp_path))  # one step where the spec runs five

    page = write_report(tmp_path, None, traces).read_text()

    assert 'id="flow-verdict"' in page
    verdict = page[page.index('id="flow-verdict"') :]
    assert verdict[: verdict.index("</li>")].count('class="no"') == 1
    happy = page[page.index('id="s-happy_path"') :]
    assert "Drift from the spec" in happy and "missing step charge_payment" in happy
