"""A saga's trace read as a flow, drawn as a sequence diagram, aligned with the other style's."""

from __future__ import annotations

from pathlib import Path

from harness.report.diagrams.mermaid import parse_sequence, sequence_text
from harness.report.diagrams.model import Block, Message, Note
from harness.report.diff import trace_diff
from harness.report.flow import Edge, flow_of
from harness.report.health import trace_health
from harness.report.stats import scenario_stats
from harness.report.trace_diagrams import distinct_paths, path_of, trace_sequence
from harness.report.traces import saga_metrics
from tests.unit.harness.flow_support import HAPPY, choreography_trace, orchestration_trace
from tests.unit.harness.trace_support import TraceBuilder, root, step, write

CALLS = [
    ("reserve_inventory", "done"),
    ("charge_payment", "done"),
    ("deduct_points", "done"),
    ("create_shipment", "done"),
    ("complete_order", "done"),
]


def test_each_step_knows_the_event_and_the_service_that_triggered_it(tmp_path: Path) -> None:
    flow = flow_of(choreography_trace(tmp_path, HAPPY))

    triggers = {a.step: a.trigger for a in flow.attempts}
    assert triggers["reserve_inventory"] == Edge("orders", "inventory", "order.placed")
    assert triggers["charge_payment"] == Edge("inventory", "payment", "inventory.reserved")
    assert triggers["complete_order"] == Edge("shipping", "orders", "shipping.created")


def test_a_file_from_before_create_and_send_were_one_span_reads_as_the_same_flow(
    tmp_path: Path,
) -> None:
    now = flow_of(choreography_trace(tmp_path / "now", HAPPY))
    older = flow_of(choreography_trace(tmp_path / "older", HAPPY, older=True))

    assert [(d.edge, d.acted, d.produced) for d in older.deliveries] == [
        (d.edge, d.acted, d.produced) for d in now.deliveries
    ]
    assert [d.produced for d in now.deliveries][:2] == [
        ("inventory.reserved",),
        ("payment.charged",),
    ]


def test_the_workflow_calls_each_activity(tmp_path: Path) -> None:
    flow = flow_of(orchestration_trace(tmp_path, CALLS))

    assert flow.attempts[0].trigger == Edge("workflow", "inventory", "reserve_inventory")
    assert [d.edge.label for d in flow.deliveries] == [c for c, _ in CALLS]


def test_the_choreography_diagram_labels_every_event_and_step_and_reads_back(
    tmp_path: Path,
) -> None:
    diagram = trace_sequence(flow_of(choreography_trace(tmp_path, HAPPY)), "c")
    messages = [i for i in diagram.walk() if isinstance(i, Message)]
    notes = [i.text for i in diagram.walk() if isinstance(i, Note)]

    assert [m.text.split(" @ ")[0] for m in messages] == [h[0] for h in HAPPY]
    assert all(m.arrow == "-)" for m in messages)
    assert "done: charge_payment (5.0 ms)" in notes
    assert any(n.startswith("outcome: COMPLETED") for n in notes)
    assert parse_sequence(sequence_text(diagram)) == diagram


def test_what_ran_after_the_outcome_is_drawn_in_a_band_after_it(tmp_path: Path) -> None:
    calls = [("reserve_inventory", "done"), ("create_shipment", "cancelled")]
    flow = flow_of(orchestration_trace(tmp_path, calls, "COMPENSATED", late_ms=500))

    diagram = trace_sequence(flow, "o")
    band = diagram.items[-1]

    assert isinstance(band, Block) and band.kind == "rect"
    late = [i.text for i in band.items if isinstance(i, Message)]
    assert late == ["create_shipment: cancelled @ 518 ms"]
    notes = [i.text for i in diagram.walk() if isinstance(i, Note)]
    assert "abandoned: create_shipment, cancelled after 503 ms" in notes


def test_the_paths_of_several_sagas_are_counted(tmp_path: Path) -> None:
    ok = flow_of(choreography_trace(tmp_path / "a", HAPPY[:1]))
    failed = [("order.placed", "inventory", "reserve_inventory", "failed")]
    out = flow_of(choreography_trace(tmp_path / "b", failed, "COMPENSATED"))

    paths = distinct_paths([ok, out, out])

    assert paths == [("reserve_inventory failed", 2), ("reserve_inventory done", 1)]
    assert path_of(ok) == "reserve_inventory done"


def test_the_diff_names_a_step_only_one_style_runs(tmp_path: Path) -> None:
    c = choreography_trace(tmp_path / "c", HAPPY, "COMPLETED")
    o = orchestration_trace(tmp_path / "o", CALLS[:3], "COMPLETED")
    stats = scenario_stats([saga_metrics(c), saga_metrics(o)])["happy_path"]

    diff = trace_diff(
        "happy_path", {"orchestration": flow_of(o), "choreography": flow_of(c)}, stats
    )

    assert diff.sentence == (
        "Only the choreography runs create_shipment (done); the orchestration never starts it."
    )
    assert [row.step for row in diff.rows][:3] == [c for c, _ in CALLS[:3]]


def test_the_diff_names_work_going_on_after_the_outcome(tmp_path: Path) -> None:
    hops = HAPPY[:2]
    c = choreography_trace(tmp_path / "c", hops)
    o = orchestration_trace(tmp_path / "o", [(h[2], "done") for h in hops], late_ms=900)
    stats = scenario_stats([saga_metrics(c), saga_metrics(o)])["happy_path"]

    diff = trace_diff(
        "happy_path", {"orchestration": flow_of(o), "choreography": flow_of(c)}, stats
    )

    assert diff.sentence.startswith(
        "The orchestrated happy_path is quiet only after its charge_payment attempt ends"
    )


def test_the_diff_of_equal_flows_says_which_style_is_faster(tmp_path: Path) -> None:
    c = choreography_trace(tmp_path / "c", HAPPY)
    o = orchestration_trace(tmp_path / "o", CALLS)
    stats = scenario_stats([saga_metrics(c), saga_metrics(o)])["happy_path"]

    diff = trace_diff(
        "happy_path", {"orchestration": flow_of(o), "choreography": flow_of(c)}, stats
    )

    assert diff.sentence.startswith("Same steps and attempts in both")


def test_a_saga_span_outside_its_trace_splits_the_saga(tmp_path: Path) -> None:
    home = TraceBuilder(trace_id="a" * 32)
    saga_root = root(home, "choreography", "o-1", 50)
    step(home, "reserve_inventory", 1, 5, saga_root, {"saga.id": "o-1-t"})
    stray = TraceBuilder(trace_id="b" * 32)
    stray.span(
        "send front.saga.ended.{saga_id}",
        60,
        61,
        kind=4,
        attrs={"saga.id": "o-1-t", "saga.variant": "choreography"},
    )
    path = write(tmp_path / "t.jsonl", home, stray)

    health = trace_health(path)

    assert health.sagas == 1 and not health.one_trace_per_saga
    assert health.strays == (("send front.saga.ended.{saga_id}", 1),)
    assert not health.harness_only


def test_a_file_with_only_the_harness_spans_says_so(tmp_path: Path) -> None:
    only = TraceBuilder()
    root(only, "choreography", "o-1", 50)
    health = trace_health(write(tmp_path / "t.jsonl", only))

    assert health.harness_only and health.one_trace_per_saga
