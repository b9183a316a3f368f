"""The spec's diagrams as committed files: ``<name>.mmd`` (Mermaid) and ``<name>.svg`` beside it.

`write` renders them into a folder (``python -m harness.report.diagrams docs/diagrams``);
`stale` names the files in a folder that differ from what the spec gives now, which the test
suite checks for ``docs/diagrams``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.report.diagrams.mermaid import parse_sequence, parse_state, sequence_text, state_text
from harness.report.diagrams.sequence_svg import sequence_svg
from harness.report.diagrams.spec import (
    choreography_sequence,
    orchestration_sequence,
    state_diagram,
)
from harness.report.diagrams.state_svg import state_svg
from shared.definition import SagaDefinition


@dataclass(frozen=True)
class SpecDiagram:
    """One committed diagram: its Mermaid text from the spec, and how that text is drawn."""

    name: str
    text: Callable[[SagaDefinition], str]
    draw: Callable[[str], str]


DIAGRAMS = (
    SpecDiagram(
        "saga-states",
        lambda definition: state_text(state_diagram(definition.spec)),
        lambda text: state_svg(parse_state(text), standalone=True),
    ),
    SpecDiagram(
        "choreography-sequence",
        lambda definition: sequence_text(choreography_sequence(definition)),
        lambda text: sequence_svg(parse_sequence(text), standalone=True),
    ),
    SpecDiagram(
        "orchestration-sequence",
        lambda definition: sequence_text(orchestration_sequence(definition.spec)),
        lambda text: sequence_svg(parse_sequence(text), standalone=True),
    ),
)


def rendered(definition: SagaDefinition) -> dict[str, str]:
    """File name -> content of every diagram the definition's spec gives (Mermaid, its SVG)."""
    files: dict[str, str] = {}
    for diagram in DIAGRAMS:
        text = diagram.text(definition)
        files[f"{diagram.name}.mmd"] = text
        files[f"{diagram.name}.svg"] = diagram.draw(text)
    return files


def write(folder: Path, definition: SagaDefinition) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered(definition).items():
        path = folder / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale(folder: Path, definition: SagaDefinition) -> list[str]:
    """The files in ``folder`` that are missing or differ from what the spec gives now."""
    found = []
    for name, content in rendered(definition).items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            found.append(name)
    return found
