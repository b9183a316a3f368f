"""A committed lab run written into the docs from its JSON: `scripts/anomalies_doc.py`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from harness.anomalies.kinds import Anomaly, Finding
from harness.anomalies.matrix import LabDocument, Machine
from harness.anomalies.report import document_json
from harness.anomalies.results import CellRun, SagaEnd
from harness.anomalies.stress import StressCell
from shared.contracts import SagaOutcome, SagaStatus

SCRIPT = Path(__file__).parents[3] / "scripts" / "anomalies_doc.py"
PROSE = "## The committed run\n\nHow it was run.\n\n"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anomalies_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lab_run() -> LabDocument:
    end = SagaEnd.of("A", "A-1", SagaOutcome(saga_id="A-1", order_id="A", status="COMPLETED"), "t")
    found = Finding.of(Anomaly.FUZZY_READ, {"A-1"}, "charged 49.98 for an order of 39.98")
    cell = CellRun(
        anomaly=Anomaly.FUZZY_READ,
        variant="choreography",
        setting="by_value off",
        countermeasures="-by_value",
        definition="v1",
        off=True,
        expected=True,
        sagas=[end],
        by_history=[found],
        by_invariants=[found],
        seconds=1.0,
    )
    stressed = StressCell(
        variant="choreography",
        setting="off",
        countermeasures="none",
        definition="v1",
        sagas=2000,
        stuck=0,
        refused_at_admission=0,
        by_history={Anomaly.FUZZY_READ: 123},
        by_invariants={Anomaly.FUZZY_READ: 123},
        disagreements=0,
        outcomes={SagaStatus.COMPLETED.value: 2000},
        p50_ms=10.0,
        p95_ms=20.0,
        throughput_per_s=5.0,
        seconds=400.0,
        examples={},
    )
    return LabDocument(
        command="saga-compare anomalies --stress 2000",
        seed=7,
        stress_sagas=2000,
        started_at=0.0,
        seconds=500.0,
        machine=Machine(cpus=2, load_before=(1.0, 2.0, 3.0), load_after=(4.0, 5.0, 6.0)),
        matrix=[cell],
        stress=[stressed],
    )


def docs_with_run(tmp_path: Path) -> tuple[Path, Path]:
    run = tmp_path / "docs" / "anomalies-run" / "anomalies.json"
    run.parent.mkdir(parents=True)
    run.write_text(json.dumps(document_json(lab_run())), encoding="utf-8")
    doc = tmp_path / "docs" / "anomalies.md"
    module = script()
    doc.write_text(f"# Lab\n\n{PROSE}{module.BEGIN}\nold\n{module.END}\n\n## After\n")
    return run, doc


def test_the_run_is_written_between_the_markers_from_its_json_linking_to_its_page(
    tmp_path: Path,
) -> None:
    run, doc = docs_with_run(tmp_path)
    module = script()

    doc.write_text(module.splice(doc.read_text(), module.section(run, doc)))
    text = doc.read_text()

    assert text.startswith(f"# Lab\n\n{PROSE}{module.BEGIN}\n")
    assert text.endswith(f"{module.END}\n\n## After\n")
    assert "old" not in text
    assert "load 1.0 2.0 3.0 before, 4.0 5.0 6.0 after" in text
    link = "(anomalies-run/anomalies.html#cell-fuzzy-read-by-value-off-choreography)"
    assert f"[observed]{link} (A)" in text
    assert "| choreography | off | 0.0 | 0.0 | 615.0 | 0.0 | 0.0 |" in text
    assert "### Matrix" in text and "\n## Matrix" not in text and "# The anomaly lab" not in text


def test_writing_the_same_run_again_changes_nothing(tmp_path: Path) -> None:
    run, doc = docs_with_run(tmp_path)
    module = script()
    once = module.splice(doc.read_text(), module.section(run, doc))

    assert module.splice(once, module.section(run, doc)) == once


def test_a_doc_without_the_markers_is_refused_in_one_line(tmp_path: Path) -> None:
    run, doc = docs_with_run(tmp_path)
    doc.write_text(PROSE)

    with pytest.raises(SystemExit, match="no '<!-- run: begin"):
        script().splice(doc.read_text(), script().section(run, doc))
