"""The spec's diagrams: Mermaid text that reads back, SVG drawn from it, committed and current."""

from __future__ import annotations

from pathlib import Path

import pytest

from choreography.events import Routing
from harness.report.diagrams.files import rendered, stale, write
from harness.report.diagrams.mermaid import (
    MermaidError,
    parse_sequence,
    parse_state,
    sequence_text,
    state_text,
)
from harness.report.diagrams.model import Block, Message, Note, Participant, Sequence
from harness.report.diagrams.sequence_svg import sequence_svg
from harness.report.diagrams.spec import (
    choreography_sequence,
    orchestration_sequence,
    state_diagram,
)
from shared.definitions import ORDERS_V1, definition_named

DOCS = Path(__file__).resolve().parents[3] / "docs" / "diagrams"


def test_the_committed_spec_diagrams_are_what_the_spec_gives_now() -> None:
    assert stale(DOCS, ORDERS_V1) == [], "run: python -m harness.report.diagrams docs/diagrams"


def test_a_step_added_to_the_spec_makes_the_committed_diagrams_stale(tmp_path: Path) -> None:
    write(tmp_path, ORDERS_V1)
    longer = definition_named("voucher")  # the order saga and one step more

    assert stale(tmp_path, ORDERS_V1) == []
    assert set(stale(tmp_path, longer)) == set(rendered(ORDERS_V1))
    assert "apply_voucher" in rendered(longer)["saga-states.mmd"]


def test_each_diagram_reads_back_from_its_mermaid_text() -> None:
    states = state_diagram(ORDERS_V1.spec)
    assert parse_state(state_text(states)) == states
    for diagram in (choreography_sequence(ORDERS_V1), orchestration_sequence(ORDERS_V1.spec)):
        assert parse_sequence(sequence_text(diagram)) == diagram


def test_alt_branches_and_nested_blocks_read_back() -> None:
    a, b = Participant("a", "A side"), Participant("b", "b")
    diagram = Sequence(
        "branches",
        (a, b),
        (
            Block(
                "alt",
                "it works",
                (Message("a", "b", "call"),),
                (("it fails", (Message("b", "a", "no", "--x"), Note(("a", "b"), "fault: x"))),),
            ),
            Block("opt", "", (Block("loop", "again", (Message("a", "a", "self", "-)"),)),)),
        ),
    )
    assert parse_sequence(sequence_text(diagram)) == diagram


def test_text_mermaid_would_read_as_syntax_is_cleaned() -> None:
    diagram = Sequence("t", (Participant("a", "a"),), (Note(("a",), "one; #two\nthree"),))
    text = sequence_text(diagram)

    assert "Note over a: one, no. two three" in text
    assert parse_sequence(text).items == (Note(("a",), "one, no. two three"),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("graph TD\n", "line 1: not a sequenceDiagram"),
        ("sequenceDiagram\n    a->>b: hi\n", "line 2: a is not a declared participant"),
        ("sequenceDiagram\n    participant a\n    end\n", "line 3: end without a block"),
        ("sequenceDiagram\n    participant a\n    opt x\n", "line 3: opt block never ended"),
        ("sequenceDiagram\n    participant a\n    a=>a: x\n", "line 3: not understood"),
    ],
)
def test_text_outside_the_subset_is_refused_naming_its_line(text: str, problem: str) -> None:
    with pytest.raises(MermaidError, match=problem):
        parse_sequence(text)


def test_every_event_in_the_choreography_diagram_is_a_kind_the_routing_knows() -> None:
    routing = Routing(ORDERS_V1)
    events = [
        item.text.split(" ")[0]
        for item in choreography_sequence(ORDERS_V1).walk()
        if isinstance(item, Message) and item.arrow in ("-)", "-x")
    ]

    assert events
    for event in events:
        assert routing.meaning(event) is not None, event


def test_the_orchestration_diagram_calls_every_step_and_compensation() -> None:
    calls = {
        item.text
        for item in orchestration_sequence(ORDERS_V1.spec).walk()
        if isinstance(item, Message) and item.arrow == "->>"
    }
    assert set(ORDERS_V1.spec.forward_steps) | set(ORDERS_V1.spec.compensations) <= calls


def test_a_label_wider_than_the_drawing_stays_inside_it() -> None:
    diagram = Sequence(
        "wide", (Participant("a", "a"), Participant("b", "b")), (Message("a", "b", "x" * 200),)
    )
    svg = sequence_svg(diagram)

    assert "\u2026" in svg and "x" * 200 in svg  # cut on the arrow, whole in its title
